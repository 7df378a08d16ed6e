// Semantic analysis: AST -> checked graph (SPEC 2.2-2.5).
//
// Resolves names (with fn scoping), binds dims (declared defaults or
// overrides), checks dtypes and shapes with NumPy broadcasting, inlines fn
// calls (recursion is an error), expands builtins into graph ops, expands
// grad() by reverse-mode differentiation, and checks the loss, outputs,
// metrics and optimizer. Errors go to the DiagEngine; independent statements
// keep being checked after an error.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/frontend/ast.h"
#include "compiler/ir/graph.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

struct SemaOptions {
  std::string default_name;                                // the model name when there is no `model` statement
  std::vector<std::pair<std::string, int64_t>> dim_values;  // overrides; names checked by the caller
  // Dynamic dims compiled at a capacity: laid out at that size, with their
  // run-time size an input (ModelIR::capacities).
  std::vector<std::pair<std::string, int64_t>> capacities = {};
};

// Returns the model, or nullopt when errors were reported.
std::optional<ModelIR> analyze(const Ast& ast, const SourceManager& sm, DiagEngine& diags, const SemaOptions& opts);

// The names of the `dim` statements, in order (to validate overrides).
std::vector<std::string> declared_dims(const Ast& ast);

}  // namespace gradc
