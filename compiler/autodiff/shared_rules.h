// What the reverse (vjp_rules.cpp) and forward (jvp_rules.cpp) rules share,
// so that both modes compute the same derivative by the same formula.
#pragma once

#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// For an op of one operand, out = f(x), the chain rule is the same in both
// modes: t f'(x), with t the adjoint of out (reverse) or the tangent of x
// (forward). This is it for the elementwise ones with a derivative (neg,
// exp, expm1, log, log1p, sqrt, rsqrt, abs, sin, cos, tanh, sigmoid,
// softplus, erf); kNoNode for every other op.
NodeId unary_chain(Builder& b, NodeId node, NodeId t);

// A 0/1 mask of x's dtype that is 1 at the first extreme element of each
// group reduced by `axes` (SPEC: max/min send the gradient there).
NodeId first_extreme_mask(Builder& b, NodeId x, const std::vector<int64_t>& axes, bool is_max);

}  // namespace gradc
