#!/usr/bin/env bash
# ThreadSanitizer run of the tests that use threads: the thread pool, models
# compiled and trained on several threads at once, two sessions of one model
# in parallel, products split over the pool. By hand, not in .ci/run: building
# the three test programs with -fsanitize=thread took about 30 minutes on the
# 2-core CI machine, which next to the plain and ASan suites (about 30 minutes
# together) would pass the 45-minute budget.
# Usage: scripts/tsan.sh   (BUILD_DIR overrides build-tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build-tsan}
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DGRADC_TSAN=ON ${GRADC_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target runtime_tests jit_tests codegen_tests
export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
"$BUILD_DIR"/tests/runtime/runtime_tests "[threads]"
"$BUILD_DIR"/tests/jit/jit_tests "[threads]"
"$BUILD_DIR"/tests/codegen/codegen_tests "[threads]"
echo "tsan: no data race reported"
