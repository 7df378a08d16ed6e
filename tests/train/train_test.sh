#!/usr/bin/env bash
# End-to-end tests of `gradc train` on the examples' real data.
# Usage: train_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
digits=(--data x=$D/digits_train.csv --data label=$D/digits_train.csv
        --eval x=$D/digits_test.csv --eval label=$D/digits_test.csv --no-progress)
# The last eval metric of a log (column 4: the first metric).
last_metric() { tail -n 1 "$1" | cut -d, -f4; }
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

case $case in
  digits_accuracy)  # the documented result: about 97 % held out, at least 95 %
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 20 -o $tmp/c.st --log $tmp/log.csv > $tmp/out || fail "train failed: $(cat $tmp/out)"
    acc=$(last_metric $tmp/log.csv)
    at_least "$acc" 0.95 || fail "held-out accuracy $acc < 0.95"
    echo "digits held-out accuracy $acc" ;;
  digits_cnn_accuracy)  # the small CNN on the same images read as [B, 1, 8, 8]: at least 97 % held out
    "$G" train $E/digits_cnn.grad "${digits[@]}" --epochs 10 -o $tmp/c.st --log $tmp/log.csv > $tmp/out || fail "train failed: $(cat $tmp/out)"
    acc=$(last_metric $tmp/log.csv)
    at_least "$acc" 0.97 || fail "held-out accuracy $acc < 0.97"
    echo "digits CNN held-out accuracy $acc" ;;
  digits_cnn_threads)  # convolutions, pooling and their gradients: bit-identical for 1 and 2 threads
    for t in 1 2; do
      "$G" train $E/digits_cnn.grad "${digits[@]}" --epochs 1 --threads $t -o $tmp/t$t.st > $tmp/out || fail "train failed: $(cat $tmp/out)"
    done
    cmp $tmp/t1.st $tmp/t2.st || fail "1 and 2 threads give different params" ;;
  iris_accuracy)
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv \
      --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv --standardize x --epochs 60 --no-progress \
      -o $tmp/c.st --log $tmp/log.csv > $tmp/out || fail "train failed: $(cat $tmp/out)"
    acc=$(last_metric $tmp/log.csv); at_least "$acc" 0.9 || fail "iris accuracy $acc < 0.9"; echo "iris $acc" ;;
  logreg_accuracy)
    "$G" train $E/logreg.grad --data x=$D/breast_cancer_train.csv --data y=$D/breast_cancer_train.csv:label \
      --eval x=$D/breast_cancer_test.csv --eval y=$D/breast_cancer_test.csv:label --standardize x --epochs 30 \
      --no-progress -o $tmp/c.st --log $tmp/log.csv > $tmp/out || fail "train failed: $(cat $tmp/out)"
    acc=$(last_metric $tmp/log.csv); at_least "$acc" 0.95 || fail "breast cancer accuracy $acc < 0.95"; echo "logreg $acc" ;;
  xor)
    "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 2000 --no-progress \
      -o $tmp/c.st > $tmp/out || fail "train failed: $(cat $tmp/out)"
    loss=$(grep -o 'train loss [0-9.e-]*' $tmp/out | tail -n 1 | cut -d' ' -f3)
    awk -v l="$loss" 'BEGIN { exit !(l < 0.02) }' || fail "xor loss $loss is not below 0.02"
    echo "xor final loss $loss" ;;
  resume_exact)  # 12 epochs == 6, stop, resume to 12, bit for bit (params, state, step, epoch)
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 12 -o $tmp/full.st > /dev/null || fail "full run"
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 6 -o $tmp/half.st > /dev/null || fail "half run"
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 12 --resume $tmp/half.st -o $tmp/resumed.st > /dev/null || fail "resume"
    cmp $tmp/full.st $tmp/resumed.st || fail "the resumed run differs from the uninterrupted one"
    echo "resumed run identical" ;;
  shuffle_deterministic)
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 3 --seed 5 --no-progress -o $tmp/a.st > /dev/null || fail run
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 3 --seed 5 --no-progress -o $tmp/b.st > /dev/null || fail run
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 3 --seed 6 --no-progress -o $tmp/c.st > /dev/null || fail run
    cmp -s $tmp/a.st $tmp/b.st || fail "the same seed gave different results"
    cmp -s $tmp/a.st $tmp/c.st && fail "different seeds gave identical results"
    echo "same seed, same result; other seed, other result" ;;
  nan_stops)  # a diverging run stops with exit 1 naming epoch and step; the last checkpoint stays
    sed 's/optimizer sgd(lr = 0.05, momentum = 0.9)/optimizer sgd(lr = 1e30)/' $E/digits_mlp.grad > $tmp/bad.grad
    "$G" train $tmp/bad.grad "${digits[@]}" --epochs 3 -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    grep -q 'the loss is .* at epoch 1, step [0-9]*' $tmp/err || fail "no message naming epoch and step: $(cat $tmp/err)"
    [ ! -e $tmp/c.st ] || fail "a checkpoint was written for a diverged run"
    echo "stopped: $(cat $tmp/err)" ;;
  atomic_checkpoint)  # killing gradc while it writes checkpoints leaves the last complete one
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 1 -o $tmp/c.st > /dev/null || fail "first run"
    cp $tmp/c.st $tmp/before.st
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 100000 --save-every 1 -o $tmp/c.st > /dev/null &
    pid=$!
    for i in 1 2 3 4 5 6 7 8; do sleep 0.05; kill -KILL $pid 2>/dev/null; done
    wait $pid 2>/dev/null
    # Whatever was left must be a complete checkpoint that loads (resuming
    # with --epochs 1 loads it and trains no further epoch).
    "$G" train $E/digits_mlp.grad "${digits[@]}" --epochs 1 --resume $tmp/c.st -o $tmp/d.st > /dev/null 2> $tmp/err ||
      fail "the checkpoint is damaged: $(cat $tmp/err)"
    ls $tmp | grep -q '\.tmp' && fail "a temporary file was left behind: $(ls $tmp)"
    echo "checkpoint intact after kill -9" ;;
  bad_csv_cell)  # a bad cell: exit 1, file:line:col
    { head -n 3 $D/iris_train.csv; echo "5.0,abc,1.4,0.2,0"; } > $tmp/bad.csv
    "$G" train $E/iris_mlp.grad --data x=$tmp/bad.csv --data label=$tmp/bad.csv --epochs 1 -o $tmp/c.st > /dev/null 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    grep -q 'bad.csv:4:5' $tmp/err || fail "no file:line:col in: $(cat $tmp/err)"
    echo "$(cat $tmp/err)" ;;
  bad_data_shape)
    "$G" train $E/iris_mlp.grad --data x=$D/digits_train.csv --data label=$D/digits_train.csv --epochs 1 -o $tmp/c.st > /dev/null 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    grep -q "input 'x'" $tmp/err || fail "the message does not name the input: $(cat $tmp/err)"
    echo "$(cat $tmp/err)" ;;
  log_and_plot)
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv \
      --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv --epochs 4 --no-progress -o $tmp/c.st \
      --log $tmp/log.csv --plot $tmp/p.svg > /dev/null || fail run
    [ "$(wc -l < $tmp/log.csv)" = 5 ] || fail "the log has not 1 + 4 lines"
    head -n 1 $tmp/log.csv | grep -q '^epoch,train_loss,eval_loss,eval_accuracy,lr$' || fail "bad log header"
    for s in "train loss" "eval loss" "eval accuracy"; do
      grep -q "data-name=\"$s\"" $tmp/p.svg || fail "the plot has no series '$s'"
    done
    grep -q '</svg>' $tmp/p.svg || fail "the plot is not complete"
    echo "log and plot ok" ;;
  eval_missing_input)  # --eval without the label the loss reads: exit 1 before training, naming it
    "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv \
      --eval x=$D/iris_test.csv --epochs 2 --no-progress -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "exit status $rc, expected 1"
    grep -q "'label'" $tmp/err || fail "the message does not name the input: $(cat $tmp/err)"
    grep -q -- "--eval label=" $tmp/err || fail "the message does not name the flag to add: $(cat $tmp/err)"
    grep -q epoch $tmp/out && fail "it trained before failing: $(cat $tmp/out)"
    [ ! -e $tmp/c.st ] || fail "a checkpoint was written"
    echo "$(cat $tmp/err)" ;;
  resume_complete)  # resuming a finished run writes nothing and never rewinds train.epoch
    iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --no-progress)
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 3 -o $tmp/c.st > /dev/null || fail "first run"
    cp $tmp/c.st $tmp/before.st
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 3 --resume $tmp/c.st -o $tmp/d.st > $tmp/out || fail "resume at --epochs"
    grep -q "already complete" $tmp/out || fail "no 'already complete' message: $(cat $tmp/out)"
    [ ! -e $tmp/d.st ] || fail "a checkpoint was written for a complete run"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 2 --resume $tmp/c.st -o $tmp/c.st > $tmp/out || fail "resume past --epochs"
    cmp -s $tmp/c.st $tmp/before.st || fail "the checkpoint changed (rewound) on a resume past --epochs"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 4 --resume $tmp/c.st -o $tmp/e.st > $tmp/out || fail "resume to 4"
    grep -q "^epoch 4/4" $tmp/out || fail "the resumed run did not train epoch 4: $(cat $tmp/out)"
    echo "$(head -n 1 $tmp/out)" ;;
  output_paths_checked)  # unwritable -o, --log, --plot: exit 1 before the first step; existing files kept
    iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 2 --no-progress)
    echo keep > $tmp/log.csv; echo keep > $tmp/c.st
    "$G" train $E/iris_mlp.grad "${iris[@]}" -o $tmp/nonexistent/dir/c.st --log $tmp/log.csv > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "-o in a missing directory: exit status $rc, expected 1"
    grep -q "$tmp/nonexistent/dir/c.st" $tmp/err || fail "the message does not name the path: $(cat $tmp/err)"
    grep -q "does not exist" $tmp/err || fail "the message does not give the reason: $(cat $tmp/err)"
    grep -q epoch $tmp/out && fail "it trained before failing: $(cat $tmp/out)"
    mkdir $tmp/adir
    "$G" train $E/iris_mlp.grad "${iris[@]}" -o $tmp/c.st --log $tmp/adir > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "--log naming a directory: exit status $rc, expected 1"
    grep -q -- "--log $tmp/adir: .*directory" $tmp/err || fail "bad message: $(cat $tmp/err)"
    "$G" train $E/iris_mlp.grad "${iris[@]}" -o $tmp/c.st --plot $tmp/c.st/p.svg > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "--plot under a file: exit status $rc, expected 1"
    grep -q "not a directory" $tmp/err || fail "bad message: $(cat $tmp/err)"
    [ "$(cat $tmp/log.csv)" = keep ] && [ "$(cat $tmp/c.st)" = keep ] || fail "an existing file was changed by the check"
    ls -A $tmp | grep -q gradc-write-check && fail "a probe file was left behind"
    echo "$(cat $tmp/err)" ;;
  standardize_stored)  # the statistics travel in the checkpoint: run on raw data, resume without the flag
    PY=/usr/bin/python3
    iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --no-progress)
    "$G" train $E/iris_mlp.grad "${iris[@]}" --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv \
      --standardize x --epochs 40 -o $tmp/c.st --log $tmp/log.csv > /dev/null || fail "train failed"
    acc=$(last_metric $tmp/log.csv)
    # The checkpoint names its statistics in the metadata; raw test rows as run's inputs.
    $PY - "$tmp" "$D/iris_test.csv" <<'PYEOF' || fail "checkpoint metadata or test inputs"
