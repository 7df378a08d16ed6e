// Reverse-mode automatic differentiation on the graph, at compile time.
//
// Back-propagation produces more graph: the gradient of a scalar y with
// respect to nodes x is built from ordinary ops (so it can be differentiated
// again, which is how nested grad() works). The driver walks the nodes
// between x and y in reverse topological order, asks each op's
// vector-Jacobian rule (vjp_rules.cpp) for its operands' contributions, and
// sums the contributions that meet at a node.
#pragma once

#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// d y / d x for every x in xs (each result has x's type; zeros where y does
// not depend on x). y must be a float scalar; every x must be float.
std::vector<NodeId> gradients(Builder& b, NodeId y, const std::vector<NodeId>& xs);

// The contribution to operand `i` of `node`'s adjoint `g`, or kNoNode when the
// op passes no gradient to that operand (comparisons, stop_gradient, ...).
NodeId vjp(Builder& b, NodeId node, size_t i, NodeId g);

}  // namespace gradc
