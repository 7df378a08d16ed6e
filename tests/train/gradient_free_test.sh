#!/usr/bin/env bash
# `gradc train` with the gradient-free optimizers (SPEC 2.5: genetic, es) on
# the examples' models, their optimizer line replaced: genetic solves xor, es
# trains the digits MLP past 85 % held-out accuracy, both are deterministic
# for any thread count and across --resume, and a bad option is a diagnostic
# (tests/export exports them; tests/distributed refuses them with mpirun).
# Usage: gradient_free_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
xor=(--data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --no-progress)
digits=(--data x=$D/digits_train.csv --data label=$D/digits_train.csv --eval x=$D/digits_test.csv
        --eval label=$D/digits_test.csv --no-progress)
# with_optimizer MODEL LINE OUT: MODEL with its optimizer statement replaced by LINE.
with_optimizer() { sed "s/^optimizer .*/optimizer $2/" "$1" > "$3"; grep -q "^optimizer $2" "$3" || fail "no optimizer line in $1"; }
# The number after `label` on the last epoch line of a run's output.
last() { grep '^epoch' "$1" | tail -n 1 | sed -n "s/.*$2 \([-+0-9.e]*\).*/\1/p"; }

case $case in
  xor_genetic)  # the genetic algorithm solves xor: loss below 0.01
    with_optimizer $E/xor.grad "genetic(population = 64, mutation_std = 0.1)" $tmp/xor.grad
    "$G" train $tmp/xor.grad "${xor[@]}" --epochs 300 --log-every 100 -o $tmp/x.st > $tmp/out 2>&1 || fail "$(cat $tmp/out)"
    loss=$(last $tmp/out "train loss")
    awk -v l="$loss" 'BEGIN { exit !(l != "" && l < 0.01) }' || fail "loss $loss after 300 steps: $(cat $tmp/out)"
    "$G" show $tmp/x.st > $tmp/show || fail "show"
    grep -q 'opt.population.W1 *f32 *\[64, 2, 8\]' $tmp/show || fail "no population in the checkpoint: $(cat $tmp/show)"
    grep -q 'opt.fitness *f32 *\[64\]' $tmp/show || fail "no fitness in the checkpoint: $(cat $tmp/show)"
    "$G" dump $tmp/xor.grad --stage opt | grep -q '# train_step has no backward pass' || fail "the opt dump does not say so"
    "$G" dump $E/xor.grad --stage opt | grep -q '# train_step has no backward pass' && fail "sgd's dump says it has no backward pass"
    echo "xor by genetic: loss $loss" ;;
  digits_es)  # evolution strategies train the digits MLP past 85 % held-out accuracy in 20 epochs
    with_optimizer $E/digits_mlp.grad "es(population = 64, sigma = 0.02, lr = 0.03)" $tmp/d.grad
    "$G" train $tmp/d.grad "${digits[@]}" --epochs 20 --log-every 10 -o $tmp/d.st > $tmp/out 2>&1 || fail "$(cat $tmp/out)"
    acc=$(last $tmp/out "eval accuracy")
    awk -v a="$acc" 'BEGIN { exit !(a != "" && a >= 0.85) }' || fail "accuracy $acc: $(cat $tmp/out)"
    echo "digits by es: accuracy $acc" ;;
  deterministic)  # the same checkpoint on 1 and 2 threads, and across --resume; another seed differs
    for opt in "genetic(population = 16)" "es(population = 8, lr = 0.03)"; do
      with_optimizer $E/digits_mlp.grad "$opt" $tmp/d.grad
      "$G" train $tmp/d.grad "${digits[@]}" --epochs 2 --threads 1 -o $tmp/one.st > /dev/null 2>&1 || fail "$opt: 1 thread"
      "$G" train $tmp/d.grad "${digits[@]}" --epochs 2 --threads 2 -o $tmp/two.st > /dev/null 2>&1 || fail "$opt: 2 threads"
      cmp -s $tmp/one.st $tmp/two.st || fail "$opt: 1 and 2 threads differ"
      "$G" train $tmp/d.grad "${digits[@]}" --epochs 1 -o $tmp/half.st > /dev/null 2>&1 || fail "$opt: half"
      "$G" train $tmp/d.grad "${digits[@]}" --epochs 2 --threads 1 --resume $tmp/half.st -o $tmp/resumed.st > /dev/null 2>&1 ||
        fail "$opt: resume"
      cmp -s $tmp/one.st $tmp/resumed.st || fail "$opt: the resumed run differs from the uninterrupted one"
      "$G" train $tmp/d.grad "${digits[@]}" --epochs 2 --seed 9 -o $tmp/other.st > /dev/null 2>&1 || fail "$opt: seed 9"
      cmp -s $tmp/one.st $tmp/other.st && fail "$opt: another seed gave the same run"
    done
    echo "deterministic" ;;
  options_checked)  # a bad option is a diagnostic at its place, exit 1
    with_optimizer $E/xor.grad "genetic(elite = 65)" $tmp/bad.grad
    "$G" check $tmp/bad.grad > $tmp/out 2>&1
    rc=$?
    [ $rc = 1 ] || fail "exit $rc"
    grep -q "bad.grad:[0-9]*:[0-9]*: error: genetic keeps at most \`population\` elites" $tmp/out || fail "$(cat $tmp/out)"
    echo "checked" ;;
  *) fail "unknown case $case" ;;
esac
