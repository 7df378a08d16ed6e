// The gradients of a model's loss: the step of the pipeline after sema.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

// Reverse mode on the loss: one gradient per param and per `wrt` name (an
// input or a named value), kept as graph roots (ModelIR::grads). Returns the
// problems with the `wrt` names (they are option errors); the model is
// unchanged when there are any.
std::vector<std::string> differentiate_loss(ModelIR& model, const std::vector<std::string>& wrt);

}  // namespace gradc
