// Structural tests of reverse-mode autodiff (compiler/autodiff): graphs are
// built with the Builder, differentiated with gradients(), and the result is
// checked by the verifier; every gradient must have the type of its x.
#include <catch2/catch.hpp>

#include "compiler/autodiff/reverse.h"
#include "compiler/ir/verifier.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// A graph, a builder, and helpers to make leaves.
struct Fixture {
  Graph g;
  Builder b{g};

  NodeId param(const char* name, std::initializer_list<int64_t> shape, DType t = DType::F32) {
    return b.leaf(Op::Param, name, t, make_shape(shape));
  }
  NodeId input(const char* name, std::initializer_list<int64_t> shape, DType t = DType::F32) {
    return b.leaf(Op::Input, name, t, make_shape(shape));
  }
  NodeId make(Op op, std::vector<NodeId> operands, std::vector<int64_t> ints = {}) {
    Attrs a;
    a.ints = std::move(ints);
    return b.make(op, std::move(operands), std::move(a));
  }
  // d sum(y) / d xs, checked: the graph verifies and each gradient has its x's type.
  std::vector<NodeId> grads_of_sum(NodeId y, const std::vector<NodeId>& xs) {
    NodeId l = g[y].shape.empty() ? y : b.sum_all(y);
    std::vector<NodeId> gs = gradients(b, l, xs);
    REQUIRE(gs.size() == xs.size());
    CHECK_NOTHROW(verify_graph(g));
    for (size_t i = 0; i < xs.size(); ++i) {
      INFO("gradient " << i << ": " << type_str(g[gs[i]].dtype, g[gs[i]].shape) << " for x of type "
                       << type_str(g[xs[i]].dtype, g[xs[i]].shape));
      CHECK(g[gs[i]].shape == g[xs[i]].shape);
      CHECK(g[gs[i]].dtype == g[xs[i]].dtype);
    }
    return gs;
  }
  bool is_zeros(NodeId id) const {
    const Node& n = g[id];
    if (n.op == Op::Constant) return n.attrs.value == 0;
    return n.op == Op::BroadcastTo && g[n.operands[0]].op == Op::Constant && g[n.operands[0]].attrs.value == 0;
  }
};

TEST_CASE("autodiff: broadcasting add and mul sum back to each operand", "[autodiff]") {
  Fixture f;
  NodeId a = f.param("a", {2, 1, 3});
  NodeId c = f.param("c", {4, 1});
  NodeId s = f.param("s", {});
  NodeId y = f.b.mul(f.b.add(a, c), s);
  REQUIRE(f.g[y].shape == make_shape({2, 4, 3}));
  auto gs = f.grads_of_sum(y, {a, c, s});
  for (NodeId gid : gs) CHECK_FALSE(f.is_zeros(gid));
}

TEST_CASE("autodiff: every binary op with broadcasting", "[autodiff]") {
  for (Op op : {Op::Add, Op::Sub, Op::Mul, Op::Div, Op::Pow, Op::Maximum, Op::Minimum}) {
    INFO(op_name(op));
    Fixture f;
    NodeId a = f.param("a", {3, 1});
    NodeId c = f.param("c", {4});
    f.grads_of_sum(f.b.binary(op, a, c), {a, c});
    // And with a scalar constant on either side.
    Fixture h;
    NodeId x = h.param("x", {2, 2});
    h.grads_of_sum(h.b.binary(op, x, h.b.constant(2, DType::F32)), {x});
    h.grads_of_sum(h.b.binary(op, h.b.constant(2, DType::F32), x), {x});
  }
}

TEST_CASE("autodiff: every unary op", "[autodiff]") {
  for (Op op : {Op::Neg, Op::Exp, Op::Expm1, Op::Log, Op::Log1p, Op::Sqrt, Op::Rsqrt, Op::Abs, Op::Sign, Op::Sin,
                Op::Cos, Op::Tanh, Op::Sigmoid, Op::Softplus, Op::Erf, Op::StopGradient}) {
    INFO(op_name(op));
    Fixture f;
    NodeId x = f.param("x", {2, 3}, DType::F64);
    auto gs = f.grads_of_sum(f.b.unary(op, x), {x});
    CHECK(f.is_zeros(gs[0]) == (op == Op::Sign || op == Op::StopGradient));
  }
}

