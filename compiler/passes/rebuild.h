// Rebuilding a model's graph: the generic mutator every pass is made of.
//
// The live nodes (those reaching a root: loss, outputs, metrics, gradients,
// plus every input and param) are copied in topological order into a fresh
// graph through a Builder; a rewrite hook may replace each node as it is
// copied. Copying only live nodes is dead-code elimination, and interning in
// the fresh graph merges nodes that rewriting made equal (CSE).
#pragma once

#include <functional>

#include "compiler/ir/builder.h"

namespace gradc {

// Given a node whose operands are already ids in the new graph, returns its
// replacement in the new graph, or kNoNode to copy it unchanged.
using RewriteFn = std::function<NodeId(Builder& b, const Node& n)>;

// `rewrites` (if given) receives the number of nodes the hook replaced: 0 means
// the hook applied no rule, so the result is the input up to numbering.
ModelIR rebuild(const ModelIR& m, const RewriteFn& rewrite = nullptr, size_t* rewrites = nullptr);

// The same, the hook also told the node's id in m (for a pass that decided
// what to rewrite by looking at m as a whole: users, chains).
using IndexedRewriteFn = std::function<NodeId(Builder& b, const Node& n, NodeId old)>;
ModelIR rebuild_indexed(const ModelIR& m, const IndexedRewriteFn& rewrite, size_t* rewrites = nullptr);

// Number of live nodes (what printouts count).
size_t live_node_count(const ModelIR& m);

}  // namespace gradc
