#!/usr/bin/env bash
# The benchmark suite (bench/README.md): sets up, builds Release into
# build-release/, runs bench/run_bench (gradc against hand-written C++ baselines,
# one thread) and prints its table; then, when /usr/bin/python3 has torch,
# times eager PyTorch on the same workloads and prints gradc/pytorch ratios.
# Arguments go to run_bench (e.g. --only W3,W4 --seconds 2).
# BUILD_DIR overrides the build directory; GRADC_SKIP_SETUP=1 skips apt.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "${GRADC_SKIP_SETUP:-0}" = 1 ] || bash scripts/setup.sh
BUILD_DIR=${BUILD_DIR:-build-release}
BUILD_DIR="$BUILD_DIR" BUILD_TYPE=Release bash scripts/build.sh >/dev/null
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
# This machine's environment may set OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE,
# which pin OpenBLAS to slower kernels (Haswell's AVX2 on an AVX-512 core).
# The baselines run without them, as strong as they can be; run_bench prints
# the core OpenBLAS chose. Only here: the tests and CI never unset them.
for v in OPENBLAS_CORETYPE OPENBLAS_L2_SIZE; do
  [ -z "${!v:-}" ] || echo "bench: unsetting $v=${!v} for the baselines"
  unset "$v"
done
json="$BUILD_DIR/bench_results.json"
status=0
"$BUILD_DIR/bench/run_bench" --json "$json" "$@" || status=$?
if [ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import torch' 2>/dev/null; then
  echo
  /usr/bin/python3 bench/pytorch_eager.py --gradc-json "$json" "$@" || status=$?
else
  echo "(eager PyTorch comparison skipped: /usr/bin/python3 has no torch)"
fi
exit "$status"
