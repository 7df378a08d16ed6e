# Sourced by shell tests: make_xor_inputs FILE writes the inputs of
# examples/xor.grad (x: f32[4,2], y: f32[4,1], the four XOR cases) as a
# safetensors file.
make_xor_inputs() {
  /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
x = [0, 0, 0, 1, 1, 0, 1, 1]; y = [0, 1, 1, 0]
data = struct.pack('<8f', *x) + struct.pack('<4f', *y)
h = json.dumps({"x": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]},
                "y": {"dtype": "F32", "shape": [4, 1], "data_offsets": [32, 48]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + data)
PY
}
