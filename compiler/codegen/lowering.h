// Lowering from the graph to kernels, the kernel planner's second step: each
// materialized node (fusion.h) becomes a kernel whose expression evaluates
// its fused operands inline, with every index an affine function of the
// kernel's loops; elementwise consumers of a matrix product become the
// product's epilogues. Buffers are numbered here: the entry's arguments
// first (reads, then produced values), then arena buffers as kernels need
// them. Memory is planned later (memory_plan.h).
#pragma once

#include "compiler/codegen/fusion.h"
#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Appends the buffers and kernels of the entry point p.sig to `p`.
void lower_to_kernels(const Graph& g, const Fusion& f, Program& p);

}  // namespace gradc
