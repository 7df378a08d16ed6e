#!/usr/bin/env bash
# `gradc dump --print-after-all`: the graph after each pass of xor, compared
# with tests/golden/xor.opt.print-after-all.txt; the kernel planner's steps
# of `--stage loops`; and exit status 2 with a message naming the flag for
# every stage that is not made of steps.
# Regenerate the golden with: GRADC_UPDATE_GOLDEN=1 ctest --test-dir build -R print_after_all
# Usage: print_after_all.sh GRADC
set -uo pipefail
gradc=$1
here=$(cd "$(dirname "$0")" && pwd)
cd "$here/../.."
expected="$here/xor.opt.print-after-all.txt"
actual=$("$gradc" dump examples/xor.grad --stage opt --print-after-all) || { echo "FAIL: exit status $?"; exit 1; }
if [ "${GRADC_UPDATE_GOLDEN:-0}" = 1 ]; then
  printf '%s\n' "$actual" > "$expected"
  echo "updated $expected"
elif ! diff -u "$expected" <(printf '%s\n' "$actual"); then
  echo "FAIL: golden mismatch for xor --stage opt --print-after-all (regenerate with GRADC_UPDATE_GOLDEN=1 if intended)"
  exit 1
fi
fail=0
# loops: the kernel planner's steps in order, the last printout the loops stage.
for entry in forward train_step; do
  all=$("$gradc" dump examples/xor.grad --stage loops --entry "$entry" --print-after-all) || { echo "FAIL: loops $entry: exit $?"; exit 1; }
  steps=$(grep '^# \*\*\* after ' <<< "$all" | sed 's/^# \*\*\* after \(.*\) \*\*\*$/\1/' | tr '\n' ' ')
  if [ "$steps" != "lowering batch-rows in-place internal-epilogues product-blocks invariant-packing pool-epilogues arena " ]; then
    echo "FAIL: loops $entry: steps '$steps'"; exit 1
  fi
  last=$(awk '/^# \*\*\* after arena \*\*\*$/ {on = 1; next} on' <<< "$all")
  if ! diff -u <("$gradc" dump examples/xor.grad --stage loops --entry "$entry") <(printf '%s\n' "$last"); then
    echo "FAIL: loops $entry: the last printout is not the loops stage"; exit 1
  fi
done
for stage in ast graph grad llvm llvm-raw asm; do
  err=$("$gradc" dump examples/xor.grad --stage "$stage" --print-after-all 2>&1 >/dev/null)
  status=$?
  if [ "$status" != 2 ] || ! grep -q -- "--print-after-all .*works with --stage opt or --stage loops, not with --stage $stage\$" <<< "$err"; then
    echo "FAIL: --stage $stage --print-after-all: exit status $status (expected 2), stderr:"
    echo "$err"
    fail=1
  fi
done
exit $fail
