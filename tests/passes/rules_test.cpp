// One tiny before/after case per rule of the optimization passes
// (compiler/passes: simplify.cpp, const_fold.cpp, cleanup.cpp), and the cases
// each rule must leave alone. Graphs are built with the Builder; a result is
// read back as a one-line expression, e.g. "add(x, 2)".
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <string>
#include <vector>

#include "compiler/ir/builder.h"
#include "compiler/ir/printer.h"
#include "compiler/passes/cleanup.h"
#include "compiler/passes/const_fold.h"
#include "compiler/passes/pipeline.h"
#include "compiler/passes/rebuild.h"
#include "compiler/passes/simplify.h"

namespace gradc {
namespace {

// A model under construction: leaves are inputs, the expressions under test
// its outputs (y0, y1, ...), and a scalar input is the loss.
struct Fixture {
  ModelIR m;
  Builder b{m.graph};

  Fixture() {
    m.name = "rules";
    m.loss = {"loss", input("l", {}), {}};
  }
  NodeId input(const char* name, std::initializer_list<int64_t> shape, DType t = DType::F32) {
    NodeId id = b.leaf(Op::Input, name, t, make_shape(shape));
    m.inputs.push_back({name, id, {}});
    return id;
  }
  NodeId c(double v, DType t = DType::F32) { return b.constant(v, t); }
  // A scalar constant broadcast to `shape`.
  NodeId full(double v, std::initializer_list<int64_t> shape) { return b.broadcast_to(c(v), make_shape(shape)); }
  NodeId make(Op op, std::vector<NodeId> operands, std::vector<int64_t> ints = {}) {
    Attrs a;
    a.ints = std::move(ints);
    return b.make(op, std::move(operands), std::move(a));
  }

  // The outputs after `pass`, each as an expression.
  template <class Pass>
  std::vector<std::string> after(Pass pass, const std::vector<NodeId>& ys, size_t* rewrites = nullptr) {
    m.outputs.clear();
    for (size_t i = 0; i < ys.size(); ++i) m.outputs.push_back({fmt::format("y{}", i), ys[i], {}});
    out = pass(m, rewrites);
    std::vector<std::string> es;
    for (const NamedNode& o : out.outputs) es.push_back(expr(out.graph, o.node));
    return es;
  }
  // One output after `pass`, and the number of rewrites the pass reports.
  template <class Pass>
  std::string after1(Pass pass, NodeId y) {
    size_t n = 0;
    std::string e = after(pass, {y}, &n)[0];
    rewrites = n;
    return e;
  }
  std::string simplified(NodeId y) { return after1(simplify_once, y); }
  std::string folded(NodeId y) { return after1(fold_constants, y); }

  static std::string expr(const Graph& g, NodeId id) {
    const Node& n = g[id];
    if (n.op == Op::Constant) return fmt::format("{}", n.attrs.value);
    if (op_kind(n.op) == OpKind::Leaf) return n.attrs.name;
    std::string s(op_name(n.op));
    if (!n.attrs.ints.empty() && n.op != Op::Cast) s += fmt::format("[{}]", fmt::join(n.attrs.ints, ", "));
    std::vector<std::string> args;
    for (NodeId o : n.operands) args.push_back(expr(g, o));
    return s + fmt::format("({})", fmt::join(args, ", "));
  }

  ModelIR out;          // the last pass's result
  size_t rewrites = 0;  // what the last after1() reported
};

}  // namespace

// ---- simplify.cpp: one rule per case ----

TEST_CASE("simplify: a broadcast scalar operand becomes the scalar", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2, 3});
  CHECK(f.simplified(f.b.mul(x, f.full(2, {2, 3}))) == "mul(x, 2)");
  CHECK(f.rewrites == 1);
  // A node changed by this rule waits for the next sweep for the others.
  CHECK(f.simplified(f.make(Op::Where, {f.full(1, {2, 3}), x, x})) == "where(1, x, x)");
  CHECK(f.simplified(f.b.binary(Op::Lt, f.full(0, {2, 3}), x)) == "lt(0, x)");
  // Kept when the broadcast is what gives the result its shape.
  NodeId v = f.input("v", {3});
  CHECK(f.simplified(f.b.mul(v, f.full(2, {2, 3}))) == "mul(v, broadcast_to[2, 3](2))");
  CHECK(f.rewrites == 0);
}

TEST_CASE("simplify: stop_gradient(x) -> x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  CHECK(f.simplified(f.b.unary(Op::StopGradient, x)) == "x");
}

