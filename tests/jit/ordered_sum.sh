#!/usr/bin/env bash
# How sums vectorize (jit.cpp host(): LLVM's in-loop ordered reductions;
# emit_reduce.cpp short_total).
#
# TOTAL_MODEL (W2): its loss, a short sum into one element, adds its terms in
# 16 lanes (term i in lane i mod 16, the lanes added pairwise at the end):
# the terms, bce_with_logits's softplus, come from libmvec's vector log1pf
# and expf, 16 at a time, and no sum adds lanes one after another.
#
# ROWS_MODEL (W6): a sum along rows (its cross_entropy's exp over 100
# classes per position) vectorizes in its order (llvm.vector.reduce.fadd
# with a start value and no `reassoc`), so it has the bits of the scalar
# loop. Without the option the loop stays scalar and calls expf once a term.
#
# libmvec's variants need AVX2: skipped (77) on a host without it.
# Usage: ordered_sum.sh GRADC TOTAL_MODEL ROWS_MODEL
set -euo pipefail
gradc=$1 total=$2 rows=$3
grep -qw avx2 /proc/cpuinfo || { echo "skip: the host has no AVX2, so no libmvec variants"; exit 77; }
ordered='call float @llvm\.vector\.reduce\.fadd\.v[0-9]+f32\(float %'
ir=$("$gradc" dump "$total" --stage llvm --entry train_step)
grep -qE 'call <[0-9]+ x float> @_ZGV[de]N[0-9]+v_log1pf\(' <<<"$ir" ||
  { echo "FAIL: the loss's log1pf is not vectorized (no call of libmvec's _ZGV*v_log1pf)"; exit 1; }
if grep -E "$ordered" <<<"$ir" | grep -qv reassoc; then
  echo "FAIL: $total's loss adds its vector's lanes one after another instead of in lanes"; exit 1
fi
ir=$("$gradc" dump "$rows" --stage llvm --entry train_step)
grep -qE 'call <[0-9]+ x float> @_ZGV[de]N[0-9]+v_expf\(' <<<"$ir" ||
  { echo "FAIL: the row sums' expf is not vectorized (no call of libmvec's _ZGV*v_expf)"; exit 1; }
grep -E "$ordered" <<<"$ir" | grep -qv reassoc ||
  { echo "FAIL: no row sum vectorized in its order (llvm.vector.reduce.fadd from a start value, without reassoc)"; exit 1; }
echo "ok: the loss's terms vectorized and summed in lanes, the row sums in order"
