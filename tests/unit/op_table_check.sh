#!/usr/bin/env bash
# Proves "leaving out a rule is a compile error": adds a fake unary row to a
# copy of compiler/ir/ops.def and checks that every file holding a per-op
# rule table (a switch over Op with no default) stops compiling under
# -Werror=switch, naming the fake op. A control run with the real ops.def
# must compile, and ops.cpp must accept the fake row itself, so a broken
# harness cannot pass for the property.
# Usage: op_table_check.sh CXX SOURCE_DIR LLVM_INCLUDE_DIR
set -uo pipefail
cxx=$1 src=$2 llvm_include=$3
# The files with a switch over every op (ops.def's header lists them).
rule_files=(
  compiler/ir/scalar_eval.cpp
  compiler/autodiff/vjp_rules.cpp
  compiler/autodiff/jvp_rules.cpp
  compiler/autodiff/shared_rules.cpp
  compiler/passes/simplify.cpp
  compiler/frontend/sema_expr.cpp
  compiler/codegen/emit_scalar.cpp
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/compiler/ir"
# The fake row goes right after erf, among the real unary ops.
awk '{ print } /^GRADC_OP\(Erf,/ { print "GRADC_OP(FakeUnary, \"fake_unary\", 1, Unary, None, \"\", \"\")" }' \
  "$src/compiler/ir/ops.def" >"$tmp/compiler/ir/ops.def"
grep -q FakeUnary "$tmp/compiler/ir/ops.def" || { echo "FAIL: could not add the fake row (no Erf row?)"; exit 1; }

compile() {  # compile FILE [extra flags...]: syntax only, with this build's switch warning as an error
  local f=$1
  shift
  "$cxx" -std=c++20 -fsyntax-only -Wall -Werror=switch "$@" -I "$src/include" -I "$src" -isystem "$llvm_include" "$src/$f" 2>&1
}
status=0
# Quote includes look in -iquote directories before -I ones, so the copy
# shadows the real ops.def ("compiler/ir/ops.def" is not beside ops.h).
if ! out=$(compile compiler/ir/ops.cpp -iquote "$tmp"); then
  echo "FAIL: ops.cpp rejects the fake row itself:"; echo "$out" | head -20; exit 1
fi
for f in "${rule_files[@]}"; do
  if ! out=$(compile "$f"); then
    echo "FAIL: $f does not compile with the real ops.def:"; echo "$out" | head -20; status=1; continue
  fi
  if out=$(compile "$f" -iquote "$tmp"); then
    echo "FAIL: $f compiles with a unary op it has no rule for (a default: or a missing switch?)"; status=1
  elif ! grep -q "FakeUnary.*not handled in switch\|not handled in switch.*FakeUnary" <<<"$out"; then
    echo "FAIL: $f fails for another reason than the missing case:"; echo "$out" | head -20; status=1
  else
    echo "ok: $f: $(grep -m1 'FakeUnary' <<<"$out" | sed 's/^.*error: //')"
  fi
done
exit $status
