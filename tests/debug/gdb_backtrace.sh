#!/usr/bin/env bash
# gdb sees JIT-compiled code by its model lines (compiler/codegen/jit_debug.h):
# with GRADC_DEBUG_INFO=1, a breakpoint on a line of the model file (pending
# until the JIT registers its object with gdb's JIT interface) stops inside
# the compiled train_step, and the backtrace and `info line` name the .grad
# file and line. Runs without a terminal and as root (CI); gdb itself is
# bounded by `timeout`. Exits 77 (skipped) only when gdb cannot debug a
# process at all here (ptrace not permitted).
# Usage: gdb_backtrace.sh GRADC MODEL LINE
set -uo pipefail
gradc=$1 model=$2 line=$3
command -v gdb >/dev/null || { echo "FAIL: gdb is not installed (scripts/setup.sh installs it)"; exit 1; }
file=$(basename "$model")
probe=$(timeout 60 gdb -batch -nx -ex 'set disable-randomization off' -ex run --args /bin/true 2>&1)
if ! grep -q 'exited normally' <<<"$probe"; then
  echo "SKIP: gdb cannot run a process here:"; echo "$probe"; exit 77
fi
out=$(GRADC_DEBUG_INFO=1 timeout 300 gdb -batch -nx \
  -ex 'set breakpoint pending on' -ex 'set disable-randomization off' -ex 'set debuginfod enabled off' \
  -ex "break $file:$line" -ex run -ex 'bt 2' -ex 'info line *$pc' -ex kill \
  --args "$gradc" bench "$model" --seconds 0.01 --no-cache --threads 1 2>&1)
echo "$out" | grep -v '^BFD: \|^warning: ' | tail -12
grep -qE "^#0 +(0x[0-9a-f]+ in )?gradc_train_step[^ ]* \(.*\) at [^ ]*$file:$line\$" <<<"$out" ||
  { echo "FAIL: the backtrace does not show gradc_train_step at $file:$line"; exit 1; }
grep -qE "^Line $line of \"[^\"]*$file\" (starts at|is at) address" <<<"$out" ||
  { echo "FAIL: info line does not name $file:$line"; exit 1; }
echo "ok: gdb stops in JIT-compiled code at $file:$line"
