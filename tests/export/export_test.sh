#!/usr/bin/env bash
# gradc export end to end: export a model, build a C driver with a C compiler
# and libm alone, check that the program needs nothing but the C library, and
# compare its forward outputs, losses, params and optimizer state after N
# train steps with the JIT's (gradc run, gradc step), byte for byte.
#   export_test.sh GRADC SOURCE_DIR CASE
set -euo pipefail
G=$1
S=$2
CASE=$3
E=$S/examples
tmp=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$tmp"' EXIT
cd "$tmp"
export GRADC_CACHE_DIR=
g() { timeout 120 "$G" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

. "$S/tests/common/xor_inputs.sh"

# Inputs as a safetensors file: one NAME:DTYPE:SHAPE:MOD per tensor (f32
# values (7 i mod MOD) / 2, i32 values i mod MOD, i the element's index).
make_inputs() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
header, data = {}, b''
for spec in sys.argv[2:]:
    name, dtype, shape, mod = spec.split(':')
    shape = [int(d) for d in shape.split(',')]
    n = 1
    for d in shape: n *= d
    if dtype == 'f32': blob = struct.pack('<%df' % n, *[(7 * i % int(mod)) / 2 for i in range(n)])
    else: blob = struct.pack('<%di' % n, *[i % int(mod) for i in range(n)])
    header[name] = {"dtype": dtype.upper(), "shape": shape, "data_offsets": [len(data), len(data) + len(blob)]}
    data += blob
h = json.dumps(header).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + data)
PY
}

# IN with each named tensor grown to SHAPE (the same rank): the new elements
# of no use to a model (f32 NaN, i32 1000000, out of every class range).
#   pad_to IN OUT NAME=D,D.. ...
pad_to() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys, itertools
src, dst = sys.argv[1], sys.argv[2]
want = {a.split('=')[0]: [int(d) for d in a.split('=')[1].split(',')] for a in sys.argv[3:]}
blob = open(src, 'rb').read()
n = struct.unpack('<Q', blob[:8])[0]
header, data = json.loads(blob[8:8 + n]), blob[8 + n:]
out_header, out = {}, b''
for name, t in header.items():
    if name == '__metadata__': continue
    begin, end = t['data_offsets']
    code = '<f' if t['dtype'] == 'F32' else '<i'
    old, new = t['shape'], want.get(name, t['shape'])
    values = struct.unpack('<%d%s' % ((end - begin) // 4, code[1]), data[begin:end])
    fill = float('nan') if t['dtype'] == 'F32' else 1000000
    def at(shape, index):
        k = 0
        for d, i in zip(shape, index): k = k * d + i
        return k
    grown = [values[at(old, i)] if all(a < b for a, b in zip(i, old)) else fill
             for i in itertools.product(*[range(d) for d in new])]
    blob_t = struct.pack('<%d%s' % (len(grown), code[1]), *grown)
    out_header[name] = {"dtype": t['dtype'], "shape": new, "data_offsets": [len(out), len(out) + len(blob_t)]}
    out += blob_t
h = json.dumps(out_header).encode()
h += b' ' * (-len(h) % 8)
open(dst, 'wb').write(struct.pack('<Q', len(h)) + h + out)
PY
}

# Exports MODEL with ENTRIES and --set SETS, builds the driver on it and
# compares it with the JIT on inputs IN after one step from the initializers.
# With dynamic dims (--max D=N): DRIVER_IN, the inputs for the driver at the
# largest sizes, and DRIVER_FLAGS, the driver's -DDYN_ARGS and -DDYN_BAD_ARGS.
#   bit_identical MODEL NAME ENTRIES IN THREADS [--set D=N | --max D=N ...]
bit_identical() {
  local model=$1 name=$2 entries=$3 in=$4 threads=$5
  shift 5
  local upper
  upper=$(tr a-z A-Z <<<"$name")
  g export "$model" -o out --entry "$entries" "$@" >export.txt
  grep -q "$name.o" export.txt || fail "no summary: $(cat export.txt)"
  test -s "out/$name.o" && test -s "out/$name.h" || fail "$name.o or $name.h not written"
  readelf -h "out/$name.o" | grep -q 'REL (Relocatable file)' || fail "$name.o is not a relocatable object"
  check_undefined "out/$name.o"
  # One step from the initializers gives params, state and a step count to start from.
  g step "$model" --inputs "$in" --steps 1 -o start.st "$@" >/dev/null
  g run "$model" --params start.st --inputs "$in" -o run.st "$@" >/dev/null
  g grad "$model" --params start.st --inputs "$in" -o grad.st "$@" >/dev/null
  g step "$model" --params start.st --inputs "$in" --steps 10 -o step.st "$@" >/dev/null
  local has_grad=
  case ,$entries, in *,grad,*) has_grad=-DHAS_GRAD ;; esac
  cc -std=c11 -Wall -Wextra -Werror -O1 -Iout -DPREFIX="$name" -DUPREFIX="$upper" "-DMODEL_HEADER=\"$name.h\"" \
    $has_grad ${DRIVER_FLAGS:-} "$S/tests/export/driver.c" "out/$name.o" -lm -o driver
  check_ldd driver
  # The same with a host thread pool (the driver's, on POSIX threads).
  cc -std=c11 -Wall -Wextra -Werror -O1 -Iout -DPREFIX="$name" -DUPREFIX="$upper" "-DMODEL_HEADER=\"$name.h\"" \
    $has_grad ${DRIVER_FLAGS:-} -DPTHREADS -pthread "$S/tests/export/driver.c" "out/$name.o" -lm -o driver_threads
  local t
  for t in $threads; do
    local program=./driver
    case $t in p*) program=./driver_threads ;; esac
    $program "${DRIVER_IN:-$in}" start.st run.st grad.st step.st 10 "$t" >driver.txt ||
      { cat driver.txt; fail "the exported $name differs from the JIT (threads $t)"; }
    grep -q 'all identical to the JIT' driver.txt || fail "$(cat driver.txt)"
    grep -q "^W1: identical" driver.txt || fail "W1 not compared: $(cat driver.txt)"
    grep -q "^opt.step: identical" driver.txt || fail "opt.step not compared: $(cat driver.txt)"
    if [ -n "$has_grad" ]; then grep -q "^grad.W1: identical" driver.txt || fail "grad.W1 not compared"; fi
  done
}

