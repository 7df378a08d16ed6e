// gradc::Session: params, optimizer state and the entry points that use them.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <utility>

#include "compiler/autodiff/optimizers.h"
#include "compiler/codegen/jit.h"
#include "compiler/api/model_impl.h"
#include "compiler/exec/init.h"
#include "compiler/exec/interpreter.h"
#include "compiler/support/messages.h"
#include "runtime/tensor_io.h"
#include "runtime/thread_pool.h"

namespace gradc {

Executor& Model::Impl::executor(Backend backend) {
  std::lock_guard<std::mutex> lock(exec_mutex);
  const ModelIR& m = *runnable();
  if (backend == Backend::Interpreter) {
    if (!interpreter) interpreter = make_interpreter_executor(m, sm);
    return *interpreter;
  }
  if (!jit) jit = make_jit_executor(m, sm, {debug_info, perf_map});
  return *jit;
}

Executor& Model::Impl::update_executor(Backend backend) {
  std::lock_guard<std::mutex> lock(exec_mutex);
  // Optimized as the model is: the passes fold the update's scalar coefficients.
  if (!update_model) update_model = optimized ? optimize(build_update_model(*optimized)) : build_update_model(*model);
  if (backend == Backend::Interpreter) {
    if (!update_interpreter) update_interpreter = make_interpreter_executor(*update_model, sm);
    return *update_interpreter;
  }
  if (!update_jit) update_jit = make_jit_executor(*update_model, sm, {debug_info, perf_map});
  return *update_jit;
}

namespace {

// A zero-filled tensor for value `v` of an entry; a tensor that memory cannot
// hold is an error naming the entry, the value and the bytes (Tensor's own
// message), not an internal one.
Tensor allocate(const EntryValue& v, EntryKind kind) {
  try {
    return Tensor(v.dtype, v.shape);
  } catch (const DataError& e) {
    throw DataError(fmt::format("{}: tensor '{}': {}", entry_name(kind), v.name, e.what()));
  }
}

}  // namespace

namespace {

// t with `to` rows along `axis`: its first ones, then (when it has fewer)
// copies of its first, into `out` (made anew unless it has that type).
// Pads an input to a capacity, cuts a result to a call's size. With `keep`,
// an `out` of that type keeps its rows past t's: an earlier call's input
// rows or copies, values like the real ones all the same.
void resize_axis(const Tensor& t, int axis, int64_t to, Tensor& out, bool keep = false) {
  std::vector<int64_t> shape = t.shape();
  int64_t n = shape[axis], outer = 1, inner = 1;
  for (int a = 0; a < t.rank(); ++a)
    if (a != axis) (a < axis ? outer : inner) *= shape[a];
  shape[axis] = to;
  if (out.dtype() != t.dtype() || out.shape() != shape) {
    out = Tensor(t.dtype(), shape);
    keep = false;
  }
  size_t row = static_cast<size_t>(inner) * dtype_size(t.dtype());
  const auto* src = static_cast<const uint8_t*>(t.raw());
  auto* dst = static_cast<uint8_t*>(out.raw());
  for (int64_t o = 0; o < outer && n > 0; ++o) {
    const uint8_t* from = src + static_cast<size_t>(o * n) * row;
    uint8_t* into = dst + static_cast<size_t>(o * to) * row;
    std::memcpy(into, from, static_cast<size_t>(std::min(n, to)) * row);
    for (int64_t r = n; r < to && !keep; ++r) std::memcpy(into + static_cast<size_t>(r) * row, from, row);
  }
}

}  // namespace

struct Session::Impl {
  std::shared_ptr<Model::Impl> model;  // keeps the model and its code alive
  const ModelIR* ir = nullptr;
  Backend backend = Backend::Jit;
  bool check_numerics = false;
  int threads = 0;
  bool profile = false;
  NamedTensors params;
  NamedTensors buffers;  // ModelIR::buffers: read by every entry, updated by train_step
  NamedTensors state;  // "opt.SLOT.PARAM"
  int64_t step = 0;
  uint64_t seed = 0;  // SessionOptions::seed: also the key of dropout's random bits
  Preprocessing preprocessing;  // what the params expect of raw inputs (a checkpoint records it)

  // ---- what repeated calls reuse (a Session runs one call at a time) ----
  Executor* exec = nullptr;             // the model's executor for `backend`, owned by the model
  Executor* update_exec = nullptr;      // the same for its update model (apply_gradients)
  const GradcRuntime* rt = nullptr;     // the thread pool with `threads` threads
  mutable std::map<EntryKind, EntrySignature> signatures;  // computed once per entry (but the update's)
  mutable std::optional<EntrySignature> update_signature;  // ApplyUpdate's