TEST_CASE("simplify: x + 0 -> x, 0 + x -> x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2, 3});
  CHECK(f.simplified(f.b.add(x, f.c(0))) == "x");
  CHECK(f.simplified(f.b.add(f.c(0), x)) == "x");
  // A broadcast 0 of the result's shape is unbroadcast first; the next sweep removes it.
  CHECK(f.simplified(f.b.add(x, f.full(0, {2, 3}))) == "add(x, 0)");
  // x smaller than the result: x broadcast to the result's shape.
  NodeId v = f.input("v", {3});
  CHECK(f.simplified(f.b.add(v, f.full(0, {2, 3}))) == "broadcast_to[2, 3](v)");
  CHECK(f.simplified(f.b.add(x, f.c(1))) == "add(x, 1)");
  CHECK(f.rewrites == 0);
}

TEST_CASE("simplify: pads of disjoint ranges of one axis add up to a concatenation", "[passes][simplify]") {
  Fixture f;
  NodeId a = f.input("a", {2, 3}), b = f.input("b", {2, 4}), c = f.input("c", {2, 2});
  // Covering the axis, in either order: a concatenation alone.
  CHECK(f.simplified(f.b.add(f.make(Op::Pad, {a}, {1, 0, 4}), f.make(Op::Pad, {b}, {1, 3, 0}))) == "concat[1](a, b)");
  CHECK(f.simplified(f.b.add(f.make(Op::Pad, {b}, {1, 3, 0}), f.make(Op::Pad, {a}, {1, 0, 4}))) == "concat[1](a, b)");
  // A gap between them is zeros; room at the ends stays a pad.
  CHECK(f.simplified(f.b.add(f.make(Op::Pad, {a}, {1, 1, 5}), f.make(Op::Pad, {c}, {1, 6, 1}))) ==
        "pad[1, 1, 1](concat[1](a, broadcast_to[2, 2](0), c))");
  // Three slices' gradients (a GRU's gates): after the next sweep, one flat concatenation.
  NodeId three = f.b.add(f.b.add(f.make(Op::Pad, {c}, {1, 7, 0}), f.make(Op::Pad, {b}, {1, 3, 2})),
                         f.make(Op::Pad, {a}, {1, 0, 6}));
  CHECK(f.simplified(three) == "concat[1](a, concat[1](b, c))");
  auto whole = [](const ModelIR& m, size_t*) { return optimize(m); };
  CHECK(f.after(whole, {three})[0] == "concat[1](a, b, c)");
  // Left alone: ranges that overlap, pads along different axes, and a pad plus
  // something else.
  CHECK(f.simplified(f.b.add(f.make(Op::Pad, {a}, {1, 0, 4}), f.make(Op::Pad, {b}, {1, 2, 1}))) ==
        "add(pad[1, 0, 4](a), pad[1, 2, 1](b))");
  NodeId r = f.input("r", {1, 7});
  CHECK(f.simplified(f.b.add(f.make(Op::Pad, {r}, {0, 1, 0}), f.make(Op::Pad, {a}, {1, 0, 4}))) ==
        "add(pad[0, 1, 0](r), pad[1, 0, 4](a))");
  NodeId x = f.input("x", {2, 7});
  CHECK(f.simplified(f.b.add(x, f.make(Op::Pad, {a}, {1, 0, 4}))) == "add(x, pad[1, 0, 4](a))");
  CHECK(f.rewrites == 0);
}

TEST_CASE("simplify: x - 0 -> x, 0 - x -> -x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2, 3});
  CHECK(f.simplified(f.b.sub(x, f.c(0))) == "x");
  CHECK(f.simplified(f.b.sub(f.c(0), x)) == "neg(x)");
  // 0 - v with v smaller than the result is kept (neg(v) would have v's shape).
  NodeId v = f.input("v", {3});
  CHECK(f.simplified(f.b.sub(f.full(0, {2, 3}), v)) == "sub(broadcast_to[2, 3](0), v)");
  CHECK(f.rewrites == 0);
}

TEST_CASE("simplify: x * 1 -> x, 1 * x -> x, and x * 0 is kept", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  CHECK(f.simplified(f.b.mul(x, f.c(1))) == "x");
  CHECK(f.simplified(f.b.mul(f.c(1), x)) == "x");
  // x * 0 is NaN for x = inf or NaN: not 0.
  CHECK(f.simplified(f.b.mul(x, f.c(0))) == "mul(x, 0)");
  CHECK(f.rewrites == 0);
}

