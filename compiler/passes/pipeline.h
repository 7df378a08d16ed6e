// The optimization pipeline: the passes, in order.
//
// Runs on the whole model (forward, gradients, metrics together), verifies
// the graph after every pass, and can record the graph after each one.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

struct PassRecord {
  std::string pass;
  size_t nodes_after = 0;
};

// The optimized model; `log` (if given) receives one record per pass run.
ModelIR optimize(const ModelIR& m, std::vector<PassRecord>* log = nullptr);

}  // namespace gradc