import json, struct, sys
tmp, csv = sys.argv[1], sys.argv[2]
raw = open(f"{tmp}/c.st", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header = json.loads(raw[8:8 + n])
meta = header.get("__metadata__", {})
assert meta.get("pre.standardize.x") == "(x - pre.standardize.x.mean) / pre.standardize.x.std", meta
for t in ("pre.standardize.x.mean", "pre.standardize.x.std"):
    assert header[t]["dtype"] == "F64" and header[t]["shape"] == [4], header.get(t)
rows = [[float(c) for c in line.split(",")] for line in open(csv).read().split("\n")[1:] if line.strip()]
x = struct.pack(f"<{4 * len(rows)}f", *[v for r in rows for v in r[:4]])
label = struct.pack(f"<{len(rows)}i", *[int(r[4]) for r in rows])
head = {"x": {"dtype": "F32", "shape": [len(rows), 4], "data_offsets": [0, len(x)]},
        "label": {"dtype": "I32", "shape": [len(rows)], "data_offsets": [len(x), len(x) + len(label)]}}
h = json.dumps(head).encode()
h += b" " * (-len(h) % 8)
open(f"{tmp}/test_in.st", "wb").write(struct.pack("<Q", len(h)) + h + x + label)
PYEOF
    "$G" run $E/iris_mlp.grad --set B=30 --params $tmp/c.st --inputs $tmp/test_in.st -o $tmp/out.st > /dev/null ||
      fail "gradc run failed"
    run_acc=$($PY -c "
import json, struct
raw = open('$tmp/out.st', 'rb').read(); n = struct.unpack('<Q', raw[:8])[0]; h = json.loads(raw[8:8 + n])
e = h['metric.accuracy']; a, b = e['data_offsets']
print(struct.unpack({'F32': '<f', 'F64': '<d'}[e['dtype']], raw[8 + n + a:8 + n + b])[0])")
    awk -v a="$acc" -v b="$run_acc" 'BEGIN { d = a - b; exit !(d < 1e-6 && d > -1e-6) }' ||
      fail "run on the raw test data gives accuracy $run_acc, training reported $acc"
    at_least "$run_acc" 0.9 || fail "accuracy $run_acc < 0.9"
    # Resuming without --standardize uses the stored statistics: bit-identical to the uninterrupted run.
    "$G" train $E/iris_mlp.grad "${iris[@]}" --standardize x --epochs 6 -o $tmp/full.st > /dev/null || fail "full run"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --standardize x --epochs 3 -o $tmp/half.st > /dev/null || fail "half run"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 6 --resume $tmp/half.st -o $tmp/res.st > /dev/null || fail "resume"
    cmp -s $tmp/full.st $tmp/res.st || fail "resuming without --standardize differs from the uninterrupted run"
    # A different set of standardized inputs on --resume is an error.
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 4 --resume $tmp/c.st --standardize label -o $tmp/x.st > /dev/null 2> $tmp/err
    [ $? = 1 ] || fail "a conflicting --standardize on --resume was accepted"
    grep -q "with --standardize x" $tmp/err || fail "bad message: $(cat $tmp/err)"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 4 -o $tmp/plain.st > /dev/null || fail "plain run"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 5 --resume $tmp/plain.st --standardize x -o $tmp/x.st > /dev/null 2> $tmp/err
    [ $? = 1 ] || fail "--standardize on resuming a run trained without it was accepted"
    grep -q "without --standardize" $tmp/err || fail "bad message: $(cat $tmp/err)"
    echo "trained accuracy $acc, run on raw test data $run_acc" ;;
  batch_messages)  # which value binds the batch dim, and why, when it could surprise
    # iris_mlp with its batch dim fixed (the example's is dynamic).
    sed 's/^dim B .*/dim B = 16/' $E/iris_mlp.grad > $tmp/iris_mlp.grad
    E=$tmp
    iris=(--data x=$D/iris_test.csv --data label=$D/iris_test.csv --epochs 1 --no-progress -o $tmp/c.st)
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 10 --set B=5 > $tmp/out 2>&1 || fail "train: $(cat $tmp/out)"
    grep -q "note: batches of 10 rows: --batch 10 binds the batch dim B (it overrides --set B=5)" $tmp/out || fail "no note: $(cat $tmp/out)"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --batch 31 > $tmp/out 2>&1; [ $? = 1 ] || fail "--batch 31: not exit 1"
    grep -q "error: --batch 31 is larger than the 30 training rows; use --batch 30 or less" $tmp/out || fail "$(cat $tmp/out)"
    "$G" train $E/iris_mlp.grad "${iris[@]}" --set B=40 > $tmp/out 2>&1; [ $? = 1 ] || fail "--set B=40: not exit 1"
    grep -q "error: --set B=40 is larger than the 30 training rows" $tmp/out || fail "$(cat $tmp/out)"
    head -n 11 $D/iris_test.csv > $tmp/ten.csv
    "$G" train $E/iris_mlp.grad --data x=$tmp/ten.csv --data label=$tmp/ten.csv --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    grep -q "error: the batch dim B is 16 (its declared size), which is larger than the 10 training rows; use --batch 10 or less" $tmp/out ||
      fail "$(cat $tmp/out)"
    # A dynamic batch dim takes the default batch, or all rows when there are fewer.
    "$G" train $root/examples/iris_mlp.grad --data x=$tmp/ten.csv --data label=$tmp/ten.csv --epochs 1 --no-progress \
      -o $tmp/c.st > $tmp/out 2>&1 || fail "dynamic: $(cat $tmp/out)"
    grep -q "note: the batch dim B is dynamic: batches of 10 rows (--batch N to choose)" $tmp/out || fail "$(cat $tmp/out)"
    echo ok ;;
  data_messages)  # the default column selection and the readable file types are named
    cut -d, -f1-4 $D/iris_test.csv > $tmp/nolabel.csv
    "$G" train $E/iris_mlp.grad --data x=$tmp/nolabel.csv --data label=$D/iris_test.csv --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "not exit 1"
    grep -q "column selection '!label': unknown column 'label'" $tmp/out || fail "$(cat $tmp/out)"
    grep -q "note: no columns were given, so --data x=$tmp/nolabel.csv used the default '!label' (every column but 'label'); choose them with --data x=$tmp/nolabel.csv:COLUMNS" $tmp/out ||
      fail "no note on the default selection: $(cat $tmp/out)"
    "$G" train $E/iris_mlp.grad --data x=$tmp/nolabel.csv:zz --data label=$D/iris_test.csv --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    grep -q "note: no columns" $tmp/out && fail "a note on a selection the user typed: $(cat $tmp/out)"
    echo 1 > $tmp/x.txt
    "$G" train $E/iris_mlp.grad --data x=$tmp/x.txt --data label=$D/iris_test.csv --epochs 1 -o $tmp/c.st > $tmp/out 2>&1
    grep -q "error: --data x=$tmp/x.txt: unsupported file type '.txt'; --data reads .csv, .npy, .safetensors and IDX files" $tmp/out ||
      fail "$(cat $tmp/out)"
    echo ok ;;
  output_options)  # compile time on its own line, losses to 6 significant digits, --log-every, --quiet
    xor=(--data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --no-progress -o $tmp/c.st)
    "$G" train $E/xor.grad "${xor[@]}" --epochs 5 --lr 1e-30 > $tmp/out 2>&1 || fail "train: $(cat $tmp/out)"
    head -n 1 $tmp/out | grep -Eq '^compiled xor in [0-9.]+ s \(train_step\)$' || fail "no compile line: $(cat $tmp/out)"
    grep -Eq '^epoch 1/5  train loss [0-9]\.[0-9]{5}' $tmp/out || fail "not 6 significant digits: $(cat $tmp/out)"
    "$G" train $E/xor.grad "${xor[@]}" --epochs 7 --log-every 3 > $tmp/out 2>&1 || fail "train --log-every"
    [ "$(grep -c '^epoch' $tmp/out)" = 3 ] || fail "--log-every 3 of 7 epochs: $(cat $tmp/out)"
    grep -q '^epoch 3/7 ' $tmp/out && grep -q '^epoch 6/7 ' $tmp/out && grep -q '^epoch 7/7 ' $tmp/out || fail "$(cat $tmp/out)"
    "$G" train $E/xor.grad "${xor[@]}" --epochs 7 --quiet --log $tmp/log.csv > $tmp/out 2>&1 || fail "train --quiet"
    [ "$(wc -l < $tmp/out)" = 1 ] && grep -q "^wrote $tmp/c.st (7 epochs" $tmp/out || fail "--quiet printed: $(cat $tmp/out)"
    [ "$(wc -l < $tmp/log.csv)" = 8 ] || fail "--quiet must not thin the log: $(cat $tmp/log.csv)"
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
