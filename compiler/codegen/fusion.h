// Fusion decisions, the kernel planner's first step: which graph nodes get a
// buffer of their own and which are evaluated inline by the one kernel that
// reads them, and the order the kernels run in. Kept apart from lowering so
// that the decisions are made once, over the whole graph, before any kernel
// exists.
#pragma once

#include <vector>

#include "compiler/exec/entry.h"
#include "compiler/ir/graph.h"

namespace gradc {

// The most graph nodes one kernel evaluates inline (see bound_size in
// fusion.cpp): larger trees are cut by materializing nodes, so that the
// recursive walks over kernel expressions use bounded stack on any thread and
// LLVM never gets an unbounded basic block.
inline constexpr int kMaxFusedNodes = 1024;

struct Fusion {
  std::vector<bool> live;      // needed by a produced value
  std::vector<int> users;      // live users, plus one per produced value it is
  std::vector<bool> mat;       // materialized: computed into a buffer of its own
  std::vector<bool> absorbed;  // a transpose that its matrix product reads through strides
  std::vector<NodeId> order;   // the live nodes in kernel order
  std::vector<int> pos;        // a node's place in `order`
};

// Decides fusion for the entry point with signature `sig` over graph `g`:
// a node with one user that can evaluate it inline is fused into that user;
// leaves, reductions, products, concatenations, pads and produced values are
// materialized, and so are the operands of reshapes, one_hot and products
// (a product absorbs a transpose of its last two axes instead); and a node
// that keeps a kernel's fused expression within kMaxFusedNodes.
Fusion decide_fusion(const Graph& g, const EntrySignature& sig);

}  // namespace gradc
