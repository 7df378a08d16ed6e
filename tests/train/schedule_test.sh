#!/usr/bin/env bash
# `gradc train --lr-schedule`, `--keep-best` and `--patience` (issue 14):
# the rate of every epoch by the documented formulas, resumed runs that end
# bit for bit where the uninterrupted ones do, the best epoch's checkpoint,
# early stopping, and the command-line errors.
# Usage: schedule_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
fail() { echo "FAIL: $*"; exit 1; }
iris=(--data x=$D/iris_train.csv --data label=$D/iris_train.csv --standardize x --no-progress)
iris_eval=(--eval x=$D/iris_test.csv --eval label=$D/iris_test.csv)
train_iris() { "$G" train $E/iris_mlp.grad "${iris[@]}" "$@" > $tmp/out 2>&1 || fail "train $*: $(cat $tmp/out)"; }
# A checkpoint's metadata entry KEY, or its scalar tensor KEY.
field() {
  $PY - "$1" "$2" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
key = sys.argv[2]
if key in h.get("__metadata__", {}):
    print(h["__metadata__"][key])
else:
    e = h[key]; a, b = e["data_offsets"]
    print(struct.unpack({"F32": "<f", "F64": "<d", "I32": "<i"}[e["dtype"]], raw[8 + n + a:8 + n + b])[0])
PY
}
# Whether two checkpoints hold the same tensors, byte for byte (the metadata aside).
same_tensors() {
  $PY - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    h = json.loads(raw[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
sys.exit(0 if tensors(sys.argv[1]) == tensors(sys.argv[2]) else 1)
PY
}
# Column NAME of a --log file, one value per line.
log_column() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$1"; }

case $case in
  lr_formulas)  # the lr column of the log and the epoch lines follow docs/cli.md's formulas
    check() {  # SPEC EPOCHS AWK-EXPRESSION-OF-e (base rate 0.2)
      "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --no-progress --lr 0.2 \
        --epochs $2 --lr-schedule "$1" -o $tmp/c.st --log $tmp/log.csv > $tmp/out 2>&1 || fail "train $1: $(cat $tmp/out)"
      log_column $tmp/log.csv lr | awk -v spec="$1" 'function min(a, b) { return a < b ? a : b }
        { e = NR; want = '"$3"'; d = $1 - want
          if (d > 1e-15 || d < -1e-15) { print "FAIL: " spec ": epoch " e " has lr " $1 ", expected " want; bad = 1 } }
        END { if (NR != '"$2"') { print "FAIL: " spec ": " NR " rows"; bad = 1 } exit bad }' || exit 1
      [ "$1" = constant ] || grep -q "^epoch $2/$2 .*  lr [0-9.e-]*  (" $tmp/out ||
        fail "$1: the epoch line does not show the lr: $(cat $tmp/out)"
    }
    pi=3.14159265358979323846
    check step:3:0.5 8 "0.2 * 0.5 ^ int((e - 1) / 3)"
    check cosine 6 "0.2 * (1 + cos($pi * (e - 1) / 6)) / 2"
    check cosine:10 6 "0.2 * (1 + cos($pi * (e - 1) / 10)) / 2"
    check warmup:4 6 "0.2 * min(1, e / 4)"
    check warmup:2,cosine 5 "0.2 * min(1, e / 2) * (1 + cos($pi * (e - 1) / 5)) / 2"
    check cosine,step:2:0.1,warmup:3 6 "0.2 * min(1, e / 3) * 0.1 ^ int((e - 1) / 2) * (1 + cos($pi * (e - 1) / 6)) / 2"
    check constant 3 "0.2"
    [ "$(field $tmp/c.st train.lr_schedule)" = constant ] && [ "$(field $tmp/c.st train.lr)" = 0.2 ] ||
      fail "metadata: $(field $tmp/c.st train.lr_schedule) $(field $tmp/c.st train.lr)"
    grep -q "  lr " $tmp/out && fail "a constant rate is printed on every epoch line: $(cat $tmp/out)"
    # The model file's rate is the base without --lr (xor: sgd(lr = 0.5)).
    "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --no-progress --epochs 2 \
      --lr-schedule step:1:0.5 -o $tmp/c.st --log $tmp/log.csv > /dev/null || fail "train without --lr"
    [ "$(log_column $tmp/log.csv lr | tr '\n' ' ')" = "0.5 0.25 " ] || fail "lr column $(log_column $tmp/log.csv lr)"
    echo ok ;;
  rate_is_used)  # the scheduled rate is what train_step gets, not only what the log says
    # 2 epochs of step:1:0.5 from 0.1 == 1 epoch at 0.1, then resumed with --lr 0.05 (the same params, bit for bit).
    train_iris --epochs 2 --lr 0.1 --lr-schedule step:1:0.5 -o $tmp/a.st
    train_iris --epochs 1 --lr 0.1 -o $tmp/b.st
    train_iris --epochs 2 --lr 0.05 --resume $tmp/b.st -o $tmp/b.st
    grep -q "note: --resume $tmp/b.st: from epoch 2 on, --lr 0.05 replaces the rate 0.1 the checkpoint's run had" $tmp/out ||
      fail "no note on the changed rate: $(cat $tmp/out)"
    same_tensors $tmp/a.st $tmp/b.st || fail "the schedule's rate is not the rate train_step used"
    train_iris --epochs 2 --lr 0.1 -o $tmp/c.st
    same_tensors $tmp/a.st $tmp/c.st && fail "a constant rate gave the same params as step:1:0.5"
    echo ok ;;
  resume_exact)  # N epochs in one go == N/2, then --resume to N: checkpoint, best checkpoint and log, byte for byte
    for spec in "warmup:3,step:4:0.5,cosine" "step:2:0.7" "cosine"; do
      half=${spec/cosine/cosine:12}  # the first half anneals over the whole run's 12 epochs
      run=("${iris_eval[@]}" --lr-schedule "$spec" --keep-best accuracy --patience 20)
      train_iris "${run[@]}" --epochs 12 -o $tmp/full.st --log $tmp/full.csv
      train_iris "${iris_eval[@]}" --lr-schedule "$half" --keep-best accuracy --patience 20 --epochs 6 \
        -o $tmp/res.st --log $tmp/res.csv
      # Resumed without --lr-schedule: the checkpoint's schedule continues.
      cp $tmp/res.st $tmp/res2.st; cp $tmp/res.csv $tmp/res2.csv
      train_iris "${iris_eval[@]}" --keep-best accuracy --patience 20 --epochs 12 --resume $tmp/res.st -o $tmp/res.st \
        --log $tmp/res.csv
      grep -q "note: --resume" $tmp/out && fail "$spec: a note on resuming the same run: $(cat $tmp/out)"
      cmp $tmp/full.st $tmp/res.st || fail "$spec: the resumed run's checkpoint differs from the uninterrupted one"
      cmp $tmp/full.csv $tmp/res.csv || fail "$spec: the resumed run's log differs"
      cmp $tmp/full.best.st $tmp/res.best.st || fail "$spec: the resumed run's best checkpoint differs"
      # Resumed with the whole command line again (cosine resolves to the same cosine:12).
      train_iris "${run[@]}" --epochs 12 --resume $tmp/res2.st -o $tmp/res2.st --log $tmp/res2.csv
      cmp $tmp/full.st $tmp/res2.st || fail "$spec: resumed with the same --lr-schedule, the checkpoint differs"
      [ "$(field $tmp/full.st train.lr_schedule)" = "$half" ] ||
        fail "$spec: train.lr_schedule is $(field $tmp/full.st train.lr_schedule)"
    done
    # Stopped by --patience after the point of the resume: the same epoch, the same bytes.
    run=("${iris_eval[@]}" --lr 0.003 --keep-best accuracy --patience 2)
    train_iris "${run[@]}" --epochs 30 -o $tmp/full.st
    stop=$(field $tmp/full.st train.epoch)
    [ "$stop" -lt 30 ] || fail "the --patience run did not stop early: $(cat $tmp/out)"
    train_iris "${run[@]}" --epochs $((stop - 1)) -o $tmp/res.st
    train_iris "${run[@]}" --epochs 30 --resume $tmp/res.st -o $tmp/res.st
    cmp $tmp/full.st $tmp/res.st || fail "resumed into an early stop, the checkpoint differs"
    echo "ok (the patience run stopped after epoch $stop)" ;;
  signal_resume)  # stopped by SIGTERM (within an epoch or between two), resumed: the same bytes
    digits=(--data x=$D/digits_train.csv --data label=$D/digits_train.csv --eval x=$D/digits_test.csv
            --eval label=$D/digits_test.csv --no-progress --batch 8 --epochs 30
            --lr-schedule warmup:2,step:2:0.5,cosine --keep-best accuracy)
    "$G" train $E/digits_mlp.grad "${digits[@]}" -o $tmp/full.st > $tmp/out 2>&1 || fail "full run: $(cat $tmp/out)"
    for try in 1 2 3; do
      rm -f $tmp/c.st $tmp/c.best.st $tmp/run.out
      "$G" train $E/digits_mlp.grad "${digits[@]}" -o $tmp/c.st > $tmp/run.out 2> $tmp/run.err &
      pid=$!
      for i in $(seq 1000); do grep -q '^epoch 3/' $tmp/run.out 2> /dev/null && break; sleep 0.01; done
      kill -TERM $pid
      wait $pid
      [ $? = 143 ] && break  # else it ended before the signal: again
    done
    grep -q "wrote $tmp/c.st (after epoch" $tmp/run.err || fail "no stop by the signal: $(cat $tmp/run.err)"
    "$G" train $E/digits_mlp.grad "${digits[@]}" -o $tmp/c.st --resume $tmp/c.st > $tmp/out 2>&1 || fail "resume: $(cat $tmp/out)"
    cmp $tmp/full.st $tmp/c.st || fail "the resumed run's checkpoint differs"
    cmp $tmp/full.best.st $tmp/c.best.st || fail "the resumed run's best checkpoint differs"
    echo "$(head -n 1 $tmp/run.err)" ;;
  resume_other_schedule)  # another schedule on --resume is allowed, with a note, and recorded
    train_iris --epochs 4 --lr-schedule cosine:8 -o $tmp/c.st
    train_iris --epochs 8 --lr-schedule step:2:0.5 --resume $tmp/c.st -o $tmp/d.st --log $tmp/log.csv
    grep -q "note: --resume $tmp/c.st: from epoch 5 on, --lr-schedule step:2:0.5 replaces the checkpoint's cosine:8" $tmp/out ||
      fail "no note: $(cat $tmp/out)"
    [ "$(field $tmp/d.st train.lr_schedule)" = step:2:0.5 ] || fail "not recorded: $(field $tmp/d.st train.lr_schedule)"
    [ "$(log_column $tmp/log.csv lr | tail -n 1)" = 0.00125 ] || fail "epoch 8's rate: $(log_column $tmp/log.csv lr | tail -n 1)"
    # The recorded cosine ends at epoch 8: resuming past it needs a schedule that goes on.
    "$G" train $E/iris_mlp.grad "${iris[@]}" --epochs 10 --resume $tmp/c.st -o $tmp/e.st > $tmp/out 2>&1
    [ $? = 1 ] || fail "resuming a cosine:8 run to 10 epochs: not exit 1"
    grep -q "error: --resume $tmp/c.st: the run's --lr-schedule cosine:8 brings the learning rate to 0 after epoch 8, but --epochs is 10" $tmp/out ||
      fail "$(cat $tmp/out)"
    [ ! -e $tmp/e.st ] || fail "a checkpoint was written"
    # A checkpoint of an earlier version (no train.lr): the model file's rate, constant.
    $PY - $tmp/c.st $tmp/old.st <<'PY' || fail "writing an old checkpoint"
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
h = json.loads(raw[8:8 + n])
for k in ("train.lr", "train.lr_schedule"): del h["__metadata__"][k]
b = json.dumps(h).encode(); b += b" " * (-len(b) % 8)
open(sys.argv[2], "wb").write(struct.pack("<Q", len(b)) + b + raw[8 + n:])
PY
    train_iris --epochs 5 --resume $tmp/old.st -o $tmp/f.st --log $tmp/log2.csv
    [ "$(field $tmp/f.st train.lr)" = 0.01 ] && [ "$(field $tmp/f.st train.lr_schedule)" = constant ] ||
      fail "resumed an old checkpoint: $(field $tmp/f.st train.lr) $(field $tmp/f.st train.lr_schedule)"
    echo ok ;;
  keep_best)  # the best epoch's checkpoint beside -o; -o stays the last epoch's
    train_iris "${iris_eval[@]}" --epochs 15 --keep-best loss -o $tmp/c.safetensors --log $tmp/log.csv
    [ -e $tmp/c.best.safetensors ] || fail "no c.best.safetensors: $(ls $tmp)"
    want=$(log_column $tmp/log.csv eval_loss | awk '{ if (NR == 1 || $1 < m) { m = $1; e = NR } } END { print e }')
    [ "$(field $tmp/c.best.safetensors train.epoch)" = "$want" ] ||
      fail "the best checkpoint is of epoch $(field $tmp/c.best.safetensors train.epoch), the lowest eval loss at $want"
    [ "$(field $tmp/c.safetensors train.best_epoch)" = "$want" ] && [ "$(field $tmp/c.safetensors train.keep_best)" = loss:min ] ||
      fail "metadata: $(field $tmp/c.safetensors train.best_epoch) $(field $tmp/c.safetensors train.keep_best)"
    [ "$(field $tmp/c.safetensors train.epoch)" = 15 ] || fail "-o is not the last epoch's"
    grep -q "^note: keeping the checkpoint of the epoch with the best eval loss (lower is better) in $tmp/c.best.safetensors$" $tmp/out ||
      fail "no note: $(cat $tmp/out)"
    grep -q "^epoch $want/15 .* new best" $tmp/out || fail "epoch $want is not marked: $(cat $tmp/out)"
    grep -q "; best eval loss [0-9.e-]* at epoch $want: $tmp/c.best.safetensors$" $tmp/out || fail "final line: $(cat $tmp/out)"
    # The best checkpoint holds that epoch's params: predict reproduces its logged eval loss.
    "$G" predict $E/iris_mlp.grad --params $tmp/c.best.safetensors --data x=$D/iris_test.csv --data label=$D/iris_test.csv \
      -o $tmp/p.csv > $tmp/pred 2>&1 || fail "predict: $(cat $tmp/pred)"
    logged=$(log_column $tmp/log.csv eval_loss | sed -n "${want}p")
    grep -q "loss $(printf '%.6g' "$logged")" $tmp/pred || fail "predict says $(cat $tmp/pred), the log $logged"
    # Direction: accuracy is higher-is-better by default, :min turns it around; no extension: NAME.best.
    train_iris "${iris_eval[@]}" --epochs 6 --keep-best accuracy:min -o $tmp/ckpt --log $tmp/log.csv
    want=$(log_column $tmp/log.csv eval_accuracy | awk '{ if (NR == 1 || $1 < m) { m = $1; e = NR } } END { print e }')
    [ "$(field $tmp/ckpt.best train.epoch)" = "$want" ] || fail "accuracy:min kept epoch $(field $tmp/ckpt.best train.epoch), not $want"
    train_iris "${iris_eval[@]}" --epochs 6 --keep-best accuracy -o $tmp/d.st --log $tmp/log.csv
    want=$(log_column $tmp/log.csv eval_accuracy | awk '{ if (NR == 1 || $1 > m) { m = $1; e = NR } } END { print e }')
    [ "$(field $tmp/d.best.st train.epoch)" = "$want" ] || fail "accuracy kept epoch $(field $tmp/d.best.st train.epoch), not $want"
    echo ok ;;
  patience)  # no better eval value for N epochs: stop, -o is that epoch's; resuming it is a finished run
    # At a rate of 1e-7 the accuracy of epoch 1 is never beaten: stop after epoch 1 + 3.
    train_iris "${iris_eval[@]}" --lr 1e-7 --epochs 20 --keep-best accuracy --patience 3 -o $tmp/c.st --log $tmp/log.csv
    grep -q "^stopping early: the eval accuracy has not improved for 3 epochs (--patience 3)$" $tmp/out || fail "$(cat $tmp/out)"
    grep -q "^wrote $tmp/c.st (4 of 20 epochs, stopped early, " $tmp/out || fail "final line: $(cat $tmp/out)"
    [ "$(field $tmp/c.st train.epoch)" = 4 ] && [ "$(field $tmp/c.best.st train.epoch)" = 1 ] || fail "epochs of the checkpoints"
    [ "$(wc -l < $tmp/log.csv)" = 5 ] || fail "the log has not 4 epochs"
    cp $tmp/c.st $tmp/before.st
    train_iris "${iris_eval[@]}" --lr 1e-7 --epochs 20 --keep-best accuracy --patience 3 --resume $tmp/c.st -o $tmp/c.st
    grep -q "the run stopped early: its eval accuracy has not improved since epoch 1 and --patience is 3; nothing was trained or written" $tmp/out ||
      fail "resuming a stopped run: $(cat $tmp/out)"
    cmp -s $tmp/c.st $tmp/before.st || fail "the checkpoint of a stopped run changed"
    train_iris "${iris_eval[@]}" --lr 1e-7 --epochs 20 --keep-best accuracy --patience 5 --resume $tmp/c.st -o $tmp/c.st
    [ "$(field $tmp/c.st train.epoch)" = 6 ] || fail "a larger --patience did not go on to epoch 6: $(cat $tmp/out)"
    # Another watched value on --resume starts over, with a note.
    train_iris "${iris_eval[@]}" --lr 1e-7 --epochs 8 --keep-best loss --patience 3 --resume $tmp/c.st -o $tmp/d.st
    grep -q "note: --resume $tmp/c.st: the checkpoint's run kept the best accuracy:max; this one keeps the best loss:min from epoch 7 on" $tmp/out ||
      fail "$(cat $tmp/out)"
    best=$(field $tmp/d.st train.best_epoch)
    [ "$best" = 7 ] || [ "$best" = 8 ] || fail "the best loss was not watched from epoch 7 on: best epoch $best"
    echo ok ;;
  log_lr_column)  # the log's lr column, and a log of an earlier version (no such column) resumed
    train_iris --epochs 2 --lr-schedule step:1:0.5 -o $tmp/c.st --log $tmp/log.csv
    [ "$(head -n 1 $tmp/log.csv)" = "epoch,train_loss,eval_loss,eval_accuracy,lr" ] || fail "header: $(head -n 1 $tmp/log.csv)"
    cut -d, -f1-4 $tmp/log.csv > $tmp/old.csv
    train_iris --epochs 3 --resume $tmp/c.st -o $tmp/c.st --log $tmp/old.csv
    [ "$(log_column $tmp/old.csv lr | tr '\n' ' ')" = "nan nan 0.0025 " ] || fail "resumed log: $(cat $tmp/old.csv)"
    [ "$(log_column $tmp/old.csv train_loss | head -n 1)" = "$(log_column $tmp/log.csv train_loss | head -n 1)" ] ||
      fail "the earlier rows were not kept: $(cat $tmp/old.csv)"
    echo ok ;;
  usage_errors)  # malformed specs and options that need others: exit 2, naming what is wrong
    expect() {  # STATUS MESSAGE ARGS...
      local status=$1 msg=$2; shift 2
      "$G" train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 10 \
        -o $tmp/c.st "$@" > $tmp/out 2>&1
      local rc=$?
      [ $rc = "$status" ] || fail "$*: exit status $rc, expected $status: $(cat $tmp/out)"
      grep -qF -- "$msg" $tmp/out || fail "$*: expected '$msg' in: $(cat $tmp/out)"
      [ ! -e $tmp/c.st ] || fail "$*: a checkpoint was written"
    }
    expect 2 "error: --lr-schedule cosin: unknown schedule 'cosin' (did you mean 'cosine'?); the schedules are constant, cosine, cosine:T, step:EVERY:GAMMA, warmup:W" --lr-schedule cosin
    expect 2 "error: --lr-schedule step:30: 'step' takes two values: step:EVERY:GAMMA" --lr-schedule step:30
    expect 2 "error: --lr-schedule step:0:0.1: step:EVERY:GAMMA: EVERY must be a whole number of epochs >= 1, got '0'" --lr-schedule step:0:0.1
    expect 2 "error: --lr-schedule step:3:-1: step:EVERY:GAMMA: GAMMA must be a finite number > 0, got '-1'" --lr-schedule step:3:-1
    expect 2 "GAMMA must be a finite number > 0, got 'inf'" --lr-schedule step:3:inf
    expect 2 "error: --lr-schedule warmup:1.5: warmup:W: W must be a whole number of epochs >= 1, got '1.5'" --lr-schedule warmup:1.5
    expect 2 "error: --lr-schedule warmup,cosine: 'warmup' takes one value" --lr-schedule warmup,cosine
    expect 2 "error: --lr-schedule cosine,cosine: 'cosine' is given twice" --lr-schedule cosine,cosine
    expect 2 "error: --lr-schedule cosine,: an empty part" --lr-schedule cosine,
    expect 2 "error: --lr-schedule: the schedule is empty" --lr-schedule ""
    expect 2 "error: --lr-schedule constant,step:2:0.5: 'constant' cannot be combined with another schedule" --lr-schedule constant,step:2:0.5
    expect 2 "error: --lr-schedule: cosine:5 brings the learning rate to 0 after epoch 5, but --epochs is 10" --lr-schedule cosine:5
    expect 2 "error: --keep-best accuracy needs --eval data" --keep-best accuracy
    expect 2 "error: --patience needs --keep-best METRIC" --patience 3
    expect 2 "error: --keep-best accuracy:best: the direction after ':' must be min (lower is better) or max (higher is better), got 'best'" \
      --keep-best accuracy:best --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv
    expect 2 "error: --keep-best acuracy: the model has no metric 'acuracy' (did you mean 'accuracy'?); it can watch loss, accuracy" \
      --keep-best acuracy --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv
    expect 2 "error: --patience must be a positive integer, got '0'" --patience 0
    expect 1 "error: --keep-best writes the best checkpoint beside CKPT, but -o /dev/null is a device or FIFO" \
      --keep-best loss --eval x=$D/iris_test.csv --eval label=$D/iris_test.csv -o /dev/null
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
