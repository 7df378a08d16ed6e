// Buffers and the two modes (SPEC 2.2, 2.7): batch_norm's running statistics
// are buffers; forward normalizes with them, grad and train_step with the
// batch's statistics; train_step updates them, grad does not; the optimizer
// never sees them; checkpoints save and restore them by name. On the JIT and
// the interpreter, and through the stateless Model API.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdio>
#include <string>

#include "gradc/session.h"
#include "runtime/tensor_io.h"

using namespace gradc;

namespace {

const char* kModel =
    "dim B = 4\n"
    "input x : f64[B, 2]\n"
    "input t : f64[B, 2]\n"
    "param g : f64[2] ~ ones\n"
    "param b : f64[2]\n"
    "buffer rm : f64[2]\n"
    "buffer rv : f64[2] ~ ones\n"
    "y = batch_norm(x, rm, rv, g, b, momentum=0.25, eps=0)\n"
    "output y\n"
    "loss mse(y, t)\n"
    "optimizer adam(lr = 0.1)\n";

Tensor f64(std::vector<int64_t> shape, std::vector<double> v) {
  Tensor t(DType::F64, std::move(shape));
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

// Column 0: 1, 2, 3, 6 (mean 3, biased var 3.5, unbiased 14/3);
// column 1: 0, 0, 4, 4 (mean 2, biased var 4, unbiased 16/3).
NamedTensors batch() {
  return {{"x", f64({4, 2}, {1, 0, 2, 0, 3, 4, 6, 4})}, {"t", f64({4, 2}, {0, 0, 0, 0, 0, 0, 0, 0})}};
}

const Tensor& named(const NamedTensors& ts, const std::string& name) {
  const Tensor* t = find_tensor(ts, name);
  REQUIRE(t != nullptr);
  return *t;
}

}  // namespace

TEST_CASE("buffers: forward uses the running statistics, grad the batch's") {
  Model m = Model::compile_source(kModel, "bn.grad");
  REQUIRE(m.ok());
  REQUIRE(m.info().buffers.size() == 2);
  CHECK(m.info().buffers[0].name == "rm");
  CHECK(m.info().params.size() == 2);  // buffers are not params
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s(m, {backend});
    CHECK(named(s.buffers(), "rv").get(1) == 1.0);  // ~ ones
    s.buffer("rm") = f64({2}, {1, 2});
    s.buffer("rv") = f64({2}, {4, 16});
    // Evaluation mode: (x - rm) / sqrt(rv).
    NamedTensors f = s.forward(batch());
    const Tensor& y = named(f, "out.y");
    CHECK(y.get(0) == Approx((1 - 1) / 2.0));
    CHECK(y.get(6) == Approx((6 - 1) / 2.0));
    CHECK(y.get(7) == Approx((4 - 2) / 4.0));
    // Training mode: (x - mean) / sqrt(biased var), whatever the buffers hold.
    NamedTensors g = s.grad(batch());
    const Tensor& yt = named(g, "out.y");
    CHECK(yt.get(0) == Approx((1 - 3) / std::sqrt(3.5)));
    CHECK(yt.get(7) == Approx((4 - 2) / 2.0));
    // grad does not update the buffers.
    CHECK(named(s.buffers(), "rm").get(0) == 1.0);
    CHECK(named(s.buffers(), "rv").get(1) == 16.0);
  }
  // The stateless API reads buffers from the params, by name.
  NamedTensors params = m.initial_params();
  REQUIRE(find_tensor(params, "rm") != nullptr);
  for (auto& [name, t] : params)
    if (name == "rm") t = f64({2}, {1, 2});
  NamedTensors f = m.forward(batch(), params), g = m.grad(batch(), params);
  CHECK(named(f, "out.y").get(7) == Approx((4 - 2) / 1.0));
  CHECK(named(g, "out.y").get(7) == Approx((4 - 2) / 2.0));
}

TEST_CASE("buffers: train_step updates them as PyTorch does, the optimizer never sees them") {
  Model m = Model::compile_source(kModel, "bn.grad");
  REQUIRE(m.ok());
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s(m, {backend});
    s.buffer("rm") = f64({2}, {1, 2});
    s.buffer("rv") = f64({2}, {4, 16});
    s.train_step(batch());
    // r = (1 - m) r + m stat, with the unbiased variance, momentum 0.25.
    CHECK(named(s.buffers(), "rm").get(0) == Approx(0.75 * 1 + 0.25 * 3));
    CHECK(named(s.buffers(), "rm").get(1) == Approx(0.75 * 2 + 0.25 * 2));
    CHECK(named(s.buffers(), "rv").get(0) == Approx(0.75 * 4 + 0.25 * 14.0 / 3));
    CHECK(named(s.buffers(), "rv").get(1) == Approx(0.75 * 16 + 0.25 * 16.0 / 3));
    for (const auto& [name, t] : s.optimizer_state()) {
      INFO(name);
      CHECK(name.find("rm") == std::string::npos);
      CHECK(name.find("rv") == std::string::npos);
    }
    CHECK_THROWS_WITH(s.buffer("nope"), Catch::Contains("no buffer 'nope' (its buffers: rm, rv)"));
  }
  // check_numerics names a non-finite buffer as a buffer.
  Session s(m, {Backend::Jit, 0, /*check_numerics=*/true});
  s.buffer("rm").set(1, NAN);
  CHECK_THROWS_WITH(s.forward(batch()), Catch::Contains("buffer 'rm' holds nan at element 1"));
}

TEST_CASE("buffers: checkpoints save and restore them by name") {
  Model m = Model::compile_source(kModel, "bn.grad");
  REQUIRE(m.ok());
  Session a(m);
  a.train_step(batch());
  a.train_step(batch());
  std::string path = std::string(GRADC_BINARY_DIR) + "/buffers_test.ckpt.safetensors";
  a.save(path);
  NamedTensors file = read_safetensors(path);
  REQUIRE(find_tensor(file, "rm") != nullptr);
  REQUIRE(find_tensor(file, "rv") != nullptr);
  Session b(m);
  b.load(path);
  CHECK(named(b.buffers(), "rv").get(0) == named(a.buffers(), "rv").get(0));
  // Resuming continues exactly where the first session is.
  a.train_step(batch());
  b.train_step(batch());
  for (const char* name : {"rm", "rv"})
    for (int64_t i = 0; i < 2; ++i) CHECK(named(b.buffers(), name).get(i) == named(a.buffers(), name).get(i));
  CHECK(named(b.params(), "g").get(1) == named(a.params(), "g").get(1));
  // A checkpoint without the buffers does not fit.
  NamedTensors no_buffers;
  for (auto& [name, t] : file)
    if (name != "rv") no_buffers.emplace_back(name, t);
  CHECK_THROWS_WITH(b.restore(no_buffers), Catch::Contains("missing tensor 'rv'"));
  std::remove(path.c_str());
}

TEST_CASE("buffers: a model without a mode-dependent builtin has one set of roots") {
  Model m = Model::compile_source(
      "input x : [3]\nparam w : [3]\nbuffer s : [3] ~ constant(2)\nloss sum(x * w * s)\noutput w\n", "plain.grad");
  REQUIRE(m.ok());
  Session s(m);
  NamedTensors in = {{"x", Tensor(DType::F32, {3})}};
  s.train_step(in);
  // Nothing updates the buffer: train_step writes it back unchanged.
  CHECK(named(s.buffers(), "s").get(2) == 2.0);
  CHECK(m.dump(Stage::Graph).find("training loss") == std::string::npos);
}
