#!/usr/bin/env bash
# Data files through the command line (SPEC 4, issues 14 and 16): IDX files
# (MNIST's format, plain and gzip) for train, predict and show; malformed and
# hostile IDX files as errors naming the file; class ids out of range named
# with their file and row before any step.
# Usage: data_files_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"
# 8 GB of address space: a claimed size that were allocated would fail the
# run rather than swap (not under the sanitizers, which reserve terabytes).
[ "${GRADC_SANITIZED:-0}" = 1 ] || ulimit -v 8000000
# gradc under a time limit: a hang is a failure, not a stuck test.
g() { timeout 60 "$G" "$@"; }

# The digits CSV files as IDX files in $tmp: images [N, 8, 8] of unsigned
# bytes (gzip-compressed) and labels [N] (plain), as MNIST ships them.
digits_idx() {
  /usr/bin/python3 - "$D" "$tmp" <<'PY'
import csv, gzip, struct, sys
src, out = sys.argv[1], sys.argv[2]
for part, prefix in (("train", "train"), ("test", "t10k")):
    rows = list(csv.reader(open(f"{src}/digits_{part}.csv")))[1:]
    pixels = bytes(int(float(v)) for r in rows for v in r[:64])
    labels = bytes(int(float(r[64])) for r in rows)
    n = len(rows)
    with gzip.open(f"{out}/{prefix}-images-idx3-ubyte.gz", "wb") as f:
        f.write(bytes([0, 0, 8, 3]) + struct.pack(">3I", n, 8, 8) + pixels)
    with open(f"{out}/{prefix}-labels-idx1-ubyte", "wb") as f:
        f.write(bytes([0, 0, 8, 1]) + struct.pack(">I", n) + labels)
PY
}
# The digits model with its pixels as images [B, 1, 8, 8], flattened in the model.
image_model() {
  sed -e 's/^input x : \[B, 64\].*/input x : [B, 1, 8, 8]/' -e 's|^pixels = x / 16 .*|pixels = reshape(x, [B, 64]) / 16|' \
    $E/digits_mlp.grad > $tmp/digits_image.grad
  grep -q 'reshape(x, \[B, 64\])' $tmp/digits_image.grad || fail "the image model was not made"
}
# idx FILE TYPE SHAPE... : writes an IDX header for TYPE and SHAPE; the data comes from stdin.
idx() {
  local f=$1 type=$2; shift 2
  /usr/bin/python3 -c '
import struct, sys
f, t, dims = sys.argv[1], int(sys.argv[2], 0), [int(d) for d in sys.argv[3:]]
data = sys.stdin.buffer.read()
open(f, "wb").write(bytes([0, 0, t, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data)' "$f" "$type" "$@"
}
gz() { /usr/bin/python3 -c 'import gzip, sys; sys.stdout.buffer.write(gzip.compress(sys.stdin.buffer.read(), mtime=0))'; }
# expect_error MESSAGE CMD...: exit status 1 and MESSAGE on stderr.
expect_error() {
  local msg=$1; shift
  "$@" > $tmp/out 2> $tmp/err; local rc=$?
  [ $rc = 1 ] || fail "exit status $rc, expected 1, for: $* ($(cat $tmp/err))"
  grep -qF -- "$msg" $tmp/err || fail "expected '$msg', got: $(cat $tmp/err)"
}

case $case in
  idx_train)  # IDX images feed an input [B, 1, 8, 8] and [B, 64]: the same run as from the CSV, bit for bit
    digits_idx; image_model
    idx_data=(--data x=$tmp/train-images-idx3-ubyte.gz --data label=$tmp/train-labels-idx1-ubyte
              --eval x=$tmp/t10k-images-idx3-ubyte.gz --eval label=$tmp/t10k-labels-idx1-ubyte)
    g train $tmp/digits_image.grad "${idx_data[@]}" --epochs 10 --no-progress -o $tmp/img.st \
      --log $tmp/img.csv > $tmp/out 2>&1 || fail "train on IDX: $(cat $tmp/out)"
    acc=$(tail -n 1 $tmp/img.csv | cut -d, -f4)
    awk -v a="$acc" 'BEGIN { exit !(a >= 0.9) }' || fail "held-out accuracy $acc < 0.9 on IDX images"
    g train $E/digits_mlp.grad "${idx_data[@]}" --epochs 3 --no-progress -o $tmp/flat.st > $tmp/out 2>&1 ||
      fail "train [B, 64] on IDX: $(cat $tmp/out)"
    g train $E/digits_mlp.grad --data x=$D/digits_train.csv --data label=$D/digits_train.csv \
      --eval x=$D/digits_test.csv --eval label=$D/digits_test.csv --epochs 3 --no-progress -o $tmp/csv.st > $tmp/out 2>&1 ||
      fail "train on CSV: $(cat $tmp/out)"
    cmp -s $tmp/flat.st $tmp/csv.st || fail "training on the IDX files differs from training on the same CSV data"
    # predict reads IDX as train does; its classes match the printed accuracy's count of rows.
    g predict $tmp/digits_image.grad --params $tmp/img.st --data x=$tmp/t10k-images-idx3-ubyte.gz \
      --data label=$tmp/t10k-labels-idx1-ubyte -o $tmp/p.csv --classes > $tmp/out 2> $tmp/err || fail "predict: $(cat $tmp/err)"
    grep -q "^predicted 360 rows, loss [0-9.]*, accuracy [0-9.]*  ->  $tmp/p.csv$" $tmp/out || fail "predict: $(cat $tmp/out)"
    pacc=$(grep -o 'accuracy [0-9.]*' $tmp/out | cut -d' ' -f2)
    awk -v a="$acc" -v b="$pacc" 'BEGIN { exit !(a - b < 1e-5 && b - a < 1e-5) }' || fail "predict's accuracy $pacc is not train's $acc"
    [ "$(wc -l < $tmp/p.csv)" = 361 ] || fail "$(wc -l < $tmp/p.csv) lines in the predictions"
    echo "digits as IDX images: held-out accuracy $acc" ;;
  idx_show)  # show names the type, shape and statistics of an IDX file; its values read back exactly
    printf '\x00\x07\x10\xff\x01\x02' | idx $tmp/img-idx3-ubyte 8 2 1 3
    g show $tmp/img-idx3-ubyte > $tmp/out || fail "show: $(cat $tmp/out)"
    grep -q "img-idx3-ubyte: idx, 1 tensor" $tmp/out || fail "summary: $(cat $tmp/out)"
    grep -Eq '^  img-idx3-ubyte +f32 +\[2, 1, 3\] +0 +255 +46\.8333 +0 +0$' $tmp/out || fail "statistics: $(cat $tmp/out)"
    gz < $tmp/img-idx3-ubyte > $tmp/data.bin  # no IDX name: recognized inside the gzip data
    g show $tmp/data.bin --tensor data > $tmp/out || fail "show --tensor: $(cat $tmp/out)"
    printf 'data: f32 [2, 1, 3]\n[0, 0]: 0 7 16\n[1, 0]: 255 1 2\n' | diff - $tmp/out || fail "values"
    echo ok ;;
  idx_malformed)  # every bad IDX file is exit 1 with the file and what is wrong, at once and in little memory
    printf '\x01\x02\x03\x04' | idx $tmp/x.bin 8 1 4   # a valid x for iris: one row
    x=(--data x=$tmp/x.bin)
    train() { g train $E/iris_mlp.grad "${x[@]}" --data label=$1 --epochs 1 --no-progress -o $tmp/c.st; }
    printf '\x01\x02' | idx $tmp/a-idx1-ubyte 8 3
    expect_error "$tmp/a-idx1-ubyte: data is 2 bytes, but shape [3] of u8 needs 3 (the file is truncated)" train $tmp/a-idx1-ubyte
    printf '\x01\x02\x00\x00' | idx $tmp/b-idx1-ubyte 8 3
    expect_error "$tmp/b-idx1-ubyte: data is 4 bytes, but shape [3] of u8 needs 3 (trailing bytes)" train $tmp/b-idx1-ubyte
    printf '\x01' | idx $tmp/c-idx1-ubyte 0x0a 1
    expect_error "$tmp/c-idx1-ubyte: the IDX type code 0x0a is not supported" train $tmp/c-idx1-ubyte
    printf 'PK\x03\x04 zip' > $tmp/d-idx1-ubyte
    expect_error "$tmp/d-idx1-ubyte: not an IDX file (its first bytes are 50 4b" train $tmp/d-idx1-ubyte
    printf '' | idx $tmp/e-idx3-ubyte 8 4294967295 4294967295 4294967295
    expect_error "$tmp/e-idx3-ubyte: the IDX header claims shape [4294967295, 4294967295, 4294967295] of u8: more than the 16 GiB" \
      train $tmp/e-idx3-ubyte
    printf 'abc' | idx /dev/stdout 8 60000 28 28 | gz > $tmp/f-idx3-ubyte.gz
    expect_error "$tmp/f-idx3-ubyte.gz: the IDX header claims shape [60000, 28, 28] of u8 (47040000 bytes), more than" \
      train $tmp/f-idx3-ubyte.gz
    # A gzip bomb: 16 bytes claimed, 256 MiB of zeros inside 300 KB, read in 2 GB of address space.
    /usr/bin/python3 -c '
