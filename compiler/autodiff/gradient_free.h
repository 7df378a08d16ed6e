// The gradient-free optimizers of SPEC 2.5, `genetic` and `es`, as graph.
//
// Neither reads a gradient: each step evaluates the training-mode loss for a
// whole population of params at once, the population being a leading axis
// of every param (batching.h), so the model's matrix products stay large
// ([P, B, k] @ [P, k, n]) instead of P small ones. Selection, crossover and
// mutation (genetic) or the gradient estimate and its step (es) are more
// graph after that forward, so the interpreter runs them as the oracle and
// the code generator fuses them like any optimizer's update. No backward
// pass is built into train_step (`gradc dump --stage opt` says so, from
// train_step_reads_gradients in ir/printer.h).
//
// Their random numbers are Philox draws (runtime/philox.h) keyed by the
// model's seed and the step number, on streams of their own (from
// kOptimizerStream up, so they never meet dropout's): a step is a pure
// function of (params, state, batch, seed, step), the same for any thread
// count and across --resume. Standard normals are Box-Muller transforms of
// two uniforms: sqrt(-2 log(1 - u1)) * cos(2 pi u2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "compiler/ir/graph.h"

namespace gradc {

class Builder;

// The first Philox stream of the optimizers' draws (the model's own random
// ops count from 0).
inline constexpr uint32_t kOptimizerStream = 0x80000000u;

// Fill m.train's new params and state slots (the step counter, lr, seed and
// `t`, the step number from 1, are made by build_train_step). They return
// the reason when the loss cannot be evaluated for a population (a random op
// such as dropout in training mode), reported at the optimizer statement.
std::optional<std::string> build_genetic_step(ModelIR& m, Builder& b, NodeId t);
std::optional<std::string> build_es_step(ModelIR& m, Builder& b, NodeId t);

}  // namespace gradc
