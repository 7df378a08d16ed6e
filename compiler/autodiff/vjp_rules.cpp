// Vector-Jacobian product rules: one per op, with the maths above each.
//
// For a node out = f(x, y, ...) and its adjoint g = dL/dout, the rule for
// operand i returns dL/d(operand i), already summed back to that operand's
// shape where the op broadcasts. Rules only use differentiable graph ops, so
// gradients can be differentiated again.
#include <algorithm>
#include <cmath>

#include "compiler/autodiff/extreme_mask.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId first_extreme_mask(Builder& b, NodeId x, const std::vector<int64_t>& axes, bool is_max) {
  const Node xn = b[x];
  int rank = xn.rank();
  // Move the reduced axes last, flatten them, take the argmax there.
  std::vector<int64_t> perm, kept_sizes;
  for (int i = 0; i < rank; ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) perm.push_back(i), kept_sizes.push_back(xn.shape[i].size);
  int64_t group = 1;
  for (int64_t a : axes) perm.push_back(a), group *= xn.shape[a].size;
  NodeId t = b.transpose(is_max ? x : b.neg(x), perm);
  std::vector<int64_t> flat = kept_sizes;
  flat.push_back(group);
  NodeId f = b.reshape(t, flat);
  Attrs am;
  am.ints = {static_cast<int64_t>(flat.size()) - 1};
  NodeId idx = b.make(Op::ArgMax, {f}, am);
  Attrs oh;
  oh.ints = {group};
  NodeId mask = b.cast(b.make(Op::OneHot, {idx}, oh), xn.dtype);
  // Undo the flattening and the permutation.
  std::vector<int64_t> unflat = kept_sizes;
  for (int64_t a : axes) unflat.push_back(xn.shape[a].size);
  NodeId u = b.reshape(mask, unflat);
  std::vector<int64_t> inv(rank);
  for (int i = 0; i < rank; ++i) inv[perm[i]] = i;
  return b.transpose(u, inv);
}

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
    // d(-x) = -g
    case Op::Neg: r = b.neg(g); break;
    // d exp(x) = g * exp(x)
    case Op::Exp: r = b.mul(g, node); break;
    // d expm1(x) = g * exp(x) = g * (out + 1)
    case Op::Expm1: r = b.mul(g, b.add(node, c(1))); break;
    // d log(x) = g / x
    case Op::Log: r = b.div(g, x); break;
    // d log1p(x) = g / (1 + x)
    case Op::Log1p: r = b.div(g, b.add(x, c(1))); break;
    // d sqrt(x) = g / (2 sqrt(x))
    case Op::Sqrt: r = b.div(g, b.mul(node, c(2))); break;
    // d x^(-1/2) = -1/2 x^(-3/2) g = -1/2 * out / x * g
    case Op::Rsqrt: r = b.mul(g, b.mul(c(-0.5), b.div(node, x))); break;
    // d |x| = sign(x) g   (0 at x = 0)
    case Op::Abs: r = b.mul(g, b.unary(Op::Sign, x)); break;
    // d sin(x) = cos(x) g
    case Op::Sin: r = b.mul(g, b.unary(Op::Cos, x)); break;
    // d cos(x) = -sin(x) g
    case Op::Cos: r = b.neg(b.mul(g, b.unary(Op::Sin, x))); break;
    // d tanh(x) = (1 - tanh(x)^2) g
    case Op::Tanh: r = b.mul(g, b.sub(c(1), b.mul(node, node))); break;
    // d sigmoid(x) = s (1 - s) g
    case Op::Sigmoid: r = b.mul(g, b.mul(node, b.sub(c(1), node))); break;
    // d softplus(x) = sigmoid(x) g
    case Op::Softplus: r = b.mul(g, b.unary(Op::Sigmoid, x)); break;
    // d erf(x) = 2/sqrt(pi) exp(-x^2) g
    case Op::Erf: r = b.mul(g, b.mul(c(1.1283791670955126), b.unary(Op::Exp, b.neg(b.mul(x, x))))); break;
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
    // pad: the gradient is the slice that holds the original values
    case Op::Pad: {
      Attrs a;
      int64_t axis = n.attrs.ints[0];
      a.ints = {axis, n.attrs.ints[1], n.attrs.ints[1] + xs[axis].size};
      r = b.make(Op::Slice, {g}, a);
      break;
    }
  }
  b.at(old);
  return r;
}

}  // namespace gradc
