// Tangent (Jacobian-vector product) rules: one per op, with the maths above
// each, laid out as vjp_rules.cpp is.
//
// For a node out = f(x, y, ...) and its operands' tangents tx, ty, ... (each
// of its operand's shape; kNoNode for zero), the rule returns out's tangent,
// of out's shape: d out = df/dx tx + df/dy ty + ... Where the op broadcasts,
// the tangents broadcast with it. Rules only use differentiable graph ops, so
// tangents can be differentiated again, in either mode. Where a derivative
// is a choice (max at ties, |x| at 0), the choice is the reverse rule's, so
// both modes compute the same derivative.
#include "compiler/autodiff/shared_rules.h"
#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/scan_rules.h"
#include "compiler/ir/region.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId jvp(Builder& b, NodeId node, const std::vector<NodeId>& tangents) {
  const Node n = b[node];  // a copy: the graph may grow while we build
  SourceLoc old = b.at(n.loc);
  NodeId x = n.operands.empty() ? kNoNode : n.operands[0];
  NodeId y = n.operands.size() > 1 ? n.operands[1] : kNoNode;
  NodeId tx = tangents.empty() ? kNoNode : tangents[0];
  NodeId ty = tangents.size() > 1 ? tangents[1] : kNoNode;
  auto c = [&](double v) { return b.scalar_like(v, node); };
  // The op's attributes for its tangent, without a named value's name (see
  // Sema::named): the tangent is no use of that name.
  Attrs same = n.attrs;
  same.name.clear();
  // Terms of a sum of tangents, any of them zero (kNoNode); the sum has
  // out's shape even when one term alone would be an operand's smaller one.
  auto plus = [&](NodeId a, NodeId t) { return a == kNoNode ? t : t == kNoNode ? a : b.add(a, t); };
  auto full = [&](NodeId t) { return t == kNoNode || b[t].shape == n.shape ? t : b.broadcast_to(t, n.shape); };
  // t * f, zero when t is.
  auto scale = [&](NodeId t, NodeId f) { return t == kNoNode ? kNoNode : b.mul(t, f); };
  NodeId r = kNoNode;
  switch (n.op) {
    // the one-operand elementwise ops: f'(x) tx (shared_rules.cpp)
    case Op::Neg: case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
    case Op::Abs: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus: case Op::Erf:
      r = unary_chain(b, node, tx);
      break;
    // stop_gradient, sign, comparisons, argmax, one_hot: nothing varies
    case Op::StopGradient:
    case Op::Sign:
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::ArgMax:
    case Op::OneHot:
    case Op::Input: case Op::Param: case Op::Constant: break;
    // cast: the tangent converts (float -> float only)
    case Op::Cast:
      if (is_float(n.dtype)) r = b.cast(tx, n.dtype);
      break;
    // d(a + b) = ta + tb
    case Op::Add: r = full(plus(tx, ty)); break;
    // d(a - b) = ta - tb
    case Op::Sub: r = full(ty == kNoNode ? tx : tx == kNoNode ? b.neg(ty) : b.sub(tx, ty)); break;
    // d(a * b) = ta b + a tb
    case Op::Mul: r = full(plus(scale(tx, y), scale(ty, x))); break;
    // d(a / b) = ta / b - a tb / b^2 = (ta - out tb) / b
    case Op::Div: {
      NodeId out_ty = ty == kNoNode ? kNoNode : b.mul(node, ty);
      NodeId num = out_ty == kNoNode ? tx : tx == kNoNode ? b.neg(out_ty) : b.sub(tx, out_ty);
      r = full(b.div(num, y));
      break;
    }
    // d a^b = b a^(b-1) ta (0 where b = 0) + a^b log(a) tb (0 where a = 0 and b >= 0), as the reverse rule
    case Op::Pow: {
      NodeId zero = c(0), da = kNoNode, db = kNoNode;
      if (tx != kNoNode)
        da = b.where(b.binary(Op::Eq, y, zero), zero, b.mul(tx, b.mul(y, b.binary(Op::Pow, x, b.sub(y, c(1))))));
      if (ty != kNoNode)
        db = b.where(b.mul(b.binary(Op::Eq, x, zero), b.binary(Op::Ge, y, zero)), zero,
                     b.mul(ty, b.mul(node, b.unary(Op::Log, x))));
      r = full(plus(da, db));
      break;
    }
    // d max(a, b) = ta where a >= b (ties go to a), else tb; min likewise with <=
    case Op::Maximum:
    case Op::Minimum: {
      NodeId to_a = b.binary(n.op == Op::Maximum ? Op::Ge : Op::Le, x, y), zero = c(0);
      r = full(b.where(to_a, tx == kNoNode ? zero : tx, ty == kNoNode ? zero : ty));
      break;
    }
    // d where(c, a, b) = where(c, ta, tb); nothing from c
    case Op::Where: {
      NodeId ta = tangents[1], tb = tangents[2], zero = c(0);
      if (ta == kNoNode && tb == kNoNode) break;
      r = full(b.where(x, ta == kNoNode ? zero : ta, tb == kNoNode ? zero : tb));
      break;
    }
    // d sum(x, axes) = sum(tx, axes)
    case Op::ReduceSum: r = b.make(Op::ReduceSum, {tx}, same); break;
    // d max(x, axes) = tx at the first maximal element of each group (min likewise)
    case Op::ReduceMax:
    case Op::ReduceMin: {
      NodeId mask = first_extreme_mask(b, x, n.attrs.ints, n.op == Op::ReduceMax);
      r = b.make(Op::ReduceSum, {b.mul(tx, mask)}, same);
      break;
    }
    // d(A @ B) = tA @ B + A @ tB
    case Op::MatMul:
      r = full(plus(tx == kNoNode ? kNoNode : b.make(Op::MatMul, {tx, y}),
                    ty == kNoNode ? kNoNode : b.make(Op::MatMul, {x, ty})));
      break;
    // The shape ops are linear: the same op on the tangent.
    case Op::Reshape:
    case Op::Transpose:
    case Op::BroadcastTo:
    case Op::Slice:
    case Op::Reverse:
    case Op::Pad: r = b.make(n.op, {tx}, same); break;
    // window and fold are linear too
    case Op::Window: case Op::Fold: r = b.make(n.op, {tx}, same); break;
    // concat: the operands' tangents concatenated, zeros for the constant ones
    case Op::Concat: {
      std::vector<NodeId> parts;
      for (size_t i = 0; i < n.operands.size(); ++i)
        parts.push_back(tangents[i] != kNoNode ? tangents[i] : b.full_like(0.0, n.operands[i]));
      r = b.make(Op::Concat, parts, same);
      break;
    }
    // Both lookups are linear in their float operand (ids are integers): the same op on its tangent.
    case Op::Embedding:
    case Op::EmbeddingGrad:
      if (ty != kNoNode) r = b.make(n.op, {x, ty}, same);
      break;
    // random bits: nothing varies
    case Op::RandomUniform: break;
    // a loop's tangent is its tangent scan (a tuple); each result's tangent is one of its results
    case Op::Scan: r = scan_tangent(b, node, tangents); break;
    case Op::ScanOut:
      if (tx != kNoNode) r = scan_out(b, tx, scan_tangent_index(b.graph(), x, n.attrs.ints[0]));
      break;
  }
  b.at(old);
  return r;
}

}  // namespace gradc
