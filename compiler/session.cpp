// gradc::Session: params, optimizer state and the entry points that use them.
#include <fmt/format.h>

#include <cmath>
#include <map>

#include "compiler/autodiff/optimizers.h"
#include "compiler/codegen/jit.h"
#include "compiler/model_impl.h"
#include "runtime/init.h"
#include "runtime/interpreter.h"
#include "runtime/tensor_io.h"

namespace gradc {

Executor& Model::Impl::executor(Backend backend) {
  std::lock_guard<std::mutex> lock(exec_mutex);
  const ModelIR& m = *runnable();
  if (backend == Backend::Interpreter) {
    if (!interpreter) interpreter = make_interpreter_executor(m, sm);
    return *interpreter;
  }
  if (!jit) jit = make_jit_executor(m, sm);
  return *jit;
}

struct Session::Impl {
  std::shared_ptr<Model::Impl> model;  // keeps the model and its code alive
  const ModelIR* ir = nullptr;
  Backend backend = Backend::Jit;
  bool check_numerics = false;
  int threads = 0;
  NamedTensors params;
  NamedTensors state;  // "opt.SLOT.PARAM"
  int64_t step = 0;
  mutable std::map<EntryKind, EntrySignature> signatures;  // computed once per entry

  const EntrySignature& signature(EntryKind kind) const {
    auto it = signatures.find(kind);
    if (it == signatures.end()) it = signatures.emplace(kind, entry_signature(*ir, kind)).first;
    return it->second;
  }

  const Tensor* lookup(const std::string& name, const NamedTensors& inputs, Tensor& lr, Tensor& step_t) const {
    if (name == kLearningRate) return &lr;
    if (name == kStepCounter) return &step_t;
    if (const Tensor* t = find_tensor(params, name)) return t;
    if (const Tensor* t = find_tensor(state, name)) return t;
    return find_tensor(inputs, name);
  }

  // Runs an entry with inputs by name; returns the produced tensors by name.
  NamedTensors run(EntryKind kind, const NamedTensors& inputs, double lr_value) const {
    const EntrySignature& sig = signature(kind);
    Tensor lr(DType::F64, {}), step_t(DType::F64, {});
    lr.set(0, lr_value);
    step_t.set(0, static_cast<double>(step));
    std::vector<const Tensor*> in;
    for (const EntryValue& v : sig.reads) {
      const Tensor* t = lookup(v.name, inputs, lr, step_t);
      if (!t || t->dtype() != v.dtype || t->shape() != v.shape) {
        std::string want = Tensor(v.dtype, v.shape).type_string();
        if (!t) throw DataError(fmt::format("{}: missing input tensor '{}' (expected {})", entry_name(kind), v.name, want));
        throw DataError(fmt::format("{}: tensor '{}': expected {}, got {}", entry_name(kind), v.name, want,
                                    t->type_string()));
      }
      in.push_back(t);
    }
    NamedTensors out;
    out.reserve(sig.produces.size());
    for (const EntryValue& v : sig.produces) out.emplace_back(v.name, Tensor(v.dtype, v.shape));
    std::vector<Tensor*> out_ptrs;
    for (auto& [name, t] : out) out_ptrs.push_back(&t);
    model->executor(backend).run(sig, in, out_ptrs, threads);
    if (check_numerics)
      for (const auto& [name, t] : out)
        for (int64_t i = 0; i < t.numel(); ++i)
          if (!std::isfinite(t.get(i))) locate_non_finite(sig, in, name);
    return out;
  }

