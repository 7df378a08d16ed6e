// The optimizers of SPEC 2.5: one table, and their update rules as graph.
//
// Each row of optimizer_table() holds everything about one optimizer: its
// name, its options with defaults and ranges (the front end checks the
// `optimizer` statement against them, optimizer_spec.cpp), its state slots,
// its extra consistency check and its update rule. Adding an optimizer is a
// row and its update function, in optimizers.cpp.
//
// build_train_step() adds to a model with gradients the nodes of one
// optimizer step: optional clip_grad_norm, then the update of every param
// and of its state slots, exactly as torch.optim writes them. The learning
// rate and the step counter are run-time inputs, so schedules need no
// recompilation. Because the update is ordinary graph, the interpreter runs
// it as the oracle and the code generator fuses it like anything else.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/ir/graph.h"

namespace gradc {

class Builder;

// The inputs of a train_step beyond the model's own.
inline constexpr const char* kLearningRate = "@lr";  // f64 scalar
inline constexpr const char* kStepCounter = "@step";  // f64 scalar: steps taken so far
// Read by the random ops of dropout (in grad and train_step): the model's
// seed as two i32 words (low, high), the key of Philox (runtime/philox.h).
inline constexpr const char* kRandomSeed = "@seed";

struct OptimizerOption {
  std::string_view name;
  double default_value;  // torch.optim's
  // NonNegative: >= 0; Unit: in [0, 1); Probability: in [0, 1]; Bool: 0 or 1;
  // Count: a whole number >= 1; Whole: a whole number >= 0.
  enum class Range : uint8_t { NonNegative, Unit, Probability, Bool, Count, Whole } range = Range::NonNegative;
};

// A state tensor kept per param.
struct OptimizerSlot {
  std::string_view name;          // PyTorch's name, e.g. "exp_avg"
  std::string_view present_when;  // an option that must be nonzero for the slot to exist; empty: always
  std::string_view initial_from;  // the option it starts from; empty: it starts at 0
};

// What an update rule is given: the run-time scalars and the param's slots.
class Updater;

struct OptimizerRule {
  std::string_view name;
  std::vector<OptimizerOption> options;  // SPEC 2.5's order
  std::vector<OptimizerSlot> slots;      // storage order
  // A check across options beyond their ranges: the message when `invalid`
  // holds, reported at the option `at` when it was given.
  struct Constraint {
    std::function<bool(const OptimizerSpec&)> invalid;
    std::string_view at;
    std::string_view message;
  };
  std::vector<Constraint> constraints;
  // The param's value after one step, given its gradient (SPEC 2.5).
  NodeId (*update)(Updater& u, NodeId p, NodeId g);
  // A gradient-free optimizer builds the whole step from the loss instead
  // (gradient_free.h); `update` is then null and no gradient is read.
  std::optional<std::string> (*whole_step)(ModelIR& m, Builder& b, NodeId t) = nullptr;
  bool gradient_free() const { return whole_step != nullptr; }
};

// Every optimizer; the first is the default (no `optimizer` statement).
const std::vector<OptimizerRule>& optimizer_table();
// nullptr when there is none of that name.
const OptimizerRule* find_optimizer(std::string_view name);

// The state slot names of an optimizer, in the order they are stored per
// param (PyTorch's names): e.g. {"exp_avg", "exp_avg_sq"} for adam.
std::vector<std::string> optimizer_slots(const OptimizerSpec& opt);
// The value a slot starts from (0, or adagrad's initial_accumulator_value).
double slot_initial_value(const OptimizerSpec& opt, const std::string& slot);

// Fills m.train (requires m.grads for every param, in params order, unless
// the optimizer is gradient-free). Returns why the step cannot be built (a
// gradient-free optimizer on a loss it cannot evaluate for a population),
// to report at the optimizer statement.
std::optional<std::string> build_train_step(ModelIR& m);

// The optimizer step of `m` as a model of its own, for data-parallel training
// (the gradients of several processes are averaged, then applied): the
// params, an input "grad.NAME" per param where the gradient was, and m's
// update (clip_grad_norm included) built on them. It has no model inputs and
// no loss; its ApplyUpdate entry reads the params, the optimizer state, the
// learning rate, the step counter and the gradients.
ModelIR build_update_model(const ModelIR& m);

}  // namespace gradc
