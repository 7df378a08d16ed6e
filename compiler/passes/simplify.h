// Algebraic simplification: local rewrite rules applied until nothing changes.
//
// Autodiff emits many trivial nodes (adding zeros, multiplying by one,
// reshaping to the same shape, transposing twice); removing them keeps the
// graph small for fusion and code generation. Every rule preserves values
// exactly (no reassociation, no x*0 -> 0, which would hide NaN and inf), and
// stop_gradient becomes the identity, as differentiation is over by now.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// One sweep of the rules over the graph; `rewrites` (if given) receives the
// number of rules applied (0: the graph is at the rules' fixed point).
ModelIR simplify_once(const ModelIR& m, size_t* rewrites = nullptr);

}  // namespace gradc
