#!/usr/bin/env bash
# From a trained model to answers: `gradc show` on checkpoints and data files,
# `gradc predict` on new data (issue 14, SPEC section 3).
# Usage: answers_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
# A small iris checkpoint with standardization statistics.
iris_ckpt() {
  "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --standardize x \
    --epochs 3 --seed 7 --batch 16 --no-progress -o "$1" > $tmp/train.out 2>&1 || fail "train: $(cat $tmp/train.out)"
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
    grep -q "training checkpoint: epoch 3, step 24, seed 7, batch 16" $tmp/out || fail "no training state: $(cat $tmp/out)"
    grep -q "pre.standardize.x = (x - pre.standardize.x.mean) / pre.standardize.x.std" $tmp/out || fail "no metadata"
    # A seed above 2^53 is shown exactly (from the metadata), not as its f64 rounding.
    "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 1 --seed 18446744073709551615 \
      --no-progress -o $tmp/s.st > /dev/null 2>&1 || fail "train with a 64-bit seed"
    "$G" show $tmp/s.st | grep -q "seed 18446744073709551615," || fail "seed not exact: $("$G" show $tmp/s.st)"
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
    grep -q "xor.grad: unsupported file type '.grad'; \`show\` reads .safetensors, .npy, .csv and IDX" $tmp/err ||
      fail "unsupported message: $(cat $tmp/err)"
    "$G" show > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 2 ] || fail "no file: exit $rc"
    grep -q "no file given" $tmp/err || fail "no file message: $(cat $tmp/err)"
    "$G" show $D/iris_test.csv --set B=3 > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 2 ] || fail "--set given to show: exit $rc"
    echo ok ;;
  predict_csv)  # raw CSV in, outputs and classes out as CSV; accuracy printed with labels, and it is the CSV's
    "$G" train $E/digits_mlp.grad --data x=$D/digits_train.csv --data label=$D/digits_train.csv --epochs 10 \
      --no-progress -o $tmp/d.st > $tmp/train.out 2>&1 || fail "train: $(cat $tmp/train.out)"
    "$G" predict $E/digits_mlp.grad --params $tmp/d.st --data x=$D/digits_test.csv --data label=$D/digits_test.csv \
      -o $tmp/p.csv --classes > $tmp/out 2> $tmp/err || fail "predict: $(cat $tmp/err)"
    acc=$(grep -o 'accuracy [0-9.]*' $tmp/out | cut -d' ' -f2)
    grep -q "^predicted 360 rows, loss [0-9.]*, accuracy $acc  ->  $tmp/p.csv$" $tmp/out || fail "summary: $(cat $tmp/out)"
    head -n 1 $tmp/p.csv | grep -qx 'logits_0,logits_1,logits_2,logits_3,logits_4,logits_5,logits_6,logits_7,logits_8,logits_9,logits_class' ||
      fail "header: $(head -n 1 $tmp/p.csv)"
    [ "$(wc -l < $tmp/p.csv)" = 361 ] || fail "$(wc -l < $tmp/p.csv) lines, not a header and 360 rows"
    # The classes are the argmax of the logits, and their agreement with the labels is the printed accuracy.
    awk -F, 'NR > 1 { b = 1; for (j = 2; j <= 10; j++) if ($j + 0 > $b + 0) b = j; if (b - 1 != $11) bad++ }
             END { exit bad > 0 }' $tmp/p.csv || fail "a class is not the argmax of its row"
    mine=$(paste -d, <(tail -n +2 $tmp/p.csv | awk -F, '{ print $NF }') <(tail -n +2 $D/digits_test.csv | awk -F, '{ print $NF }') |
           awk -F, '{ n++; ok += ($1 == $2) } END { printf "%.6g", ok / n }')
    [ "$mine" = "$acc" ] || fail "the CSV's classes give accuracy $mine, predict printed $acc"
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "accuracy $acc < 0.9"
    echo "digits accuracy $acc" ;;
  predict_chunks)  # chunks of the batch dim and the remainder's own specialization: the same rows as one call
    "$G" train $E/digits_mlp.grad --data x=$D/digits_train.csv --data label=$D/digits_train.csv --epochs 2 \
      --no-progress -o $tmp/d.st > /dev/null 2>&1 || fail "train"
    for b in 64 360 7; do
      "$G" predict $E/digits_mlp.grad --params $tmp/d.st --data x=$D/digits_test.csv -o $tmp/p$b.csv --batch $b \
        > /dev/null 2> $tmp/err || fail "predict --batch $b: $(cat $tmp/err)"
    done
    cmp -s $tmp/p64.csv $tmp/p360.csv || fail "batches of 64 (and 40) differ from one batch of 360"
    # Another row count per call may sum in another order: equal up to float rounding.
    paste -d, $tmp/p7.csv $tmp/p360.csv | awk -F, 'NR > 1 { for (j = 1; j <= 10; j++) { d = $j - $(j + 10); if (d < 0) d = -d
        m = $(j + 10) < 0 ? -$(j + 10) : $(j + 10); if (d > 1e-5 * (1 + m)) bad++ } } END { exit bad > 0 }' ||
      fail "batches of 7 differ from one batch of 360 beyond rounding"
    echo ok ;;
  predict_standardized)  # the checkpoint's statistics are applied to the raw data
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --standardize x \
      --epochs 60 --no-progress -o $tmp/c.st > /dev/null 2>&1 || fail "train"
    "$G" predict $E/iris_mlp.grad --params $tmp/c.st --data x=$D/iris_test.csv --data label=$D/iris_test.csv \
      -o $tmp/p.safetensors --classes > $tmp/out 2> $tmp/err || fail "predict: $(cat $tmp/err)"
    acc=$(grep -o 'accuracy [0-9.]*' $tmp/out | cut -d' ' -f2)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "raw iris accuracy $acc < 0.9: standardization not applied?"
    "$G" show $tmp/p.safetensors > $tmp/show || fail "show"
    grep -Eq '^  out\.logits +f32 +\[30, 3\] ' $tmp/show || fail "no out.logits: $(cat $tmp/show)"
    grep -Eq '^  out\.logits_class +i32 +\[30\] ' $tmp/show || fail "no out.logits_class: $(cat $tmp/show)"
    echo "iris accuracy on raw data $acc" ;;
  predict_formats)  # .npy for one output; --inputs from a safetensors file; misuse is exit 2 or 1 with a message
    "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 5 --no-progress -o $tmp/x.st \
      > /dev/null 2>&1 || fail "train"
    make_inputs() {
      /usr/bin/python3 - "$1" <<'PY'
import json, struct, sys
x = struct.pack('<8f', 0, 0, 0, 1, 1, 0, 1, 1)
h = json.dumps({"x": {"dtype": "F32", "shape": [4, 2], "data_offsets": [0, 32]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + x)
PY
    }
    make_inputs $tmp/in.safetensors
    "$G" predict $E/xor.grad --params $tmp/x.st --inputs $tmp/in.safetensors -o $tmp/p.npy > $tmp/out 2> $tmp/err ||
      fail "predict .npy: $(cat $tmp/err)"
    "$G" predict $E/xor.grad --params $tmp/x.st --data x=$D/xor.csv:x0,x1 -o $tmp/p.csv > /dev/null || fail "predict .csv"
    "$G" show $tmp/p.npy --tensor p | tail -n +2 | sed 's/^\[[0-9]*\]: //' > $tmp/npy.values
    tail -n +2 $tmp/p.csv | diff - $tmp/npy.values || fail "the .npy holds other values than the .csv"
    expect() {  # expect STATUS MESSAGE -- ARGS...
      local want=$1 msg=$2; shift 3
      "$G" predict "$@" > $tmp/out 2> $tmp/err; local rc=$?
      [ $rc = "$want" ] || fail "predict $*: exit $rc, not $want: $(cat $tmp/err)"
      grep -qF -- "$msg" $tmp/err || fail "predict $*: message: $(cat $tmp/err)"
    }
    expect 2 "predict writes .csv, .npy (one output) or .safetensors files" -- $E/xor.grad --params $tmp/x.st --data x=$D/xor.csv:x0,x1 -o $tmp/p.txt
    expect 2 "not both" -- $E/xor.grad --params $tmp/x.st --data x=$D/xor.csv:x0,x1 --inputs $tmp/in.safetensors -o $tmp/p.csv
    expect 2 "no data" -- $E/xor.grad --params $tmp/x.st -o $tmp/p.csv
    expect 2 "--params CKPT and -o OUT are required" -- $E/xor.grad --data x=$D/xor.csv:x0,x1 -o $tmp/p.csv
    expect 1 "--classes adds a column" -- $E/xor.grad --params $tmp/x.st --data x=$D/xor.csv:x0,x1 -o $tmp/q.npy --classes
    expect 1 "the model has no input 'z'" -- $E/xor.grad --params $tmp/x.st --data z=$D/xor.csv:x0,x1 -o $tmp/p.csv
    [ -e $tmp/p.txt ] || [ -e $tmp/q.npy ] && fail "a refused call wrote a file"
    echo ok ;;
  run_batch_hint)  # more rows than the batch dim: the message names the dim and the --set that fits
    /usr/bin/python3 - $tmp/x30.safetensors <<'PY'
import json, struct, sys
d = struct.pack('<60f', *([0.5] * 60)) + struct.pack('<30f', *([1.0] * 30))
h = json.dumps({"x": {"dtype": "F32", "shape": [30, 2], "data_offsets": [0, 240]},
                "y": {"dtype": "F32", "shape": [30, 1], "data_offsets": [240, 360]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + d)
PY
    "$G" run $E/xor.grad --inputs $tmp/x30.safetensors -o $tmp/o.safetensors > $tmp/out 2> $tmp/err; rc=$?
    [ $rc = 1 ] || fail "exit $rc"
    grep -q "tensor 'x': expected f32\[4, 2\], got f32\[30, 2\] (the dim B is 4 in this compilation; use --set B=30 to compile the model for 30, or declare \`dim B\` without a size to make it dynamic)" $tmp/err ||
      fail "message: $(cat $tmp/err)"
    "$G" run $E/xor.grad --inputs $tmp/x30.safetensors -o $tmp/o.safetensors --set B=30 > /dev/null 2> $tmp/err ||
      fail "the suggested --set B=30 does not work: $(cat $tmp/err)"
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
