# Shared by the train test scripts (sourced after setting G and case): the
# examples and their data, a scratch directory removed on exit with a code
# cache of its own, and fail.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
E=$root/examples D=$root/examples/data
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export GRADC_CACHE_DIR=$tmp/cache
fail() { echo "FAIL: $*"; exit 1; }
