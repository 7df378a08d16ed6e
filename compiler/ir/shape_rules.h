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

InferResult infer_type(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& attrs);

}  // namespace gradc
