#!/usr/bin/env bash
# Usage: check_layers.sh CXX LAYERS_TXT SOURCE_DIR
# LAYERS_TXT: one line per layer, "name|dir:dir:..." (its include path).
# For every pair of layers (A, B): one header of B, included from a file
# compiled with A's include path, must be found exactly when the diagram
# allows A to use B (the expected table below). A header that runs backwards
# failing to be found is what keeps the layering true.
set -euo pipefail
cxx=$1 table=$2 src=$3

# Which layers each layer may include (itself included). Keep in step with
# the top-level CMakeLists.txt and docs/internals.md.
declare -A allowed=(
  [support]="support"
  [runtime]="runtime"
  [ir]="ir support"
  [autodiff]="autodiff ir support"
  [frontend]="frontend autodiff ir support"
  [passes]="passes autodiff ir support"
  [exec]="exec ir support runtime"
  [codegen]="codegen exec ir support runtime"
  [api]="api codegen exec passes frontend autodiff ir support runtime"
)
# A header of each layer that includes nothing the layer may not see.
declare -A header=(
  [support]=compiler/support/source.h
  [runtime]=runtime/thread_pool.h
  [ir]=compiler/ir/graph.h
  [autodiff]=compiler/autodiff/reverse.h
  [frontend]=compiler/frontend/ast.h
  [passes]=compiler/passes/pipeline.h
  [exec]=compiler/exec/entry.h
  [codegen]=compiler/codegen/jit.h
  [api]=compiler/api/model_impl.h
)

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0 checks=0
while IFS='|' read -r layer dirs; do
  [ -n "$layer" ] || continue
  [ -n "${allowed[$layer]+x}" ] || { echo "FAIL: layer '$layer' is missing from this script's table"; failures=$((failures + 1)); continue; }
  flags=()
  IFS=: read -ra ds <<< "$dirs"
  for d in "${ds[@]}"; do flags+=("-I$d"); done
  for other in "${!header[@]}"; do
    h=${header[$other]}
    [ -f "$src/$h" ] || { echo "FAIL: $h does not exist"; failures=$((failures + 1)); continue; }
    # Compiled from an empty folder, so only the include path can find it.
    echo "#include \"$h\"" > "$work/probe.cpp"
    if (cd "$work" && "$cxx" -std=c++20 -fsyntax-only "${flags[@]}" probe.cpp 2> "$work/err"); then found=1; else found=0; fi
    case " ${allowed[$layer]} " in *" $other "*) want=1 ;; *) want=0 ;; esac
    checks=$((checks + 1))
    if [ "$found" != "$want" ]; then
      failures=$((failures + 1))
      if [ "$want" = 1 ]; then
        echo "FAIL: layer $layer should see $h ($other), but:"; head -n 5 "$work/err"
      else
        echo "FAIL: layer $layer can include $h, but $other is not below $layer in the diagram"
      fi
    elif [ "$want" = 0 ] && ! grep -q "No such file" "$work/err"; then
      failures=$((failures + 1))
      echo "FAIL: layer $layer: $h failed for another reason than not being found:"; head -n 5 "$work/err"
    fi
  done
done < "$table"
echo "$((checks - failures)) passed, $failures failed"
[ "$failures" = 0 ]
