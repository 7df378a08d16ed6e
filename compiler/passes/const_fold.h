// Constant folding: an elementwise op whose operands are all scalar
// constants becomes a constant, computed with the op's own scalar semantics
// and rounded to the node's dtype, so folding never changes a value.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// `folded` (if given) receives the number of nodes that became constants.
ModelIR fold_constants(const ModelIR& m, size_t* folded = nullptr);

}  // namespace gradc