  // One entry point, ready to call: where each read comes from, the argument
  // array of the native code, and (train_step) where each result goes.
  struct Call {
    enum class Src : uint8_t { Lr, Step, Seed, Param, Buffer, State, Input, Size, Valid };
    struct Read {
      Src src;
      // Param, Buffer, State: the position; Input: where it was found last
      // time (a hint); Size, Valid: the dim's position in ModelIR::capacities
      size_t index;
    };
    const EntrySignature* sig = nullptr;
    const NativeEntry* native = nullptr;  // null: the interpreter
    std::vector<Read> reads;
    std::vector<const Tensor*> in;  // sig.reads, bound per call
    std::vector<void*> args;        // native: the data of `in`, then of the outputs
    Tensor lr, step, seed;          // the scalars the entry reads (the seed as two i32 words)
    // A capacity compile's "@size.D" and "@valid.D" per dim (ModelIR::capacities).
    std::vector<Tensor> size_of, valid_of;
    // train_step: the results' tensors (the loss, the params, buffers and
    // state updated in place, the back buffers of the others, the step counter).
    std::vector<Tensor*> out;
    std::vector<std::pair<Tensor*, Tensor*>> commit;  // (param, buffer or state, its back buffer)
    std::vector<Tensor*> in_place;                    // params, buffers and state the native code updates in place
    mutable std::vector<Tensor> saved;                // check_numerics: their values before the call
    // SessionOptions::profile: cycles per kernel and of whole calls (the
    // entry's last argument), and the successful calls' count and wall time.
    std::vector<int64_t> counters;
    int64_t calls = 0;
    double seconds = 0;
    Tensor loss, new_step;
  };
  mutable std::unique_ptr<Call> calls[5];  // per EntryKind
  // train_step writes new params, buffers and state here; they are swapped in when the step succeeded.
  NamedTensors back_params, back_buffers, back_state;
  // Working memory of native calls, kept between calls.
  mutable Arena arena;

  // ---- dynamic dims (SPEC 2.2): the specialization for the sizes the last call's inputs bound ----
  // `model`, `ir`, the executors, `signatures` and `calls` above are those of
  // the active specialization (`sizes`); the others the session has used wait
  // in `parked` (the least recently used dropped beyond kParked). Params,
  // buffers and state do not depend on a dynamic dim, so every
  // specialization reads and updates the same ones.
  std::shared_ptr<Model::Impl> base;  // the model the session was made of
  std::vector<int64_t> sizes;         // of the dynamic dims, in ModelIR::dynamic_dims order
  struct Parked {
    std::vector<int64_t> sizes;
    std::shared_ptr<Model::Impl> model;
    const ModelIR* ir = nullptr;
    Executor* exec = nullptr;
    std::map<EntryKind, EntrySignature> signatures;
    std::unique_ptr<Call> calls[5];
  };
  static constexpr size_t kParked = 8;
  std::vector<Parked> parked;  // most recently used last

  // Makes the compiled model for the sizes `inputs` bind the active one: a
  // capacity compile that holds them (the same one for many sizes), or a
  // specialization (Model::Impl::specialization).
  void activate(const NamedTensors& inputs) {
    if (!base->dynamic()) return;
    std::vector<int64_t> want = base->bind_dynamic(inputs);
    if (want == sizes) return;
    std::shared_ptr<Model::Impl> spec = base->specialization(want, base);  // may throw: nothing changed yet
    if (spec == model) {  // a capacity compile for these sizes too
      sizes = std::move(want);
      return;
    }
    // The update's call (and signature, and executor) stay: they are the base model's.
    const int update = static_cast<int>(EntryKind::ApplyUpdate);
    std::unique_ptr<Call> update_call = std::move(calls[update]);
    Parked current{sizes, std::move(model), ir, exec, std::move(signatures), {}};
    for (int k = 0; k < 5; ++k) current.calls[k] = std::move(calls[k]);
    auto it = std::find_if(parked.begin(), parked.end(), [&](const Parked& p) { return p.model == spec; });
    if (it != parked.end()) {
      model = std::move(it->model), ir = it->ir, exec = it->exec;
      signatures = std::move(it->signatures);
      for (int k = 0; k < 5; ++k) calls[k] = std::move(it->calls[k]);
      parked.erase(it);
    } else {
      model = std::move(spec), ir = &*model->runnable(), exec = nullptr;
      signatures.clear();
    }
    calls[update] = std::move(update_call);
    sizes = std::move(want);
    if (parked.size() >= kParked) parked.erase(parked.begin());
    parked.push_back(std::move(current));
  }