# The undefined symbols of an object file, each of which the C library or
# libm (with glibc's libmvec) must define (_GLOBAL_OFFSET_TABLE_: the static
# linker's own, for position-independent code).
check_undefined() {
  local libs="" lib
  for lib in libc.so.6 libm.so.6 libmvec.so.1; do
    libs+=" $(cc -print-file-name=$lib)"
  done
  local defined
  defined=$(for lib in $libs; do nm -D --defined-only "$(readlink -f "$lib")"; done | awk '{print $3}' | sed 's/@.*//' | sort -u)
  local sym
  for sym in $(nm -u "$1" | awk '{print $2}' | grep -vx _GLOBAL_OFFSET_TABLE_); do
    grep -qx "$sym" <<<"$defined" || fail "$1 needs '$sym', which neither libc nor libm defines"
  done
}

# The program's shared libraries: the C library's own only.
check_ldd() {
  local libs
  libs=$(ldd "$1" | awk '{print $1}' | sed 's|.*/||')
  for lib in $libs; do
    case $lib in
      linux-vdso.so.*|ld-linux*.so.*|libc.so.6|libm.so.6|libmvec.so.1) ;;
      *) fail "$1 links $lib" ;;
    esac
  done
}

case $CASE in
  xor_bit_identical)
    make_xor_inputs in.st
    bit_identical "$E/xor.grad" xor forward,train_step in.st 0
    ;;
  digits_bit_identical)
    # Momentum state, class ids, exp and log, register-tiled products; with
    # no runtime, a runtime of 3 slots that runs iterations backwards, and 4
    # POSIX threads (B=512: elementwise kernels large enough for the pool).
    make_inputs in.st x:f32:512,64:33 label:i32:512:10
    bit_identical "$E/digits_mlp.grad" digits_mlp forward,grad,train_step in.st "0 3 p4" --set B=512
    grep -q 'float momentum_buffer_W1\[64\]\[128\]; /\* opt.momentum_buffer.W1' out/digits_mlp.h ||
      fail "no momentum_buffer_W1 in the state struct"
    ;;
  batch_norm_bit_identical)
    # Buffers live in the params struct, in declaration order: forward reads
    # the running statistics, grad normalizes with the batch's, train_step
    # updates them in place.
    cat > bn.grad <<'GRAD'
