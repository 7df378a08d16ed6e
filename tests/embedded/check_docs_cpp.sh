#!/usr/bin/env bash
# Every ```cpp block of docs/embedded.md is a complete translation unit that
# must compile against the public headers (so the page cannot drift from the API).
# Usage: check_docs_cpp.sh CXX SOURCE_DIR
set -uo pipefail
cxx=$1 root=$2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
awk -v dir="$tmp" '
  /^```cpp[ \t]*$/ { inside = 1; n++; file = sprintf("%s/block_%d.cpp", dir, n); print file ":" NR; next }
  /^```/ && inside { inside = 0; close(file); next }
  inside { print > file }
' "$root/docs/embedded.md" > "$tmp/list"
fail=0 count=0
while IFS=: read -r file line; do
  count=$((count + 1))
  if ! out=$("$cxx" -std=c++20 -fsyntax-only -Wall -Wextra -I "$root/include" "$file" 2>&1) || [ -n "$out" ]; then
    echo "FAIL: the cpp block at docs/embedded.md:$line does not compile cleanly:"
    echo "$out" | head -30
    fail=1
  fi
done < "$tmp/list"
echo "checked $count cpp blocks"
[ "$count" -gt 0 ] || { echo "FAIL: no cpp blocks found"; fail=1; }
exit $fail
