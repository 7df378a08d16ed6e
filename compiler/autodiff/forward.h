// Forward-mode automatic differentiation on the graph, at compile time.
//
// The directional derivative of e with respect to x in direction v (a
// Jacobian-vector product) is built from ordinary ops, as the gradient is:
// the driver walks the nodes between x and e in topological order and asks
// each op's tangent rule (jvp_rules.cpp) for its output's tangent from its
// operands' tangents. The cost is a small multiple of evaluating e, whatever
// e's shape, where reverse mode's is a small multiple per scalar output; so
// forward mode suits few inputs and many outputs, reverse mode the opposite.
// The result is ordinary graph: it can be differentiated again in either
// mode (a Hessian-vector product is jvp(grad(L, w), w, v)).
#pragma once

#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// d e / d x . v: e's type (zeros where e does not depend on x). e and x must
// be float, v of x's type.
NodeId directional_derivative(Builder& b, NodeId e, NodeId x, NodeId v);

// The tangent of `node` given its operands' tangents (one per operand,
// kNoNode for a zero tangent), or kNoNode when it is zero (an op through which
// nothing varies: comparisons, stop_gradient, argmax, ...).
NodeId jvp(Builder& b, NodeId node, const std::vector<NodeId>& tangents);

}  // namespace gradc
