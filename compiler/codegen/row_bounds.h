// Row bounds, a step of the kernel planner for capacity compiles (SPEC 2.2;
// docs/internals.md, "Dynamic dims"): a matrix product whose rows hold a
// dynamic dim computes only the rows of the call's size when what its padded
// rows hold is known (compiler/ir/padded_rows.h), and fills the rest.
#pragma once

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Sets Kernel::rows_size and rows_zero on each product of `p` whose rows
// hold a dynamic dim of m alone (the whole axis, size the capacity) and
// whose stored results (its own, unless in blocks, and each stored
// epilogue's) all hold copies of row 0, or all zeros, past the call's size;
// and Kernel::k_size on each product contracting such a dim where one
// operand is all zeros past the size.
void plan_row_bounds(const ModelIR& m, Program& p);

}  // namespace gradc
