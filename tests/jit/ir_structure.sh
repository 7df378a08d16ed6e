#!/usr/bin/env bash
# Structural checks on the generated code of a model's train_step (issue:
# the LLVM back end): one exported function, gradc_train_step, plus internal
# gradc_train_step.parN bodies that large kernels hand to the runtime's thread
# pool and the register tile shared by packed matrix products (gradc.tile.*);
# no calls but LLVM intrinsics, libm's math functions (and their vector
# versions in glibc's libmvec) and the pool's parallel_for (an indirect call
# through the runtime argument); with --vector, the optimized IR has vector
# types (loops were vectorized for the host CPU) and the assembly prints.
# Usage: ir_structure.sh GRADC MODEL [--vector]
set -euo pipefail
gradc=$1 model=$2 want_vector=${3:-}
ir=$("$gradc" dump "$model" --stage llvm --entry train_step)
exported=$(grep '^define ' <<<"$ir" | grep -vc '^define internal ' || true)
others=$(grep '^define internal ' <<<"$ir" | grep -vcE '@(gradc_train_step\.par[0-9]+|gradc\.tile\.[0-9]+x[0-9]+\.f(32|64))\(' || true)
if [ "$exported" != 1 ] || [ "$others" != 0 ] || ! grep -q '^define .*@gradc_train_step(' <<<"$ir"; then
  echo "FAIL: expected one exported function, gradc_train_step, and its .parN bodies; found:"
  grep '^define ' <<<"$ir" || true
  exit 1
fi
allowed='^@(llvm\.[a-z0-9_.]+|(_ZGV[de]N[0-9]+v_)?(exp|log|expm1|log1p|tanh|erf|pow|sin|cos|sqrt)f?|gradc_train_step\.par[0-9]+|gradc\.tile\.[0-9]+x[0-9]+\.f(32|64))$'
bad=$(grep -oE 'call [^@]*@[A-Za-z0-9_.]+' <<<"$ir" | grep -oE '@[A-Za-z0-9_.]+' | sort -u | grep -vE "$allowed" || true)
if [ -n "$bad" ]; then
  echo "FAIL: calls to functions other than intrinsics and libm: $bad"
  exit 1
fi
if [ "$want_vector" = --vector ]; then
  if ! grep -qE '<[0-9]+ x (float|double)>' <<<"$ir"; then
    echo "FAIL: no vector types in the optimized IR (nothing was vectorized)"
    exit 1
  fi
  asm=$("$gradc" dump "$model" --stage asm --entry train_step)
  grep -q 'gradc_train_step:' <<<"$asm" || { echo "FAIL: the assembly has no gradc_train_step label"; exit 1; }
fi
echo "ok: one entry function (and its parallel bodies), intrinsics and libm only${want_vector:+, vectorized}"
