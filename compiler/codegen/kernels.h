// The kernel planner: an entry point of a model to a Program of loop nests
// (loop_ir.h), in named steps that run in order (as Halide's Lower.cpp):
//   lowering            fusion decisions, then kernels from the graph (fusion.h, lowering.h)
//   batch-rows          batched products with one B: one product over all their rows (memory_plan.h)
//   in-place            new values written over the old ones (memory_plan.h)
//   internal-epilogues  epilogue values kept in registers
//   product-blocks      product results kept in per-thread blocks
//   row-bounds          capacity compiles: products along a dynamic dim stop at the call's size (row_bounds.h)
//   invariant-packing   a loop's products pack a B that the loop does not change once
//   arena               buffer offsets by liveness
// An observer sees the Program after each step, so `--print-after-all` can
// print the loops after every step (loops_printer.h).
#pragma once

#include <functional>
#include <string_view>

#include "compiler/codegen/loop_ir.h"
#include "compiler/codegen/loops_printer.h"
#include "compiler/codegen/memory_plan.h"

namespace gradc {

// Called after each step of the planner with the step's name and the
// Program as that step left it.
using PlanObserver = std::function<void(std::string_view step, const Program&)>;

// Plans an entry point of a model (fusion, kernels, memory plan), timed
// kernel by kernel with `profile`; calls `observe` (when set) after each step.
Program plan_program(const ModelIR& m, EntryKind kind, bool profile = false, const PlanObserver& observe = {});

}  // namespace gradc
