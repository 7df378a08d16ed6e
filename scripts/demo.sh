#!/usr/bin/env bash
# The main job: set up, build, train the digits MLP on real data (the UCI
# handwritten digits, 80 % for training, 20 % held out), and show the
# held-out accuracy, the loss plot and a glimpse of the generated code.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
GRADC=build/gradc
OUT=build/demo
mkdir -p "$OUT"
DATA=examples/data
echo "== gradc check examples/digits_mlp.grad"
$GRADC check examples/digits_mlp.grad
echo
echo "== gradc train examples/digits_mlp.grad (64-128-10 MLP, sgd with momentum, 20 epochs)"
$GRADC train examples/digits_mlp.grad \
  --data x=$DATA/digits_train.csv --data label=$DATA/digits_train.csv \
  --eval x=$DATA/digits_test.csv --eval label=$DATA/digits_test.csv \
  --epochs 20 --seed 0 -o $OUT/digits.safetensors --log $OUT/digits_log.csv --plot $OUT/digits_loss.svg
acc=$(tail -n 1 $OUT/digits_log.csv | cut -d, -f4 | awk '{ printf "%.1f %%", 100 * $1 }')
echo
echo "held-out accuracy: $acc   (360 test digits never seen in training)"
echo "loss plot:         $OUT/digits_loss.svg"
echo "training log:      $OUT/digits_log.csv"
echo "checkpoint:        $OUT/digits.safetensors"
echo
echo "== the fused train_step (gradc dump --stage loops): the plan and its first kernels"
loops=$($GRADC dump examples/digits_mlp.grad --stage loops --entry train_step)
head -n 1 <<<"$loops"
grep -E '^  k[0-9]+ ' <<<"$loops" | head -n 6 | cut -c1-150
echo "  ..."
echo
echo "== its LLVM IR after O3 for this CPU (gradc dump --stage llvm): a few vectorized lines"
$GRADC dump examples/digits_mlp.grad --stage llvm --entry train_step |
  grep -E '(fmul|fadd|fsub)( [a-z]+)* <[0-9]+ x float>' | grep -v 'float [0-9]' | head -n 6 | cut -c1-150 || true
