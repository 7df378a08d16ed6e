// The chain rule of the one-operand elementwise ops, with the maths above
// each, and the argmax mask of max and min: shared by both modes.
#include "compiler/autodiff/shared_rules.h"

#include <algorithm>

namespace gradc {

NodeId unary_chain(Builder& b, NodeId node, NodeId t) {
  const Node n = b[node];  // a copy: the graph grows below
  NodeId x = n.operands.empty() ? kNoNode : n.operands[0];
  auto c = [&](double v) { return b.scalar_like(v, node); };
  switch (n.op) {
    // d(-x) = -t
    case Op::Neg: return b.neg(t);
    // d exp(x) = t exp(x)
    case Op::Exp: return b.mul(t, node);
    // d expm1(x) = t exp(x) = t (out + 1)
    case Op::Expm1: return b.mul(t, b.add(node, c(1)));
    // d log(x) = t / x
    case Op::Log: return b.div(t, x);
    // d log1p(x) = t / (1 + x)
    case Op::Log1p: return b.div(t, b.add(x, c(1)));
    // d sqrt(x) = t / (2 sqrt(x))
    case Op::Sqrt: return b.div(t, b.mul(node, c(2)));
    // d x^(-1/2) = -1/2 x^(-3/2) t = -1/2 out / x t
    case Op::Rsqrt: return b.mul(t, b.mul(c(-0.5), b.div(node, x)));
    // d |x| = sign(x) t   (0 at x = 0)
    case Op::Abs: return b.mul(t, b.unary(Op::Sign, x));
    // d sin(x) = cos(x) t
    case Op::Sin: return b.mul(t, b.unary(Op::Cos, x));
    // d cos(x) = -sin(x) t
    case Op::Cos: return b.neg(b.mul(t, b.unary(Op::Sin, x)));
    // d tanh(x) = (1 - tanh(x)^2) t
    case Op::Tanh: return b.mul(t, b.sub(c(1), b.mul(node, node)));
    // d sigmoid(x) = s (1 - s) t
    case Op::Sigmoid: return b.mul(t, b.mul(node, b.sub(c(1), node)));
    // d softplus(x) = sigmoid(x) t
    case Op::Softplus: return b.mul(t, b.unary(Op::Sigmoid, x));
    // d erf(x) = 2/sqrt(pi) exp(-x^2) t
    case Op::Erf: return b.mul(t, b.mul(c(1.1283791670955126), b.unary(Op::Exp, b.neg(b.mul(x, x)))));
    // not an elementwise op of one operand with a derivative
    case Op::StopGradient: case Op::Sign: case Op::Cast:
    case Op::Input: case Op::Param: case Op::Constant:
    case Op::Add: case Op::Sub: case Op::Mul: case Op::Div: case Op::Pow: case Op::Maximum: case Op::Minimum:
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::Where: case Op::ReduceSum: case Op::ReduceMax: case Op::ReduceMin: case Op::ArgMax: case Op::MatMul:
    case Op::Reshape: case Op::Transpose: case Op::BroadcastTo: case Op::Concat: case Op::Slice: case Op::Reverse: case Op::Pad:
    case Op::OneHot: break;
    case Op::Window: case Op::Fold: break;
    case Op::Embedding: case Op::EmbeddingGrad:
    case Op::RandomUniform:
    case Op::Scan: case Op::ScanOut: break;
  }
  return kNoNode;
}

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

}  // namespace gradc
