// Shape and dtype rules of every op.
//
// One function infers the result type of any op from its operands and
// attributes (per OpKind, see ops.def). The Builder (builder.h) applies it to
// every node it creates; the verifier re-applies it between passes.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

struct InferResult {
  DType dtype = DType::F32;
  Shape shape;
  std::string error;  // non-empty on failure: a message naming the shapes/dtypes
};

// How many windows of `kernel` elements, `dilation` apart, fit along an axis
// of `size` elements at steps of `stride`: floor((size - dilation (kernel - 1)
// - 1) / stride) + 1, zero or less when none does (stride >= 1).
int64_t window_count(int64_t size, int64_t kernel, int64_t stride, int64_t dilation);

// For a window or fold between the row-major tensor `spatial` [N, C, S..] and
// its windows [N, C, K.., O..] (attributes `attrs`, see ops.def): the step in
// `spatial`'s elements of each axis of the windows, so that window element
// (n, c, k.., o..) reads spatial element sum of index * step (o*stride +
// k*dilation on each spatial axis).
std::vector<int64_t> window_steps(const std::vector<int64_t>& spatial, const std::vector<int64_t>& attrs);

InferResult infer_type(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& attrs);

}  // namespace gradc
