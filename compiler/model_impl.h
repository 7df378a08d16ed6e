// The state behind gradc::Model, shared by the files that implement the API.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "compiler/frontend/ast.h"
#include "compiler/ir/graph.h"
#include "compiler/exec/entry.h"
#include "compiler/passes/pipeline.h"
#include "gradc/session.h"
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

  // Executors, created on first use (the JIT compiles each entry lazily).
  std::mutex exec_mutex;
  std::unique_ptr<Executor> interpreter;
  std::unique_ptr<Executor> jit;
  Executor& executor(Backend backend);
  std::vector<Diagnostic> diags;
};

}  // namespace gradc
