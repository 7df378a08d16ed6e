// Weights kept packed between train steps (plan_kept_packing, memory_plan.h):
// a weight's update also stores it packed, and the next step's product reads
// that copy instead of packing the weight again, unless the session says it
// is stale. Checked against a session that packs every step (one that has
// handed out a writable param, which it never trusts a kept copy after):
// the same bits, step after step, through every way the params change.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>
#include <vector>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

// H = 120 columns: not whole tiles, so the forward products pack B (a
// layer of 64 or 128 columns would read it in place). B = 136 rows packs W1
// once per call into a buffer; 40 rows would pack it block by block.
std::string mlp(int batch) {
  return "dim B = " + std::to_string(batch) + R"(
dim D = 96
dim H = 120
dim C = 10
input x : [B, D]
input label : i32[B]
param W1 : [D, H] ~ he_uniform
param b1 : [H]
param W2 : [H, H] ~ he_uniform
param b2 : [H]
param W3 : [H, C] ~ xavier_uniform
param b3 : [C]
h1 = relu(x @ W1 + b1)
h2 = relu(h1 @ W2 + b2)
logits = h2 @ W3 + b3
loss cross_entropy(logits, label)
output logits
optimizer adam(lr = 1e-2)
)";
}

Model compile(int batch) {
  Model m = Model::compile_source(mlp(batch), "kept.grad");
  REQUIRE(m.ok());
  return m;
}

// Every param of a and b, bit for bit.
void same_params(const Session& a, const Session& b) {
  REQUIRE(a.params().size() == b.params().size());
  for (size_t i = 0; i < a.params().size(); ++i) {
    const Tensor& x = a.params()[i].second;
    const Tensor& y = b.params()[i].second;
    INFO("param " << a.params()[i].first);
    REQUIRE(x.numel() == y.numel());
    for (int64_t j = 0; j < x.numel(); ++j) REQUIRE(x.data<float>()[j] == y.data<float>()[j]);
  }
}

// A session that packs its weights every step: it has handed out a writable param.
Session repacking(const Model& m, int threads) {
  Session s(m, {Backend::Jit, 0, false, threads});
  s.param("W1");
  return s;
}

}  // namespace

TEST_CASE("the plan keeps W1 and W2 packed for their forward products, written by their updates", "[jit][kept]") {
  for (int batch : {136, 40}) {
    INFO("batch " << batch);
    std::string loops = compile(batch).dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
    CHECK(loops.find("kept.pack.W1") != std::string::npos);
    CHECK(loops.find("kept.pack.W2") != std::string::npos);
    size_t kept = 0;
    for (size_t at = 0; (at = loops.find("B kept packed in", at)) != std::string::npos; ++at) ++kept;
    CHECK(kept == 2);
    CHECK(loops.find("also packed into") != std::string::npos);
    // Only train_step keeps anything: the other entries do not update the weights.
    CHECK(compile(batch).dump(Stage::Loops, DumpFormat::Text, Entry::Grad).find("kept") == std::string::npos);
  }
}

TEST_CASE("train steps on weights kept packed give the bits of packing them every step", "[jit][kept]") {
  for (int batch : {136, 40})
    for (int threads : {1, 2}) {
      INFO("batch " << batch << ", " << threads << " threads");
      Model m = compile(batch);
      Session kept(m, {Backend::Jit, 0, false, threads}), every = repacking(m, 1);
      for (int i = 0; i < 5; ++i) {
        NamedTensors in = test::random_inputs(m.info(), 100 + static_cast<uint64_t>(i));
        CHECK(kept.train_step(in) == every.train_step(in));
        same_params(kept, every);
      }
    }
}

TEST_CASE("params changed between train steps are packed anew", "[jit][kept]") {
  Model m = compile(136);
  Session kept(m), every = repacking(m, 0);
  NamedTensors in = test::random_inputs(m.info(), 7);
  auto steps = [&](int n) {
    for (int i = 0; i < n; ++i) CHECK(kept.train_step(in) == every.train_step(in));
    same_params(kept, every);
  };
  steps(2);
  SECTION("set_params") {
    NamedTensors p = kept.params();
    for (int64_t j = 0; j < p[0].second.numel(); ++j) p[0].second.data<float>()[j] *= 0.5f;
    kept.set_params(p);
    every.set_params(p);
    steps(2);
  }
  SECTION("load") {
    std::string path = std::string(GRADC_BINARY_DIR) + "/kept_packing_checkpoint.safetensors";
    kept.save(path);
    steps(2);  // (away from the checkpoint)
    kept.load(path);
    every.load(path);
    std::remove(path.c_str());
    steps(2);
  }
  SECTION("a reference from param(), written after later steps") {
    Tensor& w1 = kept.param("W1");
    Tensor& w2 = every.param("W1");
    steps(1);
    w1.data<float>()[3] += 0.25f;
    w2.data<float>()[3] += 0.25f;
    steps(2);
  }
  SECTION("a step that check_numerics refuses") {
    Session a(m, {Backend::Jit, 0, true, 0}), b(m, {Backend::Jit, 0, true, 0});
    b.param("W1");
    CHECK(a.train_step(in) == b.train_step(in));
    // A learning rate that overflows f32: the update writes non-finite weights,
    // packed too, and the session puts the old ones back.
    CHECK_THROWS(a.train_step(in, 1e300));
    CHECK_THROWS(b.train_step(in, 1e300));
    for (int i = 0; i < 2; ++i) CHECK(a.train_step(in) == b.train_step(in));
    same_params(a, b);
  }
}

TEST_CASE("the forward product reads the kept copy, not the weight", "[jit][kept]") {
  // A write the session cannot know of (through a const reference cast
  // away, which the API does not allow) is not seen by the next step's
  // forward product, which reads the packing of W1 the last update stored;
  // it is seen where the weight is packed every step. (White box: this is
  // what makes the kept copy worth its memory.)
  Model m = compile(136);
  Session kept(m), every = repacking(m, 0);
  NamedTensors in = test::random_inputs(m.info(), 9);
  CHECK(kept.train_step(in) == every.train_step(in));
  Tensor& hidden = const_cast<Tensor&>(kept.params().front().second);
  REQUIRE(kept.params().front().first == "W1");
  for (int64_t j = 0; j < hidden.numel(); ++j) hidden.data<float>()[j] = 0;
  Tensor& seen = every.param("W1");
  for (int64_t j = 0; j < seen.numel(); ++j) seen.data<float>()[j] = 0;
  CHECK(kept.train_step(in) != every.train_step(in));
}
