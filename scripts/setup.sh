#!/usr/bin/env bash
# Installs what gradc needs to build and test, from Debian 12 packages only.
# Safe to run again: it installs only what is missing.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ git            # build tools
  lld-19                               # links the test programs 5x faster than GNU ld (CMakeLists.txt)
  llvm-19-dev libzstd-dev libedit-dev zlib1g-dev  # LLVM 19 (code generator) and what its CMake config needs
  clang-19 libclang-rt-19-dev          # the fuzz targets: clang 19 and its libFuzzer and sanitizer runtimes
  libfmt-dev                           # formatting
  nlohmann-json3-dev                   # JSON: the safetensors header (header-only, build time only)
  catch2                               # unit tests (Catch2 v2)
  gdb                                  # tests/debug: gdb sees JIT-compiled code by its model lines
  libopenblas-dev                      # the benchmark suite's BLAS baseline (bench/)
  pybind11-dev python3-dev python3-numpy  # the Python module (python/) for Debian's /usr/bin/python3, and its tests
  dataset-fashion-mnist                # Fashion-MNIST as IDX files (examples/fashion_*.grad, their test)
  openmpi-bin libopenmpi-dev           # data-parallel training: mpirun -np K gradc train (docs/distributed.md) and its tests
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
