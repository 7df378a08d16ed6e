// The loops printer: `gradc dump --stage loops` and the planner's printouts
// after each step (kernels.h). A deterministic text form of a Program, so
// golden tests can pin what the planner decided before any LLVM IR exists.
#pragma once

#include <string>

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// What kernel k computes, in a few words ("matmul 64x256x784, 3 epilogues").
std::string kernel_summary(const Program& p, size_t k);

// The kernels as loop nests, and the memory plan. Also prints a plan that is
// not finished: before the arena plan (Program::placed) every arena buffer
// is listed as not placed yet.
std::string print_program(const Program& p);

}  // namespace gradc
