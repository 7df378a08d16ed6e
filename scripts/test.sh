#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (unit, golden, diagnostics,
# gradients, JIT, optimizers, training, docs, fuzz corpora); then the same
# suite again in an AddressSanitizer + UndefinedBehaviorSanitizer +
# LeakSanitizer build (GRADC_SKIP_SANITIZERS=1 skips it); then a short
# libFuzzer run of each fuzz target when clang-19 is present.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each phase says when it ends, in seconds since the start: CI runs this
# under a time budget, and this is where the time goes.
start=$SECONDS
phase() { echo "== test.sh: $1 done at $((SECONDS - start)) s"; }
bash scripts/setup.sh
phase setup
bash scripts/build.sh
phase build
ctest --test-dir build --output-on-failure -j "$(nproc)"
phase tests
if [ "${GRADC_SKIP_SANITIZERS:-0}" != 1 ]; then
  echo "== the test suite under ASan, UBSan and LSan"
  BUILD_DIR=build-asan GRADC_CMAKE_ARGS="-DGRADC_SANITIZE=ON -DGRADC_BENCH=OFF" bash scripts/build.sh
  phase "sanitizer build"
  # The install test builds a separate project against the library, which
  # would need the sanitizer runtime too; the resident-memory test measures
  # the plain allocator (ASan keeps freed memory in quarantine; LSan checks
  # for leaks here instead). The benchmark suite times code, too slow under
  # the sanitizers: this build leaves it out. The gdb test runs gradc under a
  # debugger, where LeakSanitizer's exit-time check cannot ptrace the process. The
  # page pool's fork test forks while another thread allocates. Under ASan the
  # pool is compiled out (runtime/page_pool.cpp: every size from operator new),
  # so there it tests only GCC 12's libasan, which does not intercept fork() and
  # so does not hold its allocator's locks across it (libasan.so.8 has a vfork
  # interceptor only): a child that forks while the other thread is inside
  # malloc inherits a taken lock and hangs (once, 60 s, a clean-clone run of
  # 2026-12-04). The plain build runs it against the pool. Tests labelled
  # build_check compile files or read package lists and run no gradc code;
  # plain_only ones repeat what sanitized tests run. All ran in the plain build
  # above. (A quarantine of 64 MB instead of the default 256 made single tests
  # run alone 15-20 % faster, but not the whole run; the default catches a use
  # after free for longer.)
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir build-asan --output-on-failure -j "$(nproc)" -LE '^(build_check|plain_only)$' \
      -E '^install\.|resident memory flat|^bench\.|^debug\.gdb_backtrace$|a child of fork\(\) allocates'
  phase "sanitizer tests"
fi
if command -v clang++-19 >/dev/null; then
  bash scripts/fuzz.sh "${FUZZ_SECONDS:-20}"
  phase fuzz
fi