TEST_CASE("autodiff: where, comparisons and casts", "[autodiff]") {
  Fixture f;
  NodeId cnd = f.input("cond", {3, 1});
  NodeId a = f.param("a", {4});
  NodeId c = f.param("c", {});
  auto gs = f.grads_of_sum(f.b.where(cnd, a, c), {cnd, a, c});
  CHECK(f.is_zeros(gs[0]));  // nothing flows into the condition
  CHECK_FALSE(f.is_zeros(gs[1]));
  // Comparisons have zero gradient.
  Fixture h;
  NodeId x = h.param("x", {5});
  auto gc = h.grads_of_sum(h.b.binary(Op::Lt, x, h.b.constant(0, DType::F32)), {x});
  CHECK(h.is_zeros(gc[0]));
  // Through a cast the gradient comes back in x's dtype.
  Fixture k;
  NodeId x32 = k.param("x", {5});
  k.grads_of_sum(k.b.cast(k.b.cast(x32, DType::F64), DType::F32), {x32});
  k.grads_of_sum(k.b.unary(Op::Exp, k.b.cast(x32, DType::F64)), {x32});
}

TEST_CASE("autodiff: reductions, with and without keepdims", "[autodiff]") {
  for (Op op : {Op::ReduceSum, Op::ReduceMax, Op::ReduceMin}) {
    for (bool keep : {false, true}) {
      INFO(op_name(op) << (keep ? " keepdims" : ""));
      Fixture f;
      NodeId x = f.param("x", {3, 4, 5});
      NodeId r = f.b.reduce(op, x, {1}, keep);
      CHECK(f.g[r].shape == (keep ? make_shape({3, 1, 5}) : make_shape({3, 5})));
      // Multiply by something of the reduced shape so the adjoint is not uniform.
      NodeId w = f.param("w", {5});
      f.grads_of_sum(f.b.mul(r, w), {x, w});
      Fixture h;
      NodeId x2 = h.param("x", {3, 4, 5});
      h.grads_of_sum(h.b.reduce(op, x2, {0, 2}, keep), {x2});
      h.grads_of_sum(h.b.reduce(op, x2, {0, 1, 2}, keep), {x2});
    }
  }
}

TEST_CASE("autodiff: max reduction sends the gradient through a mask", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {4, 6});
  NodeId gmax = f.grads_of_sum(f.b.reduce(Op::ReduceMax, x, {1}, false), {x})[0];
  NodeId gsum = f.grads_of_sum(f.b.reduce(Op::ReduceSum, x, {1}, false), {x})[0];
  CHECK(gmax != gsum);
  CHECK(f.g[gmax].op == Op::Mul);
  // The mask is built from an argmax over the reduced axis.
  bool has_argmax = false;
  for (const Node& n : f.g.nodes()) has_argmax = has_argmax || n.op == Op::ArgMax;
  CHECK(has_argmax);
}

TEST_CASE("autodiff: matmul, plain and batched with broadcast", "[autodiff]") {
  Fixture f;
  NodeId a = f.param("a", {3, 4});
  NodeId c = f.param("c", {4, 5});
  f.grads_of_sum(f.b.make(Op::MatMul, {a, c}), {a, c});
  Fixture h;
  NodeId ba = h.param("a", {2, 1, 3, 4});
  NodeId bc = h.param("c", {5, 4, 6});
  NodeId y = h.b.make(Op::MatMul, {ba, bc});
  REQUIRE(h.g[y].shape == make_shape({2, 5, 3, 6}));
  auto gs = h.grads_of_sum(y, {ba, bc});
  CHECK_FALSE(h.is_zeros(gs[0]));
  CHECK_FALSE(h.is_zeros(gs[1]));
  Fixture k;
  NodeId m = k.param("m", {3, 4});
  NodeId t = k.param("t", {7, 4, 2});
  k.grads_of_sum(k.b.make(Op::MatMul, {m, t}), {m, t});
}

TEST_CASE("autodiff: shape ops", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {2, 3, 4});
  NodeId w = f.param("w", {4, 2, 3});
  f.grads_of_sum(f.b.mul(f.b.reshape(x, {6, 4}), f.b.reshape(w, {6, 4})), {x, w});
  f.grads_of_sum(f.b.mul(f.b.transpose(x, {2, 0, 1}), w), {x, w});
  f.grads_of_sum(f.b.transpose_last2(x), {x});
  NodeId v = f.param("v", {4});
  f.grads_of_sum(f.b.mul(f.b.broadcast_to(v, make_shape({2, 3, 4})), x), {v, x});
  NodeId u = f.param("u", {2, 5, 4});
  NodeId cat = f.make(Op::Concat, {x, u, x}, {1});
  REQUIRE(f.g[cat].shape == make_shape({2, 11, 4}));
  NodeId scale = f.param("scale", {11, 1});
  f.grads_of_sum(f.b.mul(cat, scale), {x, u, scale});
  NodeId sl = f.make(Op::Slice, {x}, {1, 1, 3});
  REQUIRE(f.g[sl].shape == make_shape({2, 2, 4}));
  f.grads_of_sum(f.b.mul(sl, sl), {x});
  f.grads_of_sum(f.make(Op::Pad, {x}, {2, 1, 3}), {x});
}

