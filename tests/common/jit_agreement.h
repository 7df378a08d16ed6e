// The JIT against the reference interpreter on one model: shared by the code
// generator's tests (tests/codegen) that check a plan's kernels compute what
// the graph says.
#pragma once

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

namespace gradc::test {

// Each tensor of `got` within tol (f32_tol, or 1e-12 for f64) of `want`'s,
// scaled by want's largest magnitude (at least 1).
inline void check_close(const NamedTensors& want, const NamedTensors& got, double f32_tol) {
  REQUIRE(want.size() == got.size());
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("tensor " << want[i].first);
    const Tensor &x = want[i].second, &y = got[i].second;
    REQUIRE(x.shape() == y.shape());
    double scale = 1, worst = 0;
    for (int64_t j = 0; j < x.numel(); ++j) scale = std::max(scale, std::fabs(x.get(j)));
    for (int64_t j = 0; j < x.numel(); ++j) worst = std::max(worst, std::fabs(x.get(j) - y.get(j)));
    CHECK(worst <= (x.dtype() == DType::F64 ? 1e-12 : f32_tol) * scale);
  }
}

// forward, grad and `steps` train steps of the JIT (on `threads` threads,
// 0: all) against the interpreter, to 2e-5 of each tensor's scale.
inline void jit_agrees_with_interpreter(const Model& m, int threads, int steps) {
  NamedTensors in = random_inputs(m.info(), 3);
  SessionOptions o;
  o.seed = 7;
  o.threads = threads;
  Session jit(m, o);
  Session interp(m, {Backend::Interpreter, 7});
  check_close(interp.forward(in), jit.forward(in), 2e-5);
  check_close(interp.grad(in), jit.grad(in), 2e-5);
  for (int step = 0; step < steps; ++step) {
    jit.train_step(in);
    interp.train_step(in);
  }
  check_close(interp.params(), jit.params(), 2e-5);
}

}  // namespace gradc::test
