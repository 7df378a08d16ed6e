// Dynamic dims (SPEC 2.2): `dim B` without a size is bound at each call from
// the inputs' shapes. A session of such a model must give, call after call and
// size after size, exactly what a model compiled with B fixed to each size
// gives, its optimizer state carried across sizes; means and losses divide by
// the call's size; inputs that disagree on B are an error naming both.
#include <catch2/catch.hpp>
#include <gradc/embed.h>

#include <cmath>
#include <string>
#include <vector>

#include "gradc/session.h"

using namespace gradc;

namespace {

const char* kModel =
    "dim B\n"
    "input x : [B, 3]\n"
    "input label : i32[B]\n"
    "param W : [3, 4] ~ normal(0, 1)\n"
    "param b : [4]\n"
    "logits = tanh(x @ W + b)\n"
    "output logits\n"
    "loss cross_entropy(logits, label) + mean(x)\n"
    "metric accuracy = mean(argmax(logits, axis=1) == label)\n"
    "optimizer adam(lr = 0.05)\n";

NamedTensors batch(int64_t n, uint64_t seed) {
  Tensor x(DType::F32, {n, 3}), label(DType::I32, {n});
  uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
  for (int64_t i = 0; i < x.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    x.set(i, static_cast<double>(s >> 40) / static_cast<double>(1 << 24) * 4 - 2);
  }
  for (int64_t i = 0; i < n; ++i) label.set(i, static_cast<double>((i * 7 + seed) % 4));
  return {{"x", std::move(x)}, {"label", std::move(label)}};
}

Model fixed(int64_t n) {
  CompileOptions o;
  o.dims = {{"B", n}};
  Model m = Model::compile_source(kModel, "dyn.grad", o);
  REQUIRE(m.ok());
  return m;
}

void same_tensors(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    CHECK(a[i].first == b[i].first);
    REQUIRE(a[i].second.shape() == b[i].second.shape());
    for (int64_t k = 0; k < a[i].second.numel(); ++k) CHECK(a[i].second.get(k) == b[i].second.get(k));
  }
}

}  // namespace

TEST_CASE("dynamic dims: the interface reports the dim as dynamic") {
  Model m = Model::compile_source(kModel, "dyn.grad");
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  ModelInfo info = m.info();
  CHECK(info.dims.empty());
  REQUIRE(info.dynamic_dims == std::vector<std::string>{"B"});
  CHECK(info.inputs[0].shape == std::vector<int64_t>{-1, 3});
  CHECK(info.inputs[0].dim_names[0] == "B");
  CHECK(info.outputs[0].shape == std::vector<int64_t>{-1, 4});
  CHECK(info.params[0].shape == std::vector<int64_t>{3, 4});
  CHECK(m.dump(Stage::Graph).find("dims B=dynamic") != std::string::npos);
  CHECK(m.dump(Stage::Graph).find("f32[B, 3] = input x") != std::string::npos);
  // --set fixes it.
  Model f = fixed(6);
  CHECK(f.info().dynamic_dims.empty());
  CHECK(f.info().dims == std::vector<std::pair<std::string, int64_t>>{{"B", 6}});
}

TEST_CASE("dynamic dims: a session's calls at several sizes equal fixed-size models, state carried across sizes") {
  Model dyn = Model::compile_source(kModel, "dyn.grad");
  REQUIRE(dyn.ok());
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s(dyn, {backend, 3});
    // The reference: a fixed-size session per call, handed the checkpoint
    // (params, Adam's moments, the step) of the call before.
    NamedTensors ckpt = Session(fixed(1), {backend, 3}).checkpoint();
    const std::vector<int64_t> sizes{5, 16, 5, 1, 16, 7};
    for (size_t k = 0; k < sizes.size(); ++k) {
      int64_t n = sizes[k];
      INFO("call " << k << ", B = " << n);
      NamedTensors in = batch(n, k);
      Session ref(fixed(n), {backend, 3});
      ref.restore(ckpt);
      same_tensors(s.forward(in), ref.forward(in));
      same_tensors(s.grad(in), ref.grad(in));
      double want = ref.train_step(in);
      CHECK(s.train_step(in) == want);
      ckpt = ref.checkpoint();
      same_tensors(s.checkpoint(), ckpt);
      CHECK(s.step() == static_cast<int64_t>(k + 1));
    }
    CHECK(s.forward(batch(9, 1)).front().second.shape() == std::vector<int64_t>{9, 4});
  }
}

