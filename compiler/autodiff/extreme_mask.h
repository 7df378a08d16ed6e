// What the reverse and forward rules of max and min share: which element of
// each group carries the derivative.
#pragma once

#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// A 0/1 mask of x's dtype that is 1 at the first extreme element of each
// group reduced by `axes` (SPEC: max/min send the gradient there).
NodeId first_extreme_mask(Builder& b, NodeId x, const std::vector<int64_t>& axes, bool is_max);

}  // namespace gradc
