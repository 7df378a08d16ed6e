// Optimizer update rules (SPEC 2.5) as graph: the train_step stage.
//
// build_train_step() adds to a model with gradients the nodes of one
// optimizer step: optional clip_grad_norm, then the update of every param
// and of its state slots, exactly as torch.optim writes them. The learning
// rate and the step counter are run-time inputs, so schedules need no
// recompilation. Because the update is ordinary graph, the interpreter runs
// it as the oracle and the code generator fuses it like anything else.
#pragma once

#include <string>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

// The inputs of a train_step beyond the model's own.
inline constexpr const char* kLearningRate = "@lr";  // f64 scalar
inline constexpr const char* kStepCounter = "@step";  // f64 scalar: steps taken so far

// The state slot names of an optimizer, in the order they are stored per
// param (PyTorch's names): e.g. {"exp_avg", "exp_avg_sq"} for adam.
std::vector<std::string> optimizer_slots(const OptimizerSpec& opt);
// The value a slot starts from (0, or adagrad's initial_accumulator_value).
double slot_initial_value(const OptimizerSpec& opt, const std::string& slot);

// Fills m.train (requires m.grads for every param, in params order).
void build_train_step(ModelIR& m);

}  // namespace gradc
