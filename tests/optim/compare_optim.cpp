// compare_optim: checks a file written by `gradc step ... -o OUT` against a
// torch.optim reference (tests/optim/gen_optim_reference.py).
//
//   compare_optim OUT EXPECTED
//
// EXPECTED holds every param after the steps, `loss` ([STEPS], the loss
// before each step), `opt.SLOT.PARAM` for every tensor of PyTorch's
// optimizer.state, and `opt.step` (i32 scalar). Every tensor of EXPECTED must
// be in OUT with the same dtype and shape, and OUT must hold nothing else (so
// gradc's optimizer state has exactly PyTorch's slots).
//
// A tensor matches when every element satisfies |got - want| <= tol * scale,
// tol = 1e-4 (f32), 1e-9 (f64), 0 (i32), and scale = max(1, max |want|) over
// the tensor for params and loss, max |want| for optimizer state (relative to
// its own magnitude: exp_avg_sq and the like are small). Non-finite values
// never match. Exit status: 0 all match, 1 a mismatch, missing or extra
// tensor, 2 usage or an unreadable file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "gradc/tensor.h"
#include "runtime/tensor_io.h"

using namespace gradc;

namespace {

double tol_for(DType t) {
  switch (t) {
    case DType::F32: return 1e-4;
    case DType::F64: return 1e-9;
    case DType::I32: return 0.0;
  }
  return 0.0;
}

int compare(const NamedTensors& got, const NamedTensors& expected) {
  int failures = 0;
  std::set<std::string> seen;
  for (const auto& [name, want] : expected) {
    seen.insert(name);
    const Tensor* g = find_tensor(got, name);
    if (!g) {
      std::printf("FAIL %-22s missing: gradc did not write it (expected %s)\n", name.c_str(), want.type_string().c_str());
      ++failures;
      continue;
    }
    if (g->dtype() != want.dtype() || g->shape() != want.shape()) {
      std::printf("FAIL %-22s type mismatch: gradc gives %s, expected %s\n", name.c_str(), g->type_string().c_str(),
                  want.type_string().c_str());
      ++failures;
      continue;
    }
    bool state = name.rfind("opt.", 0) == 0;
    double tol = tol_for(want.dtype());
    double m = 0.0;
    for (int64_t i = 0; i < want.numel(); ++i) m = std::max(m, std::fabs(want.get(i)));
    double scale = state ? std::max(m, 1e-30) : std::max(1.0, m);
    double max_err = 0.0;
    int64_t worst = -1, bad = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      double w = want.get(i), v = g->get(i);
      double err = std::isfinite(v) && std::isfinite(w) ? std::fabs(v - w) : INFINITY;
      if (!(err <= tol * scale)) ++bad;
      if (worst < 0 || err > max_err) {
        max_err = err;
        worst = i;
      }
    }
    bool ok = bad == 0;
    std::printf("%s %-22s %-12s max abs err %.3e  (scale %.3g, tol %.1e x scale)", ok ? "ok  " : "FAIL", name.c_str(),
                want.type_string().c_str(), max_err, scale, tol);
    if (!ok && worst >= 0) {
      std::printf("\n     %lld of %lld elements differ; worst at flat index %lld: gradc %.12g, torch %.12g",
                  static_cast<long long>(bad), static_cast<long long>(want.numel()), static_cast<long long>(worst),
                  g->get(worst), want.get(worst));
    }
    std::printf("\n");
    if (!ok) ++failures;
  }
  for (const auto& [name, t] : got) {
    if (!seen.count(name)) {
      std::printf("FAIL %-22s written by gradc (%s) but PyTorch has no such tensor\n", name.c_str(),
                  t.type_string().c_str());
      ++failures;
    }
  }
  return failures;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: compare_optim OUT EXPECTED\n";
    return 2;
  }
  try {
    TensorFileMetadata meta;
    NamedTensors expected = read_safetensors(argv[2], &meta);
    NamedTensors got = read_safetensors(argv[1]);
    for (const auto& [k, v] : meta) std::printf("reference %s: %s\n", k.c_str(), v.c_str());
    int failures = compare(got, expected);
    if (failures) {
      std::printf("torch.optim MISMATCH: %d tensor(s) of %s disagree with %s\n", failures, argv[1], argv[2]);
      return 1;
    }
    std::printf("torch.optim reference matched: %s\n", argv[1]);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "compare_optim: error: " << e.what() << "\n";
    return 2;
  }
}
