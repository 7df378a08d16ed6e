#!/usr/bin/env bash
# Trains an example on Fashion-MNIST (Debian's dataset-fashion-mnist, read in
# place) with the full budget and reports the test accuracy and wall time:
#     bash scripts/fashion.sh [mlp] [EPOCHS]
# The log, loss plot and checkpoint go to build/fashion/.
set -euo pipefail
cd "$(dirname "$0")/.."
MODEL=${1:-mlp}
EPOCHS=${2:-15}
bash scripts/setup.sh
bash scripts/build.sh
D=/usr/share/datasets/fashion-mnist
OUT=build/fashion
mkdir -p "$OUT"
# The examples' batch dim is dynamic: the batch the documented results used.
case $MODEL in cnn) BATCH=64 ;; *) BATCH=128 ;; esac
start=$(date +%s.%N)
build/gradc train "examples/fashion_$MODEL.grad" --batch "$BATCH" \
  --data x=$D/train-images-idx3-ubyte.gz --data label=$D/train-labels-idx1-ubyte.gz \
  --eval x=$D/t10k-images-idx3-ubyte.gz --eval label=$D/t10k-labels-idx1-ubyte.gz \
  --epochs "$EPOCHS" --seed 0 -o "$OUT/$MODEL.safetensors" --log "$OUT/${MODEL}_log.csv" --plot "$OUT/${MODEL}_loss.svg"
end=$(date +%s.%N)
acc=$(tail -n 1 "$OUT/${MODEL}_log.csv" | cut -d, -f4 | awk '{ printf "%.2f %%", 100 * $1 }')
echo
echo "fashion_$MODEL: test accuracy $acc after $EPOCHS epochs, $(awk "BEGIN { printf \"%.0f\", $end - $start }") s in all"
echo "loss plot: $OUT/${MODEL}_loss.svg   log: $OUT/${MODEL}_log.csv"
