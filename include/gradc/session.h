// A training session: a compiled model's params and optimizer state, and
// the entry points that use them (SPEC 2.6).
//
//   gradc::Model model = gradc::Model::compile_file("examples/xor.grad");
//   gradc::Session s(model);                        // params from the initializers, seed 0
//   for (int i = 0; i < 1000; ++i) s.train_step(batch);   // one fused forward+backward+update
//   s.save("xor.ckpt.safetensors");
//
// A session keeps its model's compiled code alive. A Session is not
// thread-safe: use one session from one thread at a time (different sessions,
// even of the same Model, may run on different threads at once).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/preprocess.h"
#include "gradc/tensor.h"

namespace gradc {

// Largest memory a session may hold for params and optimizer state (and the
// largest working memory of one entry point): larger models are refused with
// a DataError before anything is allocated.
inline constexpr int64_t kMaxSessionBytes = int64_t{16} << 30;

enum class Backend {
  Jit,          // native code through LLVM (the default)
  Interpreter,  // the reference interpreter: slow, simple, the oracle
};

struct SessionOptions {
  Backend backend = Backend::Jit;
  uint64_t seed = 0;  // of the initializers
  // After every call, check the results for NaN and infinity; when one is
  // found, find the first non-finite value the step produced (re-running it on
  // the interpreter) and throw a DataError naming the op, its DSL source line
  // and the entry point. The step is then not committed.
  bool check_numerics = false;
  // Threads that run the large kernels (matrix products, big elementwise
  // loops) of JIT entry points; 0 means one per hardware thread. Results are
  // bit-identical for every thread count (each output element is computed by
  // one thread, in the same order). The interpreter ignores it.
  int threads = 0;
  // Time every kernel of the JIT's entry points (Session::profile). The
  // entries are compiled once more with a cycle counter around each kernel;
  // the timers cost well under a microsecond per kernel.
  bool profile = false;
};

// The time one kernel of an entry point took, over the calls since the
// session started or since reset_profile() (SessionOptions::profile).
struct KernelProfile {
  int index = 0;       // k<index> in `gradc dump MODEL --stage loops --entry ...`
  std::string what;    // "matmul 64x256x784, 3 epilogues", "elementwise 64x10", ...
  std::string source;  // the model line of the op it computes ("mlp.grad:12:5"), or ""
  int64_t calls = 0;
  double seconds = 0;  // in all those calls
};

// How long compiling one entry point took, stage by stage, in milliseconds
// (the front end, up to the optimized graph, is timed by the caller of
// Model::compile_*). On a code-cache hit, emit, optimize and codegen are 0.
struct CompileTimes {
  bool compiled = false;    // false: not compiled yet, or the interpreter backend
  bool cache_hit = false;   // the machine code came from the on-disk code cache
  double setup_ms = 0;      // LLVM set-up: the host CPU (once per process), a target machine, the model's JIT
  double plan_ms = 0;       // kernels and memory plan
  double emit_ms = 0;       // LLVM IR, verified
  double optimize_ms = 0;   // the LLVM pass pipeline
  double codegen_ms = 0;    // machine code (an object file)
  // The entry's module was optimized and compiled in this many parts at
  // once, one thread each; then optimize_ms is the first part's and
  // codegen_ms the rest of the parallel work's wall time.
  int parts = 1;
  double cache_ms = 0;      // the cache key; reading, checking or writing the cache file
  double link_ms = 0;       // loading the object into the JIT and resolving the entry point
  double total_ms() const { return setup_ms + plan_ms + emit_ms + optimize_ms + codegen_ms + cache_ms + link_ms; }
};

// The on-disk cache of compiled code: one object file per entry point of a
// specialization, keyed by a SHA-256 of its kernel plan (which fixes every
// dim), the entry, the code generator's version, the LLVM version, the host
// CPU and its features, the optimization pipeline and the sanitizer build. A
// second start of the same model then skips code generation. Off by default
// in the library; the environment variable GRADC_CACHE_DIR turns it on for a
// process, and set_code_cache_dir() overrides both ("" turns it off). A
// missing, unreadable, truncated or corrupt cache file is recompiled (and
// rewritten); a cache that cannot be written is skipped; neither is an error.
// Applies to entry points compiled after the call.
void set_code_cache_dir(std::string dir);
// The directory in use, or "" when the cache is off.
std::string code_cache_dir();
// What the code cache did in this process, for tests and tools.
struct CodeCacheStats {
  int64_t hits = 0;            // entries loaded from a cache file
  int64_t misses = 0;          // entries compiled (no usable file)
  int64_t rejected = 0;        // files found but truncated, corrupt or not loadable (then recompiled)
  int64_t stores = 0;          // files written
  int64_t store_failures = 0;  // files that could not be written (the run goes on)
};
CodeCacheStats code_cache_stats();

class Session {
 public:
  // Params from the model's initializers, optimizer state at its initial
  // values, step 0. Throws DataError when the model did not compile.
  explicit Session(const Model& model, const SessionOptions& opts = {});
  Session(Session&&) noexcept;
  Session& operator=(Session&&) noexcept;
  ~Session();

