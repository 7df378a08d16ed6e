// Interleaved steady-state timing for the benchmark suite.
//
// Machines are noisy, so the implementations of one workload are timed in the
// same run, round-robin: each round restores every implementation to the
// same state (untimed), then times one sample of `per` steps of each. A
// sample lasts at least `sample_ms`; rounds go on until every implementation
// has run for `seconds` and has `min_samples` samples. Reported: the median
// time per step and the 10th / 90th percentiles over the samples.
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace bench {

struct Runner {
  std::string name;
  std::function<void()> step;   // one step (train_step, or a forward for the GEMM line)
  std::function<void()> reset;  // back to the state every sample starts from (untimed)
};

struct Timing {
  double median_ms = 0, p10_ms = 0, p90_ms = 0;
  int samples = 0;
  int per = 1;  // steps per sample
};

struct TimingOptions {
  double seconds = 1.0;    // per implementation
  double sample_ms = 2.0;  // least length of one sample
  int warmup = 3;          // steps before calibrating
  int min_samples = 5;
};

inline std::vector<Timing> time_interleaved(const std::vector<Runner>& runners, const TimingOptions& o) {
  using Clock = std::chrono::steady_clock;
  auto ms_since = [](Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); };
  const size_t n = runners.size();
  std::vector<int> per(n, 1);
  // Warm-up, then calibrate the steps per sample: double until a sample lasts sample_ms.
  for (size_t i = 0; i < n; ++i) {
    runners[i].reset();
    for (int w = 0; w < o.warmup; ++w) runners[i].step();
    while (per[i] < (1 << 22)) {
      runners[i].reset();
      auto a = Clock::now();
      for (int k = 0; k < per[i]; ++k) runners[i].step();
      if (ms_since(a) >= o.sample_ms) break;
      per[i] *= 2;
    }
  }
  std::vector<std::vector<double>> samples(n);
  std::vector<double> total(n, 0.0);
  auto done = [&] {
    for (size_t i = 0; i < n; ++i)
      if (total[i] < o.seconds * 1000.0 || static_cast<int>(samples[i].size()) < o.min_samples) return false;
    return true;
  };
  while (!done()) {
    for (size_t i = 0; i < n; ++i) {
      runners[i].reset();
      auto a = Clock::now();
      for (int k = 0; k < per[i]; ++k) runners[i].step();
      double ms = ms_since(a);
      total[i] += ms;
      samples[i].push_back(ms / per[i]);
    }
  }
  std::vector<Timing> out(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<double>& s = samples[i];
    std::sort(s.begin(), s.end());
    auto pct = [&](double q) { return s[static_cast<size_t>(q * static_cast<double>(s.size() - 1) + 0.5)]; };
    out[i] = {pct(0.5), pct(0.1), pct(0.9), static_cast<int>(s.size()), per[i]};
  }
  return out;
}

}  // namespace bench
