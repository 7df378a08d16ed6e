#!/usr/bin/env bash
# Robustness cases of issue 20, "allocation before validation": every size
# read from a file or a flag is checked against the file's real size or a
# documented limit before anything is allocated, and no such input ends in an
# internal compiler error. Each case runs under lib.sh's time and memory
# limits and checks the exit status, the message, the time or peak memory
# where the bug was a cost, and that no file the user had was changed.
# Usage: validate_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"

# gradc, expected to fail with exit status 1 and no internal error; stderr in $tmp/err.
refused() {
  g "$@" > $tmp/out 2> $tmp/err
  local rc=$?
  [ $rc = 1 ] || fail "gradc $*: exit status $rc, expected 1: $(head -c 600 $tmp/err)"
  grep -q "internal compiler error" $tmp/err && fail "gradc $*: an internal error: $(cat $tmp/err)"
  return 0
}
expect_msg() { grep -q -- "$1" $tmp/err || fail "the message lacks '$1': $(head -c 600 $tmp/err)"; }
# Peak resident memory in KB of the last `timed` command, and its seconds.
timed() {
  /usr/bin/time -f "%M %e" -o $tmp/time timeout 60 "$G" "$@" > $tmp/out 2> $tmp/err
  local rc=$?
  [ $rc = 1 ] || fail "gradc $*: exit status $rc, expected 1: $(head -c 600 $tmp/err)"
  grep -q "internal compiler error" $tmp/err && fail "gradc $*: an internal error: $(cat $tmp/err)"
  read -r kb secs < <(tail -n 1 $tmp/time)
}
# Sets the scalar tensor NAME of safetensors FILE to VALUE stored as DTYPE
# (F64, F32, I32 or I64), or its metadata entry NAME when DTYPE is META.
set_field() {
  /usr/bin/python3 - "$@" <<'PY'
import json, struct, sys
path, name, dtype, value = sys.argv[1:5]
b = open(path, 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); data = b[8 + n:]
if dtype == 'META':
    h.setdefault('__metadata__', {})[name] = value
else:
    tensors = {k: v for k, v in h.items() if k != '__metadata__'}
    blobs = {k: data[v['data_offsets'][0]:v['data_offsets'][1]] for k, v in tensors.items()}
    fmt = {'F64': '<d', 'F32': '<f', 'I32': '<i', 'I64': '<q'}[dtype]
    v = float(value) if dtype[0] == 'F' else int(value)
    blobs[name] = struct.pack(fmt, v)
    tensors[name] = {'dtype': dtype, 'shape': [], 'data_offsets': [0, 0]}
    data = b''; pos = 0
    for k in tensors:
        tensors[k]['data_offsets'] = [pos, pos + len(blobs[k])]; data += blobs[k]; pos += len(blobs[k])
    meta = h.get('__metadata__')
    h = ({'__metadata__': meta} if meta else {}) | tensors
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(path, 'wb').write(struct.pack('<Q', len(hb)) + hb + data)
PY
}
unchanged() { cmp -s "$1" "$2" || fail "$1 was changed"; }

