// scan through a Session (SPEC 2.7): the generated code is one loop whatever
// the number of steps; kernels inside the loop that run on the thread pool
// give the same bits for any thread count and agree with the interpreter;
// and the gradient-free optimizers, which evaluate a whole population in one
// batched forward, batch the loop's body.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cctype>
#include <chrono>
#include <sstream>
#include <cmath>
#include <string>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

// A GRU over embedded ids (T is a dim, so one file serves every length),
// then `head`: the rest of the model, which reads the states `hs`.
std::string gru_model(int B, int V, int E, int H, const std::string& head) {
  return fmt::format(R"(
dim T = 16
dim B = {0}
dim V = {1}
dim E = {2}
dim H = {3}
input ids : i32[T, B]
param table : [V, E] ~ normal(0, 1)
param W_ih : [E, {4}] ~ xavier_uniform
param W_hh : [H, {4}] ~ xavier_uniform
param b : [{4}]
param W_out : [H, V] ~ xavier_uniform
fn gru(h, x) {{
    gx = x @ W_ih + b
    gh = h @ W_hh
    r = sigmoid(slice(gx, axis=1, start=0, stop={3}) + slice(gh, axis=1, start=0, stop={3}))
    z = sigmoid(slice(gx, axis=1, start={3}, stop={5}) + slice(gh, axis=1, start={3}, stop={5}))
    n = tanh(slice(gx, axis=1, start={5}, stop={4}) + r * slice(gh, axis=1, start={5}, stop={4}))
    return (1 - z) * n + z * h
}}
hs = scan(gru, broadcast_to(0, [B, H]), embedding(ids, table))
)",
                     B, V, E, H, 3 * H, 2 * H) +
         head;
}

// A GRU language model step: a classifier, cross_entropy per position, Adam.
const std::string kGruLm = gru_model(4, 11, 8, 16,
                                     "input targets : i32[T, B]\n"
                                     "logits = reshape(hs, [-1, H]) @ W_out\n"
                                     "loss cross_entropy(logits, reshape(targets, [-1]))\n"
                                     "optimizer adam(lr = 0.01)\n");

// A sequence classifier (the loss reads the last state), at sizes where no
// kernel outside the loop crosses a size at which its code changes (the
// thread pool from 2^16 elements, register tiles for large products)
// between 16 and 4096 steps, the input projections that the optimizer
// hoists out of the loop (one product over all steps) included: what grows
// with T is data, and the loop's code must not depend on it.
const std::string kClassifier =
    gru_model(1, 5, 4, 4,
              "input targets : i32[B]\n"
              "loss cross_entropy(reshape(slice(hs, axis=0, start=-1), [B, H]) @ W_out, targets)\n");

NamedTensors lm_batch(int64_t T, int64_t B, int64_t V, uint64_t seed) {
  Tensor ids(DType::I32, {T, B}), targets(DType::I32, {T, B});
  uint64_t s = seed;
  for (int64_t i = 0; i < ids.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    ids.set(i, static_cast<double>((s >> 33) % static_cast<uint64_t>(V)));
  }
  // The id one step before (the first step: 0), which only a recurrent state can know.
  for (int64_t i = 0; i < targets.numel(); ++i) targets.set(i, i < B ? 0.0 : ids.get(i - B));
  return {{"ids", ids}, {"targets", targets}};
}

bool same_bits(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, x] : a) {
    const Tensor* y = find_tensor(b, name);
    if (!y || y->numel() != x.numel()) return false;
    for (int64_t i = 0; i < x.numel(); ++i)
      if (x.get(i) != y->get(i)) return false;
  }
  return true;
}

// Every tensor of `want` in `got`, to tol times the tensor's largest magnitude (at least 1e-3).
void check_close(const NamedTensors& want, const NamedTensors& got, double tol) {
  for (const auto& [name, w] : want) {
    INFO(name);
    const Tensor* g = find_tensor(got, name);
    REQUIRE(g != nullptr);
    REQUIRE(g->numel() == w.numel());
    double scale = 1e-3, worst = 0;
    for (int64_t i = 0; i < w.numel(); ++i) scale = std::max(scale, std::fabs(w.get(i)));
    for (int64_t i = 0; i < w.numel(); ++i) worst = std::max(worst, std::fabs(w.get(i) - g->get(i)));
    CHECK(worst <= tol * scale);
  }
}

}  // namespace