  // ---- capacity compiles (ModelIR::capacities) ----
  static constexpr size_t kNone = SIZE_MAX;
  // The position in ModelIR::capacities of the dim a hidden input "@size.D"
  // or "@valid.D" (`prefix`) is of, or kNone.
  size_t capacity_dim(const std::string& name, std::string_view prefix) const {
    if (name.compare(0, prefix.size(), prefix) != 0) return kNone;
    for (size_t d = 0; d < ir->capacities.size(); ++d)
      if (ir->capacities[d].first == name.substr(prefix.size())) return d;
    return kNone;
  }
  // The size the last call bound for the dim at position d of ModelIR::capacities.
  int64_t bound(size_t d) const {
    const std::vector<std::string>& names = base->runnable()->dynamic_dims;
    size_t i = std::find(names.begin(), names.end(), ir->capacities[d].first) - names.begin();
    return sizes.at(i);
  }
  // The user's inputs that have a dynamic dim, copied to the capacity (rows
  // past the bound size copies of the first: values like the real ones, so
  // that nothing computed in them overflows; masking keeps them out of every
  // result), into buffers kept from call to call. A kept buffer keeps its
  // rows past the bound, which an earlier call filled with its rows or their
  // copies: only the call's rows are copied (W3 compiled for four batches
  // and fed one copied 600 KB of padding a step, a tenth of its time).
  // `staged` points at those of the last call (an input at the capacity is
  // bound as it is); bind() reads them first.
  mutable std::deque<std::pair<std::string, Tensor>> staging;  // (a deque: adding one moves no other)
  mutable std::vector<std::pair<std::string, const Tensor*>> staged;
  void stage(const NamedTensors& inputs) const {
    staged.clear();
    if (ir->capacities.empty()) return;
    for (const NamedNode& in : ir->inputs) {
      const Tensor* given = find_tensor(inputs, in.name);
      const Shape& shape = ir->graph[in.node].shape;
      if (!given || given->rank() != static_cast<int>(shape.size())) continue;  // bind() reports it
      const Tensor* t = given;
      Tensor before;  // (a second dynamic axis pads the padded tensor)
      for (size_t a = 0; a < shape.size(); ++a) {
        if (!shape[a].dynamic || t->shape()[a] >= shape[a].size) continue;
        auto it = std::find_if(staging.begin(), staging.end(), [&](const auto& s) { return s.first == in.name; });
        Tensor& buffer = it != staging.end() ? it->second : staging.emplace_back(in.name, Tensor()).second;
        if (t == &buffer) before = std::move(buffer), t = &before;
        resize_axis(*t, static_cast<int>(a), shape[a].size, buffer, /*keep=*/true);
        t = &buffer;
      }
      if (t != given) staged.emplace_back(in.name, t);
    }
  }
  // The results of a capacity compile cut to the bound sizes (ModelIR::trim).
  void trim(NamedTensors& out) const {
    for (auto& [name, t] : out)
      for (const auto& [result, axes] : ir->trim) {
        if (result != name) continue;
        for (size_t a = 0; a < axes.size(); ++a) {
          if (axes[a] == -2)
            throw DataError(fmt::format("'{}' has the dynamic dim merged with other axes (a reshape), so the model "
                                        "cannot return it for a size below the capacity it was compiled at",
                                        name));
          if (axes[a] >= 0 && bound(static_cast<size_t>(axes[a])) < t.shape()[a]) {
            Tensor cut;
            resize_axis(t, static_cast<int>(a), bound(static_cast<size_t>(axes[a])), cut);
            t = std::move(cut);
          }
        }
      }
  }

  // ApplyUpdate runs on the model's update model, every other entry on the model.
  bool on_update_model(EntryKind kind) const { return kind == EntryKind::ApplyUpdate; }

  const EntrySignature& signature(EntryKind kind) const {
    if (on_update_model(kind)) {
      if (!update_signature) update_signature = entry_signature(graph_of(kind), kind);
      return *update_signature;
    }
    auto it = signatures.find(kind);
    if (it == signatures.end()) it = signatures.emplace(kind, entry_signature(graph_of(kind), kind)).first;
    return it->second;
  }

  // (The update reads no input, so it does not depend on a dynamic dim: it
  // is always the base model's, whatever specialization is active.)
  const ModelIR& graph_of(EntryKind kind) const {
    if (!on_update_model(kind)) return *ir;
    const_cast<Impl*>(this)->executor(kind);  // makes the update model
    return *base->update_model;
  }

  Executor& executor(EntryKind kind = EntryKind::Forward) {
    Executor*& e = on_update_model(kind) ? update_exec : exec;
    if (!e) e = on_update_model(kind) ? &base->update_executor(backend) : &model->executor(backend);
    return *e;
  }

