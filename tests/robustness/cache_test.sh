#!/usr/bin/env bash
# Robustness cases of issue 20 for the code cache: special files in the cache
# directory, a header that claims a huge object, and whom the cache trusts (a
# directory or file that another user owns or can write is not used; a new
# directory is private).
# Usage: cache_test.sh GRADC CASE
set -uo pipefail
G=$1 case=$2
. "$(dirname "$0")/lib.sh"

c=$GRADC_CACHE_DIR
# lib.sh's grad runs the interpreter; these need the JIT, which uses the cache.
jgrad() { g grad $E/xor.grad "$@"; }
# Fills the cache with the entries that grad and train use on xor.grad.
fill() {
  jgrad --inputs $tmp/in.st -o $tmp/ref.st > /dev/null 2>&1 || fail "grad to fill the cache"
  train -o $tmp/t.st > /dev/null 2>&1 || fail "train to fill the cache"
}
# grad again: exit 0 and the same checkpoint as the first run.
same_result() {
  jgrad --inputs $tmp/in.st -o $tmp/again.st > $tmp/out 2> $tmp/err || fail "grad: exit status $?: $(cat $tmp/err)"
  cmp -s $tmp/ref.st $tmp/again.st || fail "another result than without the cache"
}
# The refusal is a warning, said once, naming the directory.
refused_once() {
  [ "$(grep -c "warning: not using the code cache '$c'" $tmp/err)" = 1 ] || fail "no single warning: $(cat $tmp/err)"
  grep -q "$1" $tmp/err || fail "the warning does not say '$1': $(cat $tmp/err)"
  [ -z "$(ls -A $c)" ] || fail "the refused directory was written: $(ls -A $c)"
}

case $case in
  cache_fifo)  # a FIFO named as a cache file is a miss, not a hang
    fill
    for f in $c/*.gco; do rm $f; mkfifo $f; done
    train -o $tmp/t.st > $tmp/out 2> $tmp/err || fail "train with FIFOs in the cache: exit status $?: $(cat $tmp/err)"
    same_result
    echo "train and grad ran past $(ls $c | wc -l) cache entries that were FIFOs" ;;
  cache_symlink)  # a link named as a cache file is not followed, and its target is not touched
    fill
    echo "the user's own file" > $tmp/target
    for f in $c/*.gco; do rm $f; ln -s $tmp/target $f; done
    same_result
    [ "$(cat $tmp/target)" = "the user's own file" ] || fail "the link's target was changed"
    echo "links not followed; target unchanged" ;;
  cache_huge_size)  # a header claiming 2^30 bytes is rejected before anything is allocated
    fill
    for f in $c/*.gco; do  # the object's size, 8 bytes at offset 80
      printf '\x00\x00\x00\x40\x00\x00\x00\x00' | dd of=$f bs=1 seek=80 conv=notrunc status=none
    done
    # 1 GB of address space: gradc's own needs fit, a 1 GiB buffer does not.
    ( [ "${GRADC_SANITIZED:-0}" = 1 ] || ulimit -v 1000000; same_result ) || exit 1
    echo "rejected and recompiled within 1 GB" ;;
  cache_dir_world_writable | cache_dir_group_writable)  # not used, said once; the run is unchanged
    mkdir -p $c
    [ $case = cache_dir_world_writable ] && chmod 0777 $c || chmod 0770 $c
    jgrad --inputs $tmp/in.st -o $tmp/ref.st > $tmp/out 2> $tmp/err || fail "grad: exit status $?: $(cat $tmp/err)"
    refused_once "other users can write to it"
    train -o $tmp/t.st > $tmp/out 2> $tmp/err || fail "train: exit status $?: $(cat $tmp/err)"
    refused_once "other users can write to it"
    # bench says the cache was not used (not a miss, which would mean it was looked at).
    g bench $E/xor.grad --seconds 0.01 > $tmp/bench 2> $tmp/err || fail "bench: $(cat $tmp/err)"
    grep -q "code cache not used" $tmp/bench || fail "bench does not say the cache was not used: $(head -3 $tmp/bench)"
    echo "$(cat $tmp/err)" ;;
  cache_dir_other_owner)  # a directory of another user's is not used
    if [ "$(id -u)" != 0 ] || ! id nobody > /dev/null 2>&1; then echo "skipped: needs root to give a directory away"; exit 0; fi
    mkdir -p $c; chmod 0755 $c; chown nobody $c
    train -o $tmp/t.st > $tmp/out 2> $tmp/err || fail "train: exit status $?: $(cat $tmp/err)"
    refused_once "belongs to another user"
    echo "$(cat $tmp/err)" ;;
  cache_file_other_owner)  # a cache file of another user's (a forged entry) is not loaded
    if [ "$(id -u)" != 0 ] || ! id nobody > /dev/null 2>&1; then echo "skipped: needs root to give a file away"; exit 0; fi
    bench() { g bench $E/xor.grad --seconds 0.01 > $tmp/out 2> $tmp/err || fail "bench: $(cat $tmp/err)"; }
    bench; bench
    grep -q "code cache hit" $tmp/out || fail "the second run did not hit the cache: $(head -4 $tmp/out)"
    # As if planted by another user (a forged entry has a valid checksum).
    for f in $c/*.gco; do chown nobody $f; done
    bench
    grep -q "code cache hit" $tmp/out && fail "another user's file was loaded: $(head -4 $tmp/out)"
    echo "another user's cache files were not loaded" ;;
  cache_dir_created_private)  # a directory gradc creates is mode 0700
    c=$tmp/new/cache; export GRADC_CACHE_DIR=$c
    jgrad --inputs $tmp/in.st -o $tmp/ref.st > $tmp/out 2> $tmp/err || fail "grad: exit status $?: $(cat $tmp/err)"
    [ "$(stat -c %a $c)" = 700 ] || fail "the new directory has mode $(stat -c %a $c)"
    ls $c/*.gco > /dev/null 2>&1 || fail "nothing was cached"
    [ -s $tmp/err ] && fail "a message on stderr: $(cat $tmp/err)"
    echo "created with mode 0700" ;;
  *) fail "unknown case $case" ;;
esac
