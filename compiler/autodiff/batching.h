// Batching ("vectorizing map") on the graph, at compile time.
//
// Given a graph that computes some roots from leaves, build the graph that
// computes the same roots for P members at once, where some leaves are
// replaced by P stacked values (a leading axis of size P). Every node that
// depends on a replaced leaf gains that leading axis; every other node is
// shared, computed once for all members. Matrix products with a stacked
// operand become one batched product ([P, m, k] @ [k, n]), so the work stays
// in large kernels instead of P small ones.
//
// The gradient-free optimizers use it to evaluate the loss of a whole
// population of params in one forward pass (SPEC 2.5: `genetic`, `es`).
// The rule of each op kind is in batching.cpp, a switch over OpKind without
// a default, so a new kind of op does not build until it has one.
#pragma once

#include <utility>
#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// For each leaf -> stacked pair in `stacked` (stacked: the leaf's dtype, shape
// [P, leaf's shape...]), the roots recomputed with the stacked values: a root
// that depends on a replaced leaf becomes [P, root's shape...]; one that does
// not is returned as it is. Empty when some node on the way cannot be
// batched (random bits whose key would depend on a member); that node is
// then in *unsupported.
std::vector<NodeId> batch_nodes(Builder& b, const std::vector<NodeId>& roots,
                                const std::vector<std::pair<NodeId, NodeId>>& stacked, int64_t P,
                                NodeId* unsupported = nullptr);

// `node` recomputed from its new operands, where batched[i] says which of
// them carry the leading axis of size P (at least one does); kNoNode when
// the node cannot be batched.
NodeId batch_rule(Builder& b, NodeId node, const std::vector<NodeId>& operands, const std::vector<bool>& batched,
                  int64_t P);

}  // namespace gradc
