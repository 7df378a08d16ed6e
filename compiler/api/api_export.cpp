// Model::export_code: the public face of the ahead-of-time export
// (compiler/codegen/export.h).
#include <fmt/format.h>

#include <algorithm>

#include "compiler/api/model_impl.h"
#include "compiler/autodiff/optimizers.h"
#include "compiler/codegen/export.h"

namespace gradc {

ExportedModel Model::export_code(const ExportOptions& opts) const {
  const ModelIR& m = *impl_->runnable();
  // A dynamic dim compiled at a capacity is a run-time argument of the
  // exported entries; any other needs a size.
  for (const std::string& d : m.dynamic_dims)
    if (std::none_of(m.capacities.begin(), m.capacities.end(), [&](const auto& c) { return c.first == d; }))
      throw DataError(fmt::format("export_code: the dim {} is dynamic; exported code needs a size for it "
                                  "(CompileOptions::dims) or a bound up to which it takes the size at run time "
                                  "(CompileOptions::capacities)",
                                  d));
  ExportRequest r;
  r.target = opts.target;
  r.cpu = opts.cpu;
  for (Entry e : opts.entries) {
    EntryKind kind = entry_kind(e);
    if (std::find(r.entries.begin(), r.entries.end(), kind) == r.entries.end()) r.entries.push_back(kind);
  }
  if (r.entries.empty()) {
    // Every entry the model has, but a grad that draws random numbers
    // (dropout in training mode), whose C API has no seed yet.
    bool grad_draws = false;
    for (NodeId n : live_nodes(m, Roots::Grads))
      grad_draws = grad_draws || (m.graph[n].op == Op::Input && m.graph[n].attrs.name == kRandomSeed);
    if (!m.outputs.empty()) r.entries.push_back(EntryKind::Forward);
    if (m.loss.node != kNoNode && !grad_draws) r.entries.push_back(EntryKind::Grad);
    if (m.train.built()) r.entries.push_back(EntryKind::TrainStep);
  }
  ExportedCode code = export_model(m, impl_->sm, r);
  return {code.name, std::move(code.object), std::move(code.header)};
}

}  // namespace gradc
