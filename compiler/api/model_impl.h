// The state behind gradc::Model, shared by the files that implement the API.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "compiler/autodiff/model_gradients.h"
#include "compiler/autodiff/optimizers.h"
#include "compiler/frontend/ast.h"
#include "compiler/frontend/sema.h"
#include "compiler/ir/graph.h"
#include "compiler/exec/entry.h"
#include "compiler/passes/capacity.h"
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
  bool debug_info = false, perf_map = false;  // CompileOptions' (for the JIT)
  Executor& executor(Backend backend);
  // The optimizer step alone (build_update_model) and its executors, made on
  // first use: Session::apply_gradients runs its ApplyUpdate entry.
  std::optional<ModelIR> update_model;
  std::unique_ptr<Executor> update_interpreter, update_jit;
  Executor& update_executor(Backend backend);
  std::vector<Diagnostic> diags;

  // ---- dynamic dims (SPEC 2.2) ----
  // A model whose runnable graph has dynamic dims (ModelIR::dynamic_dims)
  // was checked at stand-in sizes. A call binds each from its inputs' shapes
  // and runs the specialization for those sizes: the same source compiled
  // with them fixed (`recompile`, with `opts` plus the sizes), kept here for
  // the model's lifetime (at most kKeptSpecializations, the least recently
  // used dropped first; a Session keeps its own alive).
  CompileOptions opts;
  std::function<std::shared_ptr<Impl>(const CompileOptions&)> recompile;
  static constexpr size_t kKeptSpecializations = 8;
  std::mutex spec_mutex;
  std::vector<std::pair<std::vector<int64_t>, std::shared_ptr<Impl>>> specializations;  // most recent last
  // Compiled at capacities (CompileOptions::capacities, ModelIR::capacities):
  // one code for every size from a quarter of the capacity up to it. Tried
  // first; a model that cannot run at a capacity (a concat along the dim, a
  // scan over it) is specialized per size instead, and capacity_refusal says why.
  std::vector<std::pair<std::vector<int64_t>, std::shared_ptr<Impl>>> capacity_compiles;  // most recent last
  bool capacity_refused = false;
  std::string capacity_refusal;
  bool dynamic() const { return runnable() && !runnable()->dynamic_dims.empty(); }
  // Compiled at capacities the user chose for every dynamic dim
  // (CompileOptions::capacities, --max): its code runs every size up to them.
  bool at_user_capacities() const { return dynamic() && runnable()->capacities.size() == runnable()->dynamic_dims.size(); }
  // The dynamic dims (ModelIR::dynamic_dims order) with their stand-in sizes.
  std::vector<std::pair<std::string, int64_t>> stand_ins() const {
    std::vector<std::pair<std::string, int64_t>> out;
    for (const std::string& d : runnable()->dynamic_dims)
      for (const auto& [name, v] : runnable()->dims)
        if (name == d) out.emplace_back(d, v);
    return out;
  }
  // The sizes of the dynamic dims, in ModelIR::dynamic_dims order, that the
  // given inputs bind (a dim no given input has keeps its stand-in size).
  // Throws DataError when two inputs disagree on one.
  std::vector<int64_t> bind_dynamic(const NamedTensors& inputs) const;
  // The model for those sizes: this one when they are the stand-ins (or it
  // has no dynamic dims), else a specialization, compiled on first use.
  // Throws DataError when the model does not compile at those sizes.
  // With `capacity`, a capacity compile that holds the sizes where the model
  // can run at one (a Session pads and trims for it); without, always the
  // specialization (Model's own interpreter calls, which bind no hidden inputs).
  std::shared_ptr<Impl> specialization(const std::vector<int64_t>& sizes, std::shared_ptr<Impl> self,
                                       bool capacity = true);
};

// The executor's name for a public entry point.
inline EntryKind entry_kind(Entry e) {
  return e == Entry::Forward ? EntryKind::Forward : e == Entry::Grad ? EntryKind::Grad : EntryKind::TrainStep;
}

// A diagnostic without a location (option errors, internal errors).
Diagnostic plain_error(std::string msg);