  // Re-runs the entry on the interpreter and reports the first node, in
  // topological order, whose value has a NaN or infinity (its operands, being
  // earlier, are finite), or the input that brought one in.
  [[noreturn]] void locate_non_finite(const EntrySignature& sig, const std::vector<const Tensor*>& in,
                                      const std::string& output) const {
    Interpreter interp(ir->graph);
    for (size_t i = 0; i < sig.reads.size(); ++i) interp.bind(sig.reads[i].node, *in[i]);
    std::vector<NodeId> roots;
    for (const EntryValue& v : sig.produces) roots.push_back(v.node);
    try {
      interp.run(roots);
    } catch (const DataError&) {
    }
    const SourceManager& sm = model->sm;
    for (NodeId id = 0; id < ir->graph.size(); ++id) {
      if (!interp.evaluated(id) || !is_float(ir->graph[id].dtype)) continue;
      const std::vector<double>& v = interp.values(id);
      for (size_t e = 0; e < v.size(); ++e) {
        if (std::isfinite(v[e])) continue;
        const Node& n = ir->graph[id];
        std::string where = "(no source location)";
        if (n.loc.valid()) {
          LineCol lc = sm.line_col(n.loc.file, n.loc.begin);
          where = fmt::format("{}:{}:{}", sm.name(n.loc.file), lc.line, lc.column);
        }
        if (n.op == Op::Input || n.op == Op::Param)
          throw DataError(fmt::format("check-numerics: {} '{}' holds {} at element {} ({}), in {}",
                                      n.op == Op::Input ? "input" : "param", n.attrs.name, v[e], e,
                                      type_str(n.dtype, n.shape), entry_name(sig.kind)));
        throw DataError(fmt::format("{}: check-numerics: '{}' produced {} at element {} of its {} result, in {} "
                                    "(first non-finite value of the step; it reached '{}')",
                                    where, op_name(n.op), v[e], e, type_str(n.dtype, n.shape), entry_name(sig.kind),
                                    output));
      }
    }
    throw DataError(fmt::format("check-numerics: '{}' of {} is not finite, but the interpreter computes it finite "
                                "(a rounding difference near the limits of the dtype)", output, entry_name(sig.kind)));
  }
};

namespace {

Tensor* find_mut(NamedTensors& ts, std::string_view name) {
  for (auto& [n, t] : ts)
    if (n == name) return &t;
  return nullptr;
}

// Checks that `from` has every tensor of `like` with the same type (and no others when `exact`).
void check_complete(const NamedTensors& like, const NamedTensors& from, const char* what) {
  for (const auto& [name, t] : like) {
    const Tensor* f = find_tensor(from, name);
    if (!f) throw DataError(fmt::format("{}: missing tensor '{}' (expected {})", what, name, t.type_string()));
    if (f->dtype() != t.dtype() || f->shape() != t.shape())
      throw DataError(fmt::format("{}: tensor '{}': expected {}, got {}", what, name, t.type_string(), f->type_string()));
  }
}

}  // namespace

Session::Session(const Model& model, const SessionOptions& opts) : impl_(std::make_unique<Impl>()) {
  if (!model.ok()) throw DataError("cannot create a session: the model did not compile");
  impl_->model = model.impl_;
  impl_->ir = &*model.impl_->runnable();
  impl_->backend = opts.backend;
  impl_->check_numerics = opts.check_numerics;
  impl_->threads = opts.threads;
  const ModelIR& m = *impl_->ir;
  // Refuse before allocating when params and optimizer state would not fit.
  double bytes = 0;
  for (const ParamDecl& p : m.params)
    bytes += static_cast<double>(numel(m.graph[p.node].shape)) * static_cast<double>(dtype_size(m.graph[p.node].dtype));
  bytes *= 1.0 + static_cast<double>(m.train.slots.size()) / std::max<size_t>(1, m.params.size());
  if (bytes > static_cast<double>(kMaxSessionBytes))
    throw DataError(fmt::format("the model's params and optimizer state need {:.1f} GiB; a session is limited to {} GiB",
                                bytes / (1 << 30), kMaxSessionBytes >> 30));
  impl_->params = init_params(m, opts.seed);
  for (const StateSlot& s : m.train.slots) {
    const ParamDecl& p = m.params[s.param];
    Tensor t(m.graph[p.node].dtype, sizes(m.graph[p.node].shape));
    double v = slot_initial_value(m.optimizer, s.slot);
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v);
    impl_->state.emplace_back(fmt::format("opt.{}.{}", s.slot, p.name), std::move(t));
  }
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

const NamedTensors& Session::params() const { return impl_->params; }
const NamedTensors& Session::optimizer_state() const { return impl_->state; }
int64_t Session::step() const { return impl_->step; }
Backend Session::backend() const { return impl_->backend; }

Tensor& Session::param(std::string_view name) {
  if (Tensor* t = find_mut(impl_->params, name)) return *t;
  std::string names;
  for (const auto& [n, t] : impl_->params) names += (names.empty() ? "" : ", ") + n;
  throw DataError(fmt::format("the model has no param '{}' (its params: {})", name, names.empty() ? "none" : names));
}

void Session::set_params(const NamedTensors& params) {
  check_complete(impl_->params, params, "set_params");
  for (auto& [name, t] : impl_->params) t = *find_tensor(params, name);
}

NamedTensors Session::checkpoint() const {
  NamedTensors out = impl_->params;
  for (const auto& st : impl_->state) out.push_back(st);
  Tensor step(DType::I32, {});
  step.set(0, static_cast<double>(impl_->step));
  out.emplace_back("opt.step", std::move(step));
  return out;
}

void Session::save(const std::string& path) const { write_safetensors(path, checkpoint()); }

void Session::load(const std::string& path) { restore(read_safetensors(path), path); }

void Session::restore(const NamedTensors& file, const std::string& what) {
  const std::string& path = what;
  check_complete(impl_->params, file, what.c_str());
  bool has_state = find_tensor(file, "opt.step") != nullptr;
  if (has_state) check_complete(impl_->state, file, what.c_str());
  int64_t step = 0;
  if (has_state) {
    const Tensor& st = *find_tensor(file, "opt.step");
    if (st.numel() != 1 || st.get(0) < 0)
      throw DataError(fmt::format("{}: tensor 'opt.step' must be a non-negative scalar", path));
    step = static_cast<int64_t>(st.get(0));
  }
  // All checked: now change the session.
  for (auto& [name, t] : impl_->params) t = *find_tensor(file, name);
  if (has_state) {
    for (auto& [name, t] : impl_->state) t = *find_tensor(file, name);
    impl_->step = step;
  }
}

double Session::train_step(const NamedTensors& inputs) {
  return train_step(inputs, impl_->ir->optimizer.option("lr"));
}

double Session::train_step(const NamedTensors& inputs, double lr) {
  if (!(lr >= 0) || !std::isfinite(lr)) throw DataError(fmt::format("train_step: the learning rate must be finite and >= 0, got {}", lr));
  NamedTensors out = impl_->run(EntryKind::TrainStep, inputs, lr);
  // Commit the new params and state only after the whole step succeeded.
  for (auto& [name, t] : out) {
    if (Tensor* p = find_mut(impl_->params, name)) *p = std::move(t);
    else if (Tensor* s = find_mut(impl_->state, name)) *s = std::move(t);
  }
  ++impl_->step;
  return out.front().second.get(0);
}

NamedTensors Session::forward(const NamedTensors& inputs) const {
  // With the inputs the loss needs, evaluate it and the metrics too.
  const EntrySignature& eval = impl_->signature(EntryKind::Evaluate);
  bool all = true;
  for (const EntryValue& v : eval.reads)
    if (!find_tensor(impl_->params, v.name) && !find_tensor(inputs, v.name)) all = false;
  return impl_->run(all ? EntryKind::Evaluate : EntryKind::Forward, inputs, 0);
}

NamedTensors Session::grad(const NamedTensors& inputs) const { return impl_->run(EntryKind::Grad, inputs, 0); }

}  // namespace gradc
