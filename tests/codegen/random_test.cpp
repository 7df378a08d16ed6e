// The random op of dropout (random_uniform: Philox4x32-10, runtime/philox.h)
// and dropout's training-mode lowering, on a graph built here (sema lowers
// dropout to it only in training mode), run by the JIT and the interpreter:
// the known-answer bits, JIT == interpreter == the C++ reference bit for
// bit, the same for 1 and 2 threads, the statistics of the mask, a different
// mask per stream id, and the same mask in the value and the gradient.
#include <catch2/catch.hpp>

#include <cmath>
#include <memory>

#include "compiler/autodiff/reverse.h"
#include "compiler/codegen/jit.h"
#include "compiler/exec/entry.h"
#include "compiler/ir/builder.h"
#include "compiler/support/source.h"
#include "gradc/session.h"
#include "runtime/philox.h"

using namespace gradc;

namespace {

constexpr int64_t kN = 100000;
constexpr double kP = 0.3;

// u0, u1: random_uniform [kN] of streams 0 and 1; y = dropout(x, kP) with
// stream 0's bits, as builtins.cpp lowers it; dx = d sum(y * c) / dx.
struct RandomModel {
  ModelIR m;
  SourceManager sm;

  RandomModel() {
    m.name = "random";
    Builder b(m.graph);
    NodeId seed = b.leaf(Op::Input, "@seed", DType::I32, {{2, {}}});
    NodeId step = b.leaf(Op::Input, "@step", DType::F64, {});
    NodeId x = b.leaf(Op::Input, "x", DType::F32, {{kN, {}}});
    NodeId c = b.leaf(Op::Input, "c", DType::F32, {{kN, {}}});
    auto uniform = [&](int64_t stream) {
      Attrs a;
      a.ints = {stream, static_cast<int64_t>(DType::F32), kN};
      return b.make(Op::RandomUniform, {seed, step}, a);
    };
    NodeId u0 = uniform(0), u1 = uniform(1);
    NodeId keep = b.binary(Op::Ge, u0, b.constant(kP, DType::F32));
    NodeId y = b.where(keep, b.mul(x, b.constant(1 / (1 - kP), DType::F32)), b.constant(0, DType::F32));
    NodeId dx = gradients(b, b.sum_all(b.mul(y, c)), {x})[0];
    m.inputs = {{"x", x, {}}, {"c", c, {}}};
    m.outputs = {{"u0", u0, {}}, {"u1", u1, {}}, {"y", y, {}}, {"dx", dx, {}}};
  }
};

struct Run {
  Tensor u0, u1, y, dx;
};

// Forward with seed `seed` and step `step` on `exec`.
Run run(Executor& exec, const ModelIR& m, uint64_t seed, double step, int threads) {
  EntrySignature sig = entry_signature(m, EntryKind::Forward);
  Tensor seed_words(DType::I32, {2}), step_t(DType::F64, {}), x(DType::F32, {kN}), c(DType::F32, {kN});
  seed_words.set(0, static_cast<int32_t>(static_cast<uint32_t>(seed)));
  seed_words.set(1, static_cast<int32_t>(static_cast<uint32_t>(seed >> 32)));
  step_t.set(0, step);
  for (int64_t i = 0; i < kN; ++i) x.set(i, 1.0 + static_cast<double>(i % 7)), c.set(i, 2.0);
  std::vector<const Tensor*> in;
  for (const EntryValue& v : sig.reads)
    in.push_back(v.name == "@seed" ? &seed_words : v.name == "@step" ? &step_t : v.name == "x" ? &x : &c);
  Run r{Tensor(DType::F32, {kN}), Tensor(DType::F32, {kN}), Tensor(DType::F32, {kN}), Tensor(DType::F32, {kN})};
  exec.run(sig, in, {&r.u0, &r.u1, &r.y, &r.dx}, threads);
  return r;
}

int64_t differences(const Tensor& a, const Tensor& b) {
  int64_t n = 0;
  for (int64_t i = 0; i < a.numel(); ++i) n += a.get(i) != b.get(i);
  return n;
}

}  // namespace

