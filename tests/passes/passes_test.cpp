// The optimization passes preserve values: every example model evaluated by
// the reference interpreter before and after the passes gives the same loss,
// gradients and outputs; and the passes do shrink what autodiff produces.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <utility>

#include "gradc/gradc.h"
#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {


double max_scaled_diff(const Tensor& a, const Tensor& b) {
  double scale = 1, worst = 0;
  for (int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, std::fabs(a.get(i)));
  for (int64_t i = 0; i < a.numel(); ++i) worst = std::max(worst, std::fabs(a.get(i) - b.get(i)) / scale);
  return worst;
}

// The model file compiled without the optimization passes, and with them.
std::pair<Model, Model> without_and_with_passes(const std::string& path) {
  CompileOptions plain;
  plain.optimize = false;
  std::pair<Model, Model> models{Model::compile_file(path, plain), Model::compile_file(path)};
  REQUIRE(models.first.ok());
  REQUIRE(models.second.ok());
  return models;
}

}  // namespace

TEST_CASE("passes preserve the values of every example model", "[passes]") {
  for (const auto& entry : std::filesystem::directory_iterator(GRADC_SOURCE_DIR "/examples")) {
    if (entry.path().extension() != ".grad") continue;
    std::string path = entry.path().string();
    CAPTURE(path);
    auto [before, after] = without_and_with_passes(path);
    NamedTensors inputs = test::random_inputs(after.info(), 7);
    NamedTensors params = after.initial_params(3);
    NamedTensors a = before.grad(inputs, params);
    NamedTensors b = after.grad(inputs, params);
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      CAPTURE(a[i].first);
      REQUIRE(a[i].first == b[i].first);
      REQUIRE(a[i].second.shape() == b[i].second.shape());
      CHECK(max_scaled_diff(a[i].second, b[i].second) <= 1e-6);
    }
  }
}

TEST_CASE("the passes shrink the graph", "[passes]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/digits_mlp.grad");
  REQUIRE(m.ok());
  std::string opt = m.dump(Stage::Opt);
  // "# N nodes before the passes" ... "# M nodes" at the end.
  long before = std::stol(opt.substr(2));
  long after = std::stol(opt.substr(opt.rfind("# ") + 2));
  CHECK(after < before);
  CHECK(opt.find("stop_gradient") == std::string::npos);
}

TEST_CASE("a stride-1 convolution's input gradient becomes a convolution of its output gradient", "[passes]") {
  // tests/gradcheck/conv_input_grad.grad: three stride-1 layers whose input
  // gradients are needed (padding per axis, none, conv1d) are rewritten,
  // each with its kernel flipped along every spatial axis (2 + 2 + 1
  // reverses); the 1x1 kernel padded past its reach and the stride-2 layer
  // keep their folds. The values are those of the graph without the passes,
  // in the interpreter and in the JIT.
  const std::string path = GRADC_SOURCE_DIR "/tests/gradcheck/conv_input_grad.grad";
  auto [before, after] = without_and_with_passes(path);
  std::string opt = after.dump(Stage::Opt);
  INFO(opt);
  CHECK(opt.find("# after conv_input_grad") != std::string::npos);
  auto count = [&](const std::string& what) {
    size_t n = 0;
    for (size_t at = opt.find(what); at != std::string::npos; at = opt.find(what, at + 1)) ++n;
    return n;
  };
  CHECK(count(" = reverse[axis=") == 5);
  CHECK(count(" = fold[kernel=[3, 3], stride=[2, 2]") == 1);
  CHECK(count(" = fold[kernel=[1, 1], stride=[1, 1]") == 1);
  CHECK(count(" = fold[") == 2);
  NamedTensors inputs = test::random_inputs(after.info(), 5);
  NamedTensors params = after.initial_params(2);
  NamedTensors want = before.grad(inputs, params);
  for (Backend backend : {Backend::Interpreter, Backend::Jit}) {
    Session s(after, {backend, 5});
    s.set_params(params);
    NamedTensors got = s.grad(inputs);
    REQUIRE(got.size() == want.size());
    for (size_t i = 0; i < want.size(); ++i) {
      CAPTURE(want[i].first);
      CHECK(max_scaled_diff(want[i].second, got[i].second) <= 2e-6);
    }
  }
  // A model without a stride-1 fold does not list the pass.
  Model mlp = Model::compile_file(GRADC_SOURCE_DIR "/examples/digits_mlp.grad");
  REQUIRE(mlp.ok());
  CHECK(mlp.dump(Stage::Opt).find("conv_input_grad") == std::string::npos);
}
