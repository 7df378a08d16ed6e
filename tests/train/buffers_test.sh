#!/usr/bin/env bash
# Buffers on the command line (SPEC 2.2, 2.7): an iris MLP with batch_norm
# trains, its checkpoint holds the running statistics by name (`gradc show`),
# a resumed run ends byte for byte where the uninterrupted one does, evaluation
# uses the running statistics, and `check` and `dump` show the buffers and the
# training-mode roots.
# Usage: buffers_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
cat > $tmp/bn.grad <<'GRAD'
dim B = 16
input x : [B, 4]
input label : i32[B]
param W1 : [4, 16] ~ he_uniform
param gamma : [16] ~ ones
param beta : [16]
buffer running_mean : [16]
buffer running_var : [16] ~ ones
param W2 : [16, 3] ~ xavier_uniform
param b2 : [3]
h = relu(batch_norm(x @ W1, running_mean, running_var, gamma, beta))
logits = h @ W2 + b2
loss cross_entropy(logits, label)
metric accuracy = mean(argmax(logits, axis=1) == label)
output logits
optimizer adam(lr = 0.01)
GRAD
iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --eval x=$D/iris_test.csv
      --eval label=$D/iris_test.csv --standardize x --no-progress)
train() { "$G" train $tmp/bn.grad "${iris[@]}" "$@" > $tmp/out 2>&1 || fail "train $*: $(cat $tmp/out)"; }
case $case in
  train_and_show)  # training reaches iris accuracy; the checkpoint holds the buffers, updated
    train --epochs 30 -o $tmp/a.st
    acc=$(grep -o "accuracy [0-9.]*" $tmp/out | tail -1 | cut -d' ' -f2)
    [[ -n $acc ]] && awk "BEGIN { exit !($acc >= 0.85) }" || fail "accuracy $acc after 30 epochs: $(cat $tmp/out)"
    "$G" show $tmp/a.st > $tmp/show || fail "show: $(cat $tmp/show)"
    grep -Eq "^  running_mean +f32 +\[16\]" $tmp/show || fail "show lists no running_mean: $(cat $tmp/show)"
    grep -Eq "^  running_var +f32 +\[16\]" $tmp/show || fail "show lists no running_var: $(cat $tmp/show)"
    # The running variance moved away from its initial ones.
    "$G" show $tmp/a.st --tensor running_var | tail -n +2 | tr -s ' ' '\n' | grep -vq '^1$\|^$' ||
      fail "running_var is still all ones"
    grep -q "opt.exp_avg.running" $tmp/show && fail "the optimizer has state for a buffer"
    echo ok ;;
  resume_exact)  # 4 epochs in one go == 2, then --resume to 4, byte for byte
    train --epochs 4 -o $tmp/full.st
    train --epochs 2 -o $tmp/res.st
    train --epochs 4 --resume $tmp/res.st -o $tmp/res.st
    cmp $tmp/full.st $tmp/res.st || fail "the resumed run's checkpoint differs from the uninterrupted one"
    echo ok ;;
  check_and_dump)  # check lists the buffers; the graph dump marks them and the training-mode roots
    "$G" check $tmp/bn.grad > $tmp/out 2>&1 || fail "check: $(cat $tmp/out)"
    grep -q "^  buffers  running_mean : f32\[16\], running_var : f32\[16\]$" $tmp/out || fail "check: $(cat $tmp/out)"
    "$G" dump $tmp/bn.grad --stage grad > $tmp/out 2>&1 || fail "dump: $(cat $tmp/out)"
    grep -q "= input running_mean (buffer) ~ zeros" $tmp/out || fail "dump marks no buffer: $(cat $tmp/out)"
    grep -q "^  training loss = %" $tmp/out || fail "dump shows no training loss: $(cat $tmp/out)"
    "$G" dump $tmp/bn.grad --stage opt > $tmp/out 2>&1 || fail "dump: $(cat $tmp/out)"
    grep -q "^  train_step running_var = %" $tmp/out || fail "dump shows no buffer update: $(cat $tmp/out)"
    # The second analysis (training mode) reports nothing again: one warning.
    sed 's/^input label : i32\[B\]$/input label : i32[B]\ninput unused : [B]/' $tmp/bn.grad > $tmp/warn.grad
    "$G" check $tmp/warn.grad > $tmp/out 2>&1 || fail "check: $(cat $tmp/out)"
    [[ $(grep -c "warning: input 'unused'" $tmp/out) == 1 ]] || fail "not one warning: $(cat $tmp/out)"
    # A model without batch_norm has no second set of roots.
    "$G" dump $E/iris_mlp.grad --stage grad | grep -q "training" && fail "iris_mlp has training roots"
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
