#!/usr/bin/env bash
# The alternatives to back-propagation, side by side (docs/alternatives.md):
# the same model, xor and the digits MLP, trained by
#   backprop  back-propagation + the model file's SGD       (--ad reverse)
#   forward   forward-mode gradients + the same SGD          (--ad forward)
#   genetic   a genetic algorithm, no gradient               (optimizer genetic)
#   es        evolution strategies, no gradient              (optimizer es)
# then one table (final loss and accuracy, wall time, loss and gradient
# evaluations) and one SVG plot per model of the training loss against wall
# time, the four curves together.
#
# Usage: examples/alternatives/compare.sh [--quick] [-o DIR]
#   --quick   a short budget (the test suite's): xor 100 epochs, digits 2
#   -o DIR    where the table, plots, logs and checkpoints go (default alternatives_out)
# GRADC names the gradc binary (default: build/gradc, then gradc on PATH).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=alternatives_out quick=0
while [ $# -gt 0 ]; do
  case $1 in
    --quick) quick=1 ;;
    -o) out=$2; shift ;;
    *) echo "usage: $0 [--quick] [-o DIR]" >&2; exit 2 ;;
  esac
  shift
done
G=${GRADC:-$root/build/gradc}
[ -x "$G" ] || G=$(command -v gradc) || { echo "compare.sh: no gradc (build it, or set GRADC)" >&2; exit 1; }
mkdir -p "$out"
D=$root/examples/data

# The methods: each model's optimizer line for the gradient-free ones (the
# gradient-based ones keep the file's own).
declare -A line=(
  [xor.genetic]="genetic(population = 64, mutation_std = 0.1)"
  [xor.es]="es(population = 32, sigma = 0.05, lr = 0.5)"
  [digits.genetic]="genetic(population = 64, mutation_std = 0.02)"
  [digits.es]="es(population = 64, sigma = 0.02, lr = 0.03)"
)
declare -A epochs_of=([xor]=500 [digits]=20)
[ $quick = 1 ] && epochs_of=([xor]=100 [digits]=2)

run() {  # MODEL-NAME MODEL-FILE METHOD DATA...
  local name=$1 file=$2 method=$3
  shift 3
  local model=$file ad=reverse
  case $method in
    forward) ad=forward ;;
    genetic | es)
      model=$out/$name.$method.grad
      sed "s/^optimizer .*/optimizer ${line[$name.$method]}/" "$file" > "$model" ;;
  esac
  echo "== $name by $method"
  "$G" train "$model" "$@" --ad $ad --epochs ${epochs_of[$name]} --no-progress --seed 1 --no-cache \
    -o "$out/$name.$method.st" > "$out/$name.$method.txt" 2>&1 || { cat "$out/$name.$method.txt"; exit 1; }
  tail -n 1 "$out/$name.$method.txt"
  "$G" check "$model" > "$out/$name.$method.check.txt"
  [ -e "$out/$name.check.txt" ] || cp "$out/$name.$method.check.txt" "$out/$name.check.txt"
  last_model=$model
}

for method in backprop forward genetic es; do
  run xor "$root/examples/xor.grad" $method --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y
  # xor has no accuracy metric: its predictions, scored by report.py.
  "$G" predict "$last_model" --params "$out/xor.$method.st" --data x=$D/xor.csv:x0,x1 \
    -o "$out/xor.$method.pred.csv" > /dev/null
  run digits "$root/examples/digits_mlp.grad" $method --data x=$D/digits_train.csv --data label=$D/digits_train.csv \
    --eval x=$D/digits_test.csv --eval label=$D/digits_test.csv
done
/usr/bin/python3 "$here/report.py" "$out" "$D/xor.csv"
