// The kernel planner's pipeline: its steps in order (see kernels.h).
#include "compiler/codegen/kernels.h"

#include "compiler/codegen/fusion.h"
#include "compiler/codegen/lowering.h"
#include "compiler/codegen/row_bounds.h"

namespace gradc {

Program plan_program(const ModelIR& m, EntryKind kind, bool profile, const PlanObserver& observe) {
  Program p;
  p.sig = entry_signature(m, kind);
  p.profile = profile;
  auto step = [&](std::string_view name, const std::function<void(Program&)>& run) {
    run(p);
    if (observe) observe(name, p);
  };
  lower_to_kernels(m.graph, decide_fusion(m.graph, p.sig), p);
  if (observe) observe("lowering", p);
  if (m.capacities.empty()) step("batch-rows", plan_batch_rows);
  step("in-place", plan_in_place);
  step("internal-epilogues", plan_internal_epilogues);
  step("product-blocks", plan_product_blocks);
  if (!m.capacities.empty()) step("row-bounds", [&](Program& q) { plan_row_bounds(m, q); });
  step("invariant-packing", plan_invariant_packing);
  step("pool-epilogues", plan_pool_epilogues);
  step("arena", plan_arena);
  return p;
}

}  // namespace gradc