  // The prepared call of an entry; compiles it on first use.
  Call& call(EntryKind kind) {
    std::unique_ptr<Call>& c = calls[static_cast<int>(kind)];
    if (c) return *c;
    auto p = std::make_unique<Call>();
    p->sig = &signature(kind);
    p->native = executor(kind).native(kind, profile);
    if (!rt) rt = runtime_for_threads(threads);
    for (const EntryValue& v : p->sig->reads) {
      auto position = [&](const NamedTensors& ts) {
        for (size_t i = 0; i < ts.size(); ++i)
          if (ts[i].first == v.name) return i;
        return ts.size();
      };
      if (v.name == kLearningRate) {
        p->reads.push_back({Call::Src::Lr, 0});
        p->lr = allocate(v, kind);
      } else if (v.name == kStepCounter) {
        p->reads.push_back({Call::Src::Step, 0});
        p->step = allocate(v, kind);
      } else if (v.name == kRandomSeed) {
        p->reads.push_back({Call::Src::Seed, 0});
        p->seed = allocate(v, kind);
        p->seed.set(0, static_cast<int32_t>(static_cast<uint32_t>(seed)));
        p->seed.set(1, static_cast<int32_t>(static_cast<uint32_t>(seed >> 32)));
      } else if (size_t d = capacity_dim(v.name, "@size."); d != kNone) {
        p->reads.push_back({Call::Src::Size, d});
      } else if (size_t d = capacity_dim(v.name, "@valid."); d != kNone) {
        p->reads.push_back({Call::Src::Valid, d});
      } else if (size_t i = position(params); i < params.size()) {
        p->reads.push_back({Call::Src::Param, i});
      } else if (size_t k = position(buffers); k < buffers.size()) {
        p->reads.push_back({Call::Src::Buffer, k});
      } else if (size_t j = position(state); j < state.size()) {
        p->reads.push_back({Call::Src::State, j});
      } else {
        p->reads.push_back({Call::Src::Input, 0});
      }
    }
    p->size_of.assign(ir->capacities.size(), Tensor());
    p->valid_of.assign(ir->capacities.size(), Tensor());
    for (size_t d = 0; d < ir->capacities.size(); ++d) {
      p->size_of[d] = Tensor(DType::F32, {});
      p->valid_of[d] = Tensor(DType::F32, {ir->capacities[d].second});
    }
    p->in.resize(p->sig->reads.size());
    p->args.resize(p->sig->reads.size() + p->sig->produces.size());
    if (p->native && p->native->profiled()) {
      p->counters.assign(p->native->kernels().size() + 1, 0);
      p->args.push_back(p->counters.data());
    }
    if (kind == EntryKind::TrainStep || kind == EntryKind::ApplyUpdate) {
      // Back buffers of the declared types, and where each result goes.
      if (back_params.empty())
        for (const auto& [n, t] : params) back_params.emplace_back(n, Tensor());
      if (back_state.empty())
        for (const auto& [n, t] : state) back_state.emplace_back(n, Tensor());
      if (back_buffers.empty())
        for (const auto& [n, t] : buffers) back_buffers.emplace_back(n, Tensor());
      for (size_t k = 0; k < p->sig->produces.size(); ++k) {
        const EntryValue& v = p->sig->produces[k];
        bool in_place = p->native && p->native->in_place()[k];
        Tensor* t = nullptr;
        for (auto [front, back] :
             {std::pair{&params, &back_params}, std::pair{&buffers, &back_buffers}, std::pair{&state, &back_state}})
          for (size_t i = 0; i < front->size() && !t; ++i)
            if ((*front)[i].first == v.name && in_place) {
              t = &(*front)[i].second;  // its argument is not used
              p->in_place.push_back(t);
            } else if ((*front)[i].first == v.name) {
              // Kept when another specialization's call made it (dynamic
              // dims): the param's two blocks of memory stay the same two.
              Tensor& back_buffer = (*back)[i].second;
              if (back_buffer.raw() == nullptr || back_buffer.dtype() != v.dtype || back_buffer.shape() != v.shape)
                back_buffer = allocate(v, kind);
              t = &back_buffer;
              p->commit.emplace_back(&(*front)[i].second, t);
            }
        if (!t && v.name == "loss") t = &(p->loss = allocate(v, kind));
        if (!t) t = &(p->new_step = allocate(v, kind));  // "opt.step": the session counts steps itself
        p->out.push_back(t);
      }
    }
    c = std::move(p);
    return *c;
  }