  // ---- state, by name ----
  const NamedTensors& params() const;
  // A param by name, to read or write in place; throws DataError for an unknown name.
  Tensor& param(std::string_view name);
  // Optimizer state as "opt.SLOT.PARAM" (PyTorch's slot names), without the step.
  const NamedTensors& optimizer_state() const;
  // Optimizer steps taken so far.
  int64_t step() const;
  // Buffers (`buffer` statements: batch_norm's running statistics), by
  // name: initialized like params, read by every entry point, updated by
  // train_step only, never by the optimizer.
  const NamedTensors& buffers() const;
  // A buffer by name, to read or write in place; throws DataError for an unknown name.
  Tensor& buffer(std::string_view name);
  // Replaces every param (all must be given, with the declared dtypes and shapes).
  void set_params(const NamedTensors& params);
  // Replaces every buffer (all must be given, with the declared dtypes and shapes).
  void set_buffers(const NamedTensors& buffers);
  // Loads a checkpoint: every param and buffer by name, the optimizer state and
  // "opt.step" when present, and the preprocessing it records (gradc/preprocess.h;
  // none when it records none). All or nothing: on an error nothing changes.
  void load(const std::string& path);
  // The same from tensors in memory; `what` names their source in errors.
  void restore(const NamedTensors& tensors, const std::string& what = "checkpoint");
  // Writes params, buffers, optimizer state, "opt.step" and the preprocessing's tensors
  // as safetensors (with the metadata naming them), atomically.
  void save(const std::string& path) const;
  // The same tensors as save() writes.
  NamedTensors checkpoint() const;
  // The preprocessing the inputs of this session's params expect: from the
  // last load() or restore(), or set_preprocessing(). The entry points do not
  // apply it; call preprocessing().apply(inputs) on raw inputs first.
  const Preprocessing& preprocessing() const;
  void set_preprocessing(Preprocessing p);

  // ---- entry points ----
  // One optimizer step on a batch; returns the loss before the update.
  double train_step(const NamedTensors& inputs);             // lr from the model file
  double train_step(const NamedTensors& inputs, double lr);  // lr given at run time
  // "out.NAME" for every output, plus "loss" and "metric.NAME" when the inputs they need are given.
  NamedTensors forward(const NamedTensors& inputs) const;
  // The model inputs that forward() needs for "loss" and "metric.NAME" (the
  // outputs' inputs and those the loss and metrics read), in a fixed order.
  std::vector<std::string> evaluation_inputs() const;
  // "loss", "grad.NAME" for every param (and CompileOptions::wrt), "out.NAME"; no update.
  NamedTensors grad(const NamedTensors& inputs) const;
  // One optimizer step with given gradients: "grad.NAME" for every param (as
  // grad() names them; others are ignored), of the params' dtypes and shapes.
  // grad() then apply_gradients() on the same batch is train_step() in two
  // halves, up to float rounding (train_step fuses them); data-parallel
  // training averages grad()'s results across processes in between
  // (docs/distributed.md). Compiles the update on first use. A DataError for
  // the gradient-free optimizers (genetic, es), which take no gradient.
  void apply_gradients(const NamedTensors& grads);             // lr from the model file
  void apply_gradients(const NamedTensors& grads, double lr);  // lr given at run time

  Backend backend() const;
  // The threads the JIT's large kernels use (SessionOptions::threads resolved:
  // 0 becomes the hardware threads; at most that many); 1 for the interpreter.
  int threads() const;

  // ---- compiled code ----
  // Compiles an entry point now, so that its first call does not pay for it
  // (Entry::Forward: the outputs-only forward). Nothing with the interpreter.
  void prepare(Entry entry);
  // The same for the sizes that `inputs` give the model's dynamic dims (SPEC
  // 2.2). A model with dynamic dims is compiled at a capacity per dim (the
  // first sizes a call binds, doubled when later sizes grow past them), and
  // that code runs every size from a quarter of the capacity up to it: the
  // session pads the inputs and trims the results. A model that cannot run
  // at a capacity (a concat, slice or scan along the dim) is compiled per size.
  void prepare(Entry entry, const NamedTensors& inputs);
  // The capacities of the code the last call ran, by dim; empty when that
  // code is for the call's exact sizes (no dynamic dims, or compiled per size).
  std::vector<std::pair<std::string, int64_t>> capacities() const;
  // How long compiling the entry took (all zero before its first use, and
  // with the interpreter). Compiled code is shared by every session of a Model.
  CompileTimes compile_times(Entry entry) const;

  // ---- profiling (SessionOptions::profile) ----
  // Time per kernel of an entry point, in kernel order, over the successful
  // calls so far; empty without SessionOptions::profile, with the
  // interpreter, or before the first call. (Cycle counts, converted to
  // seconds by the calls' wall-clock time.)
  std::vector<KernelProfile> profile(Entry entry) const;
  // How long those calls took in all (wall clock, seconds).
  double profiled_seconds(Entry entry) const;
  void reset_profile();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace gradc
