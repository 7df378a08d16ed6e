// The JIT against the reference interpreter: on every per-op model
// (tests/gradcheck) and every example model, the forward values, the loss and
// gradients, and several train steps agree to float rounding (f32: 1e-5 of
// each tensor's scale; f64: 1e-12).
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gradc/session.h"
#include "tests/common/model_files.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {


void check_close(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO("tensor " << a[i].first);
    REQUIRE(a[i].first == b[i].first);
    const Tensor &x = a[i].second, &y = b[i].second;
    REQUIRE(x.dtype() == y.dtype());
    REQUIRE(x.shape() == y.shape());
    double scale = 1, worst = 0;
    for (int64_t j = 0; j < x.numel(); ++j) scale = std::max(scale, std::fabs(x.get(j)));
    for (int64_t j = 0; j < x.numel(); ++j) {
      double d = std::fabs(x.get(j) - y.get(j));
      if (std::isnan(x.get(j)) != std::isnan(y.get(j))) d = INFINITY;
      if (!std::isnan(d)) worst = std::max(worst, d);
    }
    CHECK(worst <= (x.dtype() == DType::F64 ? 1e-12 : 1e-5) * scale);
  }
}

}  // namespace

TEST_CASE("the JIT agrees with the interpreter on every model", "[jit]") {
  static const std::vector<std::string> paths = test::sanitizer_share(test::model_files(), 0);
  CHECK(paths.size() >= (test::sanitized_build() ? 40u : 80u));
  for (const std::string& path : paths) {
    SECTION(path) {
      Model m = Model::compile_file(path);
      REQUIRE(m.ok());
      NamedTensors in = test::random_inputs(m.info(), 11);
      Session jit(m, {Backend::Jit, 5});
      Session interp(m, {Backend::Interpreter, 5});
      check_close(interp.grad(in), jit.grad(in));
      check_close(interp.forward(in), jit.forward(in));
      // Train steps, as long as the model stays well conditioned (a per-op
      // model that divides by a value near 0 diverges, and rounding then
      // decides where it lands).
      bool tame = true;
      for (int step = 0; step < 3 && tame; ++step) {
        double a = interp.train_step(in), b = jit.train_step(in);
        tame = std::fabs(a) < 1e4;
        if (tame) CHECK(std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(a)));
      }
      if (tame) check_close(interp.checkpoint(), jit.checkpoint());
    }
  }
}