  // " (the dim B is 8 in this compilation; ...)" when input `name`, of the
  // right dtype and rank, differs from `t` only in sizes of named dims: the
  // user most likely has more (or fewer) rows than the batch dim says.
  std::string dim_hint(const std::string& name, const Tensor& t) const {
    for (const NamedNode& in : ir->inputs) {
      if (in.name != name) continue;
      const Node& n = ir->graph[in.node];
      if (n.dtype != t.dtype() || n.shape.size() != t.shape().size()) return "";
      std::string hint;
      for (size_t i = 0; i < n.shape.size(); ++i) {
        int64_t got = t.shape()[i];
        if (n.shape[i].size == got) continue;
        if (n.shape[i].name.empty() || !hint.empty()) return "";  // a fixed size, or two dims: no single fix
        const std::string& d = n.shape[i].name;
        hint = fmt::format(" (the dim {} is {} in this compilation; use --set {}={} to compile the model for {}, or "
                           "declare `dim {}` without a size to make it dynamic)",
                           d, n.shape[i].size, d, got, got, d);
      }
      return hint;
    }
    return "";
  }

  // Shapes and names compared inline, element by element: std::vector's
  // and std::string's == call memcmp, and on W1's eight reads those calls
  // were a tenth of the step.
  template <class Seq>
  static bool same_elements(const Seq& a, const Seq& b) {
    if (a.size() != b.size()) return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) return false;
    return true;
  }

  // Binds the reads of a call: params and state by position, the user's
  // inputs by name (checked where they were last time first), every one
  // checked against its declared dtype and shape.
  void bind(Call& c, const NamedTensors& inputs, double lr_value) const {
    const std::vector<EntryValue>& reads = c.sig->reads;
    for (size_t k = 0; k < reads.size(); ++k) {
      Call::Read& r = c.reads[k];
      const EntryValue& v = reads[k];
      const Tensor* t = nullptr;
      switch (r.src) {
        case Call::Src::Size: c.size_of[r.index].set(0, static_cast<double>(bound(r.index))), t = &c.size_of[r.index]; break;
        case Call::Src::Valid: {
          Tensor& valid = c.valid_of[r.index];
          int64_t n = bound(r.index);
          for (int64_t i = 0; i < valid.numel(); ++i) valid.data<float>()[i] = i < n ? 1.0f : 0.0f;
          t = &valid;
          break;
        }
        case Call::Src::Lr: c.lr.set(0, lr_value), t = &c.lr; break;
        case Call::Src::Step: c.step.set(0, static_cast<double>(step)), t = &c.step; break;
        case Call::Src::Seed: t = &c.seed; break;
        case Call::Src::Param: t = &params[r.index].second; break;
        case Call::Src::Buffer: t = &buffers[r.index].second; break;
        case Call::Src::State: t = &state[r.index].second; break;
        case Call::Src::Input:
          if (auto it = std::find_if(staged.begin(), staged.end(), [&](const auto& s) { return same_elements(s.first, v.name); });
              it != staged.end()) {
            t = it->second;
          } else if (r.index < inputs.size() && same_elements(inputs[r.index].first, v.name)) {
            t = &inputs[r.index].second;
          } else {
            for (size_t i = 0; i < inputs.size(); ++i)
              if (same_elements(inputs[i].first, v.name)) {
                t = &inputs[i].second;
                r.index = i;
                break;
              }
          }
          break;
      }
      if (!t || t->dtype() != v.dtype || !same_elements(t->shape(), v.shape)) {
        // (no tensor: the shape may be huge; the node's type names a dynamic dim, not its stand-in size)
        const Node& declared = graph_of(c.sig->kind).graph[v.node];
        std::string want = base->dynamic() ? type_str(declared.dtype, declared.shape) : type_string(v.dtype, v.shape);
        if (!t) throw DataError(fmt::format("{}: missing input tensor '{}' (expected {})", entry_name(c.sig->kind), v.name, want));
        throw DataError(fmt::format("{}: tensor '{}': expected {}, got {}{}", entry_name(c.sig->kind), v.name, want,
                                    t->type_string(), dim_hint(v.name, *t)));
      }
      c.in[k] = t;
    }
  }

  // Working memory for a native call, reused while it is large enough.
  uint8_t* arena_for(const Call& c) const {
    int64_t need = c.native->arena_bytes(rt->threads);
    if (need > static_cast<int64_t>(arena.size())) {
      arena = Arena();  // the old one freed before the new one is made
      arena = Arena(need, c.sig->kind);
    }
    return arena.data();
  }

