// Masking for models compiled at a capacity (SPEC 2.2; docs/internals.md,
// "Dynamic dims").
//
// A model compiled at capacity C for a dynamic dim B runs any size n <= C:
// the session pads the inputs to C rows (copies of the first row) and trims
// the results to n. Rows n..C are computed like the others; nothing may mix
// them into a row below n or into a value without B. Only a few ops mix
// along B (DynamicAxes): this pass, run on the front end's graph before
// autodiff, wraps the operand of every reduction over an axis that holds B,
// an operand of every product contracting one, and the rows of every
// embedding gradient's scatter along one, in where(@valid.B, x, identity),
// so that padded rows add nothing (and a NaN or infinity computed in one
// stays there). That covers the gradients the front end builds (a grad() in
// the loss) too. The gradients autodiff builds afterwards need nothing: the
// loss reaches a padded row only through a where, so the row's cotangent is
// exactly 0, and its values, those of the first row, are finite wherever the
// first row's are, so the reductions of the backward pass add exact zeros.
// Means divide by the run-time size: the front end's Sema::count.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

// Masks m's padded rows (nothing when m has no capacities) and records which
// axes of its outputs and gradients hold a dynamic dim (ModelIR::trim).
// Returns why the model cannot run at a capacity (a concat along B, a scan
// over it, an output or a gradient `wrt` asks for with B merged into another
// axis, which could not be trimmed), leaving m as it was.
std::optional<std::string> mask_padding(ModelIR& m, const std::vector<std::string>& wrt);

}  // namespace gradc
