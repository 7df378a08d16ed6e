#!/usr/bin/env bash
# Dynamic dims from the command line (SPEC 2.2, 3): `train` with a dynamic
# batch dim trains the last, partial batch of each epoch; `predict` runs all
# rows in one call; `check` and `dump` say the dim is dynamic; the verbs that
# need one size say how to give it (issue 14).
# Usage: dynamic_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
# A linear model whose SGD step moves w by -lr times the batch's mean row:
# with identical rows every step moves it by the same amount, whatever the
# shuffle and the batch's size, so w counts the steps taken.
linear() {
  cat > $tmp/lin.grad <<'EOF'
dim B
input x : [B, 2]
param w : [2]
loss mean(x @ w)
optimizer sgd(lr = 0.5)
EOF
  printf 'a,b\n' > $tmp/rows.csv
  for i in 1 2 3 4 5; do printf '1,2\n' >> $tmp/rows.csv; done
}

case $case in
  train_partial_batch)  # 5 rows in batches of 3: 2 steps an epoch, the second of 2 rows
    linear
    "$G" train $tmp/lin.grad --data x=$tmp/rows.csv:a,b --batch 3 --epochs 2 --no-progress -o $tmp/c.st > $tmp/out 2>&1 ||
      fail "train: $(cat $tmp/out)"
    grep -q "not trained on" $tmp/out && fail "the partial batch was dropped: $(cat $tmp/out)"
    grep -q "(2 epochs, 4 steps" $tmp/out || fail "expected 4 steps: $(cat $tmp/out)"
    # Epoch 1: a step of 3 rows at w = 0 (loss 0), one of 2 rows at w = -(0.5, 1)
    # (loss -2.5): the mean over its 5 rows is -1 (not -1.25, the mean of the steps).
    grep -q "^epoch 1/2  train loss -1 " $tmp/out || fail "the epoch's loss is not the mean over its rows: $(cat $tmp/out)"
    # 4 steps of -0.5 * (1, 2).
    "$G" show $tmp/c.st --tensor w > $tmp/w || fail "show"
    grep -qx -- "-2 -4" $tmp/w || fail "w after 4 steps: $(cat $tmp/w)"
    # The same model with the dim fixed keeps whole batches only: 1 step an epoch.
    "$G" train $tmp/lin.grad --data x=$tmp/rows.csv:a,b --set B=3 --epochs 2 --no-progress -o $tmp/s.st > $tmp/out 2>&1 ||
      fail "train --set: $(cat $tmp/out)"
    grep -q "the last 2 rows of each (shuffled) epoch are not trained on" $tmp/out || fail "no note: $(cat $tmp/out)"
    "$G" show $tmp/s.st --tensor w > $tmp/w || fail "show"
    grep -qx -- "-1 -2" $tmp/w || fail "w after 2 steps: $(cat $tmp/w)"
    echo "partial batches trained" ;;
  default_batch)  # no --batch: 32 rows, said once
    sed 's/^dim B = 16 .*/dim B/' $E/iris_mlp.grad > $tmp/iris.grad
    "$G" train $tmp/iris.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 1 --no-progress \
      -o $tmp/c.st > $tmp/out 2>&1 || fail "train: $(cat $tmp/out)"
    grep -q "note: the batch dim B is dynamic: batches of 32 rows (--batch N to choose)" $tmp/out || fail "$(cat $tmp/out)"
    rows=$(($(wc -l < $D/iris_train.csv) - 1))
    grep -q "(1 epochs, $(( (rows + 31) / 32 )) steps" $tmp/out || fail "steps for $rows rows: $(cat $tmp/out)"
    echo "default batch" ;;
  resume_exact)  # partial batches, stopped and resumed, end bit for bit where one run ends
    sed 's/^dim B = 16 .*/dim B/' $E/iris_mlp.grad > $tmp/iris.grad
    data=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --batch 16 --standardize x --no-progress)
    "$G" train $tmp/iris.grad "${data[@]}" --epochs 6 -o $tmp/full.st > /dev/null || fail "full run"
    "$G" train $tmp/iris.grad "${data[@]}" --epochs 3 -o $tmp/half.st > /dev/null || fail "half run"
    "$G" train $tmp/iris.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --batch 16 --no-progress \
      --epochs 6 --resume $tmp/half.st -o $tmp/resumed.st > /dev/null || fail "resume"
    cmp $tmp/full.st $tmp/resumed.st || fail "the resumed run differs from the uninterrupted one"
    echo "resumed run identical" ;;
  predict_one_call)  # every row in one call; --batch chunks give the same numbers
    sed 's/^dim B = 16 .*/dim B/' $E/iris_mlp.grad > $tmp/iris.grad
    "$G" train $tmp/iris.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 3 --batch 16 \
      --standardize x --no-progress -o $tmp/c.st > /dev/null 2>&1 || fail "train"
    "$G" predict $tmp/iris.grad --params $tmp/c.st --data x=$D/iris_test.csv --data label=$D/iris_test.csv \
      -o $tmp/all.csv --classes > $tmp/out 2>&1 || fail "predict: $(cat $tmp/out)"
    "$G" predict $tmp/iris.grad --params $tmp/c.st --data x=$D/iris_test.csv --data label=$D/iris_test.csv \
      -o $tmp/chunks.csv --classes --batch 7 > $tmp/out7 2>&1 || fail "predict --batch 7: $(cat $tmp/out7)"
    rows=$(($(wc -l < $D/iris_test.csv) - 1))
    [ $(($(wc -l < $tmp/all.csv) - 1)) = $rows ] || fail "$(wc -l < $tmp/all.csv) lines for $rows rows"
    cmp $tmp/all.csv $tmp/chunks.csv || fail "chunks of 7 rows differ from one call"
    [ "$(sed 's/ *->.*//' $tmp/out)" = "$(sed 's/ *->.*//' $tmp/out7)" ] ||
      fail "summaries differ: $(cat $tmp/out) / $(cat $tmp/out7)"
    echo "$(cat $tmp/out)" ;;
  check_and_dump)  # the dim shows as dynamic; stages below the graph name the stand-in size
    linear
    "$G" check $tmp/lin.grad > $tmp/out 2>&1 || fail "check: $(cat $tmp/out)"
    grep -q "dims     B (dynamic)" $tmp/out || fail "$(cat $tmp/out)"
    grep -q "x : f32\[B, 2\]" $tmp/out || fail "$(cat $tmp/out)"
    "$G" dump $tmp/lin.grad --stage graph > $tmp/out 2>&1 || fail "dump graph"
    grep -q "dims B=dynamic" $tmp/out || fail "$(cat $tmp/out)"
    grep -q "# printed at the stand-in size B=" $tmp/out || fail "$(cat $tmp/out)"
    "$G" dump $tmp/lin.grad --stage loops > $tmp/out 2>&1 || fail "dump loops"
    head -1 $tmp/out | grep -q "^# the code for the dynamic dims' stand-in sizes B=[0-9]*; a call compiles its own sizes" ||
      fail "$(head -1 $tmp/out)"
    "$G" dump $tmp/lin.grad --stage loops --set B=3 > $tmp/out 2>&1 || fail "dump loops --set"
    grep -q "stand-in" $tmp/out && fail "a fixed dim is no stand-in: $(head -1 $tmp/out)"
    echo "check and dump" ;;
  one_size_verbs)  # bench and export need a size: a usage error says how to give it
    linear
    for verb in bench export; do
      extra=""; [ $verb = export ] && extra="-o $tmp/exp"
      "$G" $verb $tmp/lin.grad $extra > $tmp/out 2> $tmp/err; rc=$?
      [ $rc = 2 ] || fail "$verb: exit $rc: $(cat $tmp/err)"
      grep -q "the model's dim B is dynamic, .*: give it a size with --set B=N" $tmp/err || fail "$verb: $(cat $tmp/err)"
    done
    "$G" export $tmp/lin.grad --set B=4 -o $tmp/exp > $tmp/out 2>&1 || fail "export --set: $(cat $tmp/out)"
    "$G" bench $tmp/lin.grad --set B=4 --seconds 0.05 > $tmp/out 2>&1 || fail "bench --set: $(cat $tmp/out)"
    echo "bench and export need --set" ;;
  *) fail "unknown case $case" ;;
esac
