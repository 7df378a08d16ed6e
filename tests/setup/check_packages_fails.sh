#!/usr/bin/env bash
# The package check must be able to fail: with PACKAGE taken out of a copy of
# scripts/setup.sh, check_packages.sh must exit 1 and name PACKAGE as missing
# (the libclang-rt-19-dev case of issue 13, caught from the fuzz build's link plan).
# Usage: check_packages_fails.sh BUILD_DIR PACKAGE
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$1 pkg=$2
fake=$(mktemp)
trap 'rm -f "$fake"' EXIT
sed -E "s/(^|[[:space:](])$pkg([[:space:])]|$)/\1\2/" "$here/../../scripts/setup.sh" > "$fake"
if cmp -s "$fake" "$here/../../scripts/setup.sh"; then
  echo "check_packages_fails: $pkg is not in scripts/setup.sh's list"
  exit 1
fi
rc=0
out=$(bash "$here/check_packages.sh" "$build" "$fake") || rc=$?
echo "$out"
[ "$rc" -ne 77 ] || exit 77
if [ "$rc" -ne 1 ] || ! grep -q "package $pkg is used but" <<<"$out"; then
  echo "check_packages_fails: expected exit 1 naming $pkg, got exit $rc"
  exit 1
fi
echo "check_packages_fails: ok: a list without $pkg is rejected"
