// Dead-code and common-subexpression elimination.
//
// Autodiff and the other rewrites leave nodes that no root uses and nodes
// that became equal; copying the live graph into a fresh, interning graph
// removes both. Forward and backward graphs live in one graph, so values the
// backward pass needs are the forward pass's nodes, never recomputed.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// `rewrites` (if given) is set to 0: copying applies no rule (the signature is
// that of the other passes, for the pipeline's table).
ModelIR eliminate_dead_and_common(const ModelIR& m, size_t* rewrites = nullptr);

}  // namespace gradc
