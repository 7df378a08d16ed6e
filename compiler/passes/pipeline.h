// The optimization pipeline: the passes, in order.
//
// Runs on the whole model (forward, gradients, metrics together), verifies
// the graph after every pass, and can record the graph after each one: a
// node count per pass (the `opt` printout's header) and, for
// `--print-after-all`, the graph itself through an observer.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

struct PassRecord {
  std::string pass;
  size_t nodes_after = 0;
};

// Called after every pass run with the pass's name and the graph it made.
using PassObserver = std::function<void(std::string_view pass, const ModelIR& after)>;

// The optimized model; `log` (if given) receives one record per pass run, and
// `observe` (if given) sees the graph after each.
ModelIR optimize(const ModelIR& m, std::vector<PassRecord>* log = nullptr, const PassObserver& observe = nullptr);

}  // namespace gradc