TEST_CASE("simplify: x / 1 -> x, and 1 / x is kept", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  CHECK(f.simplified(f.b.div(x, f.c(1))) == "x");
  CHECK(f.simplified(f.b.div(f.c(1), x)) == "div(1, x)");
}

TEST_CASE("simplify: x ^ 1 -> x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  CHECK(f.simplified(f.b.binary(Op::Pow, x, f.c(1))) == "x");
  CHECK(f.simplified(f.b.binary(Op::Pow, x, f.c(2))) == "pow(x, 2)");
}

TEST_CASE("simplify: -(-x) -> x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  CHECK(f.simplified(f.b.neg(f.b.neg(x))) == "x");
  CHECK(f.simplified(f.b.neg(x)) == "neg(x)");
}

TEST_CASE("simplify: where(c, a, a) -> a", "[passes][simplify]") {
  Fixture f;
  NodeId c = f.input("c", {2}), a = f.input("a", {2}), b = f.input("b", {2});
  CHECK(f.simplified(f.b.where(c, a, a)) == "a");
  CHECK(f.simplified(f.b.where(c, a, b)) == "where(c, a, b)");
  // a smaller than the result: a broadcast.
  NodeId m = f.input("m", {3, 2});
  CHECK(f.simplified(f.b.where(m, a, a)) == "broadcast_to[3, 2](a)");
}

TEST_CASE("simplify: reshape(reshape(x)) -> reshape(x), reshape to x's shape -> x", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2, 3});
  CHECK(f.simplified(f.b.reshape(f.b.reshape(x, {6}), {3, 2})) == "reshape[3, 2](x)");
  CHECK(f.simplified(f.b.reshape(f.b.reshape(x, {6}), {2, 3})) == "x");
  // The Builder never makes a reshape to the same shape; a rewrite may.
  CHECK(f.simplified(f.make(Op::Reshape, {x}, {2, 3})) == "x");
}

TEST_CASE("simplify: transpose(transpose(x, p), q) -> transpose(x, p[q])", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2, 3, 4});
  CHECK(f.simplified(f.b.transpose(f.b.transpose(x, {1, 2, 0}), {1, 0, 2})) == "transpose[2, 1, 0](x)");
  CHECK(f.simplified(f.b.transpose(f.b.transpose(x, {1, 2, 0}), {2, 0, 1})) == "x");
  CHECK(f.simplified(f.b.transpose(x, {2, 1, 0})) == "transpose[2, 1, 0](x)");
}

TEST_CASE("simplify: broadcast_to(broadcast_to(x)) -> broadcast_to(x)", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {3});
  CHECK(f.simplified(f.b.broadcast_to(f.b.broadcast_to(x, make_shape({2, 3})), make_shape({4, 2, 3}))) ==
        "broadcast_to[4, 2, 3](x)");
}

TEST_CASE("simplify: a reduction over axes of size 1 is a reshape", "[passes][simplify]") {
  for (Op op : {Op::ReduceSum, Op::ReduceMax, Op::ReduceMin}) {
    INFO(op_name(op));
    Fixture f;
    NodeId x = f.input("x", {2, 1, 3});
    CHECK(f.simplified(f.b.reduce(op, x, {1}, false)) == "reshape[2, 3](x)");
    CHECK(f.simplified(f.b.reduce(op, x, {1}, true)) == "x");
    CHECK(f.simplified(f.b.reduce(op, x, {0, 1}, false)) == fmt::format("{}[0, 1](x)", op_name(op)));
  }
}

TEST_CASE("simplify: nodes that rewriting made equal become one (rebuild's interning)", "[passes][simplify]") {
  Fixture f;
  NodeId x = f.input("x", {2}), y = f.input("y", {2});
  std::vector<std::string> es = f.after(simplify_once, {f.b.mul(f.b.add(x, f.c(0)), y), f.b.mul(x, y)});
  CHECK(es == std::vector<std::string>{"mul(x, y)", "mul(x, y)"});
  CHECK(f.out.outputs[0].node == f.out.outputs[1].node);
}

// ---- const_fold.cpp ----

