#!/usr/bin/env bash
# Robustness cases of issue 20 for `gradc train`: no checkpoint holds NaN or
# infinity the training produced, --check-numerics covers the eval pass, a
# log or plot that cannot be written costs no training, SIGINT, SIGTERM and
# SIGHUP end the run with a checkpoint that resumes bit for bit, and a closed
# standard output ends the printing only.
# Usage: train_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"

# A linear model whose gradient at the start is -20 for b: at --lr 1e38 one
# step takes b past the largest f32, to inf, while the loss is still finite.
cat > $tmp/lin.grad <<'EOF'
dim B = 4
input x : [B, 2]
input y : [B, 1]
param W : [2, 1]
param b : [1]
pred = x @ W + b
loss mse(pred, y)
output pred
optimizer sgd(lr = 0.01)
EOF
printf 'x0,x1,y\n1,1,10\n0,1,10\n1,0,10\n0,0,10\n' > $tmp/lin.csv
lin() { g train $tmp/lin.grad --data x=$tmp/lin.csv:x0,x1 --data y=$tmp/lin.csv:y --no-progress "$@"; }
expect_status() {  # STATUS WHAT: the last command's status
  [ "$rc" = "$1" ] || fail "$2: exit status $rc, expected $1; stderr: $(cat $tmp/err)"
}

# A long run of iris_mlp in batches of 1 (120 steps an epoch, no eval or log,
# so a signal almost always lands within an epoch), in the background with
# the stop signals at their default action (a script's background jobs
# ignore SIGINT), its output in $tmp/run.out and $tmp/run.err, a watchdog
# ending it after 60 s. Sets pid.
iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --no-progress --batch 1)
start_long() {
  rm -f $tmp/run.out $tmp/run.err
  env --default-signal=INT,TERM,HUP "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 1000000 "$@" \
    > $tmp/run.out 2> $tmp/run.err &
  pid=$!
  watchdog
}
# Ends $pid after 60 s (a lost signal fails the case rather than hanging it).
watchdog() { ( sleep 60; kill -KILL $pid 2> /dev/null ) > /dev/null 2>&1 & wd=$!; }
trap '[ -z "${wd:-}" ] || kill $wd 2> /dev/null; check_dev_null; rm -rf "$tmp"' EXIT
wait_for() {  # FILE PATTERN: up to 30 s
  for _ in $(seq 600); do grep -q -- "$2" "$1" 2> /dev/null && return 0; sleep 0.05; done
  fail "'$2' never appeared in $1: $(cat "$1")"
}
# Sends SIG after the first epoch, waits, checks status 128+N, the messages
# and that resuming with the printed command to one epoch past the stop ends
# with the bytes of an uninterrupted run. Sets stop_epoch and stop_step.
interrupt_and_resume() {  # SIG N
  start_long -o $tmp/c.st
  wait_for $tmp/run.out '^epoch 1/'
  sleep 0.2
  kill -$1 $pid
  wait $pid
  rc=$?
  [ $rc = $((128 + $2)) ] || fail "SIG$1: exit status $rc, expected $((128 + $2)): $(cat $tmp/run.err)"
  grep -q "^gradc train: SIG$1: stopping after epoch [0-9]*" $tmp/run.err || fail "no stop message: $(cat $tmp/run.err)"
  grep -q "^gradc train: wrote $tmp/c.st (after epoch" $tmp/run.err || fail "no message naming the checkpoint: $(cat $tmp/run.err)"
  test -s $tmp/c.st || fail "SIG$1: no checkpoint"
  ls -A $tmp | grep -q 'tmp-' && fail "a temporary file was left: $(ls -A $tmp)"
  stop_epoch=$(sed -n 's/.*stopping after epoch \([0-9]*\).*/\1/p' $tmp/run.err)
  stop_step=$(sed -n 's/.*stopping after epoch [0-9]*, step \([0-9]*\).*/\1/p' $tmp/run.err)
  local n=$((stop_epoch + 1))
  # The printed command, with the run's total cut to n epochs.
  local cmd
  cmd=$(grep -A1 'to resume the run:' $tmp/run.err | tail -n 1 | sed "s/--epochs 1000000/--epochs $n/")
  [ -n "$cmd" ] || fail "no resume command: $(cat $tmp/run.err)"
  eval "timeout 60 $cmd" > $tmp/resumed.out 2> $tmp/err || fail "the printed command failed: $cmd: $(cat $tmp/err)"
  g train $E/iris_mlp.grad "${iris[@]}" --epochs $n -o $tmp/full.st > $tmp/full.out 2> $tmp/err || fail "full run"
  cmp -s $tmp/c.st $tmp/full.st || fail "SIG$1 at epoch $stop_epoch step ${stop_step:-0}: the resumed run differs from the uninterrupted one"
  # The epoch the signal cut reports the same train loss.
  [ "$(grep "^epoch $stop_epoch/" $tmp/resumed.out | cut -d'(' -f1)" = \
    "$(grep "^epoch $stop_epoch/" $tmp/full.out | cut -d'(' -f1)" ] || [ -z "$stop_step" ] ||
    fail "the interrupted epoch reports another loss: $(grep "^epoch $stop_epoch/" $tmp/resumed.out $tmp/full.out)"
}

