#!/usr/bin/env bash
# examples/export/predict_digits.c with a checkpoint of a short gradc train run:
# its predicted classes are gradc predict's, row for row, and so is its
# accuracy, which is above 0.85.
#   predict_digits_test.sh GRADC PREDICT_DIGITS SOURCE_DIR
set -u
G=$1 P=$2 S=$3
D=$S/examples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

"$G" train "$S/examples/digits_mlp.grad" --data x=$D/digits_train.csv --data label=$D/digits_train.csv \
  --epochs 5 --seed 0 --no-progress -o "$tmp/d.st" > "$tmp/train.out" 2>&1 || fail "train: $(cat "$tmp/train.out")"
"$G" predict "$S/examples/digits_mlp.grad" --params "$tmp/d.st" --data x=$D/digits_test.csv \
  --data label=$D/digits_test.csv -o "$tmp/p.csv" --classes > "$tmp/predict.out" 2>&1 ||
  fail "predict: $(cat "$tmp/predict.out")"
"$P" "$tmp/d.st" $D/digits_test.csv "$tmp/c.csv" > "$tmp/c.out" 2>&1 || fail "predict_digits: $(cat "$tmp/c.out")"
cat "$tmp/c.out"

cmp -s <(tail -n +2 "$tmp/p.csv" | awk -F, '{ print $NF }') <(tail -n +2 "$tmp/c.csv") ||
  fail "the classes differ from gradc predict's"
[ "$(wc -l < "$tmp/c.csv")" = 361 ] || fail "$(wc -l < "$tmp/c.csv") lines in the classes, not a header and 360 rows"
want=$(grep -o 'accuracy [0-9.]*' "$tmp/predict.out" | cut -d' ' -f2)
got=$(grep -o '^predicted 360 rows, accuracy [0-9.]*' "$tmp/c.out" | cut -d' ' -f5)
[ -n "$want" ] && [ -n "$got" ] || fail "no accuracy: '$(cat "$tmp/predict.out")', '$(cat "$tmp/c.out")'"
awk -v a="$got" -v b="$want" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5) }' ||
  fail "accuracy $got, gradc predict printed $want"
awk -v a="$got" 'BEGIN { exit !(a > 0.85) }' || fail "accuracy $got <= 0.85"

# Misuse: no arguments is exit 2, a missing checkpoint exit 1 with the file named.
"$P" > /dev/null 2>&1; rc=$?
[ $rc = 2 ] || fail "no arguments: exit $rc"
"$P" "$tmp/none.st" $D/digits_test.csv > "$tmp/err" 2>&1; rc=$?
[ $rc = 1 ] && grep -q "none.st: cannot open" "$tmp/err" || fail "missing checkpoint: exit $rc, $(cat "$tmp/err")"
echo ok
