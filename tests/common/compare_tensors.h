// Comparing tensors with reference values, tensor by tensor, printing one
// line per tensor: shared by the PyTorch reference tests (tests/reference)
// and the torch.optim tests (tests/optim).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "gradc/tensor.h"

namespace gradc::test {

struct CompareOptions {
  std::map<std::string, double> tolerance;  // per tensor, overriding the dtype's default
  double f32_tolerance = 1e-4, f64_tolerance = 1e-9;
  // Tensors named "opt.*" are scaled by their own largest value (state can be tiny),
  // others by max(1, largest value).
  bool relative_state = false;
  bool extra_is_failure = false;  // a tensor gradc has and the reference lacks
  const char* reference = "expected";
  int width = 16;
};

// Returns the number of tensors that differ (or are missing, or extra when that counts).
inline int compare_tensors(const NamedTensors& got, const NamedTensors& expected, const CompareOptions& o) {
  int failures = 0, w = o.width;
  std::set<std::string> seen;
  for (const auto& [name, want] : expected) {
    seen.insert(name);
    const Tensor* g = find_tensor(got, name);
    if (!g) {
      std::printf("FAIL %-*s missing: gradc did not produce it (expected %s)\n", w, name.c_str(), want.type_string().c_str());
      ++failures;
      continue;
    }
    if (g->dtype() != want.dtype() || g->shape() != want.shape()) {
      std::printf("FAIL %-*s type mismatch: gradc gives %s, expected %s\n", w, name.c_str(), g->type_string().c_str(),
                  want.type_string().c_str());
      ++failures;
      continue;
    }
    auto it = o.tolerance.find(name);
    double tol = it != o.tolerance.end()        ? it->second
                 : want.dtype() == DType::F32 ? o.f32_tolerance
                 : want.dtype() == DType::F64 ? o.f64_tolerance
                                              : 0.0;
    double largest = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) largest = std::max(largest, std::fabs(want.get(i)));
    bool state = o.relative_state && name.rfind("opt.", 0) == 0;
    double scale = state ? std::max(largest, 1e-30) : std::max(1.0, largest);
    double max_err = 0.0;
    int64_t worst = -1, bad = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      double e = want.get(i), v = g->get(i);
      double err = std::isfinite(v) && std::isfinite(e) ? std::fabs(v - e) : INFINITY;
      if (!(err <= tol * scale)) ++bad;
      if (worst < 0 || err > max_err) max_err = err, worst = i;
    }
    bool ok = bad == 0;
    std::printf("%s %-*s %-12s max abs err %.3e  (scale %.3g, tol %.1e x scale)", ok ? "ok  " : "FAIL", w, name.c_str(),
                want.type_string().c_str(), max_err, scale, tol);
    if (!ok && worst >= 0)
      std::printf("\n     %lld of %lld elements differ; worst at flat index %lld: gradc %.12g, %s %.12g",
                  static_cast<long long>(bad), static_cast<long long>(want.numel()), static_cast<long long>(worst),
                  g->get(worst), o.reference, want.get(worst));
    std::printf("\n");
    if (!ok) ++failures;
  }
  for (const auto& [name, t] : got) {
    if (seen.count(name)) continue;
    if (o.extra_is_failure) {
      std::printf("FAIL %-*s produced by gradc (%s) but the reference has no such tensor\n", w, name.c_str(),
                  t.type_string().c_str());
      ++failures;
    } else {
      std::printf("note %-*s produced by gradc, not in the reference (not compared)\n", w, name.c_str());
    }
  }
  return failures;
}

}  // namespace gradc::test
