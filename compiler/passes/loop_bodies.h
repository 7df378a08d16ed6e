// Loop bodies through the optimization pipeline.
//
// A scan's body is a graph of its own (Region), which the model's passes do
// not enter. This pass gives each body the whole pipeline (cleanup, constant
// folding, simplification, and this pass again for nested loops), as a model
// whose inputs are the body's arguments and whose outputs are its results:
// the backward scans that autodiff builds are bodies full of the same
// broadcasts of ones and sums of zeros that the model's own gradient graph
// has before it is simplified.
#pragma once

#include "compiler/ir/graph.h"

namespace gradc {

// Whether any live node of the model is a scan.
bool has_loops(const ModelIR& m);

// The model with every scan's body optimized; `rewrites` receives the number
// of scans whose body changed.
ModelIR optimize_loop_bodies(const ModelIR& m, size_t* rewrites = nullptr);

}  // namespace gradc