case $case in
  csv_long_line)  # a 50 MB header line: refused at its line at once, not after 22 s and 1.9 GB
    /usr/bin/python3 -c "import sys; open(sys.argv[1], 'w').write(','.join(['a'] * 25_000_000) + '\n1\n')" $tmp/wide.csv
    cp $tmp/wide.csv $tmp/wide.orig
    timed train $E/xor.grad --data x=$tmp/wide.csv:a --data y=$D/xor.csv:y --epochs 1 -o $tmp/c.st
    expect_msg "$tmp/wide.csv:1:1048577: line is 49999999 bytes long, longer than the limit of 1 MiB for a line of a csv file"
    [ "$kb" -lt 400000 ] || fail "peak memory $kb KB"
    [ -e $tmp/c.st ] && fail "a checkpoint was written"
    unchanged $tmp/wide.csv $tmp/wide.orig
    echo "$(cat $tmp/err) ($secs s, $kb KB)" ;;
  shape_message_huge_set)  # the message about a mismatched input is made from the shape alone
    cp $tmp/in.st $tmp/in.orig
    for B in 8388608 268435456; do
      timed run $E/digits_mlp.grad --set B=$B --inputs $tmp/in.st -o $tmp/o.st --backend interp
      expect_msg "tensor 'x': expected f32\[$B, 64\], got f32\[4, 2\]"
      [ "$kb" -lt 400000 ] || fail "B=$B: peak memory $kb KB"
    done
    [ -e $tmp/o.st ] && fail "an output was written"
    unchanged $tmp/in.st $tmp/in.orig
    echo "$(cat $tmp/err) ($secs s, $kb KB)" ;;
  huge_set_allocation)  # tensors that memory cannot hold: an error naming them and their bytes
    refused bench $E/digits_mlp.grad --set B=268435456 --seconds 1
    expect_msg "f32\[268435456, 64\] (68719476736 bytes)"
    refused gradcheck $E/digits_mlp.grad --set B=268435456
    expect_msg "gradcheck: input 'x' of type f32\[B=268435456, 64\] needs 137438953472 bytes"
    refused run $E/digits_mlp.grad --set H=268435456 --inputs $tmp/in.st -o $tmp/o.st
    expect_msg "a session is limited to 16 GiB"
    [ -e $tmp/o.st ] && fail "an output was written"
    echo "$(cat $tmp/err)" ;;
  checkpoint_fields)  # train.epoch, .batch, .seed and opt.step are checked on load, naming file and field
    train -o $tmp/good.st > /dev/null 2> $tmp/err || fail "train: $(cat $tmp/err)"
    bad() {  # FIELD DTYPE VALUE MESSAGE [EPOCHS]: --resume and --params refuse it
      cp $tmp/good.st $tmp/bad.st
      set_field $tmp/bad.st "$1" "$2" "$3"
      cp $tmp/bad.st $tmp/bad.orig
      timed train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs "${5:-100000001}" --no-progress \
        --resume $tmp/bad.st -o $tmp/bad.st
      expect_msg "$tmp/bad.st: $4"
      [ "$kb" -lt 400000 ] || fail "$1=$3: peak memory $kb KB"
      unchanged $tmp/bad.st $tmp/bad.orig
    }
    bad train.epoch I32 -5 "tensor 'train.epoch' is -5, expected a whole number in \[0, 1000000000\]"
    bad train.epoch F64 2147483647 "tensor 'train.epoch' is 2147483647, expected a whole number in \[0, 1000000000\]"
    bad train.epoch F64 1e300 "tensor 'train.epoch' is 1e+300, expected a whole number"
    bad train.epoch F64 nan "tensor 'train.epoch' is nan, expected a whole number"
    bad train.epoch F32 1.5 "tensor 'train.epoch' is 1.5, expected a whole number"
    bad train.batch I32 0 "tensor 'train.batch' is 0, expected a whole number in \[1, 1000000000\]"
    bad train.batch I64 -2147483648 "tensor 'train.batch' is -2147483648, expected a whole number"
    bad train.seed F64 -1 "tensor 'train.seed' is -1, expected a whole number in \[0, 18446744073709551616\]"
    bad train.seed F64 inf "tensor 'train.seed' is inf, expected a whole number"
    bad train.seed META 12x "metadata 'train.seed' is '12x', expected a whole number in \[0, 18446744073709551615\]"
    bad train.seed META 18446744073709551616 "metadata 'train.seed' is '18446744073709551616', expected a whole number"
    bad train.seed META 5 "metadata 'train.seed' is 5, but tensor 'train.seed' is 0; the two must agree"
    bad opt.step I32 -5 "tensor 'opt.step' is -5, expected a whole number in \[0, 2147483647\]"
    bad opt.step F64 nan "tensor 'opt.step' is nan, expected a whole number"
    bad opt.step F64 1e100 "tensor 'opt.step' is 1e+100, expected a whole number"
    # --params reads opt.step too
    cp $tmp/good.st $tmp/bad.st; set_field $tmp/bad.st opt.step F64 nan
    refused step $E/xor.grad --inputs $tmp/in.st --params $tmp/bad.st --steps 1 -o $tmp/o.st
    expect_msg "$tmp/bad.st: tensor 'opt.step' is nan"
    [ -e $tmp/o.st ] && fail "an output was written"
    echo "$(cat $tmp/err)" ;;
  checkpoint_epoch_history)  # a far epoch needs no history unless --log/--plot, which cover at most 10^6 epochs
    train -o $tmp/c.st > /dev/null 2> $tmp/err || fail "train: $(cat $tmp/err)"
    set_field $tmp/c.st train.epoch I32 100000000
    cp $tmp/c.st $tmp/c.orig
    /usr/bin/time -f "%M %e" -o $tmp/time timeout 60 "$G" train $E/xor.grad --data x=$D/xor.csv:x0,x1 \
      --data y=$D/xor.csv:y --epochs 100000001 --no-progress --resume $tmp/c.st -o $tmp/next.st > $tmp/out 2> $tmp/err \
      || fail "resume at epoch 10^8: $(cat $tmp/err)"
    read -r kb secs < <(tail -n 1 $tmp/time)
    [ "$kb" -lt 400000 ] || fail "peak memory $kb KB for one epoch after 10^8"
    grep -q "epoch 100000001/100000001" $tmp/out || fail "did not train epoch 10^8 + 1: $(cat $tmp/out)"
    refused train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 100000001 --no-progress \
      --resume $tmp/c.st -o $tmp/next2.st --log $tmp/log.csv
    expect_msg "--epochs 100000001 with --log: the log and the plot cover at most 1000000 epochs"
    [ -e $tmp/log.csv ] || [ -e $tmp/next2.st ] && fail "an output was written"
    unchanged $tmp/c.st $tmp/c.orig
    echo "$(cat $tmp/err) (resume without --log: $kb KB)" ;;
  safetensors_sparse)  # a 4 GiB sparse file whose header is {}: refused after reading its header
    /usr/bin/python3 -c "
