// The differentiation rules of loops (Op::Scan), in both modes. A scan is a
// tuple (its results are scan_out nodes), so the drivers call these for the
// scan as a whole rather than a per-operand rule.
#pragma once

#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// Reverse mode. `adjoints` holds one adjoint per result of the scan
// (kNoNode: zero); `needed` says which operands want a contribution. Returns
// one contribution per operand (kNoNode where none is wanted or it is zero).
//
// The backward pass is a scan too, running the other way: its carries are
// the adjoints of the carries and the accumulated adjoints of the captures
// that need one; at each step it recomputes the body from the carry before
// that step (read from the stacked carries of the forward scan) and applies
// the body's own reverse-mode gradient, so nothing inside the body is stored
// across steps and the code does not grow with the number of steps.
std::vector<NodeId> scan_vjp(Builder& b, NodeId scan, const std::vector<NodeId>& adjoints,
                             const std::vector<bool>& needed);

// Forward mode: the tangent scan of `scan` given one tangent per operand
// (kNoNode: zero). It carries (carries, their tangents), scans (xs, the
// tangents of those that have one), and its results are the scan's results
// followed by their tangents, laid out as scan_tangent_index says. Returns
// kNoNode when no operand has a tangent.
NodeId scan_tangent(Builder& b, NodeId scan, const std::vector<NodeId>& tangents);
// The result of the tangent scan holding the tangent of result i of `scan`.
int64_t scan_tangent_index(const Graph& g, NodeId scan, int64_t i);

}  // namespace gradc
