// The graph verifier: checks the invariants every pass relies on.
//
// Operands precede their users, every op has its arity, and every node's
// stored type equals what its shape rule infers. A violation is a compiler
// bug, reported as an internal error; the pipeline runs it between passes.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

void verify_graph(const Graph& g);
void verify_model(const ModelIR& m);

}  // namespace gradc
