// The pass order: remove dead and duplicate nodes, then fold constants and
// simplify, round after round, until a round applies no rewrite.
#include "compiler/passes/pipeline.h"

#include "compiler/ir/verifier.h"
#include "compiler/passes/cleanup.h"
#include "compiler/passes/const_fold.h"
#include "compiler/passes/conv_input_grad.h"
#include "compiler/passes/loop_bodies.h"
#include "compiler/passes/rebuild.h"
#include "compiler/passes/simplify.h"
#include "compiler/passes/sink_views.h"

namespace gradc {
namespace {

// A pass: the graph in, the graph out; `rewrites` receives how many rules it
// applied (every pass also removes dead and duplicate nodes, by rebuilding).
struct Pass {
  const char* name;
  ModelIR (*run)(const ModelIR& m, size_t* rewrites);
};

// Run once, first: autodiff leaves dead and duplicate nodes.
constexpr Pass kFirst[] = {
    {"cleanup", eliminate_dead_and_common},
};

// Run in this order, round after round, until a round applies no rewrite:
// folding makes constants the simplifier's rules look for, and simplifying
// (for example unbroadcasting a scalar) makes nodes that fold.
constexpr Pass kRounds[] = {
    {"const_fold", fold_constants},
    {"simplify", simplify_once},
};

// A bound on the rounds, in case two rules ever undo each other; every
// example model reaches the fixed point in two.
constexpr int kMaxRounds = 16;

}  // namespace

ModelIR optimize(const ModelIR& m, std::vector<PassRecord>* log, const PassObserver& observe) {
  ModelIR cur;
  const ModelIR* in = &m;
  auto run = [&](const Pass& p) {
    size_t rewrites = 0;
    cur = p.run(*in, &rewrites);
    in = &cur;
    verify_model(cur);
    if (log) log->push_back({p.name, live_node_count(cur)});
    if (observe) observe(p.name, cur);
    return rewrites;
  };
  for (const Pass& p : kFirst) run(p);
  // A convolution's input gradient as a convolution, once (a model without
  // a convolution's stride-1 fold does not list the pass).
  if (has_stride1_fold(*in)) run({"conv_input_grad", rewrite_conv_input_grads});
  // Bias and activation in a convolution's product layout, once (a model
  // without an elementwise op on a product's view does not list the pass).
  if (has_product_views(*in)) run({"sink_views", sink_elementwise_into_views});
  // Loop bodies get the whole pipeline of their own, once (recursively for
  // nested loops); a model without loops does not list the pass.
  if (has_loops(*in)) run({"loop_bodies", optimize_loop_bodies});
  for (int round = 0; round < kMaxRounds; ++round) {
    size_t rewrites = 0;
    for (const Pass& p : kRounds) rewrites += run(p);
    if (rewrites == 0) break;  // the fixed point: the next round would change nothing
  }
  return cur;
}

}  // namespace gradc
