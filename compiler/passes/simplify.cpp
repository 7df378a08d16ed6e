// The simplification rules, one per comment.
#include "compiler/passes/simplify.h"

#include <cmath>
#include <utility>
#include <vector>

#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

// A scalar constant seen through broadcasts and reshapes, or nullptr.
const Node* constant_behind(Builder& b, NodeId id) {
  const Node* n = &b[id];
  while (n->op == Op::BroadcastTo || n->op == Op::Reshape) n = &b[n->operands[0]];
  return n->op == Op::Constant ? n : nullptr;
}

bool is_value(Builder& b, NodeId id, double v) {
  const Node* c = constant_behind(b, id);
  return c && c->attrs.value == v && !std::signbit(c->attrs.value) == !std::signbit(v);
}

// x, broadcast to the result's shape when it is smaller.
NodeId as_result(Builder& b, NodeId x, const Node& n) {
  if (b[x].dtype != n.dtype) return kNoNode;
  if (b[x].shape == n.shape) return x;
  // x must broadcast to n's shape; the node's own type check guaranteed it.
  return b.broadcast_to(x, n.shape);
}

// op(..., broadcast(c), ...) -> op(..., c, ...) when the result keeps its
// shape: elementwise ops broadcast scalars themselves.
NodeId unbroadcast_scalars(Builder& b, const Node& n) {
  OpKind k = op_kind(n.op);
  if (k != OpKind::Binary && k != OpKind::Compare && k != OpKind::Select) return kNoNode;
  std::vector<NodeId> ops = n.operands;
  bool changed = false;
  for (NodeId& o : ops) {
    const Node* c = constant_behind(b, o);
    if (c && b[o].op != Op::Constant) {
      NodeId scalar = b.constant(c->attrs.value, c->dtype);
      std::swap(o, scalar);
      InferResult r = infer_type(b.graph(), n.op, ops, n.attrs);
      if (r.error.empty() && r.shape == n.shape) changed = true;
      else std::swap(o, scalar);
    }
  }
  return changed ? b.make(n.op, ops, n.attrs) : kNoNode;
}

// pad(x, axis, s1, S - e1) + pad(y, axis, s2, S - e2) with [s1, e1) and
// [s2, e2) disjoint -> concat(x, zeros, y) along axis (the zeros only where
// the ranges leave a gap), padded where they leave the axis's ends. The
// gradient of a tensor sliced along one axis more than once (a GRU's or an
// LSTM's gates) is such a sum: as pads, each is a fill of the whole tensor
// and a copy, then an add per pair; as a concatenation, one copy per slice.
// Each element is the one operand's value (x + 0 gave +0 for x = -0).
NodeId disjoint_pads(Builder& b, const Node& n) {
  const Node &x = b[n.operands[0]], &y = b[n.operands[1]];
  if (x.op != Op::Pad || y.op != Op::Pad || x.shape != n.shape || y.shape != n.shape || x.dtype != n.dtype ||
      y.dtype != n.dtype || x.attrs.ints[0] != y.attrs.ints[0])
    return kNoNode;
  const int64_t axis = x.attrs.ints[0];
  const Dim& d = n.shape[static_cast<size_t>(axis)];
  if (d.dynamic) return kNoNode;
  struct Piece {
    NodeId value;
    int64_t start, stop;
  };
  Piece p = {x.operands[0], x.attrs.ints[1], d.size - x.attrs.ints[2]};
  Piece q = {y.operands[0], y.attrs.ints[1], d.size - y.attrs.ints[2]};
  if (q.start < p.start) std::swap(p, q);
  if (p.stop > q.start) return kNoNode;  // they overlap
  std::vector<NodeId> parts = {p.value};
  if (p.stop < q.start) {
    Shape gap = n.shape;
    gap[static_cast<size_t>(axis)] = Dim{q.start - p.stop, "", false};
    parts.push_back(b.broadcast_to(b.constant(0, n.dtype), gap));
  }
  parts.push_back(q.value);
  Attrs along;
  along.ints = {axis};
  NodeId joined = b.make(Op::Concat, parts, along);
  if (p.start == 0 && q.stop == d.size) return joined;
  Attrs pad;
  pad.ints = {axis, p.start, d.size - q.stop};
  return b.make(Op::Pad, {joined}, pad);
}

// concat(.., concat(a, b), ..) along the same axis -> concat(.., a, b, ..)
NodeId flat_concat(Builder& b, const Node& n) {
  std::vector<NodeId> parts;
  bool nested = false;
  for (NodeId o : n.operands) {
    const Node& c = b[o];
    if (c.op == Op::Concat && c.attrs.ints[0] == n.attrs.ints[0]) {
      parts.insert(parts.end(), c.operands.begin(), c.operands.end());
      nested = true;
    } else {
      parts.push_back(o);
    }
  }
  return nested ? b.make(Op::Concat, parts, n.attrs) : kNoNode;
}

