// Entry points as data, and the executors that run them.
//
// An EntrySignature lists what an entry point reads (model inputs, params,
// buffers, optimizer state, the learning rate and step counter, by name) and
// what it produces ("loss", "grad.W", "out.y", "metric.m", and for train_step
// the updated "W", buffers, "opt.SLOT.W" and "opt.step"; apply_update produces
// the same without the loss, from the gradients it reads as "grad.W"). The interpreter and the JIT
// run the same signatures, so a session does not care which one it has.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "compiler/ir/graph.h"
#include "gradc/session.h"
#include "gradc/tensor.h"

struct GradcRuntime;  // runtime/thread_pool.h

namespace gradc {

// ApplyUpdate is the optimizer step alone, on given gradients (data-parallel
// training averages the gradients of several processes first); it runs on a
// model's update model (build_update_model), never on the model itself.
enum class EntryKind { Forward, Evaluate, Grad, TrainStep, ApplyUpdate };
const char* entry_name(EntryKind k);  // "forward", "evaluate", "grad", "train_step", "apply_update"

struct EntryValue {
  std::string name;
  NodeId node = kNoNode;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct EntrySignature {
  EntryKind kind;
  std::vector<EntryValue> reads;     // leaves the outputs need, in a fixed order
  std::vector<EntryValue> produces;  // roots, in a fixed order
};

// Forward: outputs only; Evaluate: outputs, loss and metrics; Grad: loss,
// gradients, outputs; TrainStep: loss, then new params, new buffers, new
// state, new step; ApplyUpdate: the same without the loss. Grad and
// TrainStep use the training-mode roots.
EntrySignature entry_signature(const ModelIR& m, EntryKind kind);

// The working memory of a native call (NativeEntry::call's arena): 64-byte
// aligned, from the tensors' page pool (runtime/page_pool.cpp), freed with
// the Arena. Empty until made.
class Arena {
 public:
  Arena() = default;
  // At least `bytes` (NativeEntry::arena_bytes) for entry `kind`: a DataError
  // naming the entry when that is over kMaxSessionBytes, and one naming the
  // bytes when memory cannot hold it.
  Arena(int64_t bytes, EntryKind kind);
  Arena(Arena&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  Arena& operator=(Arena&& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    return *this;
  }
  ~Arena() { detail::free_storage(data_, size_); }
  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// An entry point compiled to native code, called on buffers the caller owns:
//
//     int32_t fn(void** args, uint8_t* arena, const GradcRuntime* rt);
//
// args: the data of sig.reads, then of sig.produces (contiguous, row-major,
// of the declared dtypes and shapes; no output may alias an input); arena: at
// least arena_bytes of working memory, 64-byte aligned, used by one call at a
// time (arena_bytes(rt->threads)). A produced value with in_place()[k] (train_step's new params and
// optimizer state, where the plan allows it) is written over the read of the
// same name instead, and its own argument is not used. A failed run-time
// check returns before anything is written in place. Lives as long as the
// executor that made it.
class NativeEntry {
 public:
  using Fn = int32_t (*)(void** args, uint8_t* arena, const GradcRuntime* rt);
  virtual ~NativeEntry() = default;
  // Working memory for a call on a runtime with `threads` threads: the
  // arena, then a scratch slot per thread.
  int64_t arena_bytes(int threads) const { return (arena_bytes_ + 63) / 64 * 64 + threads * worker_bytes_; }
  const std::vector<bool>& in_place() const { return in_place_; }
  // Compiled with timers (Program::profile): the call takes one more
  // argument after the produced values, int64_t counters[kernels().size() + 1].
  bool profiled() const { return profiled_; }
  struct KernelInfo {
    std::string what;    // kernel_summary
    std::string source;  // the DSL location of the op it computes ("model.grad:12:5"), or ""
  };
  const std::vector<KernelInfo>& kernels() const { return kernels_; }
  // Runs the entry; a failed run-time check throws DataError naming its DSL location.
  void call(void** args, uint8_t* arena, const GradcRuntime* rt) const {
    if (int32_t status = fn_(args, arena, rt)) fail(status);
  }

 protected:
  [[noreturn]] virtual void fail(int32_t status) const = 0;
  Fn fn_ = nullptr;
  int64_t arena_bytes_ = 0, worker_bytes_ = 0;
  std::vector<bool> in_place_;  // per sig.produces
  bool profiled_ = false;
  std::vector<KernelInfo> kernels_;
};

// Runs entry points; `in` matches sig.reads and `out` sig.produces, element
// for element, with the declared dtypes and shapes (checked by the caller).
// Executors are thread-safe: sessions on several threads may share one.
class Executor {
 public:
  virtual ~Executor() = default;
  // `threads`: how many threads may run the entry's kernels (1: the calling thread only).
  virtual void run(const EntrySignature& sig, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out,
                   int threads = 1) = 0;
  // The entry compiled to native code (compiled on first use; with timers
  // per kernel when `profile`), or nullptr when this executor does not
  // compile (the interpreter).
  virtual const NativeEntry* native(EntryKind kind, bool profile = false) { return nullptr; }
  // How long compiling the entry took, stage by stage (all zero before it is compiled).
  virtual CompileTimes compile_times(EntryKind kind) const { return {}; }
};

class SourceManager;
// The reference interpreter as an executor.
std::unique_ptr<Executor> make_interpreter_executor(const ModelIR& m, const SourceManager& sm);

}  // namespace gradc
