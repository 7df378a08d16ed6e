# Shared by the robustness scripts (sourced after setting G and case): a
# scratch directory, its own code cache, a memory and time limit for gradc,
# and small input files. Every case ends with /dev/null still a device.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E=$root/examples D=$root/examples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GRADC_CACHE_DIR=$tmp/cache
fail() { echo "FAIL: $*"; exit 1; }
# 8 GB of address space: an unbounded read fails rather than swaps (not under
# the sanitizers, which reserve terabytes of shadow address space).
[ "${GRADC_SANITIZED:-0}" = 1 ] || ulimit -v 8000000
# gradc under a time limit: a hang is a failure, not a stuck test.
g() { timeout 60 "$G" "$@"; }
# Inputs for examples/xor.grad (x: f32[4,2], y: f32[4,1]) as a safetensors file.
make_inputs() {
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
grad() { g grad $E/xor.grad --backend interp "$@"; }
train() { g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 2 --no-progress "$@"; }
make_inputs $tmp/in.st
# Guard: every case ends with /dev/null still the machine's null device.
check_dev_null() { test -c /dev/null || { echo "FATAL: /dev/null is no longer a character device"; exit 1; }; }
trap 'check_dev_null; rm -rf "$tmp"' EXIT

