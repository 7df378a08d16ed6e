# Shared by the robustness scripts (sourced after setting G and case): a
# scratch directory, its own code cache, a memory and time limit for gradc,
# and small input files. Every case ends with /dev/null still a device.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E=$root/examples D=$root/examples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GRADC_CACHE_DIR=$tmp/cache
fail() { echo "FAIL: $*"; exit 1; }
# 8 GB of address space: an unbounded read fails rather than swaps (not under
# the sanitizers, which reserve terabytes of shadow address space).
[ "${GRADC_SANITIZED:-0}" = 1 ] || ulimit -v 8000000
# gradc under a time limit: a hang is a failure, not a stuck test.
g() { timeout 60 "$G" "$@"; }
. "$root/tests/common/xor_inputs.sh"
grad() { g grad $E/xor.grad --backend interp "$@"; }
train() { g train $E/xor.grad --data x=$D/xor.csv:x0,x1 --data y=$D/xor.csv:y --epochs 2 --no-progress "$@"; }
make_xor_inputs $tmp/in.st
# Guard: every case ends with /dev/null still the machine's null device.
check_dev_null() { test -c /dev/null || { echo "FATAL: /dev/null is no longer a character device"; exit 1; }; }
trap 'check_dev_null; rm -rf "$tmp"' EXIT