model bn
dim B = 16
input x : [B, 4]
input label : i32[B]
param W1 : [4, 8] ~ he_uniform
buffer running_mean : [8]
param gamma : [8] ~ ones
buffer running_var : [8] ~ ones
param beta : [8]
param W2 : [8, 3] ~ xavier_uniform
h = relu(batch_norm(x @ W1, running_mean, running_var, gamma, beta))
loss cross_entropy(h @ W2, label)
output h
optimizer adam(lr = 0.01)
GRAD
    make_inputs in.st x:f32:16,4:9 label:i32:16:3
    bit_identical bn.grad bn forward,grad,train_step in.st 1
    grep -q "^running_var: identical" driver.txt || fail "running_var not compared: $(cat driver.txt)"
    tr -d '\n' < out/bn.h | grep -Eq 'float W1\[4\]\[8\];[^}]*float running_mean\[8\];[^}]*float gamma\[8\];[^}]*float running_var\[8\];' ||
      fail "the params struct does not hold params and buffers in declaration order: $(grep -A8 'typedef struct bn_params' out/bn.h)"
    ;;
  cnn_bit_identical)
    # Convolutions whose products gather their windows from the padded input
    # (a stride, padding, a pool), on the exported target's own vectors, and
    # on 2 POSIX threads.
    cat > cnn.grad <<'GRAD'
model cnn
dim B = 8
input x : [B, 2, 9, 9]
input label : i32[B]
param W1 : [8, 2, 3, 3] ~ he_uniform
param W2 : [16, 8, 3, 3] ~ he_uniform
param W3 : [64, 4] ~ xavier_uniform
h = max_pool2d(relu(conv2d(relu(conv2d(x, W1, padding=1)), W2, stride=2, padding=1)), 2)   # [B, 16, 2, 2]
logits = flatten(h) @ W3
loss cross_entropy(logits, label)
output logits
optimizer adam(lr = 0.01)
GRAD
    g dump cnn.grad --stage loops >loops.txt
    grep -q "B gathered" loops.txt || fail "no gathered product in cnn.grad's loops"
    make_inputs in.st x:f32:8,2,9,9:13 label:i32:8:4
    bit_identical cnn.grad cnn forward,grad,train_step in.st "0 p2"
    ;;
  iris_adam_bit_identical)
    make_inputs in.st x:f32:16,4:9 label:i32:16:3
    bit_identical "$E/iris_mlp.grad" iris_mlp forward,train_step in.st 1 --set B=16  # its batch dim is dynamic
    ;;
  dynamic_bit_identical)
    # A dynamic batch dim (--max B=N) is an int64_t argument of every entry:
    # 11 rows on code for 16 (iris), 300 on code for 512 (digits, whose
    # products are register-tiled and run on the pool), bit-identical to the
    # JIT compiled the same way; the rows past the size in the driver's
    # inputs hold NaN and class ids out of range, which the entries must
    # never read (they pad a copy), and a size out of range is refused.
    make_inputs in.st x:f32:11,4:9 label:i32:11:3
    pad_to in.st in_max.st x=16,4 label=16
    DRIVER_IN=in_max.st DRIVER_FLAGS="-DDYN_ARGS=,11 -DDYN_BAD_ARGS=,17" \
      bit_identical "$E/iris_mlp.grad" iris_mlp forward,grad,train_step in.st "0 3" --max B=16
    grep -q '#define IRIS_MLP_MAX_B 16' out/iris_mlp.h || fail "no IRIS_MLP_MAX_B: $(grep MAX out/iris_mlp.h)"
    grep -q 'int64_t B, void \*work' out/iris_mlp.h || fail "no size argument: $(grep -A1 'iris_mlp_forward(' out/iris_mlp.h)"
    grep -q '^out.logits: identical' driver.txt || fail "the output not compared: $(cat driver.txt)"
    grep -qE '^bad size: [0-9]+: iris_mlp: error: the size of dim B is outside \[1, 16\]' driver.txt ||
      fail "a size past the bound was not refused: $(cat driver.txt)"
    sed 's/^dim B = 64 .*/dim B/' "$E/digits_mlp.grad" > digits_dyn.grad
    grep -q '^dim B$' digits_dyn.grad || fail "digits_dyn.grad has no dynamic B"
    make_inputs in.st x:f32:300,64:33 label:i32:300:10
    pad_to in.st in_max.st x=512,64 label=512
    DRIVER_IN=in_max.st DRIVER_FLAGS="-DDYN_ARGS=,300 -DDYN_BAD_ARGS=,0" \
      bit_identical digits_dyn.grad digits_dyn forward,grad,train_step in.st "0 3 p4" --max B=512
    grep -qE '^bad size: [0-9]+: .*outside \[1, 512\]' driver.txt || fail "size 0 was not refused: $(cat driver.txt)"
    # Two dynamic dims, T along the first axis of x and B along its second:
    # padded along both, in declaration order (T, then B).
    cat > two.grad <<'GRAD'