import struct, sys, zlib
z = zlib.compressobj(9, zlib.DEFLATED, 31)
out = z.compress(bytes([0, 0, 8, 1]) + struct.pack(">I", 16))
chunk = bytes(1 << 20)
for _ in range(256): out += z.compress(chunk)
open(sys.argv[1], "wb").write(out + z.flush())' $tmp/bomb-idx1-ubyte.gz
    [ "$(stat -c %s $tmp/bomb-idx1-ubyte.gz)" -lt 300000 ] || fail "the bomb is not small"
    ([ "${GRADC_SANITIZED:-0}" = 1 ] || ulimit -v 2000000; expect_error "$tmp/bomb-idx1-ubyte.gz: the gzip data holds more than the 16 bytes that shape [16] of u8 needs (trailing bytes)" \
      train $tmp/bomb-idx1-ubyte.gz) || exit 1
    printf '\x00\x01\x02' | idx /dev/stdout 8 3 | gz | head -c 20 > $tmp/g-idx1-ubyte.gz
    expect_error "$tmp/g-idx1-ubyte.gz: the gzip data is truncated" train $tmp/g-idx1-ubyte.gz
    # A sparse file of 4 GiB whose header claims 3 bytes: refused from its size, not read.
    printf '\x00\x01\x02' | idx $tmp/h-idx1-ubyte 8 3
    truncate -s 4G $tmp/h-idx1-ubyte
    expect_error "$tmp/h-idx1-ubyte: data is 4294967288 bytes, but shape [3] of u8 needs 3 (trailing bytes)" train $tmp/h-idx1-ubyte
    # The formats read are named when a file is none of them.
    printf 'hello' > $tmp/l.txt
    expect_error "unsupported file type '.txt'; --data reads .csv, .npy, .safetensors and IDX files" train $tmp/l.txt
    echo ok ;;
  class_ids)  # a label out of range names its file and row (CSV: line and column) and the model line, before any step
    at="(read as class ids at $E/iris_mlp.grad:22:6)"
    # CSV: line 11 of the file (the header is line 1), column 17.
    sed '11s/,0$/,7/' $D/iris_test.csv > $tmp/bad.csv
    grep -q '^.*,7$' $tmp/bad.csv || fail "no bad label written"
    expect_error "gradc train: error: $tmp/bad.csv:11:17: class id 7 for input 'label' is out of range [0, 3) $at" \
      g train $E/iris_mlp.grad --data x=$tmp/bad.csv --data label=$tmp/bad.csv --epochs 1 --no-progress -o $tmp/c.st
    [ -e $tmp/c.st ] && fail "a checkpoint was written"
    # --eval data too, before training starts.
    expect_error "$tmp/bad.csv:11:17: class id 7" g train $E/iris_mlp.grad --data x=$D/iris_train.csv \
      --data label=$D/iris_train.csv --eval x=$tmp/bad.csv --eval label=$tmp/bad.csv --epochs 1 --no-progress -o $tmp/c.st
    grep -q "^epoch" $tmp/out && fail "an epoch ran: $(cat $tmp/out)"
    # IDX labels: the row (0-based).
    /usr/bin/python3 -c 'import sys; sys.stdout.buffer.write(bytes([0, 1, 2] * 9 + [1, 3, 0]))' | idx $tmp/l-idx1-ubyte 8 30
    expect_error "$tmp/l-idx1-ubyte: row 28: class id 3 for input 'label' is out of range [0, 3) $at" \
      g train $E/iris_mlp.grad --data x=$D/iris_test.csv --data label=$tmp/l-idx1-ubyte --epochs 1 --no-progress -o $tmp/c.st
    g train $E/iris_mlp.grad --data x=$D/iris_train.csv --data label=$D/iris_train.csv --epochs 1 --no-progress \
      -o $tmp/ok.st > /dev/null 2>&1 || fail "train"
    expect_error "$tmp/l-idx1-ubyte: row 28: class id 3" \
      g predict $E/iris_mlp.grad --params $tmp/ok.st --data x=$D/iris_test.csv --data label=$tmp/l-idx1-ubyte -o $tmp/p.csv
    # --inputs of run, grad and step: the tensor and its element.
    /usr/bin/python3 - $tmp/in.safetensors <<'PY'
