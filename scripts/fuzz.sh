#!/usr/bin/env bash
# Builds the libFuzzer targets (the front end; the safetensors, npy, IDX and CSV
# readers; command-line values and checkpoint fields) with clang-19 and ASan/UBSan, then fuzzes each for N seconds
# (default 60) from its seed corpus in tests/fuzz/. Crashing inputs land in
# build-fuzz/ and make this script fail.
# Usage: scripts/fuzz.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN=${1:-60}
# clang links libFuzzer and the sanitizers from compiler-rt's archives, which
# Debian ships apart from the compiler: link a trivial fuzz target first, and
# name the missing package rather than fail later with a linker error.
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
printf '#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }\n' > "$probe_dir/probe.c"
if ! clang-19 -fsanitize=fuzzer,address,undefined "$probe_dir/probe.c" -o "$probe_dir/probe" 2> "$probe_dir/err"; then
  echo "fuzz: clang-19 cannot link a libFuzzer target with ASan and UBSan:" >&2
  grep -m 3 -E 'cannot find|error' "$probe_dir/err" >&2 || true
  echo "fuzz: the runtimes come from Debian's libclang-rt-19-dev; install it (scripts/setup.sh does)" >&2
  exit 1
fi
cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
  -DGRADC_FUZZ=ON -DGRADC_BUILD_TESTS=OFF >/dev/null
cmake --build build-fuzz --target fuzz_frontend fuzz_tensor_files fuzz_run_values -j "$(nproc)"
mkdir -p build-fuzz/corpus build-fuzz/corpus_tensor build-fuzz/corpus_values
cd build-fuzz
set -o pipefail
./fuzz_frontend -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
  -dict=../tests/fuzz/gradc.dict -artifact_prefix=./ corpus ../tests/fuzz/corpus 2>&1 | tail -n 3
./fuzz_tensor_files -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
  -dict=../tests/fuzz/tensor.dict -artifact_prefix=./ corpus_tensor ../tests/fuzz/corpus_tensor 2>&1 | tail -n 3
./fuzz_run_values -max_total_time="$SECONDS_TO_RUN" -max_len=4096 -timeout=10 -rss_limit_mb=4096 \
  -dict=../tests/fuzz/values.dict -artifact_prefix=./ corpus_values ../tests/fuzz/corpus_values 2>&1 | tail -n 3
