#!/usr/bin/env bash
# A sum vectorizes in its order (jit.cpp, host(): LLVM's in-loop ordered
# reductions): the terms of W2's loss, bce_with_logits's softplus, come from
# libmvec's vector log1pf and expf, and the sum adds the lanes one after
# another (llvm.vector.reduce.fadd with a start value and no `reassoc`), so it
# has the bits of the scalar loop. Without the option the loop stays scalar
# and calls log1pf once a term. libmvec's variants need AVX2: skipped (77)
# on a host without it.
# Usage: ordered_sum.sh GRADC MODEL
set -euo pipefail
gradc=$1 model=$2
grep -qw avx2 /proc/cpuinfo || { echo "skip: the host has no AVX2, so no libmvec variants"; exit 77; }
ir=$("$gradc" dump "$model" --stage llvm --entry train_step)
grep -qE 'call <[0-9]+ x float> @_ZGV[de]N[0-9]+v_log1pf\(' <<<"$ir" ||
  { echo "FAIL: the loss's log1pf is not vectorized (no call of libmvec's _ZGV*v_log1pf)"; exit 1; }
grep -E 'call float @llvm\.vector\.reduce\.fadd\.v[0-9]+f32\(float %' <<<"$ir" | grep -qv reassoc ||
  { echo "FAIL: no sum vectorized in its order (llvm.vector.reduce.fadd from a start value, without reassoc)"; exit 1; }
echo "ok: the loss's terms vectorized, summed in order"