TEST_CASE("dynamic dims: means divide by the call's size") {
  Model m = Model::compile_source(
      "dim N\n"
      "input x : [N, 2]\n"
      "param w : [2] ~ ones\n"
      "s = x @ w\n"
      "output s\n"
      "loss mean(s)\n",
      "mean.grad");
  REQUIRE(m.ok());
  Session s(m);
  for (int64_t n : {1, 2, 5}) {
    Tensor x(DType::F32, {n, 2});
    for (int64_t i = 0; i < n; ++i) x.set(2 * i, static_cast<double>(i)), x.set(2 * i + 1, 1.0);
    // rows sum to i + 1: the mean is (n + 1) / 2, d/dw = column means ((n - 1) / 2, 1).
    NamedTensors g = s.grad({{"x", x}});
    CHECK(find_tensor(g, "loss")->get(0) == Approx((n + 1) / 2.0));
    CHECK(find_tensor(g, "grad.w")->get(0) == Approx((n - 1) / 2.0));
    CHECK(find_tensor(g, "grad.w")->get(1) == Approx(1.0));
    NamedTensors ref = m.grad({{"x", x}}, m.initial_params());  // the interpreter, through the Model API
    CHECK(find_tensor(ref, "loss")->get(0) == Approx((n + 1) / 2.0));
  }
}

TEST_CASE("dynamic dims: inputs that disagree on a dim are an error naming both") {
  Model m = Model::compile_source(kModel, "dyn.grad");
  REQUIRE(m.ok());
  Session s(m);
  NamedTensors in = batch(5, 0);
  in[1].second = Tensor(DType::I32, {6});
  try {
    s.train_step(in);
    FAIL("no error");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()) ==
          "inputs 'x' and 'label' disagree on the dynamic dim B: 'x' (f32[B, 3]) has 5 along axis 0, "
          "'label' (i32[B]) has 6 along axis 0");
  }
  CHECK(s.step() == 0);
  CHECK_THROWS_AS(m.forward(in, m.initial_params()), DataError);
  // A fixed dim keeps its own message, with the way to make it dynamic.
  Session f(fixed(4));
  try {
    f.forward(batch(5, 0));
    FAIL("no error");
  } catch (const DataError& e) {
    CHECK(std::string(e.what()).find("use --set B=5 to compile the model for 5, or declare `dim B` without a size "
                                     "to make it dynamic") != std::string::npos);
  }
}

TEST_CASE("dynamic dims: a dynamic class count checks class ids per call") {
  Model m = Model::compile_source(
      "dim B\n"
      "dim C\n"
      "input x : [B, C]\n"
      "input label : i32[B]\n"
      "param s : [] ~ ones\n"
      "loss cross_entropy(s * x, label)\n",
      "classes.grad");
  REQUIRE(m.ok());
  CHECK(m.info().inputs[1].classes == 0);  // no count to check ids against before a call
  Session s(m);
  Tensor x(DType::F32, {2, 13}), label(DType::I32, {2});
  label.set(0, 11), label.set(1, 12);
  CHECK(std::isfinite(s.train_step({{"x", x}, {"label", label}})));
  label.set(1, 13);
  CHECK_THROWS_AS(s.train_step({{"x", x}, {"label", label}}), DataError);
}

TEST_CASE("dynamic dims: export and the gradient check") {
  Model m = Model::compile_source(kModel, "dyn.grad");
  REQUIRE(m.ok());
  CHECK_THROWS_AS(m.export_code(), DataError);
  for (const GradcheckParam& p : m.gradcheck({}, batch(6, 2))) {
    INFO(p.name);
    CHECK(p.ok);
  }
}

TEST_CASE("dynamic dims: a C++ model's dim(name) is dynamic, as `dim B` is") {
  using namespace gradc::embed;
  ModelBuilder mb("dyn");
  Dim B = mb.dim("B");
  auto x = mb.input("x", shape(B, 3));
  auto W = mb.param("W", shape(3, 2), init::normal(0, 1));
  mb.loss(mean(x % W));
  Model m = mb.compile();
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  REQUIRE(m.info().dynamic_dims == std::vector<std::string>{"B"});
  Session s(m);
  for (int64_t n : {2, 9}) {
    NamedTensors in{{"x", batch(n, 1)[0].second}};
    CHECK(s.grad(in).front().second.numel() == 1);
  }
  CHECK(m.dump(Stage::Graph).find("dims B=dynamic") != std::string::npos);
}