TEST_CASE("scan: the code is one loop, the same size for 16 steps and for 4096") {
  // As the front end and autodiff make it (no optimizer): the loops and the
  // kernels around them, whose code must not depend on T.
  std::string ir[2], loops[2];
  double seconds[2];
  int64_t lengths[2] = {16, 4096};
  for (int i = 0; i < 2; ++i) {
    CompileOptions co;
    co.dims = {{"T", lengths[i]}};
    co.optimize = false;
    auto t0 = std::chrono::steady_clock::now();
    Model m = Model::compile_source(kClassifier, "gru_classifier.grad", co);
    INFO(render_all(m.diagnostics()));
    REQUIRE(m.ok());
    ir[i] = m.dump(Stage::Llvm, DumpFormat::Text, Entry::TrainStep);
    seconds[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  // (Compile times are reported, not asserted: machines are noisy.)
  INFO("LLVM IR " << ir[0].size() << " and " << ir[1].size() << " bytes; compiled in " << seconds[0] << " s and "
                  << seconds[1] << " s");
  double ratio = static_cast<double>(ir[1].size()) / static_cast<double>(ir[0].size());
  CHECK(ratio > 0.95);
  CHECK(ratio < 1.05);
  WARN("T=16: " << ir[0].size() << " bytes of IR, " << seconds[0] << " s; T=4096: " << ir[1].size() << " bytes, "
                << seconds[1] << " s");
  // Optimized, work moves out of the loops (one product over all steps),
  // where its code may change with its size; the loops themselves keep the
  // same kernels, and the work is counted per step.
  for (int i = 0; i < 2; ++i) {
    CompileOptions co;
    co.dims = {{"T", lengths[i]}};
    Model m = Model::compile_source(kClassifier, "gru_classifier.grad", co);
    REQUIRE(m.ok());
    std::string text = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
    // The kernels inside loops (indented deeper), numbers left out.
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
      if (line.rfind("    k", 0) == 0 || line.find(" loop t < ") != std::string::npos)
        for (size_t j = 0; j < line.size(); ++j) {
          bool digit = std::isdigit(static_cast<unsigned char>(line[j]));
          if (!digit) loops[i] += line[j];
          else if (j == 0 || !std::isdigit(static_cast<unsigned char>(line[j - 1]))) loops[i] += '#';
        }
  }
  CHECK(!loops[0].empty());
  CHECK(loops[0] == loops[1]);
  CompileOptions c16, c4096;
  c16.dims = {{"T", 16}};
  c4096.dims = {{"T", 4096}};
  int64_t f16 = Model::compile_source(kClassifier, "a.grad", c16).cost(Entry::TrainStep).matmul_flops;
  int64_t f4096 = Model::compile_source(kClassifier, "b.grad", c4096).cost(Entry::TrainStep).matmul_flops;
  CHECK(f4096 > 200 * f16);
}

TEST_CASE("scan: a long sequence trains, and the JIT agrees with the interpreter step by step") {
  CompileOptions co;
  co.dims = {{"T", 64}};
  Model m = Model::compile_source(kGruLm, "gru_lm.grad", co);
  REQUIRE(m.ok());
  Session jit(m, {Backend::Jit, 5, false, 2}), interp(m, {Backend::Interpreter, 5});
  NamedTensors in = lm_batch(64, 4, 11, 1);
  double first = 0, last = 0;
  for (int step = 0; step < 60; ++step) {
    double a = jit.train_step(in);
    if (step < 3) {
      double b = interp.train_step(in);
      CHECK(std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(b)));
    }
    if (step == 0) first = a;
    last = a;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < 0.5 * first);
}

TEST_CASE("scan: checkpoint keeps per-step work in the loop: less memory, the same gradients") {
  std::string with = kGruLm;
  const std::string call = "embedding(ids, table))";
  with.replace(with.find(call), call.size(), "embedding(ids, table), checkpoint=4)");
  CompileOptions co;
  co.dims = {{"T", 64}};
  Model fast = Model::compile_source(kGruLm, "fast.grad", co), lean = Model::compile_source(with, "lean.grad", co);
  INFO(render_all(lean.diagnostics()));
  REQUIRE(fast.ok());
  REQUIRE(lean.ok());
  int64_t a = fast.cost(Entry::TrainStep).arena_bytes, b = lean.cost(Entry::TrainStep).arena_bytes;
  INFO("arena " << a << " bytes without checkpoint, " << b << " with");
  CHECK(b < a);
  NamedTensors in = lm_batch(64, 4, 11, 2);
  Session sf(fast, {Backend::Jit, 9}), sl(lean, {Backend::Jit, 9});
  NamedTensors gf = sf.grad(in), gl = sl.grad(in);
  check_close(gf, gl, 1e-5);
}

TEST_CASE("scan: kernels of the loop's body on the thread pool give the same bits for any thread count") {
  // Bodies of 64 x 1024 elements: their elementwise kernels and products
  // run as thread-pool tasks inside the loop, each reading the loop's step.
  const char* model = R"(
dim T = 3
dim B = 64
dim H = 1024
input x : [T, B, H]
param U : [H, H] ~ normal(0, 0.03)
param h0 : [B, H] ~ normal(0, 1)
fn cell(h, xt) = tanh(h @ U + xt)
hs = scan(cell, h0, x, reverse=true)
loss mean(square(hs))
)";
  Model m = Model::compile_source(model, "wide.grad");
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 3);
  Session one(m, {Backend::Jit, 0, false, 1}), four(m, {Backend::Jit, 0, false, 4});
  NamedTensors g1 = one.grad(in), g4 = four.grad(in);
  CHECK(same_bits(g1, g4));
  Session interp(m, {Backend::Interpreter, 0});
  NamedTensors gi = interp.grad(in);
  check_close(gi, g1, 1e-4);
}

