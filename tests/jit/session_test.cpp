// Sessions: several threads compiling and training different models at once,
// and two sessions of one model on two threads, give exactly the results of
// running the same work on one thread (docs/host_api.md, "Threads"); models
// share the process's JIT, each entry's code freed with its model; and
// check_numerics finds the first non-finite value of a step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "compiler/codegen/jit.h"
#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {


// Compiles a model from its source text (a fresh compilation each time: the
// text differs per call by a comment, so the cache cannot share it) and trains it.
std::vector<double> work(const std::string& path, int salt) {
  Model m = Model::compile_source("# run " + std::to_string(salt) + "\n" + [&] {
    std::string s;
    FILE* f = std::fopen(path.c_str(), "rb");
    char buf[4096];
    size_t n;
    while (f && (n = std::fread(buf, 1, sizeof buf, f)) > 0) s.append(buf, n);
    if (f) std::fclose(f);
    return s;
  }(), path);
  if (!m.ok()) return {};
  Session s(m, {Backend::Jit, 1});
  NamedTensors in = test::random_inputs(m.info(), 3);
  std::vector<double> losses;
  for (int i = 0; i < 20; ++i) losses.push_back(s.train_step(in));
  return losses;
}

}  // namespace

TEST_CASE("models compiled and trained on several threads at once", "[jit][threads]") {
  std::vector<std::string> models = {"xor", "iris_mlp", "logreg", "digits_mlp", "fn_grad", "regression_f64"};
  std::vector<std::vector<double>> serial, parallel(models.size());
  for (size_t i = 0; i < models.size(); ++i)
    serial.push_back(work(GRADC_SOURCE_DIR "/examples/" + models[i] + ".grad", 0));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < models.size(); ++i)
    threads.emplace_back([&, i] { parallel[i] = work(GRADC_SOURCE_DIR "/examples/" + models[i] + ".grad", 1); });
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < models.size(); ++i) {
    INFO(models[i]);
    REQUIRE(serial[i].size() == 20);
    CHECK(parallel[i] == serial[i]);  // bit for bit
  }
}

TEST_CASE("two sessions of one model on two threads", "[jit][threads]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/digits_mlp.grad");
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 3);
  auto run = [&] {
    Session s(m, {Backend::Jit, 2});
    std::vector<double> losses;
    for (int i = 0; i < 30; ++i) losses.push_back(s.train_step(in));
    return losses;
  };
  std::vector<double> a, b, c = run();
  std::thread t1([&] { a = run(); }), t2([&] { b = run(); });
  t1.join();
  t2.join();
  CHECK(a == c);
  CHECK(b == c);
}

TEST_CASE("models share the process's JIT and free their code with them", "[jit][threads]") {
  // Two compilations of one model: their entries define functions of the
  // same names, each in a JITDylib of its own.
  const std::string src = "dim B = 4\ninput x : [B, 2]\ninput y : [B, 1]\nparam W : [2, 8] ~ uniform(-1, 1)\n"
                          "param V : [8, 1] ~ uniform(-1, 1)\nloss mse(tanh(x @ W) @ V, y)\noptimizer sgd(lr = 0.1)\n";
  const int before = jit_loaded_entries();
  auto train = [](Session& s, const NamedTensors& in, int steps) {
    std::vector<double> losses;
    for (int i = 0; i < steps; ++i) losses.push_back(s.train_step(in));
    return losses;
  };
  Model b = Model::compile_source("# b\n" + src, "b.grad");
  REQUIRE(b.ok());
  NamedTensors in = test::random_inputs(b.info(), 5);
  std::vector<double> expected;
  {
    Session reference(b, {.backend = Backend::Interpreter});
    expected = train(reference, in, 10);
  }
  Session sb(b, {.backend = Backend::Jit, .threads = 1});
  std::vector<double> losses_b = train(sb, in, 5);
  {
    Model a = Model::compile_source("# a\n" + src, "a.grad");
    REQUIRE(a.ok());
    Session sa(a, {.backend = Backend::Jit, .threads = 1});
    std::vector<double> losses_a = train(sa, in, 10);
    CHECK(jit_loaded_entries() == before + 2);
    for (size_t i = 0; i < 10; ++i) CHECK(losses_a[i] == Approx(expected[i]).epsilon(1e-5));
  }
  CHECK(jit_loaded_entries() == before + 1);  // a's code is gone, b's still runs
  for (double l : train(sb, in, 5)) losses_b.push_back(l);
  for (size_t i = 0; i < 10; ++i) CHECK(losses_b[i] == Approx(expected[i]).epsilon(1e-5));
}