NodeId rule(Builder& b, const Node& n) {
  const std::vector<NodeId>& o = n.operands;
  if (NodeId r = unbroadcast_scalars(b, n); r != kNoNode) return r;
  // A named value's own node (Sema::named) is an ordinary one again now that
  // differentiation is done, so that equal expressions merge.
  if (op_kind(n.op) != OpKind::Leaf && !n.attrs.name.empty()) {
    Attrs a = n.attrs;
    a.name.clear();
    return b.make(n.op, o, std::move(a));
  }
  switch (n.op) {
    // stop_gradient(x) -> x: differentiation is finished
    case Op::StopGradient: return o[0];
    // x + 0 -> x,  0 + x -> x; pads of disjoint ranges (disjoint_pads)
    case Op::Add:
      if (is_value(b, o[1], 0)) return as_result(b, o[0], n);
      if (is_value(b, o[0], 0)) return as_result(b, o[1], n);
      return disjoint_pads(b, n);
    // a concatenation of concatenations along its axis (flat_concat)
    case Op::Concat: return flat_concat(b, n);
    // x - 0 -> x,  0 - x -> -x
    case Op::Sub:
      if (is_value(b, o[1], 0)) return as_result(b, o[0], n);
      if (is_value(b, o[0], 0) && b[o[1]].shape == n.shape) return b.neg(o[1]);
      break;
    // x * 1 -> x,  1 * x -> x
    case Op::Mul:
      if (is_value(b, o[1], 1)) return as_result(b, o[0], n);
      if (is_value(b, o[0], 1)) return as_result(b, o[1], n);
      break;
    // x / 1 -> x
    case Op::Div:
      if (is_value(b, o[1], 1)) return as_result(b, o[0], n);
      break;
    // x ^ 1 -> x
    case Op::Pow:
      if (is_value(b, o[1], 1)) return as_result(b, o[0], n);
      break;
    // -(-x) -> x
    case Op::Neg:
      if (b[o[0]].op == Op::Neg) return b[o[0]].operands[0];
      break;
    // where(c, a, a) -> a
    case Op::Where:
      if (o[1] == o[2]) return as_result(b, o[1], n);
      break;
    // reshape(reshape(x)) -> reshape(x); reshape to the same shape -> x
    case Op::Reshape:
      if (b[o[0]].op == Op::Reshape) return b.reshape(b[o[0]].operands[0], n.attrs.ints);
      if (b[o[0]].shape == n.shape) return o[0];
      break;
    // transpose(transpose(x, p), q) -> transpose(x, p[q])
    case Op::Transpose:
      if (b[o[0]].op == Op::Transpose) {
        const std::vector<int64_t>& p = b[o[0]].attrs.ints;
        std::vector<int64_t> composed;
        for (int64_t q : n.attrs.ints) composed.push_back(p[q]);
        return b.transpose(b[o[0]].operands[0], composed);
      }
      break;
    // broadcast_to(broadcast_to(x)) -> broadcast_to(x)
    case Op::BroadcastTo:
      if (b[o[0]].op == Op::BroadcastTo) return b.broadcast_to(b[o[0]].operands[0], n.shape);
      break;
    // a reduction over axes of size 1 only is a reshape
    case Op::ReduceSum:
    case Op::ReduceMax:
    case Op::ReduceMin: {
      bool trivial = true;
      for (int64_t a : n.attrs.ints) trivial = trivial && b[o[0]].shape[a].size == 1;
      if (trivial) return b.reshape(o[0], sizes(n.shape));
      break;
    }
    // no rewrite (yet): listed so that a new op's author decides
    case Op::Input: case Op::Param: case Op::Constant: case Op::Cast:
    case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
    case Op::Abs: case Op::Sign: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus:
    case Op::Erf:
    case Op::Maximum: case Op::Minimum:
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::ArgMax: case Op::MatMul: case Op::Slice: case Op::Reverse: case Op::Pad: case Op::OneHot: break;
    case Op::Window: case Op::Fold: break;
    case Op::Embedding: case Op::EmbeddingGrad:
    case Op::RandomUniform:
    case Op::Scan: case Op::ScanOut: break;
  }
  return kNoNode;
}

}  // namespace

ModelIR simplify_once(const ModelIR& m, size_t* rewrites) { return rebuild(m, rule, rewrites); }

}  // namespace gradc
