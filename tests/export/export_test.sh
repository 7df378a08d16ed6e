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
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
export GRADC_CACHE_DIR=
g() { timeout 120 "$G" "$@"; }
fail() { echo "FAIL: $*"; exit 1; }

# Inputs for examples/xor.grad (x: f32[4,2], y: f32[4,1]) as a safetensors file.
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
    g export "$E/xor.grad" -o out --entry forward,train_step >export.txt
    grep -q 'xor.o' export.txt || fail "no summary: $(cat export.txt)"
    test -s out/xor.o && test -s out/xor.h || fail "xor.o or xor.h not written"
    readelf -h out/xor.o | grep -q 'REL (Relocatable file)' || fail "xor.o is not a relocatable object"
    check_undefined out/xor.o
    # One step from the initializers gives params and a step count to start from.
    g step "$E/xor.grad" --inputs in.st --steps 1 -o start.st >/dev/null
    g run "$E/xor.grad" --params start.st --inputs in.st -o run.st >/dev/null
    g step "$E/xor.grad" --params start.st --inputs in.st --steps 10 -o step.st >/dev/null
    cc -std=c11 -Wall -Wextra -Werror -O1 -Iout -DPREFIX=xor -DUPREFIX=XOR '-DMODEL_HEADER="xor.h"' \
      "$S/tests/export/driver.c" out/xor.o -lm -o driver
    check_ldd driver
    ./driver in.st start.st run.st step.st 10 >driver.txt || { cat driver.txt; fail "the exported xor differs from the JIT"; }
    grep -q 'all identical to the JIT' driver.txt || fail "$(cat driver.txt)"
    grep -q "^W1: identical" driver.txt || fail "W1 not compared: $(cat driver.txt)"
    grep -q "^opt.step: identical" driver.txt || fail "opt.step not compared: $(cat driver.txt)"
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
