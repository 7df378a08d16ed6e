// The Builder: the one way to create graph nodes.
//
// It infers each node's type with the shape rules and interns the node in the
// graph. The front end calls try_make and turns a failure into a diagnostic
// at the user's source location; autodiff and passes call make, where a type
// error is a compiler bug. New nodes take the builder's current location
// (set with at()), so nodes made by lowering or autodiff still point at the
// DSL line that caused them.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "compiler/ir/shape_rules.h"

namespace gradc {

class Builder {
 public:
  explicit Builder(Graph& g) : g_(&g) {}

  // Creates (or finds) the node; on a type error returns kNoNode and sets error().
  NodeId try_make(Op op, std::vector<NodeId> operands, Attrs attrs = {});
  // As try_make, but a type error is an internal compiler error.
  NodeId make(Op op, std::vector<NodeId> operands, Attrs attrs = {});
  const std::string& error() const { return error_; }

  // The location given to new nodes; returns the previous one.
  SourceLoc at(SourceLoc loc) {
    SourceLoc old = loc_;
    loc_ = loc;
    return old;
  }
  SourceLoc loc() const { return loc_; }

  Graph& graph() { return *g_; }
  const Graph& graph() const { return *g_; }
  const Node& operator[](NodeId id) const { return (*g_)[id]; }
  // Builds into `g` from now on (the front end analyzing a loop body);
  // returns the graph it built into before.
  Graph& rebind(Graph& g) {
    Graph& old = *g_;
    g_ = &g;
    return old;
  }

  // ---- leaves ----
  NodeId leaf(Op op, std::string name, DType dtype, Shape shape);
  NodeId constant(double value, DType dtype);
  // A scalar constant of x's (float) dtype.
  NodeId scalar_like(double value, NodeId x) { return constant(value, (*g_)[x].dtype); }
  // A tensor of x's type filled with `value` (a broadcast scalar).
  NodeId full_like(double value, NodeId x);

  // ---- elementwise ----
  NodeId unary(Op op, NodeId x) { return make(op, {x}); }
  NodeId binary(Op op, NodeId a, NodeId b) { return make(op, {a, b}); }
  NodeId add(NodeId a, NodeId b) { return binary(Op::Add, a, b); }
  NodeId sub(NodeId a, NodeId b) { return binary(Op::Sub, a, b); }
  NodeId mul(NodeId a, NodeId b) { return binary(Op::Mul, a, b); }
  NodeId div(NodeId a, NodeId b) { return binary(Op::Div, a, b); }
  NodeId neg(NodeId x) { return unary(Op::Neg, x); }
  NodeId where(NodeId c, NodeId a, NodeId b) { return make(Op::Where, {c, a, b}); }

  // ---- reductions and shapes ----
  NodeId reduce(Op op, NodeId x, std::vector<int64_t> axes, bool keepdims);
  NodeId sum_all(NodeId x);
  NodeId reshape(NodeId x, std::vector<int64_t> sizes);
  NodeId transpose(NodeId x, std::vector<int64_t> perm);
  // Swaps the last two axes.
  NodeId transpose_last2(NodeId x);
  NodeId broadcast_to(NodeId x, const Shape& shape);
  // Sums a broadcast result back to `shape` (the reverse of broadcasting).
  NodeId sum_to(NodeId x, const Shape& shape);
  NodeId cast(NodeId x, DType to);

 private:
  Graph* g_;
  SourceLoc loc_;
  std::string error_;
};

}  // namespace gradc