// The compilation pipeline after the front end, shared by text models and
// models defined in C++: `front(diags)` fills m.ast (the parser, or the
// embedded definition's conversion); then the dim overrides are checked and
// sema, autodiff, the optimizer step and the passes run. `default_name` is
// the model's name when the tree has no `model` statement. (A template on
// Impl because Model::Impl is private to Model's members.)
template <class Impl, class Front>
void run_pipeline(Impl& m, const std::string& default_name, const CompileOptions& opts, Front&& front) {
  DiagEngine diags(m.sm);
  m.debug_info = opts.debug_info;
  m.perf_map = opts.perf_map;
  try {
    front(diags);
    m.parsed = true;
    // Dim overrides must name declared dims.
    std::vector<std::string> dims = declared_dims(m.ast);
    for (const auto& [name, value] : opts.dims) {
      if (std::find(dims.begin(), dims.end(), name) == dims.end()) {
        std::string known;
        for (const std::string& d : dims) known += (known.empty() ? "" : ", ") + d;
        m.diags.push_back(plain_error(fmt::format("--set {}={}: the model declares no dim '{}'{}", name, value, name,
                                                  known.empty() ? " (it has no dims)" : " (its dims: " + known + ")")));
        m.options_error = true;
      } else if (value < 1) {
        m.diags.push_back(plain_error(fmt::format("--set {}={}: dims must be positive", name, value)));
        m.options_error = true;
      }
    }
    // Capacities (--max) must name dynamic dims: a dim declared with a size
    // has one code already.
    for (const auto& [name, value] : opts.capacities) {
      const Stmt* decl = nullptr;
      for (const Stmt& s : m.ast.stmts)
        if (s.kind == StmtKind::Dim && s.name == name) decl = &s;
      if (!decl) {
        m.diags.push_back(plain_error(fmt::format("--max {}={}: the model declares no dim '{}'", name, value, name)));
        m.options_error = true;
      } else if (!decl->dim_dynamic) {
        m.diags.push_back(plain_error(fmt::format("--max {}={}: the dim {} has a size in the model (`dim {} = ...`); "
                                                  "--max bounds a dynamic dim, one declared as `dim {}`",
                                                  name, value, name, name, name)));
        m.options_error = true;
      } else if (value < 1) {
        m.diags.push_back(plain_error(fmt::format("--max {}={}: dims must be positive", name, value)));
        m.options_error = true;
      }
      for (const auto& [fixed, size] : opts.dims)
        if (fixed == name) {
          m.diags.push_back(plain_error(fmt::format("--set {0}={1} and --max {0}={2} together: --set fixes the dim at "
                                                    "one size, --max compiles it for every size up to N; give one",
                                                    name, size, value)));
          m.options_error = true;
        }
    }
    if (m.options_error) return;
    SemaOptions so{default_name, opts.dims, opts.capacities};
    m.model = analyze(m.ast, m.sm, diags, so);
    if (m.model)
      if (auto why = mask_padding(*m.model, opts.wrt)) {
        m.diags.push_back(plain_error(fmt::format("the model cannot run at a capacity: {}", *why)));
        m.model.reset();
      }
    if (m.model) {
      for (std::string& problem : differentiate_loss(*m.model, opts.wrt, opts.ad == CompileOptions::Autodiff::Forward)) {
        m.diags.push_back(plain_error(std::move(problem)));
        m.options_error = true;
      }
      if (m.options_error) m.model.reset();
      if (m.model)
        if (auto problem = build_train_step(*m.model)) {
          diags.error(m.model->optimizer.loc, std::move(*problem));
          m.model.reset();
        }
      if (m.model && opts.optimize) m.optimized = optimize(*m.model, &m.pass_log);
    }
  } catch (const TooManyErrors&) {
    m.model.reset();
  } catch (const InternalError& e) {
    m.model.reset();
    m.diags.push_back(plain_error(e.what()));
  }
  std::vector<Diagnostic> found = diags.take();
  m.diags.insert(m.diags.begin(), found.begin(), found.end());
  // Warnings leave the model compiled; an error of any stage does not.
  bool failed = std::any_of(m.diags.begin(), m.diags.end(),
                            [](const Diagnostic& d) { return d.severity != Severity::Warning; });
  if (failed && m.model) m.model.reset();
}

}  // namespace gradc
