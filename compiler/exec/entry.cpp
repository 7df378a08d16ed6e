// Entry signatures and the interpreter executor.
#include "compiler/exec/entry.h"

#include <fmt/format.h>

#include <algorithm>
#include <new>

#include "compiler/support/diagnostics.h"
#include "compiler/exec/interpreter.h"

namespace gradc {

Arena::Arena(int64_t bytes, EntryKind kind) {
  if (bytes > kMaxSessionBytes)
    throw DataError(fmt::format("{} needs {:.1f} GiB of working memory; the limit is {} GiB", entry_name(kind),
                                static_cast<double>(bytes) / (1 << 30), kMaxSessionBytes >> 30));
  size_t size = (static_cast<size_t>(std::max<int64_t>(bytes, 64)) + 63) / 64 * 64;
  try {
    data_ = static_cast<uint8_t*>(detail::allocate_storage(size));
  } catch (const std::bad_alloc&) {
    throw DataError(fmt::format("cannot allocate the {} bytes of working memory", size));
  }
  size_ = size;
}

const char* entry_name(EntryKind k) {
  switch (k) {
    case EntryKind::Forward: return "forward";
    case EntryKind::Evaluate: return "evaluate";
    case EntryKind::Grad: return "grad";
    case EntryKind::TrainStep: return "train_step";
    case EntryKind::ApplyUpdate: return "apply_update";
  }
  return "?";
}

EntrySignature entry_signature(const ModelIR& m, EntryKind kind) {
  EntrySignature sig{kind, {}, {}};
  auto value = [&](std::string name, NodeId id) {
    const Node& n = m.graph[id];
    return EntryValue{std::move(name), id, n.dtype, sizes(n.shape)};
  };
  auto& out = sig.produces;
  switch (kind) {
    case EntryKind::Forward:
      for (const NamedNode& o : m.outputs) out.push_back(value("out." + o.name, o.node));
      break;
    case EntryKind::Evaluate:
      for (const NamedNode& o : m.outputs) out.push_back(value("out." + o.name, o.node));
      out.push_back(value("loss", m.loss.node));
      for (const NamedNode& o : m.metrics) out.push_back(value("metric." + o.name, o.node));
      break;
    // grad and train_step run in training mode (SPEC 2.7): their roots are
    // the training ones.
    case EntryKind::Grad:
      out.push_back(value("loss", m.training.loss.node));
      for (const NamedNode& g : m.grads) out.push_back(value("grad." + g.name, g.node));
      for (const NamedNode& o : m.training.outputs) out.push_back(value("out." + o.name, o.node));
      break;
    case EntryKind::TrainStep:
    case EntryKind::ApplyUpdate:
      GRADC_ASSERT(m.train.built(), "train_step was not built");
      if (kind == EntryKind::TrainStep) out.push_back(value("loss", m.training.loss.node));
      for (size_t i = 0; i < m.params.size(); ++i) out.push_back(value(m.params[i].name, m.train.new_params[i]));
      for (size_t i = 0; i < m.buffers.size(); ++i)
        out.push_back(value(m.buffers[i].name, m.training.new_buffers[i]));
      for (const StateSlot& s : m.train.slots)
        out.push_back(value(s.tensor, s.out));
      out.push_back(value("opt.step", m.train.step_out));
      break;
  }
  // The leaves those roots need, in graph order.
  std::vector<bool> need(m.graph.size(), false);
  for (const EntryValue& v : out) need[v.node] = true;
  // A capacity compile's entries all read the sizes (ModelIR::sizes).
  for (NodeId n : m.sizes) need[n] = true;
  for (size_t i = m.graph.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : m.graph[static_cast<NodeId>(i)].operands) need[o] = true;
  for (NodeId i = 0; i < m.graph.size(); ++i) {
    const Node& n = m.graph[i];
    if (need[i] && (n.op == Op::Input || n.op == Op::Param)) sig.reads.push_back(value(n.attrs.name, i));
  }
  return sig;
}

namespace {

class InterpreterExecutor : public Executor {
 public:
  InterpreterExecutor(const ModelIR& m, const SourceManager& sm) : m_(m), sm_(sm) {}

  void run(const EntrySignature& sig, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out, int) override {
    Interpreter interp(m_.graph);
    for (size_t i = 0; i < sig.reads.size(); ++i) interp.bind(sig.reads[i].node, *in[i]);
    std::vector<NodeId> roots;
    for (const EntryValue& v : sig.produces) roots.push_back(v.node);
    try {
      interp.run(roots);
    } catch (const EvalError& e) {
      if (!e.loc.valid()) throw;
      throw_model_error(sm_, e.loc, e.what());
    }
    for (size_t i = 0; i < roots.size(); ++i) *out[i] = interp.result(roots[i]);
  }

 private:
  const ModelIR& m_;
  const SourceManager& sm_;
};

}  // namespace

std::unique_ptr<Executor> make_interpreter_executor(const ModelIR& m, const SourceManager& sm) {
  return std::make_unique<InterpreterExecutor>(m, sm);
}

}  // namespace gradc
