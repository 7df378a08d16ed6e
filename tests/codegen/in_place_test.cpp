// train_step writes new params and optimizer state over the old ones where
// the plan allows it (kernels.h, can_update_in_place). These tests check the
// rule on hand-made plans, that real models update every param and state in
// place and still train exactly like the interpreter (which double-buffers),
// and that a step failed by a run-time check changes nothing.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "compiler/codegen/kernels.h"
#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

// Buffers of the hand-made plans: 0 the old value, 1 the new one, 2 a gradient, 3 other.
constexpr int kOld = 0, kNew = 1, kGrad = 2, kOther = 3;

Affine row(int64_t offset = 0) { return Affine{offset, {1}}; }

int load(Kernel& k, int buffer, Affine map = row()) {
  KExpr e;
  e.kind = KExpr::Kind::Load;
  e.buffer = buffer;
  e.map = map;
  k.exprs.push_back(e);
  return static_cast<int>(k.exprs.size()) - 1;
}

int sub(Kernel& k, int a, int b) {
  KExpr e;
  e.kind = KExpr::Kind::Op;
  e.op = Op::Sub;
  e.args = {a, b};
  k.exprs.push_back(e);
  return static_cast<int>(k.exprs.size()) - 1;
}

// new[i] = old[at(i)] - grad[i]
Kernel update(Affine at = row()) {
  Kernel k;
  k.dims = {8};
  k.root = sub(k, load(k, kOld, at), load(k, kGrad));
  k.out = kNew;
  k.out_map = row();
  return k;
}

Kernel reader(int buffer) {
  Kernel k;
  k.dims = {8};
  k.root = load(k, buffer);
  k.out = kOther;
  k.out_map = row();
  return k;
}

// grad = a @ b over (m, n, k) = (2, 4, 4), with epilogues given as (out, root).
Kernel product(int a, int b) {
  Kernel k;
  k.kind = Kernel::Kind::MatMul;
  k.dims = {2, 4, 4};
  k.out = kGrad;
  k.a = a, k.b = b;
  k.out_map = Affine{0, {4, 1, 0}};
  k.a_map = Affine{0, {4, 0, 1}};
  k.b_map = Affine{0, {0, 1, 4}};
  return k;
}

void add_epilogue(Kernel& k, int out, int root) {
  Kernel::Epilogue e;
  e.out = out;
  e.root = root;
  e.map = k.out_map;
  k.epilogues.push_back(e);
}

Program plan(std::vector<Kernel> kernels) {
  Program p;
  p.kernels = std::move(kernels);
  return p;
}

}  // namespace

TEST_CASE("can_update_in_place: the rule on hand-made plans", "[codegen][in_place]") {
  SECTION("an elementwise update after every reader of the old value") {
    CHECK(can_update_in_place(plan({reader(kOld), update()}), kOld, kNew));
  }
  SECTION("the old value read after the update") {
    CHECK_FALSE(can_update_in_place(plan({update(), reader(kOld)}), kOld, kNew));
  }
  SECTION("the new value read after the update is fine (it is the new value either way)") {
    CHECK(can_update_in_place(plan({update(), reader(kNew)}), kOld, kNew));
  }
  SECTION("the old value read at another element in the updating kernel") {
    CHECK_FALSE(can_update_in_place(plan({update(row(1))}), kOld, kNew));
  }
  SECTION("a run-time check after the update") {
    Kernel check = reader(kOther);
    check.kind = Kernel::Kind::CheckRange;
    check.out = -1;
    CHECK_FALSE(can_update_in_place(plan({update(), check}), kOld, kNew));
    CHECK(can_update_in_place(plan({check, update()}), kOld, kNew));
  }
  SECTION("two kernels write the new value") {
    CHECK_FALSE(can_update_in_place(plan({update(), update()}), kOld, kNew));
  }
  SECTION("nothing writes it") {
    CHECK_FALSE(can_update_in_place(plan({reader(kOld)}), kOld, kNew));
  }
  SECTION("an update fused into the product that makes the gradient") {
    Kernel k = product(kOther, kOther);
    Affine at = k.out_map;
    add_epilogue(k, kNew, sub(k, load(k, kOld, at), load(k, kGrad, at)));
    CHECK(can_update_in_place(plan({k}), kOld, kNew));
  }
  SECTION("the old value as an operand of that product") {
    Kernel k = product(kOld, kOther);
    Affine at = k.out_map;
    add_epilogue(k, kNew, sub(k, load(k, kOld, at), load(k, kGrad, at)));
    CHECK_FALSE(can_update_in_place(plan({k}), kOld, kNew));
  }
  SECTION("the old value read by a later epilogue of that product") {
    Kernel k = product(kOther, kOther);
    Affine at = k.out_map;
    add_epilogue(k, kNew, sub(k, load(k, kOld, at), load(k, kGrad, at)));
    add_epilogue(k, kOther, load(k, kOld, at));
    CHECK_FALSE(can_update_in_place(plan({k}), kOld, kNew));
  }
  SECTION("the old value read by an earlier epilogue at the same element") {
    Kernel k = product(kOther, kOther);
    Affine at = k.out_map;
    add_epilogue(k, kOther, load(k, kOld, at));
    add_epilogue(k, kNew, sub(k, load(k, kOld, at), load(k, kGrad, at)));
    CHECK(can_update_in_place(plan({k}), kOld, kNew));
  }
}

