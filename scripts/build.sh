#!/usr/bin/env bash
# Configures and builds gradc into build/ (Release with debug info).
# BUILD_DIR, BUILD_TYPE and GRADC_CMAKE_ARGS (extra -D options) override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR=${BUILD_DIR:-build}
# shellcheck disable=SC2086
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=${BUILD_TYPE:-RelWithDebInfo} ${GRADC_CMAKE_ARGS:-} >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
