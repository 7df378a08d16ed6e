#!/usr/bin/env bash
# Docs are part of the product: every ```grad block in README.md and docs/*.md
# must be a model that `gradc check` accepts, and README's sample output of
# `gradc check examples/xor.grad` must be what gradc prints.
# Usage: check_docs.sh GRADC
set -uo pipefail
gradc=$1
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0 count=0
for doc in README.md docs/*.md; do
  awk -v dir="$tmp" -v base="$(basename "$doc" .md)" '
    /^```grad[ \t]*$/ { inside = 1; n++; file = sprintf("%s/%s_%d.grad", dir, base, n); start = NR; next }
    /^```/ && inside { inside = 0; close(file); print file ":" start; next }
    inside { print > file }
  ' "$doc" > "$tmp/list"
  while IFS=: read -r file line; do
    count=$((count + 1))
    if ! out=$("$gradc" check "$file" 2>&1); then
      echo "FAIL: the grad block at $doc:$line does not check:"
      echo "$out"
      fail=1
    fi
  done < "$tmp/list"
done
# README's sample `gradc check` output.
expected=$(awk '/`gradc check examples\/xor.grad` prints:/ { want = 1; next }
                want && /^```text/ { inside = 1; next }
                inside && /^```/ { exit }
                inside { print }' README.md)
actual=$("$gradc" check examples/xor.grad)
if [ "$expected" != "$actual" ]; then
  echo "FAIL: README's sample output of 'gradc check examples/xor.grad' is out of date:"
  diff <(echo "$expected") <(echo "$actual")
  fail=1
fi
echo "checked $count grad blocks"
[ "$count" -gt 0 ] || { echo "FAIL: no grad blocks found"; fail=1; }
exit $fail