TEST_CASE("random_uniform: JIT == interpreter == Philox4x32-10, for any thread count", "[codegen][random]") {
  RandomModel rm;
  std::unique_ptr<Executor> jit = make_jit_executor(rm.m, rm.sm), interp = make_interpreter_executor(rm.m, rm.sm);
  // The known-answer vector of counter 0 and key 0: element 0 of stream 0 at step 0 under seed 0.
  Run zero = run(*jit, rm.m, 0, 0, 1);
  CHECK(zero.u0.get(0) == static_cast<double>(0x6627e8d5u >> 8) * 0x1.0p-24);
  for (uint64_t seed : {uint64_t{7}, uint64_t{0x123456789abcdefULL}}) {
    INFO("seed " << seed);
    Run one = run(*jit, rm.m, seed, 3, 1), two = run(*jit, rm.m, seed, 3, 2), ref = run(*interp, rm.m, seed, 3, 1);
    for (auto [a, b] : {std::pair{&one.u0, &two.u0}, {&one.u1, &two.u1}, {&one.y, &two.y}, {&one.dx, &two.dx},
                        {&one.u0, &ref.u0}, {&one.u1, &ref.u1}, {&one.y, &ref.y}, {&one.dx, &ref.dx}})
      CHECK(differences(*a, *b) == 0);
    int64_t off = 0;
    for (int64_t i = 0; i < kN; ++i)
      off += one.u0.get(i) != random_uniform(seed, 3, 0, static_cast<uint64_t>(i)) ||
             one.u1.get(i) != random_uniform(seed, 3, 1, static_cast<uint64_t>(i));
    CHECK(off == 0);
  }
}

TEST_CASE("dropout's mask: the fraction kept, the scale, a mask per stream and step, the same in the gradient",
          "[codegen][random]") {
  RandomModel rm;
  std::unique_ptr<Executor> jit = make_jit_executor(rm.m, rm.sm);
  Run r = run(*jit, rm.m, 42, 1, 2);
  int64_t kept = 0, same_streams = 0;
  bool scaled = true, gradient_follows = true;
  for (int64_t i = 0; i < kN; ++i) {
    double x = 1.0 + static_cast<double>(i % 7), y = r.y.get(i);
    bool keep = y != 0;
    kept += keep;
    same_streams += (r.u0.get(i) >= kP) == (r.u1.get(i) >= kP);
    scaled = scaled && (!keep || y == static_cast<double>(static_cast<float>(x * static_cast<float>(1 / (1 - kP)))));
    // d sum(y c) / dx = c / (1 - p) where kept, 0 where dropped: the value's mask.
    gradient_follows = gradient_follows && (keep ? r.dx.get(i) > 2.0 : r.dx.get(i) == 0.0);
  }
  // Kept ~ Binomial(1e5, 0.7): standard deviation 145, so 0.7 +- 0.005 is 3.4 of them.
  CHECK(std::abs(static_cast<double>(kept) / kN - (1 - kP)) < 0.005);
  CHECK(scaled);
  CHECK(gradient_follows);
  // Two streams agree on keeping an element about p^2 + (1-p)^2 = 58 % of the time, not always.
  CHECK(std::abs(static_cast<double>(same_streams) / kN - (kP * kP + (1 - kP) * (1 - kP))) < 0.01);
  // Another step draws another mask; the same step the same one (a resumed run).
  CHECK(differences(r.y, run(*jit, rm.m, 42, 2, 1).y) > kN / 4);
  CHECK(differences(r.y, run(*jit, rm.m, 42, 1, 1).y) == 0);
  CHECK(differences(r.y, run(*jit, rm.m, 43, 1, 1).y) > kN / 4);
}

TEST_CASE("dropout is the identity in evaluation mode (forward)", "[codegen][random]") {
  Model m = Model::compile_source("input x : [3, 4]\nparam W : [4, 2] ~ normal(0, 1)\nh = dropout(x, 0.9) @ W\n"
                                  "loss mean(h)\noutput h\n",
                                  "eval.grad");
  REQUIRE(m.ok());
  Tensor x(DType::F32, {3, 4});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, 1.0 + static_cast<double>(i));
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    Session s(m, {backend, 3});
    const Tensor& w = s.params()[0].second;
    Tensor h = s.forward({{"x", x}})[0].second;
    for (int64_t r = 0; r < 3; ++r)
      for (int64_t c = 0; c < 2; ++c) {
        double want = 0;
        for (int64_t k = 0; k < 4; ++k) want += x.get(r * 4 + k) * w.get(k * 2 + c);
        CHECK(h.get(r * 2 + c) == Approx(want).epsilon(1e-6));
      }
  }
}
