#!/usr/bin/env bash
# Structural checks on the generated code of a model's train_step (issue:
# the LLVM back end): exactly one function, gradc_train_step; no calls but
# LLVM intrinsics and libm's math functions; with --vector, the optimized IR
# has vector types (loops were vectorized for the host CPU) and the assembly
# prints.
# Usage: ir_structure.sh GRADC MODEL [--vector]
set -euo pipefail
gradc=$1 model=$2 want_vector=${3:-}
ir=$("$gradc" dump "$model" --stage llvm --entry train_step)
defines=$(grep -c '^define ' <<<"$ir" || true)
if [ "$defines" != 1 ] || ! grep -q '^define .*@gradc_train_step(' <<<"$ir"; then
  echo "FAIL: expected exactly one function, gradc_train_step; found $defines:"
  grep '^define ' <<<"$ir" || true
  exit 1
fi
allowed='^@(llvm\.[a-z0-9_.]+|(exp|log|expm1|log1p|tanh|erf|pow|sin|cos|sqrt)f?)$'
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
echo "ok: one function, intrinsics and libm only${want_vector:+, vectorized}"