TEST_CASE("autodiff: zeros when y does not depend on x", "[autodiff]") {
  Fixture f;
  NodeId a = f.param("a", {3});
  NodeId x = f.param("x", {2, 2});
  NodeId s = f.param("s", {});
  NodeId d = f.param("d", {3}, DType::F64);
  NodeId y = f.b.sum_all(f.b.unary(Op::Exp, a));
  NodeId later = f.param("later", {5});  // created after y
  auto gs = f.grads_of_sum(y, {x, s, d, later, a});
  CHECK(f.is_zeros(gs[0]));
  CHECK(f.is_zeros(gs[1]));
  CHECK(f.is_zeros(gs[2]));
  CHECK(f.is_zeros(gs[3]));
  CHECK_FALSE(f.is_zeros(gs[4]));
  // Only through stop_gradient: zeros too.
  NodeId y2 = f.b.sum_all(f.b.mul(f.b.unary(Op::StopGradient, x), x));
  NodeId y3 = f.b.sum_all(f.b.unary(Op::StopGradient, f.b.mul(x, x)));
  CHECK_FALSE(f.is_zeros(f.grads_of_sum(y2, {x})[0]));
  CHECK(f.is_zeros(f.grads_of_sum(y3, {x})[0]));
}

TEST_CASE("autodiff: contributions that meet at a node are summed", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {3});
  // x feeds two branches: d/dx (sum(exp(x)) + sum(sin(x))) = exp(x) + cos(x).
  NodeId y = f.b.add(f.b.sum_all(f.b.unary(Op::Exp, x)), f.b.sum_all(f.b.unary(Op::Sin, x)));
  NodeId g = f.grads_of_sum(y, {x})[0];
  REQUIRE(f.g[g].op == Op::Add);
  bool exp_branch = false, cos_branch = false;
  for (NodeId o : f.g[g].operands)
    for (NodeId oo : f.g[o].operands) {
      exp_branch = exp_branch || f.g[oo].op == Op::Exp;
      cos_branch = cos_branch || f.g[oo].op == Op::Cos;
    }
  CHECK(exp_branch);
  CHECK(cos_branch);
  // x * x: both operand slots contribute.
  NodeId sq = f.grads_of_sum(f.b.mul(x, x), {x})[0];
  CHECK(f.g[sq].op == Op::Add);
}

TEST_CASE("autodiff: the gradient of y with respect to y is one", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {});
  NodeId g = gradients(f.b, x, {x})[0];
  REQUIRE(f.g[g].op == Op::Constant);
  CHECK(f.g[g].attrs.value == 1);
}

TEST_CASE("autodiff: gradients can be differentiated again", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {3});
  NodeId w = f.param("w", {3, 3});
  NodeId y = f.b.sum_all(f.b.unary(Op::Tanh, f.b.make(Op::MatMul, {f.b.reshape(x, {1, 3}), w})));
  NodeId g1 = f.grads_of_sum(y, {x})[0];
  NodeId g2 = f.grads_of_sum(g1, {x, w})[0];
  f.grads_of_sum(g2, {x, w});
  CHECK(f.g.size() < 200);  // hash-consing keeps third derivatives small (58 nodes today)
}

TEST_CASE("autodiff: new nodes keep a source location", "[autodiff]") {
  Fixture f;
  SourceManager sm;
  uint32_t file = sm.add("m.grad", "y = x * x\n");
  f.b.at({file, 4, 9});
  NodeId x = f.param("x", {3});
  NodeId y = f.b.sum_all(f.b.mul(x, x));
  size_t before = f.g.size();
  f.b.at({file, 0, 1});
  gradients(f.b, y, {x});
  REQUIRE(f.g.size() > before);
  for (size_t id = before; id < f.g.size(); ++id) {
    INFO("node %" << id << " " << op_name(f.g[static_cast<NodeId>(id)].op));
    CHECK(f.g[static_cast<NodeId>(id)].loc.valid());
  }
}

TEST_CASE("autodiff: a non-scalar or integer y is a compiler bug, not a crash", "[autodiff]") {
  Fixture f;
  NodeId x = f.param("x", {3});
  CHECK_THROWS_AS(gradients(f.b, x, {x}), InternalError);
  NodeId i = f.input("i", {}, DType::I32);
  CHECK_THROWS_AS(gradients(f.b, i, {x}), InternalError);
}

}  // namespace
}  // namespace gradc