model two
dim T
dim B
input x : [T, B]
input w : [B]
param W1 : [] ~ constant(0.5)
y = exp(x * W1) * w
s = sum(y, axis=0)
output s
loss mean(y) + max(sum(x, axis=0))
optimizer sgd(lr = 0.1)
GRAD
    make_inputs in.st x:f32:3,5:9 w:f32:5:4
    pad_to in.st in_max.st x=4,8 w=8
    DRIVER_IN=in_max.st DRIVER_FLAGS="-DDYN_ARGS=,3,5 -DDYN_BAD_ARGS=,3,9" \
      bit_identical two.grad two forward,grad,train_step in.st "0" --max T=4 --max B=8
    grep -qE '^bad size: [0-9]+: .*dim B is outside \[1, 8\]' driver.txt || fail "B = 9 was not refused: $(cat driver.txt)"
    # check and dump say what --max compiled.
    # (Into files: a reader that stops early would end gradc with SIGPIPE.)
    g check "$E/iris_mlp.grad" --max B=16 >check.txt
    grep -q 'B (dynamic, up to 16)' check.txt || fail "check does not show the bound: $(cat check.txt)"
    g dump "$E/iris_mlp.grad" --stage loops --max B=16 >loops.txt
    head -n 1 loops.txt | grep -q 'every size B <= 16 (--max)' ||
      fail "dump --stage loops does not say which sizes its code runs: $(head -n 1 loops.txt)"
    # Without --set or --max: a usage error that names both.
    rc=0
    g export "$E/iris_mlp.grad" -o none >out.txt 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q -- '--set B=N, or compile it for every size up to N with --max B=N' out.txt ||
      fail "exit $rc: $(cat out.txt)"
    rc=0
    g export "$E/iris_mlp.grad" -o none --set B=4 --max B=8 >out.txt 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q -- '--set B=4 and --max B=8 together' out.txt || fail "--set and --max: exit $rc: $(cat out.txt)"
    rc=0
    g export "$E/xor.grad" -o none --max B=8 >out.txt 2>&1 || rc=$?
    [ "$rc" = 2 ] && grep -q -- '--max bounds a dynamic dim' out.txt || fail "--max on a fixed dim: exit $rc: $(cat out.txt)"
    ;;
  scan_bit_identical)
    # A loop (scan, SPEC 2.7): the forward loop, the backward loop and the
    # work the optimizer moved out of them (products over all steps, a
    # weight's gradient summed after the loop); B x H = 65536 elements, so
    # kernels inside the loops run as thread-pool tasks that read the step.
    cat > rnn.grad <<'GRAD'
