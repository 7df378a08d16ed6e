#!/usr/bin/env bash
# The command lines in the ```sh blocks of docs/cli.md and docs/alternatives.md
# run as written (from a scratch directory that sees the repository's
# examples/), with exit status 0.
# Usage: check_cli_examples.sh GRADC
set -uo pipefail
gradc=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$root/examples" "$tmp/examples"
# Join continued lines, keep the lines of ```sh blocks that start with "gradc ".
awk '/^```sh/ { inside = 1; next } /^```/ { inside = 0 } inside { print }' "$root/docs/cli.md" "$root/docs/alternatives.md" |
  sed -e ':a' -e '/\\$/N; s/\\\n//; ta' | grep -E '^gradc ' > "$tmp/commands"
count=0 fail=0
while IFS= read -r cmd; do
  count=$((count + 1))
  if ! (cd "$tmp" && eval "\"$gradc\" ${cmd#gradc }" > "$tmp/out" 2>&1); then
    echo "FAIL: $cmd"
    cat "$tmp/out"
    fail=1
  fi
done < "$tmp/commands"
echo "ran $count command lines from docs/cli.md and docs/alternatives.md"
[ "$count" -gt 0 ] || { echo "FAIL: no command lines found"; exit 1; }
exit $fail