  // Runs a bound call, writing sig.produces into `out`.
  void execute(Call& c, const std::vector<Tensor*>& out) const {
    // check_numerics: a step with a non-finite result is not committed, so
    // what the step updates in place is saved first (and restored then).
    if (check_numerics) {
      c.saved.resize(c.in_place.size());
      for (size_t k = 0; k < c.in_place.size(); ++k) c.saved[k] = *c.in_place[k];
    }
    if (c.native) {
      size_t n = c.in.size();
      for (size_t k = 0; k < n; ++k) c.args[k] = const_cast<void*>(c.in[k]->raw());
      for (size_t k = 0; k < out.size(); ++k) c.args[n + k] = out[k]->raw();
      // The clock only when profiling: a read costs about 20 ns on a virtual
      // machine, a tenth of W1's whole step.
      if (c.counters.empty()) {
        c.native->call(c.args.data(), arena_for(c), rt);
      } else {
        auto t0 = std::chrono::steady_clock::now();
        c.native->call(c.args.data(), arena_for(c), rt);
        ++c.calls;
        c.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      }
    } else {
      (on_update_model(c.sig->kind) ? update_exec : exec)->run(*c.sig, c.in, out, threads);
    }
    if (check_numerics)
      for (size_t k = 0; k < out.size(); ++k)
        if (!all_finite(*out[k])) {
          for (size_t j = 0; j < c.in_place.size(); ++j) std::swap(*c.in_place[j], c.saved[j]);
          locate_non_finite(*c.sig, c.in, c.sig->produces[k].name);
        }
  }

  // train_step or apply_update: runs it and commits the new params and
  // state; returns train_step's loss (0 for apply_update).
  double optimizer_step(EntryKind kind, const NamedTensors& inputs, double lr);

  // Runs an entry with inputs by name; returns the produced tensors by name.
  NamedTensors run(EntryKind kind, const NamedTensors& inputs) {
    activate(inputs);
    Call& c = call(kind);
    stage(inputs);
    bind(c, inputs, 0);
    NamedTensors out;
    out.reserve(c.sig->produces.size());
    std::vector<Tensor*> ptrs;
    ptrs.reserve(c.sig->produces.size());
    for (const EntryValue& v : c.sig->produces) ptrs.push_back(&out.emplace_back(v.name, allocate(v, kind)).second);
    execute(c, ptrs);
    trim(out);
    return out;
  }

  static bool all_finite(const Tensor& t) {
    auto check = [](const auto* p, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        if (!std::isfinite(p[i])) return false;
      return true;
    };
    switch (t.dtype()) {
      case DType::F32: return check(t.data<float>(), t.numel());
      case DType::F64: return check(t.data<double>(), t.numel());
      case DType::I32: return true;
    }
    return true;
  }

  // Re-runs the entry on the interpreter and reports the first node, in
  // topological order, whose value has a NaN or infinity (its operands, being
  // earlier, are finite), or the input that brought one in.
  [[noreturn]] void locate_non_finite(const EntrySignature& sig, const std::vector<const Tensor*>& in,
                                      const std::string& output) const {
    const ModelIR& gm = graph_of(sig.kind);
    const Graph& graph = gm.graph;
    Interpreter interp(graph);
    for (size_t i = 0; i < sig.reads.size(); ++i) interp.bind(sig.reads[i].node, *in[i]);
    std::vector<NodeId> roots;
    for (const EntryValue& v : sig.produces) roots.push_back(v.node);
    try {
      interp.run(roots);
    } catch (const DataError&) {
    }
    const SourceManager& sm = model->sm;
    for (NodeId id = 0; id < graph.size(); ++id) {
      if (!interp.evaluated(id) || !is_float(graph[id].dtype)) continue;
      const std::vector<double>& v = interp.values(id);
      for (size_t e = 0; e < v.size(); ++e) {
        if (std::isfinite(v[e])) continue;
        const Node& n = graph[id];
        bool buffer = std::any_of(gm.buffers.begin(), gm.buffers.end(), [&](const ParamDecl& p) { return p.node == id; });
        if (n.op == Op::Input || n.op == Op::Param)
          throw DataError(diag::check_numerics_leaf(buffer ? "buffer" : n.op == Op::Input ? "input" : "param", n.attrs.name, v[e], e,
                                      type_str(n.dtype, n.shape), entry_name(sig.kind)));
        throw_model_error(sm, n.loc,
                          diag::check_numerics_op(op_name(n.op), v[e], e, type_str(n.dtype, n.shape), entry_name(sig.kind),
                                      output));
      }
    }
    throw DataError(diag::check_numerics_rounding(output, entry_name(sig.kind)));
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
  impl_->base = model.impl_;
  impl_->ir = &*model.impl_->runnable();
  impl_->sizes = model.impl_->bind_dynamic({});  // the stand-ins: the model as compiled
  impl_->backend = opts.backend;
  impl_->check_numerics = opts.check_numerics;
  impl_->threads = opts.threads;
  impl_->profile = opts.profile;
  const ModelIR& m = *impl_->ir;
  // Refuse before allocating when params and optimizer state would not fit.
  double bytes = 0;
  for (const ParamDecl& p : m.params)
    bytes += static_cast<double>(numel(m.graph[p.node].shape)) * static_cast<double>(dtype_size(m.graph[p.node].dtype));
  for (const StateSlot& s : m.train.slots)
    bytes += static_cast<double>(numel(m.graph[s.in].shape)) * static_cast<double>(dtype_size(m.graph[s.in].dtype));
  if (bytes > static_cast<double>(kMaxSessionBytes))
    throw DataError(fmt::format("the model's params and optimizer state need {:.1f} GiB; a session is limited to {} GiB",
                                bytes / (1 << 30), kMaxSessionBytes >> 30));
  impl_->params = init_params(m, opts.seed);
  impl_->seed = opts.seed;
  impl_->buffers = init_buffers(m, opts.seed);
  for (const StateSlot& s : m.train.slots) {
    Tensor t(m.graph[s.in].dtype, sizes(m.graph[s.in].shape));
    if (double v = slot_initial_value(m.optimizer, s.slot); v != 0)  // else zeros already
      for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v);
    impl_->state.emplace_back(s.tensor, std::move(t));
  }
}

Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

