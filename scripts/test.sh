#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (unit, golden, diagnostics,
# CLI, docs, fuzz corpus), then a short libFuzzer run when clang-19 is present.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/build.sh
ctest --test-dir build --output-on-failure -j "$(nproc)"
if command -v clang++-19 >/dev/null; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
fi