namespace {

const char* kMlp = R"(dim B = 32
dim D = 40
dim H = 64
dim C = 5
input x : [B, D]
input label : i32[B]
param W1 : [D, H] ~ he_uniform
param b1 : [H]
param W2 : [H, C] ~ xavier_uniform
param b2 : [C]
h = relu(x @ W1 + b1)
loss cross_entropy(h @ W2 + b2, label)
optimizer )";

bool same_bits(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].second.shape() != b[i].second.shape() ||
        std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()) != 0)
      return false;
  return true;
}

}  // namespace

TEST_CASE("train_step updates every param and optimizer state in place and matches the interpreter", "[codegen][in_place]") {
  for (const char* opt : {"sgd(lr = 0.1)", "sgd(lr = 0.05, momentum = 0.9, nesterov = 1, weight_decay = 0.01)",
                          "adam(lr = 0.01)", "adamw(lr = 0.01, weight_decay = 0.1)",
                          "rmsprop(lr = 0.01, momentum = 0.5, centered = 1)", "adagrad(lr = 0.1)"}) {
    SECTION(opt) {
      Model m = Model::compile_source(std::string(kMlp) + opt + "\n", "mlp.grad");
      REQUIRE(m.ok());
      std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
      INFO(loops);
      Session jit(m, {Backend::Jit, 5});
      Session interp(m, {Backend::Interpreter, 5});
      size_t in_place = 0;
      for (size_t at = 0; (at = loops.find("(not used: updated in place in b", at)) != std::string::npos; ++at) ++in_place;
      CHECK(in_place == jit.params().size() + jit.optimizer_state().size());
      NamedTensors in = test::random_inputs(m.info(), 3);
      // (Tolerances: f32 rounding; a few Adam-like steps of ~lr * sign(g) amplify it.)
      for (int step = 0; step < 3; ++step) CHECK(jit.train_step(in) == Approx(interp.train_step(in)).epsilon(1e-5));
      REQUIRE(jit.params().size() == interp.params().size());
      for (size_t i = 0; i < jit.params().size(); ++i) {
        const Tensor &a = jit.params()[i].second, &b = interp.params()[i].second;
        for (int64_t j = 0; j < a.numel(); ++j) CHECK(a.get(j) == Approx(b.get(j)).epsilon(1e-4).margin(1e-4));
      }
      for (size_t i = 0; i < jit.optimizer_state().size(); ++i) {
        const Tensor &a = jit.optimizer_state()[i].second, &b = interp.optimizer_state()[i].second;
        for (int64_t j = 0; j < a.numel(); ++j) CHECK(a.get(j) == Approx(b.get(j)).epsilon(1e-4).margin(1e-4));
      }
    }
  }
}

TEST_CASE("a train_step that fails its class-id check changes no param or state", "[codegen][in_place]") {
  Model m = Model::compile_source(std::string(kMlp) + "adam(lr = 0.01)\n", "mlp.grad");
  REQUIRE(m.ok());
  REQUIRE(m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep).find("updated in place") != std::string::npos);
  NamedTensors in = test::random_inputs(m.info(), 3);
  Session s(m, {Backend::Jit, 5});
  s.train_step(in);  // some state to keep
  NamedTensors params = s.params(), state = s.optimizer_state();
  for (auto& [name, t] : in)
    if (name == "label") t.set(7, 5.0);  // C = 5: out of range
  CHECK_THROWS_WITH(s.train_step(in), Catch::Contains("outside [0, 5)"));
  CHECK(s.step() == 1);
  CHECK(same_bits(params, s.params()));
  CHECK(same_bits(state, s.optimizer_state()));
}