const NamedTensors& Session::params() const { return impl_->params; }
const NamedTensors& Session::buffers() const { return impl_->buffers; }
const NamedTensors& Session::optimizer_state() const { return impl_->state; }
int64_t Session::step() const { return impl_->step; }
Backend Session::backend() const { return impl_->backend; }

int Session::threads() const {
  return impl_->backend == Backend::Interpreter ? 1 : runtime_for_threads(impl_->threads)->threads;
}

Tensor& Session::param(std::string_view name) {
  if (Tensor* t = find_mut(impl_->params, name)) return *t;
  std::string names;
  for (const auto& [n, t] : impl_->params) names += (names.empty() ? "" : ", ") + n;
  throw DataError(fmt::format("the model has no param '{}' (its params: {})", name, names.empty() ? "none" : names));
}

Tensor& Session::buffer(std::string_view name) {
  if (Tensor* t = find_mut(impl_->buffers, name)) return *t;
  std::string names;
  for (const auto& [n, t] : impl_->buffers) names += (names.empty() ? "" : ", ") + n;
  throw DataError(fmt::format("the model has no buffer '{}' (its buffers: {})", name, names.empty() ? "none" : names));
}

void Session::set_params(const NamedTensors& params) {
  check_complete(impl_->params, params, "set_params");
  for (auto& [name, t] : impl_->params) t = *find_tensor(params, name);
}

void Session::set_buffers(const NamedTensors& buffers) {
  check_complete(impl_->buffers, buffers, "set_buffers");
  for (auto& [name, t] : impl_->buffers) t = *find_tensor(buffers, name);
}

NamedTensors Session::checkpoint() const {
  NamedTensors out = impl_->params;
  for (const auto& b : impl_->buffers) out.push_back(b);
  for (const auto& st : impl_->state) out.push_back(st);
  Tensor step(DType::I32, {});
  step.set(0, static_cast<double>(impl_->step));
  out.emplace_back("opt.step", std::move(step));
  for (auto& t : impl_->preprocessing.tensors()) out.push_back(std::move(t));
  return out;
}

void Session::save(const std::string& path) const {
  write_safetensors(path, checkpoint(), impl_->preprocessing.metadata());
}

void Session::load(const std::string& path) {
  TensorFileMetadata meta;
  NamedTensors file = read_safetensors(path, &meta);
  Preprocessing::from_checkpoint(file, meta, path);  // the metadata names only tensors that are there
  restore(file, path);
}

const Preprocessing& Session::preprocessing() const { return impl_->preprocessing; }
void Session::set_preprocessing(Preprocessing p) { impl_->preprocessing = std::move(p); }

void Session::restore(const NamedTensors& file, const std::string& what) {
  const std::string& path = what;
  check_complete(impl_->params, file, what.c_str());
  check_complete(impl_->buffers, file, what.c_str());
  bool has_state = find_tensor(file, "opt.step") != nullptr;
  if (has_state) check_complete(impl_->state, file, what.c_str());
  int64_t step = 0;
  if (has_state) {
    const Tensor& st = *find_tensor(file, "opt.step");
    // Written as an i32 scalar; checked before the cast (a NaN or 1e300 would
    // make it undefined).
    double v = st.numel() == 1 ? st.get(0) : -1;
    if (!(v >= 0 && v <= 2147483647.0 && v == std::trunc(v)))
      throw DataError(fmt::format("{}: tensor 'opt.step' is {}, expected a whole number in [0, 2147483647]", path,
                                  st.numel() == 1 ? fmt::format("{}", v) : st.type_string()));
    step = static_cast<int64_t>(v);
  }
  Preprocessing pre = Preprocessing::from_tensors(file, what);
  // All checked: now change the session.
  for (auto& [name, t] : impl_->params) t = *find_tensor(file, name);
  for (auto& [name, t] : impl_->buffers) t = *find_tensor(file, name);
  if (has_state) {
    for (auto& [name, t] : impl_->state) t = *find_tensor(file, name);
    impl_->step = step;
  }
  impl_->preprocessing = std::move(pre);
}

