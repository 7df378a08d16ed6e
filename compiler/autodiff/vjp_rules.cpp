// Vector-Jacobian product rules: one per op, with the maths above each.
//
// For a node out = f(x, y, ...) and its adjoint g = dL/dout, the rule for
// operand i returns dL/d(operand i), already summed back to that operand's
// shape where the op broadcasts. Rules only use differentiable graph ops, so
// gradients can be differentiated again.
#include <algorithm>
#include <cmath>

#include "compiler/autodiff/shared_rules.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

namespace {

// g reshaped so that the reduced axes are kept with size 1, then broadcast to x.
NodeId unreduce(Builder& b, NodeId g, const Node& red, const Node& x) {
  Shape kept = x.shape;
  for (int64_t a : red.attrs.ints) kept[a] = {1, {}};
  return b.broadcast_to(b.reshape(g, sizes(kept)), x.shape);
}

}  // namespace

NodeId vjp(Builder& b, NodeId node, size_t i, NodeId g) {
  const Node n = b[node];  // a copy: the graph may grow while we build
  SourceLoc old = b.at(n.loc);
  NodeId x = n.operands[0];
  NodeId y = n.operands.size() > 1 ? n.operands[1] : kNoNode;
  const Shape& xs = b[x].shape;
  auto c = [&](double v) { return b.scalar_like(v, node); };
  NodeId r = kNoNode;
  switch (n.op) {
    // the one-operand elementwise ops: g f'(x) (shared_rules.cpp)
    case Op::Neg: case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
    case Op::Abs: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus: case Op::Erf:
      r = unary_chain(b, node, g);
      break;
    // stop_gradient, sign, comparisons, argmax, one_hot: no gradient
    case Op::StopGradient:
    case Op::Sign:
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::ArgMax:
    case Op::OneHot:
    case Op::Input: case Op::Param: case Op::Constant: break;
    // cast: the gradient converts back (float -> float only)
    case Op::Cast:
      if (is_float(b[x].dtype)) r = b.cast(g, b[x].dtype);
      break;
    // d(a + b) = g, g (each summed back to its operand's shape)
    case Op::Add: r = b.sum_to(g, b[n.operands[i]].shape); break;
    // d(a - b) = g, -g
    case Op::Sub: r = b.sum_to(i == 0 ? g : b.neg(g), b[n.operands[i]].shape); break;
    // d(a * b) = g b, g a
    case Op::Mul: r = b.sum_to(b.mul(g, n.operands[1 - i]), b[n.operands[i]].shape); break;
    // d(a / b) = g / b, -g a / b^2 = -g out / b
    case Op::Div:
      r = b.sum_to(i == 0 ? b.div(g, y) : b.neg(b.div(b.mul(g, node), y)), b[n.operands[i]].shape);
      break;
    // d a^b = g b a^(b-1) (0 where b = 0),  g a^b log(a) (0 where a = 0 and b >= 0), as PyTorch
    case Op::Pow: {
      NodeId zero = c(0);
      if (i == 0) {
        NodeId d = b.mul(g, b.mul(y, b.binary(Op::Pow, x, b.sub(y, c(1)))));
        r = b.where(b.binary(Op::Eq, y, zero), zero, d);
      } else {
        NodeId d = b.mul(g, b.mul(node, b.unary(Op::Log, x)));
        NodeId mask = b.mul(b.binary(Op::Eq, x, zero), b.binary(Op::Ge, y, zero));
        r = b.where(mask, zero, d);
      }
      r = b.sum_to(b.broadcast_to(r, n.shape), b[n.operands[i]].shape);
      break;
    }
    // d max(a, b): g goes to a where a >= b (ties go to a), else to b; min likewise with <=
    case Op::Maximum:
    case Op::Minimum: {
      NodeId to_a = b.binary(n.op == Op::Maximum ? Op::Ge : Op::Le, x, y);
      NodeId zero = c(0);
      r = b.sum_to(i == 0 ? b.where(to_a, g, zero) : b.where(to_a, zero, g), b[n.operands[i]].shape);
      break;
    }
    // d where(c, a, b) = where(c, g, 0), where(c, 0, g); nothing to c
    case Op::Where: {
      if (i == 0) break;
      NodeId zero = c(0);
      r = b.sum_to(i == 1 ? b.where(x, g, zero) : b.where(x, zero, g), b[n.operands[i]].shape);
      break;
    }
    // d sum(x, axes) = g broadcast back over the reduced axes
    case Op::ReduceSum: r = unreduce(b, g, n, b[x]); break;
    // d max(x, axes) = g at the first maximal element of each group, 0 elsewhere (min likewise)
    case Op::ReduceMax:
    case Op::ReduceMin:
      r = b.mul(unreduce(b, g, n, b[x]), first_extreme_mask(b, x, n.attrs.ints, n.op == Op::ReduceMax));
      break;
    // C = A @ B:  dA = g @ B^T,  dB = A^T @ g  (summed over broadcast batch axes)
    case Op::MatMul:
      r = i == 0 ? b.sum_to(b.make(Op::MatMul, {g, b.transpose_last2(y)}), xs)
                 : b.sum_to(b.make(Op::MatMul, {b.transpose_last2(x), g}), b[y].shape);
      break;
    // reshape: reshape g back
    case Op::Reshape: r = b.reshape(g, sizes(xs)); break;
    // transpose(x, p): transpose g by the inverse permutation
    case Op::Transpose: {
      std::vector<int64_t> inv(n.attrs.ints.size());
      for (size_t k = 0; k < inv.size(); ++k) inv[n.attrs.ints[k]] = static_cast<int64_t>(k);
      r = b.transpose(g, inv);
      break;
    }
    // broadcast_to: sum g back to x's shape
    case Op::BroadcastTo: r = b.sum_to(g, xs); break;
    // concat: operand i gets its slice of g
    case Op::Concat: {
      int64_t axis = n.attrs.ints[0], start = 0;
      for (size_t k = 0; k < i; ++k) start += b[n.operands[k]].shape[axis].size;
      Attrs a;
      a.ints = {axis, start, start + b[n.operands[i]].shape[axis].size};
      r = b.make(Op::Slice, {g}, a);
      break;
    }
    // slice [start, stop) of an axis of size s: pad g with start zeros before and s - stop after
    case Op::Slice: {
      Attrs a;
      int64_t axis = n.attrs.ints[0];
      a.ints = {axis, n.attrs.ints[1], xs[axis].size - n.attrs.ints[2]};
      r = b.make(Op::Pad, {g}, a);
      break;
    }
    // reverse: its own adjoint, g reversed along the same axis
    case Op::Reverse: r = b.make(Op::Reverse, {g}, n.attrs); break;
    // pad: the gradient is the slice that holds the original values
    case Op::Pad: {
      Attrs a;
      int64_t axis = n.attrs.ints[0];
      a.ints = {axis, n.attrs.ints[1], n.attrs.ints[1] + xs[axis].size};
      r = b.make(Op::Slice, {g}, a);
      break;
    }
    // window: its adjoint, fold: each element of x gets the sum of the
    // elements of g at the window positions that read it
    case Op::Window: r = b.make(Op::Fold, {g}, n.attrs); break;
    // fold: the adjoint of the adjoint, window
    case Op::Fold: r = b.make(Op::Window, {g}, n.attrs); break;
    // out[..., d] = table[ids[...], d]: row v of d table is the sum of g's rows
    // whose id is v (a scatter-add, repeated ids add up); ids are integers, no gradient
    case Op::Embedding: {
      if (i == 0) break;
      Attrs a;
      a.ints = {b[y].shape[0].size};
      r = b.make(Op::EmbeddingGrad, {x, g}, a);
      break;
    }
    // embedding_grad is linear in its gradient operand, the adjoint of embedding: d g = embedding(ids, g')
    case Op::EmbeddingGrad:
      if (i == 1) r = b.make(Op::Embedding, {x, g});
      break;
    // random bits: constant in every operand (the seed and the step are counters)
    case Op::RandomUniform: break;
    // a loop is a tuple: the driver (reverse.cpp) applies scan_vjp to it as a whole
    case Op::Scan:
    case Op::ScanOut: GRADC_ASSERT(false, "vjp: scan is differentiated by the driver"); break;
  }
  b.at(old);
  return r;
}

}  // namespace gradc
