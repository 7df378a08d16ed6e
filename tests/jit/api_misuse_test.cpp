// Host API misuse is an error (a DataError or a logic_error naming what is
// wrong), never undefined behaviour; and compiling and destroying a model
// many times does not grow the process (JIT code is freed with its model).
#include <catch2/catch.hpp>

#include <fstream>
#include <string>

#include "gradc/session.h"
#include "runtime/tensor_io.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

const char* kModel =
    "dim B = 4\ninput x : [B, 3]\ninput y : [B]\nparam w : [3] ~ normal(0, 1)\n"
    "loss mse(x @ w, y)\noutput w\noptimizer adam(lr = 0.1)\n";

template <class F>
std::string error_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

long resident_kib() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return 0;
}

}  // namespace

TEST_CASE("host API misuse gives errors", "[api]") {
  Model m = Model::compile_source(kModel, "m.grad");
  REQUIRE(m.ok());
  Session s(m);
  NamedTensors in = test::random_inputs(m.info(), 1);

  // Unknown names.
  CHECK(error_of([&] { s.param("nope"); }).find("no param 'nope' (its params: w)") != std::string::npos);
  // A missing input, a wrong shape, a wrong dtype: nothing changes.
  CHECK(error_of([&] { s.train_step({{"x", in[0].second}}); }).find("missing input tensor 'y'") != std::string::npos);
  NamedTensors bad_shape = in;
  bad_shape[0].second = Tensor(DType::F32, {4, 2});
  CHECK(error_of([&] { s.train_step(bad_shape); }).find("tensor 'x': expected f32[4, 3], got f32[4, 2]") !=
        std::string::npos);
  NamedTensors bad_dtype = in;
  bad_dtype[1].second = Tensor(DType::F64, {4});
  CHECK(error_of([&] { s.grad(bad_dtype); }).find("tensor 'y': expected f32[4], got f64[4]") != std::string::npos);
  CHECK(s.step() == 0);
  // A param replaced in place by a tensor of another shape is caught at the next call.
  Tensor saved = s.param("w");
  s.param("w") = Tensor(DType::F32, {5});
  CHECK(error_of([&] { s.train_step(in); }).find("tensor 'w': expected f32[3], got f32[5]") != std::string::npos);
  s.param("w") = saved;
  // set_params needs every param with its type.
  CHECK(error_of([&] { s.set_params({}); }).find("missing tensor 'w'") != std::string::npos);
  // Typed access with the wrong type.
  CHECK(error_of([&] { (void)saved.data<double>(); }).find("does not match the tensor's dtype f32") != std::string::npos);
  // A negative or NaN learning rate.
  CHECK(error_of([&] { s.train_step(in, -1.0); }).find("learning rate") != std::string::npos);
  // After all that, the session still works.
  CHECK(std::isfinite(s.train_step(in)));
  CHECK(s.step() == 1);
}

TEST_CASE("use after a failed compile is an error", "[api]") {
  Model bad = Model::compile_source("loss nope\n", "bad.grad");
  REQUIRE_FALSE(bad.ok());
  CHECK(error_of([&] { Session s(bad); }).find("did not compile") != std::string::npos);
  CHECK(error_of([&] { bad.initial_params(); }).find("did not compile") != std::string::npos);
  CHECK(bad.dump(Stage::Llvm).empty());
  CHECK(bad.info().params.empty());
}

TEST_CASE("a checkpoint that does not fit the model is rejected, naming the tensor", "[api]") {
  Model m = Model::compile_source(kModel, "m.grad");
  Session s(m);
  NamedTensors ck = s.checkpoint();
  for (auto& [name, t] : ck)
    if (name == "opt.exp_avg.w") t = Tensor(DType::F32, {2});
  std::string path = GRADC_BINARY_DIR "/misfit.safetensors";  // (a literal: GCC 12 warned, falsely, on operator+)
  write_safetensors(path, ck);
  NamedTensors before = s.checkpoint();
  CHECK(error_of([&] { s.load(path); }).find("tensor 'opt.exp_avg.w': expected f32[3], got f32[2]") != std::string::npos);
  // Nothing changed (all or nothing).
  CHECK(s.checkpoint()[0].second.get(0) == before[0].second.get(0));
}

TEST_CASE("1000 compile-and-destroy cycles keep resident memory flat", "[api][memory]") {
  auto cycle = [&](int i) {
    // A different comment each time, so the in-memory cache cannot answer.
    Model m = Model::compile_source("# cycle " + std::to_string(i) + "\n" + kModel, "m.grad");
    Session s(m);
    s.train_step(test::random_inputs(m.info(), 1));  // JIT-compiles train_step
  };
  for (int i = 0; i < 50; ++i) cycle(i);  // warm up allocators
  long before = resident_kib();
  for (int i = 50; i < 1000; ++i) cycle(i);
  long after = resident_kib();
  INFO("resident memory before " << before << " KiB, after " << after << " KiB");
  // Leaking one JIT'd module per cycle would add far more than this (each is
  // tens of KiB of code and LLVM state).
  CHECK(after - before < 20 * 1024);
}
