// Threads: several threads compiling and training different models at once,
// and two sessions of one model on two threads, give exactly the results of
// running the same work on one thread (docs/host_api.md, "Threads").
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

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
