// embedding(ids, table) on both backends: the run-time check of its ids,
// located at the model line that reads them, and the scatter-add gradient
// (repeated ids) computed alike by the JIT and the interpreter, and
// bit-identically for any thread count.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "gradc/session.h"
#include "runtime/random.h"

using namespace gradc;

namespace {

const char* kBag =
    "dim B = 2\ndim V = 5\ninput ids : i32[B, 3]\nparam table : [V, 4] ~ normal(0, 1)\n"
    "h = mean(embedding(ids, table), axis=1)\n"
    "loss sum(h * h)\noutput h\n";

Tensor ids_with(int32_t bad) {
  Tensor ids(DType::I32, {2, 3});
  for (int64_t i = 0; i < 6; ++i) ids.set(i, static_cast<double>(i % 5));
  ids.set(4, bad);
  return ids;
}

// The same inputs and params on a fresh session of each backend.
NamedTensors grads_of(const Model& m, Backend backend, int threads, const NamedTensors& in) {
  Session s(m, {backend, 7, false, threads});
  return s.grad(in);
}

}  // namespace

TEST_CASE("an embedding id out of range is a run-time error at the model line that reads it, on both backends",
          "[jit][embedding]") {
  Model m = Model::compile_source(kBag, "bag.grad");
  REQUIRE(m.ok());
  for (int32_t bad : {5, -1, 1000}) {
    for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
      Session s(m, {backend, 0});
      for (bool forward : {true, false}) {
        INFO("id " << bad << (backend == Backend::Jit ? ", jit" : ", interpreter") << (forward ? ", forward" : ", grad"));
        try {
          if (forward) s.forward({{"ids", ids_with(bad)}});
          else s.grad({{"ids", ids_with(bad)}});
          FAIL("no error for an embedding id out of range");
        } catch (const ModelError& e) {
          CHECK(e.diagnostic.file == "bag.grad");
          CHECK(e.diagnostic.line == 5);
          CHECK(e.diagnostic.column == 10);
          CHECK(e.diagnostic.message.find("outside [0, 5)") != std::string::npos);
          CHECK(std::string(e.what()).find("bag.grad:5:10: error: ") == 0);
        }
      }
    }
  }
  // In range at the edges: no error.
  Session s(m, {Backend::Jit, 0});
  CHECK_NOTHROW(s.grad({{"ids", ids_with(4)}}));
  CHECK_NOTHROW(s.grad({{"ids", ids_with(0)}}));
}

TEST_CASE("embedding's scatter-add gradient: JIT equals interpreter, bit-identical for 1 and 2 threads",
          "[jit][embedding]") {
  // 4096 ids over 37 rows: every row is picked about 110 times, and the
  // gradient [37, 64] and the lookup [64, 64, 64] are large enough for the
  // thread pool to split the elementwise kernels around them.
  Model m = Model::compile_source(
      "dim B = 64\ndim S = 64\ninput ids : i32[B, S]\ninput x : [B, S, 64]\nparam table : [37, 64] ~ normal(0, 1)\n"
      "e = embedding(ids, table)\nloss mean(tanh(e) * x)\noutput e\n",
      "big.grad");
  REQUIRE(m.ok());
  Tensor ids(DType::I32, {64, 64});
  Tensor x(DType::F32, {64, 64, 64});
  RandomStream rng(3, "embedding");
  for (int64_t i = 0; i < ids.numel(); ++i) ids.set(i, std::floor(rng.uniform() * 37));
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, rng.normal());
  NamedTensors in = {{"ids", ids}, {"x", x}};
  NamedTensors one = grads_of(m, Backend::Jit, 1, in), two = grads_of(m, Backend::Jit, 2, in);
  NamedTensors ref = grads_of(m, Backend::Interpreter, 0, in);
  REQUIRE(one.size() == ref.size());
  for (size_t k = 0; k < one.size(); ++k) {
    INFO(one[k].first);
    REQUIRE(one[k].first == ref[k].first);
    const Tensor &a = one[k].second, &b = two[k].second, &r = ref[k].second;
    double scale = 1;
    for (int64_t i = 0; i < r.numel(); ++i) scale = std::max(scale, std::fabs(r.get(i)));
    int64_t differ = 0, far = 0;
    for (int64_t i = 0; i < a.numel(); ++i) {
      differ += a.get(i) != b.get(i);  // bit-identical across thread counts
      far += std::fabs(a.get(i) - r.get(i)) > 1e-5 * scale;
    }
    CHECK(differ == 0);
    CHECK(far == 0);
  }
}