TEST_CASE("const_fold: elementwise ops of scalar constants become constants", "[passes][const_fold]") {
  Fixture f;
  CHECK(f.folded(f.b.neg(f.c(2))) == "-2");                        // unary
  CHECK(f.rewrites == 1);
  CHECK(f.folded(f.b.unary(Op::Exp, f.c(0))) == "1");
  CHECK(f.folded(f.b.add(f.c(2), f.c(3))) == "5");                 // binary
  CHECK(f.folded(f.b.binary(Op::Maximum, f.c(2), f.c(3))) == "3");
  CHECK(f.folded(f.b.binary(Op::Lt, f.c(1), f.c(2))) == "1");      // compare
  CHECK(f.folded(f.b.binary(Op::Eq, f.c(1), f.c(2))) == "0");
  CHECK(f.folded(f.b.where(f.c(0), f.c(2), f.c(3))) == "3");       // select
  CHECK(f.folded(f.b.where(f.c(1), f.c(2), f.c(3))) == "2");
  NodeId wide = f.b.cast(f.c(2, DType::I32), DType::F64);          // cast
  CHECK(f.folded(wide) == "2");
  CHECK(f.out.graph[f.out.outputs[0].node].dtype == DType::F64);
  // Folding repeats through a chain in one sweep: operands fold first.
  CHECK(f.folded(f.b.mul(f.b.add(f.c(1), f.c(2)), f.c(4))) == "12");
}

TEST_CASE("const_fold: the value is rounded to the node's dtype", "[passes][const_fold]") {
  Fixture f;
  NodeId y = f.b.add(f.c(0.1), f.c(0.2));  // f32
  f.folded(y);
  CHECK(f.out.graph[f.out.outputs[0].node].attrs.value == static_cast<double>(0.1f + 0.2f));
  NodeId z = f.b.add(f.c(0.1, DType::F64), f.c(0.2, DType::F64));
  f.folded(z);
  CHECK(f.out.graph[f.out.outputs[0].node].attrs.value == 0.1 + 0.2);
}

TEST_CASE("const_fold: leaves alone ops with a non-constant or non-scalar operand", "[passes][const_fold]") {
  Fixture f;
  NodeId x = f.input("x", {});
  CHECK(f.folded(f.b.add(x, f.c(1))) == "add(x, 1)");
  CHECK(f.rewrites == 0);
  CHECK(f.folded(f.b.neg(f.full(2, {3}))) == "neg(broadcast_to[3](2))");  // not scalar: the simplifier's
  CHECK(f.rewrites == 0);
  CHECK(f.folded(f.b.reduce(Op::ReduceSum, f.full(2, {3}), {0}, false)) == "reduce_sum[0](broadcast_to[3](2))");
}

// ---- cleanup.cpp ----

TEST_CASE("cleanup: dead nodes are dropped, live ones kept in order", "[passes][cleanup]") {
  Fixture f;
  NodeId x = f.input("x", {2});
  f.b.unary(Op::Exp, x);  // used by nothing
  NodeId y = f.b.unary(Op::Tanh, x);
  CHECK(f.after1(eliminate_dead_and_common, y) == "tanh(x)");
  CHECK(f.rewrites == 0);
  CHECK(f.m.graph.size() == 4);  // l, x, exp, tanh
  CHECK(f.out.graph.size() == 3);
  CHECK(live_node_count(f.out) == 3);
}

// ---- pipeline.cpp ----

// 0 - (-x) becomes -(-x) in the first round without shrinking the graph (the
// 0 stays, another output uses it); only the second round's -(-x) -> x
// shrinks it. The fixed point is "no rewrite applied", so the second round runs.
TEST_CASE("pipeline: rounds run until one applies no rewrite, not until the graph stops shrinking",
          "[passes][pipeline]") {
  Fixture f;
  NodeId x = f.input("x", {2}), z = f.input("z", {2});
  std::vector<PassRecord> log;
  std::vector<std::string> seen;
  auto optimized = [&](const ModelIR& in, size_t*) {
    return optimize(in, &log, [&](std::string_view pass, const ModelIR&) { seen.emplace_back(pass); });
  };
  std::vector<std::string> es = f.after(optimized, {f.b.sub(f.c(0), f.b.neg(x)), f.b.mul(z, f.c(0))});
  CHECK(es == std::vector<std::string>{"x", "mul(z, 0)"});
  std::vector<std::string> passes;
  for (const PassRecord& r : log) passes.push_back(r.pass);
  CHECK(passes == std::vector<std::string>{"cleanup", "const_fold", "simplify", "const_fold", "simplify", "const_fold",
                                           "simplify"});
  CHECK(seen == passes);
  CHECK(log[2].nodes_after == log[1].nodes_after);  // round 1 shrinks nothing
  CHECK(log[4].nodes_after < log[2].nodes_after);
}

}  // namespace gradc
