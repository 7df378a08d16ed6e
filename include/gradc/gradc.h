// gradc's C++ host API: compile a model written in the gradc language and
// inspect every stage. Plain C++ only; no LLVM or compiler-internal types.
//
//   gradc::CompileOptions opts;
//   opts.dims = {{"B", 128}};
//   gradc::Model m = gradc::Model::compile_file("examples/xor.grad", opts);
//   if (!m.ok()) { std::cerr << gradc::render_all(m.diagnostics()); return 1; }
//   std::cout << m.dump(gradc::Stage::Graph);
//
// A Model is immutable once compiled; distinct Models may be compiled on
// different threads at the same time. Compiling the same source with the same
// options again while an earlier result is alive returns that result (an
// in-memory cache of specializations), including its compiled code.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradc/diagnostics.h"
#include "gradc/tensor.h"

namespace gradc {

namespace embed {
struct ModelDef;  // gradc/embed_def.h: a model built in C++ (gradc/embed.h)
}

// The printable stages of compilation (SPEC section 1).
// Ast: syntax tree; Graph: checked graph; Grad: plus d loss / d param;
// Opt: forward, gradients and optimizer step after the optimization passes;
// Loops: one entry point's kernels and memory plan; LlvmRaw / Llvm: its LLVM
// IR before / after optimization; Asm: its host assembly.
enum class Stage { Ast, Graph, Grad, Opt, Loops, LlvmRaw, Llvm, Asm };
// The entry points (SPEC 2.6) whose back-end stages can be printed.
enum class Entry { Forward, Grad, TrainStep };
// Annotated: the LlvmRaw, Llvm and Asm stages with the model lines of each
// kernel interleaved with its code, as `objdump -S` does (other stages print
// Text). Text marks each kernel's code with a comment line naming it
// (k<index> of the Loops stage, what it computes, its model positions).
enum class DumpFormat { Text, Dot, Annotated };
// Whether text printouts of the graph stages end a node's line with its source
// position (`# @line:col`). Hide prints the same text without positions (a
// node's name stays), so a model written in C++ (gradc/embed.h) and the same
// model written in the text language print identically.
enum class Locations { Show, Hide };

// How Model::dump prints a stage.
struct DumpOptions {
  DumpFormat format = DumpFormat::Text;  // Dot: Ast, Graph, Grad and Opt only; Annotated: LlvmRaw, Llvm, Asm
  Entry entry = Entry::TrainStep;        // the entry point of Loops, LlvmRaw, Llvm and Asm
  Locations locations = Locations::Show;
  // The stage after each of its steps, in order, each printout headed by
  // "# *** after STEP ***" (as LLVM's -print-after-all and Halide's lowering
  // log): for Opt, the graph after every pass run; for Loops, the entry
  // point's plan after every step of the kernel planner. Only for the stages
  // stage_has_steps() names; others make dump() throw std::invalid_argument.
  bool print_after_all = false;
};

// Whether a stage is made of steps that DumpOptions::print_after_all prints
// after: Opt (the optimization passes) and Loops (the kernel planner's steps).
bool stage_has_steps(Stage stage);

// What one entry point's generated code does, from its plan.
struct EntryCost {
  int kernels = 0;
  int64_t arena_bytes = 0;     // working memory per call
  int64_t peak_bytes = 0;      // the most of it live at once
  int64_t matmul_flops = 0;    // 2 * M * N * K over its matrix products
};

struct CompileOptions {
  // Dim overrides, e.g. {{"B", 256}}; each must name a `dim` of the model.
  std::vector<std::pair<std::string, int64_t>> dims;
  // Dynamic dims to compile at a capacity instead of per size, e.g.
  // {{"B", 64}}: the code runs every size from 1 to 64 (a Session pads the
  // inputs and trims the results; SPEC 2.2), and export_code makes the size
  // an argument of the exported functions (docs/export.md). Without it,
  // sessions choose capacities themselves. A model that cannot run at one (a
  // concat along the dim, a scan over it) fails to compile with this set, as
  // does a dim that is not dynamic (gradc's --max D=N).
  std::vector<std::pair<std::string, int64_t>> capacities;
  // Extra gradients of the loss for grad(): inputs or named values ("grad.NAME").
  std::vector<std::string> wrt;
  // How the gradients of grad() and train_step are computed: by reverse
  // accumulation (back-propagation, the default: a small multiple of one
  // forward pass, whatever the number of params), or by vector forward
  // accumulation (one tangent per param element, in blocks of directions
  // evaluated as one batched pass: a cost linear in the number of params).
  // Both give the same gradient, to rounding.
  enum class Autodiff { Reverse, Forward };
  Autodiff ad = Autodiff::Reverse;
  // Run the optimization passes (evaluation uses the optimized graph).
  bool optimize = true;
  // For debuggers and profilers (off by default; no cost when off). With
  // debug_info, the JIT's code carries DWARF (a compile unit for the model
  // file, a subprogram per function, the model line of each kernel) and is
  // registered with gdb's JIT interface, so a backtrace inside an entry point
  // shows `model.grad:LINE`. With perf_map, each compiled entry point writes
  // a line per function (address, size, model, entry and kernel) to perf's
  // map file /tmp/perf-PID.map. The environment variables GRADC_DEBUG_INFO=1
  // and GRADC_PERF_MAP=1 turn them on for every model of the process.
  bool debug_info = false;
  bool perf_map = false;
};

// Per-param result of Model::gradcheck().
struct GradcheckParam {
  std::string name;
  int64_t checked = 0;        // elements (or random directions) compared
  bool projected = false;     // true: random directions instead of every element
  double max_abs_error = 0;   // worst |analytic - numeric|
  double max_rel_error = 0;   // worst |analytic - numeric| / max(|numeric|, |analytic|, 1e-12)
  bool ok = true;             // every comparison within atol + rtol * |numeric|
};

// Which derivatives gradcheck compares with finite differences: the gradient
// by reverse accumulation (back-propagation), the directional derivatives by
// forward accumulation (jvp), or both, and then each with the other too.
enum class GradcheckMode { Reverse, Forward, Both };

struct GradcheckOptions {
  uint64_t seed = 0;
  GradcheckMode mode = GradcheckMode::Reverse;
  double eps = 1e-6, atol = 1e-5, rtol = 1e-3;  // PyTorch gradcheck's defaults
  int64_t max_elements = 1000;  // larger params are checked along `directions` random directions
  int directions = 16;
};

struct TensorInfo {
  std::string name;
  std::string dtype;           // "f32", "f64" or "i32"
  std::vector<int64_t> shape;  // empty for a scalar; -1 along a dynamic dim (ModelInfo::dynamic_dims)
  std::vector<std::string> dim_names;  // per axis: the `dim` it was declared with, or ""
  // An input read as class ids (by one_hot, or cross_entropy with i32
  // labels): how many classes there are, so ids must lie in [0, classes),
  // and where the model reads them ("model.grad:9:6"); else 0 and "".
  int64_t classes = 0;
  std::string classes_read_at;
};

struct ModelInfo {
  std::string name;
  std::vector<std::pair<std::string, int64_t>> dims;  // bound values (of the dims that are not dynamic)
  // Dynamic dims (`dim B` without a size, SPEC 2.2) that CompileOptions::dims
  // did not fix: every call binds them from its inputs' shapes (compiling the
  // model for new sizes on first use).
  std::vector<std::string> dynamic_dims;
  std::vector<TensorInfo> inputs, params, outputs, metrics;
  std::vector<TensorInfo> buffers;  // `buffer` statements (not trained; updated by train_step)
  std::string optimizer;  // e.g. "sgd(lr=0.5, momentum=0, ...)"
  double lr = 0;          // the optimizer's learning rate (train_step's default)
  size_t graph_nodes = 0;
};

// Ahead-of-time code (`gradc export`, SPEC section 6, docs/export.md).
struct ExportOptions {
  // The entries to export; empty: every entry the model has (forward when
  // it declares an output, grad and train_step when it declares a loss).
  std::vector<Entry> entries;
  // The machine: empty for this one's CPU (the JIT's code, bit-identical
  // results), else an LLVM target triple ("aarch64-linux-gnu") and a CPU
  // name ("x86-64-v3"; default: the target's baseline).
  std::string target, cpu;
};

struct ExportedModel {
  std::string name;    // the symbols' prefix (NAME_forward ...): the model's name
  std::string object;  // a relocatable ELF object file
  std::string header;  // the C header that declares its ABI
};

class Model {
 public:
  // Parses and checks a model. Never throws for bad input: problems are in diagnostics().
  static Model compile_source(std::string_view source, std::string file_name, const CompileOptions& opts = {});
  static Model compile_file(const std::string& path, const CompileOptions& opts = {});
  // Compiles a model defined in C++ (gradc/embed.h). The definition becomes
  // the same syntax tree a text model parses into, and goes through the same
  // checks, autodiff, passes and code generation; diagnostics name the C++
  // file and line that wrote the expression. Not cached (each call compiles).
  static Model compile_def(const embed::ModelDef& def, const CompileOptions& opts = {});

  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  ~Model();