case $case in
  nonfinite_params)  # a step that makes a param inf: exit 1 naming it, epoch and step; no checkpoint written
    lin --epochs 1 --lr 1e38 -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "inf params"
    grep -q "after epoch 1, step 1 the tensor '[Wb]' holds inf" $tmp/err || fail "bad message: $(cat $tmp/err)"
    [ -e $tmp/c.st ] && fail "a checkpoint was written"
    # An existing file at -o stays as it was.
    echo precious > $tmp/c.st
    lin --epochs 1 --lr 1e38 -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "inf params over a file"
    [ "$(cat $tmp/c.st)" = precious ] || fail "the existing file was replaced"
    grep -q "$tmp/c.st is as it was" $tmp/err || fail "bad message: $(cat $tmp/err)"
    head -n 1 $tmp/err ;;
  step_nonfinite)  # gradc step into inf: exit 1 naming the tensor; the file at -o stays as it was
    echo precious > $tmp/s.st
    g step $tmp/lin.grad --inputs $tmp/in.st --steps 2 --lr 1e38 -o $tmp/s.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "step into inf"
    grep -q "after step 2 the tensor '[A-Za-z0-9_]*' holds [-a-z]*" $tmp/err || fail "bad message: $(cat $tmp/err)"
    grep -q "$tmp/s.st not written" $tmp/err || fail "bad message: $(cat $tmp/err)"
    [ "$(cat $tmp/s.st)" = precious ] || fail "the existing file was replaced"
    # The same steps at a sane rate write it.
    g step $tmp/lin.grad --inputs $tmp/in.st --steps 2 -o $tmp/s.st > $tmp/out 2> $tmp/err || fail "step: $(cat $tmp/err)"
    head -n 1 $tmp/err ;;
  nonfinite_resume)  # resume --save-every 1 into inf: the good checkpoint stays byte for byte
    lin --epochs 2 -o $tmp/c.st > /dev/null 2> $tmp/err || fail "good run: $(cat $tmp/err)"
    cp $tmp/c.st $tmp/good.st
    lin --epochs 6 --lr 1e38 --save-every 1 --resume $tmp/c.st -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "resume into inf"
    cmp -s $tmp/c.st $tmp/good.st || fail "the good checkpoint was changed"
    grep -q "after epoch 3, step 1 the tensor '[Wb]' holds inf" $tmp/err || fail "bad message: $(cat $tmp/err)"
    grep -q "kept" $tmp/err && fail "claims a checkpoint of this run is kept: $(cat $tmp/err)"
    head -n 1 $tmp/err ;;
  eval_check_numerics)  # a non-finite eval loss under --check-numerics: exit 1 naming the op and the epoch
    # (x0 = 1e30: the prediction is finite, its square in the loss is not)
    printf 'x0,x1,y\n1e30,0,0\n0,1,1\n1,0,1\n1,1,0\n' > $tmp/ev.csv
    echo precious > $tmp/c.st
    lin --eval x=$tmp/ev.csv:x0,x1 --eval y=$tmp/ev.csv:y --epochs 2 --check-numerics -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "eval inf under --check-numerics"
    grep -q "check-numerics: .* in evaluate" $tmp/err || fail "no check-numerics diagnostic: $(cat $tmp/err)"
    grep -q "in the evaluation after epoch 1" $tmp/err || fail "no epoch named: $(cat $tmp/err)"
    [ "$(cat $tmp/c.st)" = precious ] || fail "the existing checkpoint was replaced"
    mv $tmp/err $tmp/err1
    # Without the flag, an inf eval loss is reported and training goes on.
    lin --eval x=$tmp/ev.csv:x0,x1 --eval y=$tmp/ev.csv:y --epochs 2 -o $tmp/d.st > $tmp/out 2> $tmp/err ||
      fail "without the flag: $(cat $tmp/err)"
    grep -q "eval loss inf" $tmp/out || fail "the inf eval loss is not reported: $(cat $tmp/out)"
    grep 'error' $tmp/err1 | head -n 1 ;;
  side_output_fails)  # --log or --plot that cannot be written: the checkpoint is written first, exit 1
    for flag in --log --plot; do
      rm -f $tmp/c.st
      train --epochs 3 $flag /dev/full -o $tmp/c.st > $tmp/out 2> $tmp/err
      rc=$?; expect_status 1 "$flag /dev/full"
      grep -q "^gradc train: error: $flag /dev/full: .*no space left on device" $tmp/err || fail "bad message: $(cat $tmp/err)"
      grep -q "training stopped after epoch 1; $tmp/c.st holds its checkpoint" $tmp/err || fail "bad message: $(cat $tmp/err)"
      train --epochs 1 -o $tmp/one.st > /dev/null 2>&1 || fail "one epoch"
      cmp -s $tmp/c.st $tmp/one.st || fail "$flag: the checkpoint is not that of epoch 1"
      # The printed command resumes once the side output can be written.
      cmd=$(grep -A1 'to resume once' $tmp/err | tail -n 1 | sed "s|$flag /dev/full|$flag $tmp/side|")
      eval "timeout 60 $cmd" > /dev/null 2> $tmp/err2 || fail "the printed command failed: $cmd: $(cat $tmp/err2)"
      train --epochs 3 -o $tmp/three.st > /dev/null 2>&1 || fail "three epochs"
      cmp -s $tmp/c.st $tmp/three.st || fail "$flag: the resumed run differs from an uninterrupted one"
    done
    # On the last epoch the run is complete: the checkpoint is there, still exit 1.
    rm -f $tmp/c.st
    train --epochs 1 --log /dev/full -o $tmp/c.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "--log /dev/full on the last epoch"
    cmp -s $tmp/c.st $tmp/one.st || fail "no final checkpoint"
    grep -q "the training is complete" $tmp/err || fail "bad message: $(cat $tmp/err)"
    head -n 2 $tmp/err | tr '\n' ' '; echo ;;
  signal_int)  # SIGINT: the step ends, the checkpoint is written, exit 130, resume is exact
    interrupt_and_resume INT 2
    echo "SIGINT at epoch $stop_epoch step ${stop_step:-0}: exit 130, resumed identical" ;;
  signal_term)
    interrupt_and_resume TERM 15
    echo "SIGTERM at epoch $stop_epoch step ${stop_step:-0}: exit 143, resumed identical" ;;
  signal_hup)
    interrupt_and_resume HUP 1
    echo "SIGHUP at epoch $stop_epoch step ${stop_step:-0}: exit 129, resumed identical" ;;
  signal_mid_epoch)  # a stop between two steps of an epoch resumes there, bit for bit (retried until one lands so)
    for try in 1 2 3 4 5; do
      interrupt_and_resume TERM 15
      [ -n "$stop_step" ] && break
    done
    [ -n "$stop_step" ] || fail "five signals all landed between epochs"
    echo "stopped at epoch $stop_epoch, step $stop_step of 120; resumed identical, same epoch loss" ;;
  signal_twice)  # a second signal ends gradc at once, while it writes: the file and the FIFO stay
    mkfifo $tmp/pipe   # a FIFO without a reader: the checkpoint write waits there
    start_long -o $tmp/pipe
    wait_for $tmp/run.out '^epoch 1/'
    kill -INT $pid
    wait_for $tmp/run.err 'writing the checkpoint'
    kill -INT $pid
    wait $pid
    rc=$?
    [ $rc = 130 ] || fail "exit status $rc, expected 130 (killed by SIGINT)"
    grep -q "wrote" $tmp/run.err && fail "the second signal did not stop it at once: $(cat $tmp/run.err)"
    test -p $tmp/pipe || fail "the FIFO was replaced"
    ls -A $tmp | grep -q 'tmp-' && fail "a temporary file was left: $(ls -A $tmp)"
    echo "second SIGINT ended it at once" ;;
  signal_ignored)  # a signal ignored when gradc starts (nohup's SIGHUP) stays ignored
    rm -f $tmp/run.out $tmp/run.err
    ( trap '' HUP; exec env --default-signal=INT,TERM "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 1000000 \
        -o $tmp/c.st > $tmp/run.out 2> $tmp/run.err ) &
    pid=$!
    watchdog
    wait_for $tmp/run.out '^epoch 1/'
    kill -HUP $pid
    sleep 0.3
    kill -0 $pid 2> /dev/null || fail "SIGHUP stopped a run that ignores it: $(cat $tmp/run.err)"
    kill -TERM $pid
    wait $pid
    rc=$?
    [ $rc = 143 ] || fail "exit status $rc after SIGTERM"
    grep -q SIGHUP $tmp/run.err && fail "SIGHUP was acted on: $(cat $tmp/run.err)"
    echo "SIGHUP ignored under nohup, SIGTERM stopped it" ;;
  stdout_closed)  # gradc train ... | head -1: the printing stops, the training goes on to its checkpoint
    g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 20000 --no-progress \
      -o $tmp/c.st 2> $tmp/err | head -n 1 > $tmp/first
    rc=${PIPESTATUS[0]}
    expect_status 0 "| head -1"
    grep -q '^compiled xor in' $tmp/first || fail "head got: $(cat $tmp/first)"
    [ -s $tmp/err ] && fail "stderr: $(cat $tmp/err)"
    g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 20000 --no-progress \
      -o $tmp/full.st > /dev/null 2>&1 || fail "full run"
    cmp -s $tmp/c.st $tmp/full.st || fail "the checkpoint differs from a run printing to the end"
    echo "exit 0, checkpoint of all 20000 epochs written" ;;
  resume_step_checked)  # a forged train.epoch_step is an error naming the fields, not a crash
    start_long -o $tmp/c.st
    wait_for $tmp/run.out '^epoch 1/'
    kill -TERM $pid; wait $pid
    /usr/bin/python3 - $tmp/c.st $tmp/forged.st <<'PY' || fail "cannot forge"
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]; h = json.loads(b[8:8 + n]); d = bytearray(b[8 + n:])
if 'train.epoch_step' not in h:  # stopped between epochs: add the fields
    h['train.epoch_step'] = {'dtype': 'I32', 'shape': [], 'data_offsets': [len(d), len(d) + 4]}; d += b'\0' * 4
    h['train.loss_sum'] = {'dtype': 'F64', 'shape': [], 'data_offsets': [len(d), len(d) + 8]}; d += b'\0' * 8
s, e = h['train.epoch_step']['data_offsets']; d[s:e] = struct.pack('<i', 5000)
j = json.dumps(h).encode(); j += b' ' * (-len(j) % 8)
open(sys.argv[2], 'wb').write(struct.pack('<Q', len(j)) + j + bytes(d))
PY
    cp $tmp/forged.st $tmp/before.st
    g train $E/iris_mlp.grad "${iris[@]}" --epochs 1000000 --resume $tmp/forged.st -o $tmp/forged.st > $tmp/out 2> $tmp/err
    rc=$?; expect_status 1 "forged train.epoch_step"
    grep -q "train.epoch_step, from 0 to 119" $tmp/err || fail "bad message: $(cat $tmp/err)"
    cmp -s $tmp/forged.st $tmp/before.st || fail "the checkpoint was changed"
    cat $tmp/err ;;
  *) fail "unknown case $case" ;;
esac