TEST_CASE("scan: the gradient-free optimizers batch the loop over their population") {
  const char* model = R"(
dim T = 5
dim B = 8
input x : [T, B, 2]
input y : [B, 3]
param W : [2, 3] ~ normal(0, 0.5)
param U : [3, 3] ~ normal(0, 0.5)
fn cell(h, xt) = tanh(xt @ W + h @ U)
hs = scan(cell, broadcast_to(0, [B, 3]), x)
loss mse(reshape(slice(hs, axis=0, start=-1), [B, 3]), y)
optimizer genetic(population=16, mutation_std=0.1)
)";
  Model m = Model::compile_source(model, "evolve.grad");
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 11);
  Session jit(m, {Backend::Jit, 2}), interp(m, {Backend::Interpreter, 2});
  double first = 0, last = 0;
  for (int step = 0; step < 40; ++step) {
    double a = jit.train_step(in);
    if (step < 3) CHECK(std::fabs(a - interp.train_step(in)) <= 1e-5 * std::max(1.0, std::fabs(a)));
    if (step == 0) first = a;
    last = a;
  }
  INFO("loss " << first << " -> " << last);
  CHECK(last < first);
}

// A dynamic sequence length (`dim T` without a size, SPEC 2.2): one model
// file, every call's length bound from its inputs, each call's results and
// Adam state those of a model with T fixed to that length.
TEST_CASE("scan over a dynamic T: each length gives what the model with T fixed gives") {
  std::string dynamic_text = kGruLm;
  dynamic_text.replace(dynamic_text.find("dim T = 16"), 10, "dim T");
  Model dyn = Model::compile_source(dynamic_text, "gru_lm_dyn.grad");
  INFO(render_all(dyn.diagnostics()));
  REQUIRE(dyn.ok());
  REQUIRE(dyn.info().dynamic_dims == std::vector<std::string>{"T"});
  Session s(dyn);
  NamedTensors ckpt = s.checkpoint();
  for (int64_t T : {5, 23, 5, 1}) {
    INFO("T = " << T);
    CompileOptions co;
    co.dims = {{"T", T}};
    Model fixed = Model::compile_source(kGruLm, "gru_lm.grad", co);
    REQUIRE(fixed.ok());
    Session ref(fixed);
    ref.restore(ckpt);
    NamedTensors in = lm_batch(T, 4, 11, static_cast<uint64_t>(T));
    CHECK(s.train_step(in) == ref.train_step(in));
    ckpt = ref.checkpoint();
    const NamedTensors now = s.checkpoint();
    for (const auto& [name, t] : ckpt) {
      INFO(name);
      const Tensor* mine = find_tensor(now, name);
      REQUIRE(mine != nullptr);
      for (int64_t i = 0; i < t.numel(); ++i) CHECK(mine->get(i) == t.get(i));
    }
  }
}