model rnn
dim T = 3
dim B = 128
dim D = 8
dim H = 512
input x : [T, B, D]
input y : [B]
param W1 : [D, H] ~ xavier_uniform
param U : [H, H] ~ normal(0, 0.03)
param w : [H] ~ normal(0, 0.05)
fn cell(h, xt) = tanh(xt @ W1 + h @ U)
hs = scan(cell, broadcast_to(0, [B, H]), x)
loss mse(reshape(slice(hs, axis=0, start=-1), [B, H]) @ w, y) + mean(square(hs)) / 10
output hs
optimizer adam(lr = 0.01)
GRAD
    make_inputs in.st x:f32:3,128,8:9 y:f32:128:5
    bit_identical rnn.grad rnn forward,grad,train_step in.st "0 3 p4"
    ;;
  random_bit_identical)
    # Random draws keyed by the seed in NAME_state (2 words, 0 here as
    # gradc's default --seed) and the step: dropout in training mode, and the
    # gradient-free optimizers (genetic's population is state).
    make_xor_inputs in.st
    sed 's/^optimizer .*/optimizer genetic(population = 8, elite = 2)/' "$E/xor.grad" > xor_genetic.grad
    bit_identical xor_genetic.grad xor_genetic forward,train_step in.st "0 3"
    grep -q "^opt.population.W1: identical" driver.txt || fail "the population not compared: $(cat driver.txt)"
    grep -q 'int32_t seed\[2\]; /\* @seed: i32\[2\]' out/xor_genetic.h || fail "no seed in the state struct: $(grep -A12 'typedef struct xor_genetic_state' out/xor_genetic.h)"
    sed 's/^optimizer .*/optimizer es(population = 4, lr = 0.1)/' "$E/xor.grad" > xor_es.grad
    bit_identical xor_es.grad xor_es forward,train_step in.st 1
    sed 's/^h = tanh(x @ W1 + b1)/h = dropout(tanh(x @ W1 + b1), 0.25)/' "$E/xor.grad" > xor_dropout.grad
    grep -q dropout xor_dropout.grad || fail "no dropout in the model"
    bit_identical xor_dropout.grad xor_dropout forward,train_step in.st 1
    # grad has no seed in its C API yet: refused, with the way out.
    g export xor_dropout.grad -o grad_dir --entry grad > grad.txt 2>&1 && fail "grad with dropout exported"
    grep -q "train_step's has them in NAME_state" grad.txt || fail "$(cat grad.txt)"
    ;;
  train_checkpoint)
    # A `gradc train` checkpoint (params, opt.momentum_buffer.*, opt.step as
    # i32, train.* entries the structs do not have) loads by the tensor
    # tables, and the exported code continues from it as gradc does.
    g train "$E/digits_mlp.grad" --data "x=$E/data/digits_train.csv:!label" --data "label=$E/data/digits_train.csv:label" \
      --epochs 1 --batch 32 -o ckpt.st --no-progress --quiet >/dev/null
    make_inputs in.st x:f32:32,64:33 label:i32:32:10
    g export "$E/digits_mlp.grad" -o out --set B=32 >/dev/null
    g run "$E/digits_mlp.grad" --params ckpt.st --inputs in.st -o run.st --set B=32 >/dev/null
    g grad "$E/digits_mlp.grad" --params ckpt.st --inputs in.st -o grad.st --set B=32 >/dev/null
    g step "$E/digits_mlp.grad" --params ckpt.st --inputs in.st --steps 3 -o step.st --set B=32 >/dev/null
    cc -std=c11 -Wall -Wextra -Werror -Iout -DPREFIX=digits_mlp -DUPREFIX=DIGITS_MLP '-DMODEL_HEADER="digits_mlp.h"' \
      -DHAS_GRAD "$S/tests/export/driver.c" out/digits_mlp.o -lm -o driver
    ./driver in.st ckpt.st run.st grad.st step.st 3 0 >driver.txt || { cat driver.txt; fail "differs after loading a train checkpoint"; }
    grep -q '^opt.momentum_buffer.W1: identical' driver.txt || fail "$(cat driver.txt)"
    ;;
  bad_class_id)
    # A class id out of range: train_step returns a code whose message names
    # the model line, and changes nothing.
    make_inputs in.st x:f32:16,4:9 label:i32:16:3
    g export "$E/iris_mlp.grad" -o out --entry forward,train_step --set B=16 >/dev/null
    g step "$E/iris_mlp.grad" --inputs in.st --steps 1 -o start.st >/dev/null
    cc -std=c11 -Wall -Wextra -Werror -Iout -DPREFIX=iris_mlp -DUPREFIX=IRIS_MLP '-DMODEL_HEADER="iris_mlp.h"' \
      "$S/tests/export/driver.c" out/iris_mlp.o -lm -o driver
    ./driver in.st start.st bad-class-id >driver.txt || { cat driver.txt; fail "the bad class id was not refused"; }
    grep -qE 'train_step returned [1-9][0-9]*: .*iris_mlp.grad:[0-9]+:[0-9]+: error: .*outside \[0, 3\) .*\(in train_step\)' driver.txt ||
      fail "no message naming the model line: $(cat driver.txt)"
    grep -q 'unknown code: iris_mlp: not a return code of this model' driver.txt || fail "$(cat driver.txt)"
    ;;
  bad_embedding_id)
    # An embedding id out of range (the driver sets the first id, the first
    # i32 input, to 1000000): the code's message names the embedding's line.
    M=$S/tests/reference/models/embedding_bag.grad
    make_inputs in.st ids:i32:5,3:6 label:i32:5:3
    g export "$M" -o out --entry forward,train_step >/dev/null
    g step "$M" --inputs in.st --steps 1 -o start.st >/dev/null
    cc -std=c11 -Wall -Wextra -Werror -Iout -DPREFIX=embedding_bag -DUPREFIX=EMBEDDING_BAG \
      '-DMODEL_HEADER="embedding_bag.h"' "$S/tests/export/driver.c" out/embedding_bag.o -lm -o driver
    ./driver in.st start.st bad-class-id >driver.txt || { cat driver.txt; fail "the bad embedding id was not refused"; }
    grep -qE 'train_step returned [1-9][0-9]*: .*embedding_bag.grad:17:5: error: an embedding id is outside \[0, 6\) .*\(in train_step\)' driver.txt ||
      fail "no message naming the model line: $(cat driver.txt)"
    ;;
  cross)
    # aarch64: an object of that machine, calling only libc and libm.
    g export "$E/digits_mlp.grad" -o arm --target aarch64-linux-gnu >/dev/null
    readelf -h arm/digits_mlp.o | grep -qE 'Machine: +AArch64' || fail "not an AArch64 object: $(readelf -h arm/digits_mlp.o)"
    grep -q '#define DIGITS_MLP_TARGET "aarch64-unknown-linux-gnu"' arm/digits_mlp.h || fail "header names no aarch64 target"
    check_undefined arm/digits_mlp.o
    g export "$E/digits_mlp.grad" -o arm2 --target aarch64-linux-gnu --cpu neoverse-n1 >/dev/null
    # x86-64 baseline: SSE only (no 256-bit registers, no libmvec variants,
    # which need AVX2); x86-64-v3: AVX2. Both link and run here.
    g export "$E/all_builtins.grad" -o base --target x86_64-linux-gnu --cpu x86-64 >/dev/null
    g export "$E/all_builtins.grad" -o v3 --cpu x86-64-v3 >/dev/null
    grep -q '#define ALL_BUILTINS_CPU "x86-64"' base/all_builtins.h || fail "header names no baseline CPU"
    objdump -d base/all_builtins.o >base.s
    objdump -d v3/all_builtins.o >v3.s
    if grep -q ymm base.s; then fail "the baseline object uses 256-bit registers"; fi
    grep -q ymm v3.s || fail "the x86-64-v3 object uses no 256-bit registers"
    if nm -u base/all_builtins.o | grep _ZGV; then fail "the baseline object calls libmvec"; fi
    check_undefined base/all_builtins.o
    check_undefined v3/all_builtins.o
    make_xor_inputs in.st
    g export "$E/xor.grad" -o xbase --entry forward,train_step --cpu x86-64 >/dev/null
    g step "$E/xor.grad" --inputs in.st --steps 1 -o start.st >/dev/null
    cc -std=c11 -Wall -Wextra -Werror -Ixbase -DPREFIX=xor -DUPREFIX=XOR '-DMODEL_HEADER="xor.h"' \
      "$S/tests/export/driver.c" xbase/xor.o -lm -o driver
    # It runs (results may differ from the JIT's in the last bits: other instructions).
    g run "$E/xor.grad" --params start.st --inputs in.st -o run.st >/dev/null
    g step "$E/xor.grad" --params start.st --inputs in.st --steps 10 -o step.st >/dev/null
    ./driver in.st start.st run.st none step.st 10 0 >driver.txt 2>&1 || true
    grep -qE '^(all identical to the JIT|DIFFERENT)$' driver.txt || fail "the baseline xor did not run: $(cat driver.txt)"
    # Refused: an unknown CPU or target, a 32-bit one (exit 2, nothing written).
    expect_usage() {
      local text=$1 rc=0
      shift
      g export "$E/xor.grad" -o refused "$@" >out.txt 2>&1 || rc=$?
      [ "$rc" = 2 ] || fail "gradc export $*: exit $rc, expected 2: $(cat out.txt)"
      grep -qF -- "$text" out.txt || fail "gradc export $*: no '$text' in: $(cat out.txt)"
      if grep -q 'not a recognized' out.txt; then fail "LLVM's own warning leaked: $(cat out.txt)"; fi
    }
    expect_usage "--cpu foo: not a CPU of x86_64" --cpu foo
    expect_usage "--cpu cortex-a72: not a CPU of x86_64" --target x86_64-linux-gnu --cpu cortex-a72
    expect_usage "LLVM knows no such target" --target nonsense-foo
    expect_usage "64-bit little-endian" --target i686-linux-gnu
    [ ! -e refused ] || fail "a refused export wrote its directory"
    ;;
  every_example)
    # Every example exports; its header compiles as C and as C++, and the
    # object links into a position-independent executable with libm alone.
    for model in "$E"/*.grad; do
      # A dynamic dim (`dim B`) needs a bound (or a size): its entries then
      # take the size as an argument.
      sets=$(sed -n 's/^dim \([A-Za-z_][A-Za-z0-9_]*\) *\(#.*\)\{0,1\}$/--max \1=16/p' "$model")
      g export "$model" -o "ex_$(basename "$model" .grad)" $sets >summary.txt || fail "cannot export $model"
      dir=ex_$(basename "$model" .grad)
      name=$(basename "$(ls "$dir"/*.h)" .h)
      printf '#include "%s.h"\nint main(void) { return %s_error_message(0)[0] != 0x6f; }\n' "$name" "$name" >"$dir/main.c"
      cc -std=c11 -Wall -Wextra -Werror -pie -fPIE -I"$dir" "$dir/main.c" "$dir/$name.o" -lm -o "$dir/main" ||
        fail "$name.h or $name.o does not build as C"
      "./$dir/main" || fail "${name}_error_message(0) is not 'ok'"
      cp "$dir/main.c" "$dir/main.cpp"
      c++ -std=c++17 -Wall -Wextra -Werror -I"$dir" -c "$dir/main.cpp" -o "$dir/main_cpp.o" || fail "$name.h is not C++"
      check_undefined "$dir/$name.o"
    done
    ;;
  errors)
    # Each refusal: its exit status and message, and nothing written.
    expect() {  # STATUS TEXT ARGS...
      local want=$1 text=$2 rc=0
      shift 2
      g export "$@" >out.txt 2>&1 || rc=$?
      [ "$rc" = "$want" ] || fail "gradc export $*: exit $rc, expected $want: $(cat out.txt)"
      grep -qF -- "$text" out.txt || fail "gradc export $*: no '$text' in: $(cat out.txt)"
    }
    expect 2 "-o DIR is required" "$E/xor.grad"
    expect 2 "got 'bogus'" "$E/xor.grad" -o d1 --entry forward,bogus
    grep -v '^output' "$E/xor.grad" >no_output.grad
    expect 1 "declares no \`output\`" no_output.grad -o d2 --entry forward
    cp "$E/xor.grad" my-net.grad
    expect 1 "'my-net' is not a C identifier" my-net.grad -o d3
    touch plain_file
    expect 1 "cannot make the directory" "$E/xor.grad" -o plain_file
    expect 2 "declares no dim 'Q'" "$E/xor.grad" -o d4 --set Q=3
    [ ! -e d1 ] && [ ! -e d2 ] && [ ! -e d3 ] && [ ! -e d4 ] || fail "a refused export wrote a directory"
    # Without --entry: every entry the model has (no forward without an output).
    g export no_output.grad -o d5 >/dev/null
    grep -q 'no_output_grad(' d5/no_output.h && grep -q 'no_output_train_step(' d5/no_output.h || fail "entries missing"
    if grep -q 'no_output_forward' d5/no_output.h; then fail "forward exported for a model without outputs"; fi
    ;;
  *) fail "unknown case $CASE" ;;
esac
echo "ok: $CASE"