import json, struct, sys
x = struct.pack('<64f', *([1.0] * 64))
l = struct.pack('<16i', *([0] * 5 + [-2] + [1] * 10))
h = json.dumps({"x": {"dtype": "F32", "shape": [16, 4], "data_offsets": [0, 256]},
                "label": {"dtype": "I32", "shape": [16], "data_offsets": [256, 320]}}).encode()
h += b' ' * (-len(h) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + x + l)
PY
    for verb in run grad "step --steps 1"; do
      expect_error "gradc ${verb%% *}: error: --inputs $tmp/in.safetensors: tensor 'label', element 5: class id -2 for input 'label' is out of range [0, 3) $at" \
        g $verb $E/iris_mlp.grad --inputs $tmp/in.safetensors -o $tmp/o.st
    done
    expect_error "--inputs $tmp/in.safetensors: tensor 'label', row 5: class id -2" \
      g predict $E/iris_mlp.grad --params $tmp/ok.st --inputs $tmp/in.safetensors -o $tmp/p.csv
    echo ok ;;
  fashion_mlp)  # Fashion-MNIST as Debian installs it, read in place: one epoch of the example MLP learns the classes
    F=/usr/share/datasets/fashion-mnist
    [ -f $F/train-images-idx3-ubyte.gz ] || fail "$F is missing: scripts/setup.sh installs dataset-fashion-mnist"
    g train $E/fashion_mlp.grad --data x=$F/train-images-idx3-ubyte.gz --data label=$F/train-labels-idx1-ubyte.gz \
      --eval x=$F/t10k-images-idx3-ubyte.gz --eval label=$F/t10k-labels-idx1-ubyte.gz \
      --epochs 1 --batch 128 -o $tmp/f.safetensors --log $tmp/f.csv > $tmp/out 2>&1 || fail "train failed: $(cat $tmp/out)"
    # 60,000 rows in batches of 128 (B is dynamic): 468 steps and the last,
    # partial one of 96 rows, and the whole test set evaluated.
    grep -q '469 steps' $tmp/out || fail "expected 469 steps: $(cat $tmp/out)"
    acc=$(tail -n 1 $tmp/f.csv | cut -d, -f4)
    awk "BEGIN { exit !($acc >= 0.80) }" || fail "test accuracy $acc after one epoch, expected at least 0.80"
    echo ok ;;
  *) fail "unknown case $case" ;;
esac