TEST_CASE("check_numerics names the op and line of the first NaN, and does not commit the step", "[jit][numerics]") {
  Model m = Model::compile_source(
      "dim B = 3\ninput x : [B, 2]\nparam w : [2] ~ uniform(-1, 1)\nh = log(x @ w)\nloss mean(h * h)\n", "nan.grad");
  REQUIRE(m.ok());
  Tensor x(DType::F32, {3, 2});
  for (int i = 0; i < 6; ++i) x.set(i, i % 2 ? 1.0 : -1.0);  // x @ w has both signs for most w
  Tensor w(DType::F32, {2});
  w.set(0, 0.5);
  w.set(1, -2.0);  // x @ w = -2.5 < 0 in every row: log gives NaN
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    Session s(m, {backend, 0, /*check_numerics=*/true});
    s.set_params({{"w", w}});
    try {
      s.train_step({{"x", x}});
      FAIL("no error for a NaN loss");
    } catch (const ModelError& e) {
      // Rendered like a compile-time error: location, source line, caret.
      std::string msg = e.what();
      CHECK(msg.find("nan.grad:4:5: error: check-numerics: 'log' produced") != std::string::npos);
      CHECK(msg.find("train_step") != std::string::npos);
      CHECK(e.diagnostic.line == 4);
      CHECK(e.diagnostic.column == 5);
      CHECK(e.diagnostic.source_line.find("log(") != std::string::npos);
      CHECK(msg.find("\n    h = log(x @ w)\n        ^") != std::string::npos);
    }
    CHECK(s.step() == 0);
    CHECK(s.params()[0].second.get(1) == -2.0);  // unchanged
    Session unchecked(m, {backend, 0, false});
    unchecked.set_params({{"w", w}});
    CHECK(std::isnan(unchecked.train_step({{"x", x}})));
  }
}

TEST_CASE("a class id out of range is a run-time error at the model line that reads it, on both backends",
          "[jit][diagnostics]") {
  Model m = Model::compile_source(
      "dim B = 2\ninput x : [B, 3]\ninput label : i32[B]\nparam W : [3, 4]\n"
      "loss cross_entropy(x @ W, label)\n",
      "ids.grad");
  REQUIRE(m.ok());
  Tensor x(DType::F32, {2, 3});
  Tensor label(DType::I32, {2});
  label.set(0, 1);
  label.set(1, 4);  // C = 4: out of range
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    Session s(m, {backend, 0});
    try {
      s.train_step({{"x", x}, {"label", label}});
      FAIL("no error for a class id out of range");
    } catch (const ModelError& e) {
      CHECK(e.diagnostic.file == "ids.grad");
      CHECK(e.diagnostic.line == 5);
      CHECK(e.diagnostic.column == 6);
      CHECK(e.diagnostic.message.find("outside [0, 4)") != std::string::npos);
      CHECK(std::string(e.what()).find("ids.grad:5:6: error: ") == 0);
      CHECK(std::string(e.what()).find("\n    loss cross_entropy(x @ W, label)\n         ^") != std::string::npos);
    }
  }
}

// The two halves of a train_step that data-parallel training calls
// (docs/distributed.md): grad, then apply_gradients with those gradients,
// leave the params and optimizer state where train_step does, for every
// optimizer of the examples (clip_grad_norm and f64 params included), dropout
// drawing the same masks in both.
TEST_CASE("grad then apply_gradients is train_step in two halves", "[jit][distributed]") {
  for (const char* name : {"xor", "iris_mlp", "logreg", "digits_mlp", "regression_f64", "all_builtins"}) {
    for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
      INFO(name << (backend == Backend::Jit ? " jit" : " interpreter"));
      Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/" + std::string(name) + ".grad");
      REQUIRE(m.ok());
      Session fused(m, {backend, 2}), split(m, {backend, 2});
      NamedTensors in = test::random_inputs(m.info(), 5);
      for (int step = 0; step < 5; ++step) {
        fused.train_step(in, 0.01);
        split.apply_gradients(split.grad(in), 0.01);
      }
      CHECK(split.step() == 5);
      NamedTensors a = fused.checkpoint(), b = split.checkpoint();
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        INFO(a[i].first);
        // Buffers (batch_norm's running statistics) are train_step's alone:
        // the split step leaves them (which is why mpirun refuses them).
        bool buffer = false;
        for (const TensorInfo& t : m.info().buffers) buffer = buffer || t.name == a[i].first;
        if (buffer) continue;
        double scale = 1e-30, diff = 0;
        for (int64_t k = 0; k < a[i].second.numel(); ++k) {
          scale = std::max(scale, std::abs(a[i].second.get(k)));
          diff = std::max(diff, std::abs(a[i].second.get(k) - b[i].second.get(k)));
        }
        CHECK(diff <= 1e-5 * scale);
      }
    }
  }
}

TEST_CASE("apply_gradients names a missing or mistyped gradient and changes nothing", "[jit][distributed]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/xor.grad");
  REQUIRE(m.ok());
  Session s(m, {Backend::Jit, 1});
  NamedTensors g = s.grad(test::random_inputs(m.info(), 1));
  NamedTensors before = s.checkpoint();
  NamedTensors missing;
  for (const auto& [n, t] : g)
    if (n != "grad.W1") missing.emplace_back(n, t);
  CHECK_THROWS_WITH(s.apply_gradients(missing), Catch::Contains("apply_update: missing input tensor 'grad.W1'"));
  NamedTensors wrong = g;
  for (auto& [n, t] : wrong)
    if (n == "grad.b1") t = Tensor(DType::F32, {3});
  CHECK_THROWS_WITH(s.apply_gradients(wrong), Catch::Contains("apply_update: tensor 'grad.b1': expected f32["));
  CHECK_THROWS_WITH(s.apply_gradients(g, -1), Catch::Contains("learning rate must be finite and >= 0"));
  CHECK(s.step() == 0);
  NamedTensors after = s.checkpoint();
  for (size_t i = 0; i < before.size(); ++i) CHECK(before[i].second.get(0) == after[i].second.get(0));
  s.apply_gradients(g);
  CHECK(s.step() == 1);
}
