// The steady-state path of Session calls (prepared argument arrays, double-
// buffered params and optimizer state, a reused arena) keeps the semantics of
// the API: inputs are found by name in any order and checked every call,
// params changed between calls are used, a failed step commits nothing, and
// the JIT and the interpreter agree step for step.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

const char* kDigits = GRADC_SOURCE_DIR "/examples/digits_mlp.grad";

std::vector<float> values(const Tensor& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i) v[static_cast<size_t>(i)] = static_cast<float>(t.get(i));
  return v;
}

}  // namespace

TEST_CASE("repeated train_step calls match the interpreter step for step", "[jit][session]") {
  Model m = Model::compile_file(kDigits);
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 5);
  Session jit(m, {Backend::Jit, 3, false, 1}), interp(m, {Backend::Interpreter, 3});
  const Tensor& w1 = jit.params().front().second;  // references stay valid across steps
  for (int i = 0; i < 6; ++i) {
    double a = jit.train_step(in), b = interp.train_step(in);
    CHECK(a == Approx(b).epsilon(1e-4));
    CHECK(jit.step() == i + 1);
  }
  CHECK(&w1 == &jit.params().front().second);
  std::vector<float> x = values(w1), y = values(interp.params().front().second);
  for (size_t i = 0; i < x.size(); ++i) REQUIRE(x[i] == Approx(y[i]).margin(1e-4));
  for (size_t k = 0; k < jit.optimizer_state().size(); ++k) {
    std::vector<float> sa = values(jit.optimizer_state()[k].second), sb = values(interp.optimizer_state()[k].second);
    for (size_t i = 0; i < sa.size(); ++i) REQUIRE(sa[i] == Approx(sb[i]).margin(1e-4));
  }
}

TEST_CASE("inputs are found by name in any order, and checked on every call", "[jit][session]") {
  Model m = Model::compile_file(kDigits);
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 5);
  Session a(m), b(m);
  double first = a.train_step(in);
  NamedTensors reversed(in.rbegin(), in.rend());
  reversed.insert(reversed.begin(), {"unused", Tensor(DType::F32, {1})});
  CHECK(b.train_step(reversed) == first);
  CHECK(a.train_step(in) == b.train_step(in));
  NamedTensors missing = {in.front()};
  CHECK_THROWS_WITH(a.train_step(missing), Catch::Contains("missing input tensor 'label'"));
  NamedTensors wrong = in;
  wrong.back().second = Tensor(DType::F32, {3});
  CHECK_THROWS_WITH(a.train_step(wrong), Catch::Contains("tensor 'label': expected i32[64], got f32[3]"));
  CHECK(a.step() == 2);
  CHECK(a.train_step(in) == b.train_step(in));  // the failed calls changed nothing
  // forward and grad are prepared once too.
  NamedTensors f1 = a.forward(in), f2 = a.forward(in);
  REQUIRE(f1.size() == f2.size());
  CHECK(values(f1.front().second) == values(f2.front().second));
  CHECK(a.grad(in).front().second.get(0) == b.grad(in).front().second.get(0));
}

TEST_CASE("params written between steps are used, and a param of the wrong shape is refused", "[jit][session]") {
  Model m = Model::compile_file(kDigits);
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 5);
  Session a(m), b(m);
  a.train_step(in);
  b.train_step(in);
  // Write a param in place in one session and by set_params in the other.
  a.param("b2").data<float>()[3] = 2.5f;
  NamedTensors p = b.params();
  for (auto& [name, t] : p)
    if (name == "b2") t.data<float>()[3] = 2.5f;
  b.set_params(p);
  CHECK(a.train_step(in) == b.train_step(in));
  Tensor saved = a.param("b2");
  a.param("b2") = Tensor(DType::F32, {11});
  CHECK_THROWS_WITH(a.train_step(in), Catch::Contains("tensor 'b2': expected f32[10], got f32[11]"));
  a.param("b2") = saved;
  CHECK(a.train_step(in) == b.train_step(in));
  CHECK(a.step() == b.step());
}

TEST_CASE("a failed check in train_step commits nothing", "[jit][session]") {
  Model m = Model::compile_file(kDigits);
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 5);
  Session s(m);
  s.train_step(in);
  NamedTensors before = s.checkpoint();
  NamedTensors bad = in;
  for (auto& [name, t] : bad)
    if (name == "label") t.set(0, 10);  // outside one_hot's range
  CHECK_THROWS_AS(s.train_step(bad), DataError);
  NamedTensors after = s.checkpoint();
  REQUIRE(before.size() == after.size());
  for (size_t i = 0; i < before.size(); ++i) {
    INFO(before[i].first);
    CHECK(values(before[i].second) == values(after[i].second));
  }
  s.train_step(in);
  CHECK(s.step() == 2);
}

TEST_CASE("compile times are recorded per entry point", "[jit][session]") {
  Model m = Model::compile_source("# compile times\n" + std::string("dim B = 4\ninput x : [B, 2]\ninput y : [B]\n"
                                  "param w : [2]\nloss mean((x @ w - y) * (x @ w - y))\noptimizer sgd(lr = 0.1)\n"),
                                  "times.grad");
  REQUIRE(m.ok());
  Session s(m);
  CHECK_FALSE(s.compile_times(Entry::TrainStep).compiled);
  s.prepare(Entry::TrainStep);
  CompileTimes t = s.compile_times(Entry::TrainStep);
  CHECK(t.compiled);
  CHECK(t.plan_ms >= 0);
  CHECK(t.total_ms() > 0);
  CHECK_FALSE(s.compile_times(Entry::Grad).compiled);
  Session interp(m, {Backend::Interpreter});
  interp.prepare(Entry::TrainStep);
  CHECK_FALSE(interp.compile_times(Entry::TrainStep).compiled);
}
