// The gradients of a model's loss: the step of the pipeline after sema.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/builder.h"

namespace gradc {

// The gradient of the loss: one per param and per `wrt` name (an input or a
// named value), kept as graph roots (ModelIR::grads). By reverse mode
// (reverse.h), or with `forward` by vector forward mode: the loss's tangent
// (forward.h) for the basis directions of each param, a block of them at a
// time, each block one batched evaluation (batching.h). Returns the problems
// with the `wrt` names (they are option errors); the model is unchanged when
// there are any.
std::vector<std::string> differentiate_loss(ModelIR& model, const std::vector<std::string>& wrt, bool forward = false);

// The basis directions of a block, as graph: rows [first, first + k) of the
// n x n identity matrix, [k, n] of dtype dt. The identity's row-major
// elements are periodic (a 1 every n + 1), so the block is a slice of a
// broadcast [1, 0, ..., 0] (n zeros) read as one long vector.
NodeId identity_rows(Builder& b, DType dt, int64_t n, int64_t first, int64_t k);

}  // namespace gradc
