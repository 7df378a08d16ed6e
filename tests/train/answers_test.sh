#!/usr/bin/env bash
# From a trained model to answers: `gradc show` on checkpoints and data files,
# `gradc predict` on new data (issue 14, SPEC section 3).
# Usage: answers_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
E=$root/examples D=$root/examples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GRADC_CACHE_DIR=$tmp/cache
fail() { echo "FAIL: $*"; exit 1; }
# A small iris checkpoint with standardization statistics.
iris_ckpt() {
  "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --standardize x \
    --epochs 3 --seed 7 --no-progress -o "$1" > $tmp/train.out 2>&1 || fail "train: $(cat $tmp/train.out)"
}
# A safetensors file with a f32 [2, 3] tensor holding NaN and infinities, and an i32 scalar.
odd_tensors() {
  /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
nan, inf = float('nan'), float('inf')
a = struct.pack('<6f', 1.5, nan, -inf, inf, -2.0, 0.5)
b = struct.pack('<i', -7)
h = json.dumps({"a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
                "n": {"dtype": "I32", "shape": [], "data_offsets": [24, 28]},
                "__metadata__": {"note": "made by hand"}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + a + b)
PY
}
# A .npy file: f64 [3] = 1, 2, 4.
npy_file() {
  /usr/bin/python3 - "$1" <<'PY'
import struct, sys
h = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }"
h += ' ' * (-(10 + len(h) + 1) % 64) + '\n'
open(sys.argv[1], 'wb').write(b'\x93NUMPY\x01\x00' + struct.pack('<H', len(h)) + h.encode() + struct.pack('<3d', 1, 2, 4))
PY
}

case $case in
  show_checkpoint)  # every tensor with dtype, shape and statistics; the training state and metadata
    iris_ckpt $tmp/c.st
    "$G" show $tmp/c.st > $tmp/out 2> $tmp/err || fail "show: $(cat $tmp/err)"
    grep -q "c.st: safetensors, 18 tensors" $tmp/out || fail "no summary line: $(cat $tmp/out)"
    grep -Eq '^  W1 +f32 +\[4, 16\] ' $tmp/out || fail "no W1 row: $(cat $tmp/out)"
    grep -Eq '^  pre\.standardize\.x\.mean +f64 +\[4\] ' $tmp/out || fail "no standardization row"
    grep -q "training checkpoint: epoch 3, step 21, seed 7, batch 16" $tmp/out || fail "no training state: $(cat $tmp/out)"
    grep -q "pre.standardize.x = (x - pre.standardize.x.mean) / pre.standardize.x.std" $tmp/out || fail "no metadata"
    echo ok ;;
  show_statistics)  # min/max/mean over the finite values; NaN and infinities counted apart
    odd_tensors $tmp/odd.safetensors
    "$G" show $tmp/odd.safetensors > $tmp/out 2> $tmp/err || fail "show: $(cat $tmp/err)"
    grep -Eq '^  a +f32 +\[2, 3\] +-2 +1\.5 +0 +1 +2$' $tmp/out || fail "wrong statistics of a: $(cat $tmp/out)"
    grep -Eq '^  n +i32 +\[\] +-7 +-7 +-7 +0 +0$' $tmp/out || fail "wrong statistics of n: $(cat $tmp/out)"
    grep -q "  note = made by hand" $tmp/out || fail "no metadata: $(cat $tmp/out)"
    grep -q "training checkpoint" $tmp/out && fail "a plain file shown as a checkpoint"
    echo ok ;;
  show_values)  # --tensor prints every value, one line per row, exactly
    odd_tensors $tmp/odd.safetensors
    "$G" show $tmp/odd.safetensors --tensor a > $tmp/out || fail "show --tensor a"
    printf 'a: f32 [2, 3]\n[0]: 1.5 nan -inf\n[1]: inf -2 0.5\n' | diff - $tmp/out || fail "values of a"
    "$G" show $tmp/odd.safetensors --tensor n > $tmp/out || fail "show --tensor n"
    printf 'n: i32 []\n-7\n' | diff - $tmp/out || fail "value of n"
    "$G" show $tmp/odd.safetensors --tensor zz > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 1 ] || fail "unknown tensor: exit $rc"
    grep -q "no tensor 'zz' (the file holds: a, n)" $tmp/err || fail "unknown tensor message: $(cat $tmp/err)"
    echo ok ;;
  show_data_files)  # a CSV table column by column, a .npy array under its file's name
    "$G" show $D/iris_test.csv > $tmp/out || fail "show csv"
    grep -q "iris_test.csv: csv, 5 tensors" $tmp/out || fail "csv summary: $(cat $tmp/out)"
    grep -Eq '^  label +f64 +\[30\] +0 +2 ' $tmp/out || fail "csv label column: $(cat $tmp/out)"
    npy_file $tmp/v.npy
    "$G" show $tmp/v.npy --tensor v > $tmp/out || fail "show npy"
    printf 'v: f64 [3]\n1 2 4\n' | diff - $tmp/out || fail "npy values"
    "$G" show $E/xor.grad > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 1 ] || fail "a model file: exit $rc"
    grep -q "xor.grad: unsupported file type '.grad'; \`show\` reads .safetensors, .npy and .csv" $tmp/err ||
      fail "unsupported message: $(cat $tmp/err)"
    "$G" show > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 2 ] || fail "no file: exit $rc"
    grep -q "no file given" $tmp/err || fail "no file message: $(cat $tmp/err)"
    "$G" show $D/iris_test.csv --set B=3 > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 2 ] || fail "--set given to show: exit $rc"
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