  // True when the model compiled without errors.
  bool ok() const;
  // True when the failure is in the options (for example an unknown dim override), not in the model.
  bool options_error() const;
  const std::vector<Diagnostic>& diagnostics() const;

  // The text of a stage. Ast is available whenever the file could be read;
  // the others only when ok().
  std::string dump(Stage stage, DumpFormat format = DumpFormat::Text, Entry entry = Entry::TrainStep,
                   Locations locations = Locations::Show) const;
  std::string dump(Stage stage, const DumpOptions& opts) const;
  // The model's interface; valid only when ok().
  ModelInfo info() const;
  // The plan of an entry point's generated code; valid only when ok().
  EntryCost cost(Entry entry) const;
  // The entries as an object file and C header that need only libc and
  // libm; valid only when ok(). Throws DataError when the model cannot be
  // exported (an entry it lacks, a name that is no C identifier, a dynamic
  // dim with neither CompileOptions::dims nor capacities), and
  // std::invalid_argument for a target or CPU it cannot export for.
  ExportedModel export_code(const ExportOptions& opts = {}) const;

  // ---- evaluation with the reference interpreter (valid only when ok()) ----
  // Bad tensors (missing, wrong dtype or shape) throw DataError naming the tensor.

  // Every param from its initializer, deterministic for the seed (SPEC 2.2),
  // then every buffer from its own. grad, forward and gradcheck read the
  // buffers from their `params` argument, by name.
  NamedTensors initial_params(uint64_t seed = 0) const;
  // The grad entry point, in training mode (SPEC 2.7): "loss", "grad.NAME"
  // for every param and every CompileOptions::wrt name, and "out.NAME" for
  // every output. Buffers are not updated. Dropout draws the masks of the
  // first train_step under seed 0 (Session::grad: the session's seed and step).
  NamedTensors grad(const NamedTensors& inputs, const NamedTensors& params) const;
  // The forward entry point, in evaluation mode: "out.NAME" for every output,
  // plus "loss" and "metric.NAME" when the inputs they need are given.
  NamedTensors forward(const NamedTensors& inputs, const NamedTensors& params) const;
  // Compares the gradient of the loss (in training mode, as grad computes it)
  // with central finite differences, in f64 throughout, on seeded random
  // inputs and initial params and buffers (or the given ones).
  std::vector<GradcheckParam> gradcheck(const GradcheckOptions& opts = {}, const NamedTensors& inputs = {},
                                        const NamedTensors& params = {}) const;

 private:
  struct Impl;
  friend class Session;
  static std::shared_ptr<Impl> compile_cached(std::string source, std::string file_name, const CompileOptions& opts);
  explicit Model(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with sessions and the compilation cache
};

}  // namespace gradc
