// The core's peak: single-precision FMAs on registers only, no memory traffic,
// so every GFLOP/s figure of the suite can also be read as a fraction of what
// this core can do at all. Independent accumulators (more than the FMA
// latency times the issue width) keep both FMA pipes busy.
#include <immintrin.h>

#include <algorithm>
#include <chrono>

#include "baseline.h"

namespace bench {
namespace {

#if defined(__AVX512F__)
using Vec = __m512;
constexpr int kLanes = 16;
inline Vec splat(float v) { return _mm512_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
inline void store(float* f, Vec v) { _mm512_storeu_ps(f, v); }
const char* kIsa = "AVX-512 FMA";
#elif defined(__FMA__)
using Vec = __m256;
constexpr int kLanes = 8;
inline Vec splat(float v) { return _mm256_set1_ps(v); }
inline Vec fma(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
inline Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
inline void store(float* f, Vec v) { _mm256_storeu_ps(f, v); }
const char* kIsa = "AVX2 FMA";
#else
#error "the FMA peak needs a CPU with FMA (the baselines are built with -march=native)"
#endif

constexpr int kAccumulators = 12;

// `rounds` rounds of kAccumulators dependent-chain FMAs; returns a value that
// depends on all of them so the compiler cannot drop the loop.
__attribute__((noinline)) float fma_rounds(int64_t rounds, float a, float b) {
  Vec acc[kAccumulators];
  for (int i = 0; i < kAccumulators; ++i) acc[i] = splat(float(i) * 1e-3f);
  const Vec va = splat(a), vb = splat(b);
  for (int64_t r = 0; r < rounds; ++r)
    for (int i = 0; i < kAccumulators; ++i) acc[i] = fma(acc[i], va, vb);
  Vec s = acc[0];
  for (int i = 1; i < kAccumulators; ++i) s = add(s, acc[i]);
  float lanes[kLanes], sum = 0;
  store(lanes, s);
  for (float x : lanes) sum += x;
  return sum;
}

// The floating-point operations of fma_rounds(rounds, ...): two per lane per FMA.
double flops_of(int64_t rounds) { return 2.0 * kLanes * kAccumulators * double(rounds); }

}  // namespace

FmaPeak measure_fma_peak(double seconds) {
  using Clock = std::chrono::steady_clock;
  // a = 0.999999 and b = 1e-6 keep the accumulators finite and away from denormals.
  float sink = 0;
  int64_t rounds = 1 << 16;
  double best = 0;
  auto start = Clock::now();
  while (std::chrono::duration<double>(Clock::now() - start).count() < seconds) {
    auto a = Clock::now();
    sink += fma_rounds(rounds, 0.999999f, 1e-6f);
    double dt = std::chrono::duration<double>(Clock::now() - a).count();
    if (dt < 1e-3) {
      rounds *= 2;
      continue;
    }
    best = std::max(best, flops_of(rounds) / dt * 1e-9);
  }
  return {best, kIsa, sink};
}

constexpr int64_t kBlockRounds = int64_t{1} << 14;

float fma_peak_block() { return fma_rounds(kBlockRounds, 0.999999f, 1e-6f); }

double fma_peak_block_flops() { return flops_of(kBlockRounds); }

}  // namespace bench
