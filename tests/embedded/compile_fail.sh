#!/usr/bin/env bash
# Misuse of the embedded front end that is known statically must not
# compile, with gradc's static_assert message. Each snippet's first line says
# `// expect: MESSAGE` (it must fail with MESSAGE in the compiler's output) or
# `// expect-ok:` (a control that must compile, so a broken harness or header
# cannot pass for a failing snippet).
# Usage: compile_fail.sh CXX INCLUDE_DIR SNIPPET.cpp
set -uo pipefail
cxx=$1 include=$2 snippet=$3
first=$(head -n 1 "$snippet")
out=$("$cxx" -std=c++20 -fsyntax-only -I "$include" "$snippet" 2>&1)
status=$?
case "$first" in
  "// expect-ok:"*)
    if [ $status -ne 0 ]; then echo "FAIL: $snippet should compile:"; echo "$out"; exit 1; fi
    echo "ok: $snippet compiles" ;;
  "// expect: "*)
    want=${first#// expect: }
    if [ $status -eq 0 ]; then echo "FAIL: $snippet compiled, but should fail with: $want"; exit 1; fi
    if ! grep -qF -- "$want" <<<"$out"; then
      echo "FAIL: $snippet failed without the message: $want"; echo "$out" | head -40; exit 1
    fi
    echo "ok: $snippet fails with: $want" ;;
  *) echo "FAIL: $snippet has no '// expect' first line"; exit 1 ;;
esac
