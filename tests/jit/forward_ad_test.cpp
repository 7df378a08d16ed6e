// Gradients by vector forward accumulation (CompileOptions::ad = Forward,
// `--ad forward`) against back-propagation: the same gradient to rounding on
// every example and per-op gradcheck model (their JVP rules and the batching
// of their tangents over blocks of directions), and the same training: in
// f64 to a relative 1e-9 after several optimizer steps.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/session.h"
#include "tests/common/model_files.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

// Every tensor of `want` in `got`, to tol times the tensor's largest magnitude
// (at least 1e-3: a gradient that is 0 in exact arithmetic comes out of
// either mode as rounding noise of the loss's terms).
void check_close(const NamedTensors& want, const NamedTensors& got, double f64_tol, double f32_tol) {
  REQUIRE(want.size() == got.size());
  for (const auto& [name, x] : want) {
    INFO("tensor " << name);
    const Tensor* y = find_tensor(got, name);
    REQUIRE(y != nullptr);
    REQUIRE(x.numel() == y->numel());
    double scale = 1e-3, worst = 0;
    for (int64_t j = 0; j < x.numel(); ++j) scale = std::max(scale, std::fabs(x.get(j)));
    for (int64_t j = 0; j < x.numel(); ++j) {
      double d = std::fabs(x.get(j) - y->get(j));
      if (std::isnan(x.get(j)) != std::isnan(y->get(j))) d = INFINITY;
      if (!std::isnan(d)) worst = std::max(worst, d);
    }
    INFO("worst difference " << worst << ", scale " << scale);
    CHECK(worst <= (x.dtype() == DType::F64 ? f64_tol : f32_tol) * scale);
  }
}

Model compile(const std::string& path, bool forward) {
  CompileOptions co;
  if (forward) co.ad = CompileOptions::Autodiff::Forward;
  return Model::compile_file(path, co);
}

int64_t param_count(const ModelInfo& info) {
  int64_t n = 0;
  for (const TensorInfo& p : info.params) {
    int64_t k = 1;
    for (int64_t d : p.shape) k *= d;
    n += k;
  }
  return n;
}

}  // namespace

TEST_CASE("forward-mode gradients equal back-propagation's on every model", "[forward_ad]") {
  // The models, found once: Catch2 runs this test case again for each
  // section, and looking at every model on every run made it quadratic in
  // the models (past its 600 s under AddressSanitizer). Forward mode costs
  // one tangent per param element: the largest (the Fashion-MNIST models)
  // are left to the benchmark.
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    for (const std::string& path : test::sanitizer_share(test::model_files(), 1))
      if (Model m = compile(path, false); !m.ok() || param_count(m.info()) <= 20000) out.push_back(path);
    return out;
  }();
  CHECK(paths.size() >= (test::sanitized_build() ? 15u : 30u));
  for (const std::string& path : paths) {
    SECTION(path) {
      Model reverse = compile(path, false);
      REQUIRE(reverse.ok());
      Model forward = compile(path, true);
      INFO(render_all(forward.diagnostics()));
      REQUIRE(forward.ok());
      NamedTensors in = test::random_inputs(reverse.info(), 7);
      Session r(reverse, {Backend::Jit, 3}), f(forward, {Backend::Jit, 3});
      check_close(r.grad(in), f.grad(in), 1e-9, 1e-4);
    }
  }
}

TEST_CASE("forward-mode training equals back-propagation's to rounding in f64", "[forward_ad]") {
  const std::string src =
      "dim B = 8\n"
      "input x : f64[B, 5]\n"
      "input label : i32[B]\n"
      "param W1 : f64[5, 16] ~ xavier_uniform\n"
      "param b1 : f64[16]\n"
      "param W2 : f64[16, 3] ~ xavier_uniform\n"
      "param b2 : f64[3]\n"
      "h = tanh(x @ W1 + b1)\n"
      "loss cross_entropy(h @ W2 + b2, label) + 0.01 * sum(W1 * W1)\n"
      "optimizer adam(lr = 0.05)\n";
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    CompileOptions fwd;
    fwd.ad = CompileOptions::Autodiff::Forward;
    Model reverse = Model::compile_source(src, "m.grad"), forward = Model::compile_source(src, "m.grad", fwd);
    REQUIRE(reverse.ok());
    REQUIRE(forward.ok());
    Session r(reverse, {backend, 1}), f(forward, {backend, 1});
    for (int step = 0; step < 6; ++step) {
      NamedTensors in = test::random_inputs(reverse.info(), 100 + step);
      double a = r.train_step(in), b = f.train_step(in);
      CHECK(std::fabs(a - b) <= 1e-9 * std::fabs(a));
    }
    check_close(r.checkpoint(), f.checkpoint(), 1e-9, 0);
    // The test can fail: one more step on one side only is seen.
    f.train_step(test::random_inputs(reverse.info(), 200));
    bool differ = false;
    for (const auto& [name, t] : r.params())
      for (int64_t j = 0; j < t.numel(); ++j) differ |= t.get(j) != find_tensor(f.params(), name)->get(j);
    CHECK(differ);
  }
}
