#!/usr/bin/env bash
# Robustness cases of issue 20 run against the gradc binary: outputs that are
# devices, FIFOs, links or directories; temporary files of killed writers;
# standard output that cannot be written; inputs that never end.
# Usage: robustness_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"

case $case in
  output_dev_null)  # -o, --log and --plot /dev/null discard; /dev/null stays a device
    check_dev_null
    grad --inputs $tmp/in.st -o /dev/null > $tmp/out 2> $tmp/err || fail "grad -o /dev/null: $(cat $tmp/err)"
    test -c /dev/null || fail "/dev/null was replaced"
    train -o /dev/null --log /dev/null --plot /dev/null > $tmp/out 2> $tmp/err || fail "train: $(cat $tmp/err)"
    test -c /dev/null || fail "/dev/null was replaced"
    [ -s /dev/null ] && fail "/dev/null has contents"
    ls -A /dev | grep -q '^\.null\.tmp-' && fail "a temporary file was left in /dev"
    echo "/dev/null discarded the outputs and is still a character device" ;;
  output_fifo)  # a FIFO is written in place: its reader gets the checkpoint, the FIFO stays
    mkfifo $tmp/pipe
    timeout 60 cat $tmp/pipe > $tmp/got &
    reader=$!
    grad --inputs $tmp/in.st -o $tmp/pipe > $tmp/out 2> $tmp/err || fail "grad -o FIFO: $(cat $tmp/err)"
    wait $reader || fail "the reader did not finish"
    test -p $tmp/pipe || fail "the FIFO was replaced"
    grad --inputs $tmp/in.st -o $tmp/direct.st > /dev/null 2>&1 || fail "grad to a file"
    cmp -s $tmp/got $tmp/direct.st || fail "the FIFO's reader got other bytes than a file does"
    [ "$(ls -A $tmp | grep -c tmp-)" = 0 ] || fail "a temporary file was left: $(ls -A $tmp)"
    echo "FIFO reader got $(wc -c < $tmp/got) bytes" ;;
  output_symlink)  # -o LINK replaces the file the link points to and keeps the link
    mkdir $tmp/store
    echo old > $tmp/store/ckpt.st; echo other > $tmp/store/other.st
    ln -s store/ckpt.st $tmp/link.st
    grad --inputs $tmp/in.st -o $tmp/link.st > /dev/null 2> $tmp/err || fail "grad -o link: $(cat $tmp/err)"
    test -L $tmp/link.st || fail "the link was replaced by a file"
    grad --inputs $tmp/in.st -o $tmp/direct.st > /dev/null 2>&1 || fail "grad to a file"
    cmp -s $tmp/store/ckpt.st $tmp/direct.st || fail "the link's target does not hold the output"
    [ "$(cat $tmp/store/other.st)" = other ] || fail "another file was changed"
    [ "$(ls -A $tmp/store)" = "$(printf 'ckpt.st\nother.st')" ] || fail "left over: $(ls -A $tmp/store)"
    train -o $tmp/link.st --log $tmp/log-link.csv --plot $tmp/plot-link.svg > /dev/null 2> $tmp/err || fail "train -o link: $(cat $tmp/err)"
    test -L $tmp/link.st || fail "train replaced the link by a file"
    echo "link kept, target replaced" ;;
  output_stdout)  # -o /dev/stdout streams the file to standard output
    grad --inputs $tmp/in.st -o /dev/stdout > $tmp/out 2> $tmp/err || fail "grad -o /dev/stdout: $(cat $tmp/err)"
    grad --inputs $tmp/in.st -o $tmp/direct.st > /dev/null 2>&1 || fail "grad to a file"
    head -c "$(wc -c < $tmp/direct.st)" $tmp/out | cmp -s - $tmp/direct.st || fail "stdout does not start with the file's bytes"
    grad --inputs $tmp/in.st -o /dev/stdout 2> $tmp/err | cat > $tmp/piped || fail "grad -o /dev/stdout | cat: $(cat $tmp/err)"
    head -c "$(wc -c < $tmp/direct.st)" $tmp/piped | cmp -s - $tmp/direct.st || fail "the pipe did not get the file's bytes"
    ln -s /proc/self/fd/1 $tmp/to-stdout
    grad --inputs $tmp/in.st -o $tmp/to-stdout 2> $tmp/err | cat > $tmp/linked || fail "grad -o link to fd 1: $(cat $tmp/err)"
    head -c "$(wc -c < $tmp/direct.st)" $tmp/linked | cmp -s - $tmp/direct.st || fail "a link to /proc/self/fd/1 did not stream"
    test -L $tmp/to-stdout || fail "the link to /proc/self/fd/1 was replaced"
    grad --inputs $tmp/in.st -o /dev/fd/1 > $tmp/fd1 2> $tmp/err || fail "grad -o /dev/fd/1: $(cat $tmp/err)"
    head -c "$(wc -c < $tmp/direct.st)" $tmp/fd1 | cmp -s - $tmp/direct.st || fail "/dev/fd/1 did not get the file's bytes"
    ls -A /dev | grep -q '^\.stdout\.tmp-' && fail "a temporary file was left in /dev"
    echo "streamed $(wc -c < $tmp/direct.st) bytes" ;;
  output_directory)  # -o DIR: exit 1 naming the path; the directory is untouched
    mkdir $tmp/d; echo keep > $tmp/d/inside
    grad --inputs $tmp/in.st -o $tmp/d > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "exit status $rc, expected 1: $(cat $tmp/err)"
    grep -q "$tmp/d: .*is a directory" $tmp/err || fail "bad message: $(cat $tmp/err)"
    [ "$(ls -A $tmp/d)" = inside ] && [ "$(cat $tmp/d/inside)" = keep ] || fail "the directory was changed"
    train -o $tmp/c.st --log $tmp/d > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "--log DIR: exit status $rc, expected 1"
    grep -q -- "--log $tmp/d: .*directory" $tmp/err || fail "bad message: $(cat $tmp/err)"
    echo "$(cat $tmp/err)" ;;
  stale_temporaries)  # a killed writer's temporary file goes with the next write; a live one's stays
    dead=$(sh -c 'echo $$')
    kill -0 "$dead" 2> /dev/null && fail "pid $dead is alive; cannot test"
    echo partial > "$tmp/.c.st.tmp-$dead-0-1a2b"
    echo partial > "$tmp/.c.st.tmp-$$-0-1a2b"
    echo partial > "$tmp/.other.st.tmp-$dead-0-1a2b"
    grad --inputs $tmp/in.st -o $tmp/c.st > /dev/null 2> $tmp/err || fail "grad: $(cat $tmp/err)"
    [ -e "$tmp/.c.st.tmp-$dead-0-1a2b" ] && fail "the dead writer's temporary file is still there"
    [ -e "$tmp/.c.st.tmp-$$-0-1a2b" ] || fail "the live writer's temporary file was removed"
    [ -e "$tmp/.other.st.tmp-$dead-0-1a2b" ] || fail "another file's temporary file was removed"
    echo "stale temporary removed, live one kept" ;;
  stdout_full)  # standard output that cannot be written: exit 1 with a message
    g dump $E/xor.grad --stage graph > /dev/full 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "dump > /dev/full: exit status $rc, expected 1"
    grep -q "cannot write to standard output" $tmp/err || fail "no message: $(cat $tmp/err)"
    g check $E/xor.grad > /dev/full 2> $tmp/err2
    rc=$?
    if g check $E/xor.grad | grep -q .; then  # check prints something: it must fail too
      [ $rc = 1 ] || fail "check > /dev/full: exit status $rc, expected 1"
      grep -q "cannot write to standard output" $tmp/err2 || fail "no message: $(cat $tmp/err2)"
    else
      [ $rc = 0 ] || fail "check printed nothing but failed: $(cat $tmp/err2)"
    fi
    echo "$(cat $tmp/err)" ;;
  inputs_not_regular)  # --inputs /dev/zero, /dev/urandom, a FIFO: an error soon, never a read forever
    for src in /dev/zero /dev/urandom; do
      grad --inputs $src -o $tmp/o.st > $tmp/out 2> $tmp/err
      rc=$?
      [ $rc = 1 ] || fail "--inputs $src: exit status $rc, expected 1: $(cat $tmp/err)"
      grep -q "$src" $tmp/err || fail "the message does not name $src: $(cat $tmp/err)"
    done
    mkfifo $tmp/in-pipe
    (timeout 60 cat /dev/zero > $tmp/in-pipe 2> /dev/null &)
    grad --inputs $tmp/in-pipe -o $tmp/o.st > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "--inputs FIFO: exit status $rc, expected 1: $(cat $tmp/err)"
    [ -e $tmp/o.st ] && fail "an output was written"
    echo "$(cat $tmp/err)" ;;
  model_not_regular)  # a model that is /dev/zero, a FIFO, or past the 16 MiB limit: an error or the text, never a read forever
    for src in /dev/zero /dev/urandom; do
      g check $src > $tmp/out 2> $tmp/err
      rc=$?
      [ $rc = 1 ] || fail "check $src: exit status $rc, expected 1: $(cat $tmp/err)"
      grep -q "'$src' is larger than the limit of 16 MiB" $tmp/err || fail "bad message: $(cat $tmp/err)"
    done
    { cat $E/xor.grad; head -c $((16 << 20)) /dev/zero | tr '\0' '#'; } > $tmp/big.grad
    g check $tmp/big.grad > $tmp/out 2> $tmp/err
    rc=$?
    [ $rc = 1 ] || fail "check a 16 MiB + model: exit status $rc, expected 1: $(cat $tmp/err)"
    grep -q "larger than the limit of 16 MiB" $tmp/err || fail "bad message: $(cat $tmp/err)"
    # Exactly at the limit it is read whole (a comment to the end), and compiles.
    { cat $E/xor.grad; printf '#'; head -c $(((16 << 20) - $(wc -c < $E/xor.grad) - 1)) /dev/zero | tr '\0' ' '; } > $tmp/full.grad
    [ "$(wc -c < $tmp/full.grad)" = $((16 << 20)) ] || fail "the test's file has $(wc -c < $tmp/full.grad) bytes"
    g check $tmp/full.grad > $tmp/out 2> $tmp/err || fail "check a model of exactly 16 MiB: $(cat $tmp/err)"
    mkfifo $tmp/model-pipe
    (timeout 60 cat $E/xor.grad > $tmp/model-pipe &)
    g check $tmp/model-pipe > $tmp/out 2> $tmp/err || fail "check a FIFO with a model: $(cat $tmp/err)"
    g check $E/xor.grad > $tmp/want 2>&1
    # (the same summary but for the first line, which names the file)
    tail -n +2 $tmp/out | cmp -s - <(tail -n +2 $tmp/want) || fail "a FIFO's model checked differently: $(cat $tmp/out)"
    echo "$(cat $tmp/err)" ;;
  *) fail "unknown case $case" ;;
esac
