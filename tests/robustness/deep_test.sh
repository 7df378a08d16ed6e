#!/usr/bin/env bash
# Robustness cases of issue 20 for very deep models: N chained elementwise
# statements `hK = hK-1 * 0.5 + 0.25` (one fused expression 2N deep before
# the planner bounded kernels; 16,000 statements crashed grad, train and
# dump --stage loops with a stack overflow). Every verb must compile and run
# the model, or refuse it with a limit diagnostic and exit 1: never a signal,
# never past the time limit.
# Usage: deep_test.sh GRADC CASE   (CASE: VERB_N, VERB one of check, grad,
# interp, train, loops; N one of 16k, 100k)
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"

verb=${case%_*} size=${case##*_}
case $size in
  16k) n=16000 ;;
  100k) n=100000 ;;
  *) fail "unknown size $size" ;;
esac
if [ "${GRADC_SANITIZED:-0}" = 1 ] && [ $n = 100000 ]; then
  echo "skipped under the sanitizers (minutes); the 16k cases run"; exit 0
fi
# The model (examples/xor.grad's inputs, so that its data serves).
/usr/bin/python3 - $n $tmp/deep.grad <<'PY'
import sys
n = int(sys.argv[1])
lines = ["dim B = 4", "input x : [B, 2]", "input y : [B, 1]",
         "param W : [2, 1] ~ xavier_uniform", "param b : [1]", "h0 = x @ W + b"]
lines += [f"h{k} = h{k - 1} * 0.5 + 0.25" for k in range(1, n + 1)]
lines += [f"loss mse(h{n}, y)", f"output h{n}", "optimizer sgd(lr = 0.1)"]
open(sys.argv[2], "w").write("\n".join(lines) + "\n")
PY
cp $tmp/deep.grad $tmp/deep.orig
# A deep model's compile takes seconds to tens of seconds: a limit of its own.
d() { timeout ${GRADC_DEEP_TIMEOUT:-240} "$G" "$@"; }
start=$SECONDS
case $verb in
  check)  d check $tmp/deep.grad > $tmp/out 2> $tmp/err ;;
  grad)   d grad $tmp/deep.grad --inputs $tmp/in.st -o $tmp/o.st > $tmp/out 2> $tmp/err ;;
  interp) d grad $tmp/deep.grad --inputs $tmp/in.st --backend interp -o $tmp/o.st > $tmp/out 2> $tmp/err ;;
  train)  d train $tmp/deep.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 1 --no-progress \
            -o $tmp/o.st > $tmp/out 2> $tmp/err ;;
  loops)  d dump $tmp/deep.grad --stage loops > $tmp/out 2> $tmp/err ;;
  *) fail "unknown verb $verb" ;;
esac
rc=$?
secs=$((SECONDS - start))
[ $rc = 124 ] && fail "$verb of $n statements ran past the time limit"
[ $rc -gt 128 ] && fail "$verb of $n statements was killed by signal $((rc - 128)): $(tail -3 $tmp/err)"
cmp -s $tmp/deep.grad $tmp/deep.orig || fail "the model file was changed"
if [ $rc = 1 ]; then  # refused: only by a documented limit, with a diagnostic
  grep -qi "limit\|too deep\|too many\|at most" $tmp/err || fail "exit 1 without a limit diagnostic: $(head -3 $tmp/err)"
  echo "$verb, $n statements: refused in ${secs}s: $(head -1 $tmp/err)"; exit 0
fi
[ $rc = 0 ] || fail "$verb of $n statements: exit status $rc: $(tail -3 $tmp/err)"
case $verb in
  check) grep -q "graph nodes" $tmp/out || fail "no summary: $(tail -3 $tmp/out)" ;;
  grad|interp) grep -q "^loss " $tmp/out && [ -s $tmp/o.st ] || fail "no loss or no output: $(tail -3 $tmp/out)" ;;
  train) [ -s $tmp/o.st ] || fail "no checkpoint: $(tail -3 $tmp/out) $(tail -3 $tmp/err)" ;;
  loops) grep -q "^entry train_step" $tmp/out || fail "no train_step plan: $(head -3 $tmp/out)" ;;
esac
echo "$verb, $n statements: ok in ${secs}s"
