// Row bounds, a step of the kernel planner for capacity compiles (SPEC 2.2;
// docs/internals.md, "Dynamic dims"): kernels along a dynamic dim compute
// only the rows of the call's size, and fill the rest only where a later
// kernel reads them (with what compiler/ir/padded_rows.h says they hold).
#pragma once

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Sets Kernel::rows_size (and rows_dim, rows_fill, rows_zero, rows_capacity)
// on the kernels of `p` that can stop at the call's size of a dynamic dim of
// m (products, elementwise kernels, reductions, argmax, embedding
// gradients; in scan bodies too), Kernel::cols_size on register-tiled
// products whose columns hold the dim, and Kernel::k_size (k_unit,
// k_period) on each product contracting it where one operand is all zeros
// past the size (row_bounds.cpp).
void plan_row_bounds(const ModelIR& m, Program& p);

}  // namespace gradc
