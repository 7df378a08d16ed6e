// The state behind gradc::Model, shared by the files that implement the API.
#pragma once

#include <optional>
#include <vector>

#include "compiler/frontend/ast.h"
#include "compiler/ir/graph.h"
#include "compiler/passes/pipeline.h"
#include "compiler/support/source.h"
#include "gradc/gradc.h"

namespace gradc {

struct Model::Impl {
  SourceManager sm;
  Ast ast;
  bool parsed = false;
  bool options_error = false;
  std::optional<ModelIR> model;      // checked, with gradients
  std::optional<ModelIR> optimized;  // after the passes (when CompileOptions::optimize)
  std::vector<PassRecord> pass_log;
  // The graph that evaluation runs: the optimized one when there is one.
  const std::optional<ModelIR>& runnable() const { return optimized ? optimized : model; }
  std::vector<Diagnostic> diags;
};

}  // namespace gradc
