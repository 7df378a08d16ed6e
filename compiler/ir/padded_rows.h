// What the padded rows of a capacity compile's values hold (SPEC 2.2;
// docs/internals.md, "Dynamic dims").
//
// A model compiled at capacity C for a dynamic dim B runs n <= C rows: the
// session and the export wrapper fill the inputs' rows past n with copies of
// their first row, and the masking pass (compiler/passes/capacity.h) keeps
// those rows out of every reduction and contraction along B. So, without
// any other help, the padded rows of each value hold one of a few things:
//
//   Row0  the value's elements at B-index i >= n equal those at B-index 0
//         (the forward values: every op along B works row by row);
//   Zero  they are exactly 0 (the cotangents, which reach the loss only
//         through the masks, and the masked operands themselves);
//   Mask  the value is the mask "@valid.B" or a reshape of it (0 there);
//   Other anything else, or what this analysis does not follow;
//   None  no axis of the value holds B.
//
// A matrix product whose rows hold B need not compute its padded rows when
// its results are Row0 or Zero: it computes rows [0, n) and fills the rest
// with what they would have held (plan_row_bounds, compiler/codegen/row_bounds.h),
// so every kernel after it reads exactly what it would have read.
//
// Row0 and Zero assume the first row's values are finite where they are
// multiplied by a zero; where they are not, the padded rows of the model run
// without this analysis hold NaN and its masked reductions are wrong anyway.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/dynamic_axes.h"
#include "compiler/ir/graph.h"

namespace gradc {

enum class Padding : uint8_t { None, Row0, Zero, Mask, Other };
const char* padding_name(Padding p);  // "none", "row 0", "zero", "mask", "other"

class PaddedRows {
 public:
  // The padded rows along dim `dim` (an index into axes.dims()) of g's nodes;
  // `axes` is the dynamic-axis analysis of the same graph.
  PaddedRows(const Graph& g, DynamicAxes& axes, int dim);
  Padding of(NodeId id);

 private:
  Padding infer(NodeId id);
  bool zero_constant(NodeId id) const;  // a constant 0, perhaps reshaped, broadcast or cast

  const Graph* g_;
  DynamicAxes* axes_;
  int dim_;
  std::string valid_;  // "@valid.B"
  std::vector<Padding> memo_;
};

}  // namespace gradc