import struct, sys; f = open(sys.argv[1], 'wb'); f.write(struct.pack('<Q', 8) + b'{}      '); f.truncate(4 << 30)" $tmp/sparse.st
    for flag in --inputs --params; do
      other=$([ $flag = --inputs ] && echo "--params $tmp/sparse.st" || echo "--inputs $tmp/in.st")
      timed grad $E/xor.grad --backend interp $flag $tmp/sparse.st $other -o $tmp/o.st
      expect_msg "$tmp/sparse.st: bytes \[0, 4294967280) at the end of the data section belong to no tensor"
      [ "$kb" -lt 400000 ] || fail "$flag: peak memory $kb KB"
      awk -v s="$secs" 'BEGIN { exit !(s < 5) }' || fail "$flag: took $secs s"
    done
    [ "$(stat -c %s $tmp/sparse.st)" = 4294967296 ] || fail "the file was changed"
    [ -e $tmp/o.st ] && fail "an output was written"
    echo "$(cat $tmp/err) ($secs s, $kb KB)" ;;
  seed_round_trip)  # seeds above 2^53 are stored exactly: train -> resume works, the same as one run
    for seed in 9007199254740993 18446744073709551615; do
      train -o $tmp/a.st --seed $seed > /dev/null 2> $tmp/err || fail "--seed $seed: $(cat $tmp/err)"
      g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 4 --no-progress --seed $seed \
        --resume $tmp/a.st -o $tmp/a.st > $tmp/out 2> $tmp/err || fail "--seed $seed --resume: $(cat $tmp/err)"
      g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 4 --no-progress --seed $seed \
        -o $tmp/b.st > /dev/null 2> $tmp/err || fail "--seed $seed, 4 epochs: $(cat $tmp/err)"
      cmp -s $tmp/a.st $tmp/b.st || fail "--seed $seed: 2 + 2 epochs differ from 4"
      cp $tmp/a.st $tmp/a.orig
      # a seed that rounds to the same f64 is another seed
      refused train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 6 --no-progress \
        --seed $((seed == 9007199254740993 ? 9007199254740992 : 0)) --resume $tmp/a.st -o $tmp/a.st
      expect_msg "$tmp/a.st: the checkpoint was written with --seed $seed --batch 4; resume with the same"
      unchanged $tmp/a.st $tmp/a.orig
    done
    # a checkpoint of an earlier version (no metadata entry) still resumes with its seed
    train -o $tmp/old.st --seed 12345 > /dev/null 2> $tmp/err || fail "train: $(cat $tmp/err)"
    /usr/bin/python3 - $tmp/old.st <<'PY'
import json, struct, sys
b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8 + n]); h.pop('__metadata__', None)
hb = json.dumps(h).encode(); hb += b' ' * (-len(hb) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(hb)) + hb + b[8 + n:])
PY
    g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 3 --no-progress --seed 12345 \
      --resume $tmp/old.st -o $tmp/old2.st > /dev/null 2> $tmp/err || fail "resume of an old checkpoint: $(cat $tmp/err)"
    echo "seeds 2^53+1 and 2^64-1 resume exactly" ;;
  *) fail "unknown case $case" ;;
esac
