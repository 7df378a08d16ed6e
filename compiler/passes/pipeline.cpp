// The pass order: fold constants and simplify until the graph stops
// shrinking, then remove dead and duplicate nodes.
#include "compiler/passes/pipeline.h"

#include "compiler/ir/verifier.h"
#include "compiler/passes/cleanup.h"
#include "compiler/passes/const_fold.h"
#include "compiler/passes/rebuild.h"
#include "compiler/passes/simplify.h"

namespace gradc {

ModelIR optimize(const ModelIR& m, std::vector<PassRecord>* log) {
  auto record = [&](const char* pass, const ModelIR& r) {
    verify_model(r);
    if (log) log->push_back({pass, live_node_count(r)});
  };
  ModelIR cur = eliminate_dead_and_common(m);
  record("cleanup", cur);
  constexpr int kMaxRounds = 16;
  for (int round = 0; round < kMaxRounds; ++round) {
    size_t before = live_node_count(cur);
    cur = fold_constants(cur);
    record("const_fold", cur);
    cur = simplify_once(cur);
    record("simplify", cur);
    if (live_node_count(cur) >= before) break;  // fixed point
  }
  return cur;
}

}  // namespace gradc
