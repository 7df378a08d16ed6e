// Scalar semantics of the elementwise ops (NaN-propagating maximum/minimum,
// PyTorch's softplus threshold, sign(0) = 0). Each switch names every op and
// has no default, so a new row of ops.def does not compile until it has its
// case here (-Werror=switch).
#include "compiler/ir/scalar_eval.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

double nan_max(double a, double b) { return std::isnan(a) || std::isnan(b) ? std::nan("") : std::max(a, b); }
double nan_min(double a, double b) { return std::isnan(a) || std::isnan(b) ? std::nan("") : std::min(a, b); }

}  // namespace

double eval_unary(Op op, double x) {
  switch (op) {
    case Op::Neg: return -x;
    case Op::Exp: return std::exp(x);
    case Op::Expm1: return std::expm1(x);
    case Op::Log: return std::log(x);
    case Op::Log1p: return std::log1p(x);
    case Op::Sqrt: return std::sqrt(x);
    case Op::Rsqrt: return 1.0 / std::sqrt(x);
    case Op::Abs: return std::fabs(x);
    case Op::Sign: return std::isnan(x) ? x : static_cast<double>((x > 0) - (x < 0));
    case Op::Sin: return std::sin(x);
    case Op::Cos: return std::cos(x);
    case Op::Tanh: return std::tanh(x);
    case Op::Sigmoid: return 1.0 / (1.0 + std::exp(-x));
    case Op::Softplus: return x > 20 ? x : std::log1p(std::exp(x));  // PyTorch's threshold
    case Op::Erf: return std::erf(x);
    case Op::StopGradient: return x;
    // not unary: a caller's bug
    case Op::Input: case Op::Param: case Op::Constant: case Op::Cast:
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
  GRADC_ASSERT(false, "not a unary op");
  return 0;
}

double eval_binary(Op op, double a, double b) {
  switch (op) {
    case Op::Add: return a + b;
    case Op::Sub: return a - b;
    case Op::Mul: return a * b;
    case Op::Div: return a / b;
    case Op::Pow: return std::pow(a, b);
    case Op::Maximum: return nan_max(a, b);
    case Op::Minimum: return nan_min(a, b);
    case Op::Lt: return a < b;
    case Op::Le: return a <= b;
    case Op::Gt: return a > b;
    case Op::Ge: return a >= b;
    case Op::Eq: return a == b;
    case Op::Ne: return a != b;
    // not binary: a caller's bug
    case Op::Input: case Op::Param: case Op::Constant: case Op::Cast:
    case Op::Neg: case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
    case Op::Abs: case Op::Sign: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus:
    case Op::Erf: case Op::StopGradient:
    case Op::Where: case Op::ReduceSum: case Op::ReduceMax: case Op::ReduceMin: case Op::ArgMax: case Op::MatMul:
    case Op::Reshape: case Op::Transpose: case Op::BroadcastTo: case Op::Concat: case Op::Slice: case Op::Reverse: case Op::Pad:
    case Op::OneHot: break;
    case Op::Window: case Op::Fold: break;
    case Op::Embedding: case Op::EmbeddingGrad:
    case Op::RandomUniform:
    case Op::Scan: case Op::ScanOut: break;
  }
  GRADC_ASSERT(false, "not a binary op");
  return 0;
}

ReduceRule reduce_rule(Op op) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  switch (op) {
    case Op::ReduceSum: return {Op::Add, 0.0};
    case Op::ReduceMax: return {Op::Maximum, -inf};
    case Op::ReduceMin: return {Op::Minimum, inf};
    // not a reduction: a caller's bug
    case Op::Input: case Op::Param: case Op::Constant: case Op::Cast:
    case Op::Neg: case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
    case Op::Abs: case Op::Sign: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus:
    case Op::Erf: case Op::StopGradient:
    case Op::Add: case Op::Sub: case Op::Mul: case Op::Div: case Op::Pow: case Op::Maximum: case Op::Minimum:
    case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne:
    case Op::Where: case Op::ArgMax: case Op::MatMul:
    case Op::Reshape: case Op::Transpose: case Op::BroadcastTo: case Op::Concat: case Op::Slice: case Op::Reverse: case Op::Pad:
    case Op::OneHot: break;
    case Op::Window: case Op::Fold: break;
    case Op::Embedding: case Op::EmbeddingGrad:
    case Op::RandomUniform:
    case Op::Scan: case Op::ScanOut: break;
  }
  GRADC_ASSERT(false, "not a reduction");
  return {Op::Add, 0.0};
}

}  // namespace gradc
