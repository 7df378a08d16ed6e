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
//
// (A scan's results: its body analyzed with its arguments seeded, the
// slices of xs holding what xs holds, each carry what both its initial value
// and the body's new value hold, Other where they differ.)
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

#include <map>
#include <memory>
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
  // Leaf `leaf` (a loop body's argument) holds `p` rather than what its kind says.
  void seed(NodeId leaf, Padding p) { seeds_[leaf] = p; }
  // The analysis of scan `scan`'s body (its arguments seeded with what the
  // scan gives them: the carries agreeing with what the body makes of them),
  // once of() has passed the scan; nullptr when its body was not analyzed.
  PaddedRows* body(NodeId scan) {
    auto it = bodies_.find(scan);
    return it == bodies_.end() ? nullptr : it->second.get();
  }

 private:
  Padding infer(NodeId id);
  void scan(NodeId id, const Node& n);
  bool zero_constant(NodeId id) const;  // a constant 0, perhaps reshaped, broadcast or cast

  const Graph* g_;
  DynamicAxes* axes_;
  int dim_;
  std::string valid_;  // "@valid.B"
  std::vector<Padding> memo_;
  std::map<NodeId, Padding> seeds_;
  std::map<NodeId, std::vector<Padding>> scans_;  // each scan's results
  std::map<NodeId, std::unique_ptr<PaddedRows>> bodies_;
};

}  // namespace gradc