double Session::train_step(const NamedTensors& inputs) {
  return train_step(inputs, impl_->ir->optimizer.lr());
}

double Session::train_step(const NamedTensors& inputs, double lr) {
  return impl_->optimizer_step(EntryKind::TrainStep, inputs, lr);
}

void Session::apply_gradients(const NamedTensors& grads) {
  apply_gradients(grads, impl_->ir->optimizer.lr());
}

void Session::apply_gradients(const NamedTensors& grads, double lr) {
  const OptimizerSpec& opt = impl_->ir->optimizer;
  if (const OptimizerRule* rule = find_optimizer(opt.name); rule && rule->gradient_free())
    throw DataError(fmt::format("apply_gradients: the model's optimizer, {}, takes no gradient (it trains by "
                                "evaluating the loss of a population: use train_step)",
                                opt.name));
  impl_->optimizer_step(EntryKind::ApplyUpdate, grads, lr);
}

double Session::Impl::optimizer_step(EntryKind kind, const NamedTensors& inputs, double lr) {
  if (!(lr >= 0) || !std::isfinite(lr))
    throw DataError(fmt::format("{}: the learning rate must be finite and >= 0, got {}", entry_name(kind), lr));
  Impl& s = *this;
  if (kind != EntryKind::ApplyUpdate) s.activate(inputs);  // the update reads no input: any specialization does
  Impl::Call& c = s.call(kind);
  if (kind != EntryKind::ApplyUpdate) s.stage(inputs);
  s.bind(c, inputs, lr);
  s.execute(c, c.out);
  // Commit the new params and state only after the whole step succeeded:
  // those not updated in place (the plan decides, kernels.cpp) were written
  // into the back buffers, which now become the front ones. (A failed
  // run-time check returns before anything is updated in place.)
  for (auto [front, back] : c.commit) std::swap(*front, *back);
  ++s.step;
  return kind == EntryKind::TrainStep ? c.out.front()->get(0) : 0;
}

NamedTensors Session::forward(const NamedTensors& inputs) const {
  // With the inputs the loss needs, evaluate it and the metrics too.
  bool all = true;
  for (const std::string& name : evaluation_inputs())
    if (!find_tensor(inputs, name)) all = false;
  return impl_->run(all ? EntryKind::Evaluate : EntryKind::Forward, inputs);
}

std::vector<std::string> Session::evaluation_inputs() const {
  std::vector<std::string> names;
  for (const EntryValue& v : impl_->signature(EntryKind::Evaluate).reads)
    if (v.name[0] != '@' && !find_tensor(impl_->params, v.name) &&  // (@lr, @step, @seed, @size.D, @valid.D)
        !find_tensor(impl_->buffers, v.name) && !find_tensor(impl_->state, v.name))
      names.push_back(v.name);
  return names;
}

NamedTensors Session::grad(const NamedTensors& inputs) const { return impl_->run(EntryKind::Grad, inputs); }


void Session::prepare(Entry entry) { impl_->call(entry_kind(entry)); }

void Session::prepare(Entry entry, const NamedTensors& inputs) {
  impl_->activate(inputs);
  impl_->call(entry_kind(entry));
}

std::vector<std::pair<std::string, int64_t>> Session::capacities() const { return impl_->ir->capacities; }

CompileTimes Session::compile_times(Entry entry) const { return impl_->executor().compile_times(entry_kind(entry)); }

std::vector<KernelProfile> Session::profile(Entry entry) const {
  std::vector<KernelProfile> out;
  const std::unique_ptr<Impl::Call>& c = impl_->calls[static_cast<int>(entry_kind(entry))];
  if (!c || c->counters.empty() || c->calls == 0) return out;
  // Cycles to seconds: the calls' wall time over their cycles.
  int64_t total = c->counters.back();
  double per_cycle = total > 0 ? c->seconds / static_cast<double>(total) : 0;
  const auto& kernels = c->native->kernels();
  for (size_t k = 0; k < kernels.size(); ++k)
    out.push_back({static_cast<int>(k), kernels[k].what, kernels[k].source, c->calls,
                   static_cast<double>(c->counters[k]) * per_cycle});
  return out;
}

double Session::profiled_seconds(Entry entry) const {
  const std::unique_ptr<Impl::Call>& c = impl_->calls[static_cast<int>(entry_kind(entry))];
  return c && !c->counters.empty() ? c->seconds : 0;
}

void Session::reset_profile() {
  for (const std::unique_ptr<Impl::Call>& c : impl_->calls)
    if (c) {
      std::fill(c->counters.begin(), c->counters.end(), 0);
      c->calls = 0;
      c->seconds = 0;
    }
}

}  // namespace gradc
