// dropout through a Session, end to end (SPEC 2.7): the identity in forward;
// in grad and train_step each element is zeroed with probability p and the
// rest scaled by 1/(1 - p), with a mask that is a function of (seed, step,
// call site, element) only: the same on the JIT and the interpreter and for
// any thread count, new at every step, another for another seed, and the
// same for the value and the gradient of one step.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>

#include "gradc/session.h"

using namespace gradc;

namespace {

const char* kModel =
    "dim B = 64\n"
    "dim D = 128\n"
    "input x : [B, D]\n"
    "param w : [D] ~ ones\n"
    "y = dropout(x * w, p=0.25)\n"
    "z = dropout(x * w, 0.25)\n"
    "output y, z\n"
    "loss sum(y) / 64\n"
    "optimizer sgd(lr = 0.5)\n";

NamedTensors batch() {
  Tensor x(DType::F32, {64, 128});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, 1.0 + static_cast<double>(i % 7));
  return {{"x", x}};
}

const Tensor& named(const NamedTensors& ts, const std::string& name) {
  const Tensor* t = find_tensor(ts, name);
  REQUIRE(t != nullptr);
  return *t;
}

bool same(const Tensor& a, const Tensor& b) {
  if (a.numel() != b.numel()) return false;
  for (int64_t i = 0; i < a.numel(); ++i)
    if (a.get(i) != b.get(i)) return false;
  return true;
}

}  // namespace

TEST_CASE("dropout: identity in forward, masks in grad that match across backends and threads") {
  Model m = Model::compile_source(kModel, "drop.grad");
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  NamedTensors in = batch();
  const Tensor& x = named(in, "x");

  Session jit(m, {Backend::Jit});
  NamedTensors fwd = jit.forward(in);
  CHECK(same(named(fwd, "out.y"), x));

  NamedTensors g = jit.grad(in);
  const Tensor &y = named(g, "out.y"), &z = named(g, "out.z"), &gw = named(g, "grad.w");
  int64_t kept = 0;
  for (int64_t i = 0; i < y.numel(); ++i) {
    if (y.get(i) == 0) continue;
    ++kept;
    CHECK(y.get(i) == Approx(x.get(i) / 0.75).epsilon(1e-6));
  }
  // 8192 elements kept with probability 0.75: within 5 standard deviations.
  CHECK(std::fabs(static_cast<double>(kept) / 8192 - 0.75) < 5 * std::sqrt(0.75 * 0.25 / 8192));
  CHECK_FALSE(same(y, z));  // two call sites, two masks
  // d loss / d w[j] = sum over rows of the kept x / 0.75, / 64: the mask of the value.
  for (int64_t j = 0; j < 128; ++j) {
    double want = 0;
    for (int64_t r = 0; r < 64; ++r) want += y.get(r * 128 + j) / 64;
    CHECK(gw.get(j) == Approx(want).epsilon(1e-5));
  }

  SessionOptions two;
  two.threads = 2;
  Session interp(m, {Backend::Interpreter}), threaded(m, two);
  CHECK(same(named(interp.grad(in), "out.y"), y));
  CHECK(same(named(threaded.grad(in), "out.y"), y));

  SessionOptions other_seed;
  other_seed.seed = 7;
  CHECK_FALSE(same(named(Session(m, other_seed).grad(in), "out.y"), y));
}

TEST_CASE("dropout: every train_step draws a new mask, and a resumed session the same ones") {
  Model m = Model::compile_source(kModel, "drop.grad");
  REQUIRE(m.ok());
  NamedTensors in = batch();
  Session s(m);
  Tensor first = named(s.grad(in), "out.y");
  s.train_step(in);
  Tensor second = named(s.grad(in), "out.y");
  CHECK_FALSE(same(first, second));  // step 2's mask differs from step 1's

  // A session restored at step 1 sees step 2's mask again.
  Session t(m);
  t.train_step(in);
  Session u(m);
  u.restore(t.checkpoint());
  CHECK(u.step() == 1);
  CHECK(same(named(u.grad(in), "out.y"), second));
}
