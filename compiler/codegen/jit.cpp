// The ORC JIT: optimizing emitted modules for the host CPU and running them,
// with an on-disk cache of the machine code (code_cache.h).
#include "compiler/codegen/jit.h"

#include <algorithm>
#include <fmt/format.h>
#include <llvm/Support/CommandLine.h>
#include <llvm/Config/llvm-config.h>
#include <llvm/ExecutionEngine/Orc/CompileUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/MC/MCAsmInfo.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Passes/StandardInstrumentations.h>
#include <llvm/Support/MemoryBuffer.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/Instrumentation/AddressSanitizer.h>

#include <dlfcn.h>
#include <sys/stat.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "compiler/codegen/code_cache.h"
#include "compiler/codegen/debug_info.h"
#include "compiler/codegen/dump_marks.h"
#include "compiler/codegen/jit_debug.h"
#include "compiler/codegen/kernels.h"
#include "compiler/codegen/llvm_emit.h"
#include "compiler/codegen/machine.h"
#include "compiler/codegen/module_split.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"
#include "gradc/session.h"
#include "runtime/thread_pool.h"

namespace gradc {
namespace {

// The version of the code generator in the code cache's key. Bump it whenever
// kernels.cpp or the emitter (llvm_emit.cpp, emit_*.cpp) change the code they
// generate for a plan whose printout (print_program) stays the same.
// 10: sums longer than 1024 elements are blocked (emit_reduce.cpp).
// 11: sums down the columns of wide matrices are blocked too.
constexpr int kCodegenVersion = 19;  // 18: the "rows" products: 8 rows, a transposed A prefetched; 19: long sums into several outputs on the pool

// The optimization pipeline, part of the cache key: LLVM's O3 without its
// loop unroller. The emitter unrolls where it pays (the matrix-product
// microkernels); LLVM's full unrolling of the many small constant-trip-count
// loops made the MLP benchmarks compile 2.5-3.5x slower (optimization plus
// machine code of W3: 315 -> 112 ms of CPU time) and ran no faster.
// Without loop load elimination and induction variable simplification
// (optimize_module), sums vectorized in their order, and machine code without
// loop strength reduction or instruction scheduling (see host()).
constexpr const char* kPipeline = "O3-nounroll-nolle-noindvars-orderedsums-nolsr-nosched";

#ifdef GRADC_SANITIZE_JIT
constexpr bool kSanitize = true;
#else
constexpr bool kSanitize = false;
#endif

std::atomic<int> loaded_entries{0};  // jit_loaded_entries()

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

template <class T>
T check(llvm::Expected<T> v, const char* what) {
  if (!v) internal_error(__FILE__, __LINE__, fmt::format("{}: {}", what, llvm::toString(v.takeError())));
  return std::move(*v);
}

}  // namespace

// ---- shared with the ahead-of-time export (machine.h) ----

const Host& host() {
  static const Host h = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
    // Code generation without loop strength reduction: it took a fifth of
    // W3's compile (callgrind: 607 -> 474 M instructions without it) for no
    // measurable step time on W2-W4 and about 4 % on W1's half-microsecond
    // step. Nor with the instruction schedulers before and after register
    // allocation: together 10-15 % of W6's machine code (35 ms of 200 on one
    // thread), and no step time of W1-W6 or the GEMM changed beyond the
    // machine's noise (three interleaved run_bench runs each; the out-of-order
    // cores gradc targets reorder the loops' instructions themselves). And
    // the loop vectorizer may vectorize a sum in its order (an in-loop ordered
    // reduction: the lanes are added one after another, so the result is the
    // bits of the scalar loop), which x86's cost model does not offer by
    // itself: the terms of a sum along rows (a softmax's exp; before
    // short_total in emit_reduce.cpp, also a loss's, `bce_with_logits`'s
    // softplus) then come from the vector math library, 16 at a time, instead
    // of a scalar libm call each (W2's step 2.56 -> 1.37 us then; no step time
    // of W1, W3-W6 or the GEMM changed beyond the noise). LLVM has no per-module
    // switch for these, so this sets LLVM's command-line options for the
    // process (gradc is the process's LLVM user), each unless the process
    // set it.
    auto& options = llvm::cl::getRegisteredOptions();
    for (auto [name, value] : {std::pair{"disable-lsr", "true"}, std::pair{"enable-misched", "false"},
                               std::pair{"post-RA-scheduler", "false"}, std::pair{"force-ordered-reductions", "true"}})
      if (auto it = options.find(name); it != options.end() && it->second->getNumOccurrences() == 0)
        it->second->addOccurrence(1, name, value);  // position 1: some options only count a positive one
    auto jtmb = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
    jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
    std::string cpu = jtmb.getCPU(), features = jtmb.getFeatures().getString();
    return Host{std::move(jtmb), std::move(cpu), std::move(features)};
  }();
  return h;
}

namespace {
// Runs the module pass pipeline that `build` makes, with every analysis
// registered for the target machine, skipping the passes named in `skip`
// (class names).
template <class Build>
void run_passes(llvm::Module& mod, llvm::TargetMachine& tm, Build build,
                llvm::PipelineTuningOptions pto = llvm::PipelineTuningOptions(),
                std::initializer_list<llvm::StringRef> skip = {}) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  // Functions marked optnone (llvm_emit.cpp: entries of very many kernels)
  // are skipped by the optional passes; the pass builder honours the mark
  // only through this instrumentation.
  llvm::PassInstrumentationCallbacks pic;
  llvm::OptNoneInstrumentation optnone(/*DebugLogging=*/false);
  optnone.registerCallbacks(pic);
  if (skip.size() > 0)
    pic.registerShouldRunOptionalPassCallback([skip](llvm::StringRef name, llvm::Any) {
      return std::find(skip.begin(), skip.end(), name) == skip.end();
    });
  llvm::PassBuilder pb(&tm, pto, std::nullopt, &pic);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = build(pb);
  mpm.run(mod, mam);
}
}  // namespace

// The new pass manager's O3 pipeline for the host (loops vectorize with its
// widest vectors), without loop unrolling (kPipeline), and without two loop
// passes that cost time and bought nothing on gradc's loops:
// - loop load elimination: it forwards a value stored in one iteration to a
//   later iteration's load; its loop access analysis of every vectorized loop
//   was 14 % of W5's and W6's optimization time (W6 on one thread: 226 -> 182
//   ms), and no step time of W1-W6 changed without it.
// - induction variable simplification: the emitter's loops already count a
//   64-bit index from 0 by 1 to a bound, which is the form the pass makes;
//   it was 14 % of W3's optimization time (42 -> 35 ms on one thread; W6's
//   whole compile 466-472 -> 316-425 ms), `gradc step` gave the same bits on
//   W1-W6 and the GEMM model, and no step time moved beyond the noise
//   (`gradc bench --threads 1`, interleaved pairs, 2026-12-06).
void optimize_module(llvm::Module& mod, llvm::TargetMachine& tm) {
  llvm::PipelineTuningOptions pto;
  pto.LoopUnrolling = false;
  run_passes(
      mod, tm, [](llvm::PassBuilder& pb) { return pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3); }, pto,
      {"LoopLoadEliminationPass", "IndVarSimplifyPass"});
}

// Machine code for the module: an object file, or assembly text.
std::string machine_code(llvm::Module& mod, llvm::TargetMachine& tm, llvm::CodeGenFileType type) {
  llvm::SmallVector<char, 0> buf;
  llvm::raw_svector_ostream os(buf);
  llvm::legacy::PassManager pm;
  if (tm.addPassesToEmitFile(pm, os, nullptr, type))
    internal_error(__FILE__, __LINE__, "the target cannot emit machine code");
  pm.run(mod);
  return std::string(buf.begin(), buf.end());
}

namespace {

// A target machine for the calling thread: one is not safe to use from
// several threads at once, and making one per compile costs time.
llvm::TargetMachine& target_machine() {
  thread_local std::unique_ptr<llvm::TargetMachine> tm;
  if (!tm) {
    llvm::orc::JITTargetMachineBuilder jtmb = host().jtmb;
    tm = check(jtmb.createTargetMachine(), "creating the target machine");
  }
  return *tm;
}

std::string module_text(const llvm::Module& m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  m.print(os, nullptr);
  return os.str();
}

std::string symbol_name(EntryKind kind) { return fmt::format("gradc_{}", entry_name(kind)); }

// An entry's module, and with the model's source its kernel marks (debug_info.h).
struct Emitted {
  std::unique_ptr<llvm::Module> mod;
  std::unique_ptr<KernelMarks> marks;  // destroyed first: it refers to mod
};

// The entry's module, emitted from its plan for the host and verified; with
// `sm`, marked kernel by kernel, and with `debug_locs` with DWARF too.
Emitted emit_module(const ModelIR& m, const Program& p, EntryKind kind, llvm::LLVMContext& ctx,
                    llvm::TargetMachine& tm, const SourceManager* sm = nullptr, bool debug_locs = false) {
  Emitted e;
  e.mod = std::make_unique<llvm::Module>(fmt::format("gradc.{}.{}", m.name, entry_name(kind)), ctx);
  e.mod->setDataLayout(tm.createDataLayout());
  e.mod->setTargetTriple(tm.getTargetTriple().str());
  if (sm) e.marks = std::make_unique<KernelMarks>(m, p, *sm, *e.mod, symbol_name(kind), debug_locs);
  emit_program(p, symbol_name(kind), *e.mod, host().cpu, host().features, e.marks ? e.marks->hook() : KernelHook());
  if (e.marks) e.marks->finish();
  return e;
}

// The names of an entry's functions in perf's map file: the symbol, then the
// model, the entry and (for a kernel's outlined body) the kernel.
std::map<std::string, std::string> perf_names(const ModelIR& m, EntryKind kind, const KernelMarks& marks) {
  std::map<std::string, std::string> names;
  std::string entry = fmt::format("{} {}", m.name, entry_name(kind));
  names[marks.entry_symbol()] = fmt::format("{} [{}]", marks.entry_symbol(), entry);
  for (const auto& [fn, k] : marks.functions())
    names[fn] = k < 0 ? fmt::format("{} [{}]", fn, entry)
                      : fmt::format("{} [{} {}]", fn, entry, marks.label(static_cast<size_t>(k)));
  return names;
}

// The sanitizer build instruments the generated code too: every load and
// store of an entry point is checked by the process's AddressSanitizer
// runtime (no module constructor: the runtime is already initialized).
// Each check is a call into the runtime (__asan_load4, __asan_loadN, ...)
// rather than the shadow test inlined at every access: the inlined checks
// multiplied the machine code that LLVM then had to generate, and the
// sanitized tests that compile many models ran 3.2-3.4 times slower with
// them (jit.capacity's sweep 90 s against 28 s). The calls check the same
// shadow bytes; tests/jit/asan_probe.cpp shows that a read past a buffer is
// still reported.
void sanitize_module([[maybe_unused]] llvm::Module& mod, [[maybe_unused]] llvm::TargetMachine& tm) {
#ifdef GRADC_SANITIZE_JIT
  for (llvm::Function& f : mod)
    if (!f.isDeclaration()) f.addFnAttr(llvm::Attribute::SanitizeAddress);
  run_passes(mod, tm, [](llvm::PassBuilder&) {
    llvm::ModulePassManager mpm;
    llvm::AddressSanitizerOptions options;
    options.InstrumentationWithCallsThreshold = 0;  // every access through a call
    mpm.addPass(llvm::AddressSanitizerPass(options, false, false, llvm::AsanDtorKind::None,
                                           llvm::AsanCtorKind::None));
    return mpm;
  });
#endif
}

// The file holding this code generator (the executable, or a shared
// gradc library) by path, size and modification time: rebuilding gradc with
// a changed code generator makes new cache keys even when kCodegenVersion
// was not bumped.
const std::string& build_identity() {
  static const std::string id = [] {
    Dl_info info;
    struct stat st;
    if (dladdr(reinterpret_cast<void*>(&build_identity), &info) == 0 || !info.dli_fname) return std::string("unknown");
    // The executable may be named relative to a directory the process has left.
    std::string path = info.dli_fname[0] == '/' ? info.dli_fname : "/proc/self/exe";
    if (::stat(path.c_str(), &st) != 0) return std::string("unknown");
    return fmt::format("{} {} {} {}.{:09}", path, st.st_ino, st.st_size, st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  }();
  return id;
}

// Everything that determines an entry's machine code: the plan's printout
// fixes the emitted IR (every dim is a constant of the specialization).
std::string cache_key_material(const Program& p, EntryKind kind, bool debug_info) {
  return fmt::format(
      "gradc code cache\ncodegen {}\nbuild {}\nllvm {}\ntriple {}\ncpu {}\nfeatures {}\npipeline {}\nsanitize {}\n"
      "symbol {}\ndebug info {}\n",
      kCodegenVersion, build_identity(), LLVM_VERSION_STRING, host().jtmb.getTargetTriple().str(), host().cpu,
      host().features, kPipeline, kSanitize, symbol_name(kind), debug_info) +
         print_program(p);
}

// One entry point compiled for the host: its plan and its code.
class CompiledEntry final : public NativeEntry {
 public:
  CompiledEntry(Program program, const SourceManager& sm) : program_(std::move(program)), sm_(sm) {
    arena_bytes_ = program_.arena_bytes;
    worker_bytes_ = program_.worker_bytes;
    in_place_ = program_.in_place;
    profiled_ = program_.profile;
    for (size_t k = 0; k < program_.kernels.size(); ++k) {
      SourceLoc loc = program_.kernels[k].loc;
      std::string where;
      if (loc.valid()) {
        LineCol lc = sm_.line_col(loc.file, loc.begin);
        where = fmt::format("{}:{}:{}", sm_.name(loc.file), lc.line, lc.column);
      }
      kernels_.push_back({kernel_summary(program_, k), where});
    }
  }
  void set_fn(Fn fn) { fn_ = fn; }
  const Program& program() const { return program_; }
  CompileTimes times;

 protected:
  [[noreturn]] void fail(int32_t status) const override {
    size_t k = static_cast<size_t>(status) - 1;
    throw_model_error(sm_, program_.check_locs.at(k), program_.check_messages.at(k));
  }

 private:
  Program program_;
  const SourceManager& sm_;
};

class JitExecutor : public Executor {
 public:
  JitExecutor(const ModelIR& m, const SourceManager& sm, JitOptions opts) : m_(m), sm_(sm), opts_(opts) {}

  // The entries' code lives in their JITDylibs: removing them frees it (a
  // private JIT takes its JITDylibs with it).
  ~JitExecutor() override {
    if (jit_) {
      jit_.reset();
      loaded_entries -= static_cast<int>(dylibs_.size());
      return;
    }
    for (llvm::orc::JITDylib* jd : dylibs_) {
      if (llvm::Error err = shared_jit().getExecutionSession().removeJITDylib(*jd))
        llvm::consumeError(std::move(err));  // its code stays (an error here is ORC's own)
      else
        --loaded_entries;
    }
  }

  void run(const EntrySignature& sig, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out, int threads) override {
    const NativeEntry& e = *native(sig.kind, false);
    std::vector<void*> args;
    for (const Tensor* t : in) args.push_back(const_cast<void*>(t->raw()));
    for (Tensor* t : out) args.push_back(t->raw());
    // Values updated in place: the old value is copied into the output, which is updated there.
    for (size_t k = 0; k < out.size(); ++k) {
      if (!e.in_place()[k]) continue;
      for (size_t i = 0; i < in.size(); ++i)
        if (sig.reads[i].name == sig.produces[k].name) {
          std::memcpy(out[k]->raw(), in[i]->raw(), out[k]->nbytes());
          args[i] = out[k]->raw();
        }
    }
    // A fresh arena per call, so sessions of one model may run on several threads.
    const GradcRuntime* rt = runtime_for_threads(threads);
    Arena arena(e.arena_bytes(rt->threads), sig.kind);
    e.call(args.data(), arena.data(), rt);
  }

  const NativeEntry* native(EntryKind kind, bool profile) override {
    std::lock_guard<std::mutex> lock(mutex_);
    std::unique_ptr<CompiledEntry>& e = entries_[{kind, profile}];
    if (!e) e = compile(kind, profile);
    return e.get();
  }

  CompileTimes compile_times(EntryKind kind) const override {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find({kind, false});
    return it == entries_.end() || !it->second ? CompileTimes{} : it->second->times;
  }

 private:
  // A JIT for code to load: the process's, shared by every model (an LLJIT
  // of its own cost each model 0.4-0.5 ms of its compile, a cache hit's
  // largest part), or one of the model's own where tools are to see the code
  // (jit_debug.h), whose plugins see every object of their JIT. Each entry
  // gets a JITDylib of its own (their modules may define functions of the
  // same names), named uniquely in the process.
  llvm::orc::LLJIT& jit() {
    if (!opts_.debug_info && !opts_.perf_map) return shared_jit();
    if (!jit_) {
      jit_ = make_jit();
      if (opts_.debug_info)
        if (std::string why = add_gdb_registration(*jit_); !why.empty())
          std::fprintf(stderr, "gradc: warning: the debug info cannot be registered with gdb: %s\n", why.c_str());
      if (opts_.perf_map) perf_map_ = add_perf_map(*jit_);
    }
    return *jit_;
  }

  static std::unique_ptr<llvm::orc::LLJIT> make_jit() {
    return check(llvm::orc::LLJITBuilder()
                     .setJITTargetMachineBuilder(host().jtmb)
                     // Objects only: no IR is compiled by the JIT, so no target machine up front,
                     .setCompileFunctionCreator([](llvm::orc::JITTargetMachineBuilder jtmb)
                                                    -> llvm::Expected<std::unique_ptr<llvm::orc::IRCompileLayer::IRCompiler>> {
                       return std::make_unique<llvm::orc::ConcurrentIRCompiler>(std::move(jtmb));
                     })
                     // and no static initializers to run. Math functions (expf,
                     // tanhf, ...) come from the process's symbols.
                     .setPlatformSetUp(llvm::orc::setUpInactivePlatform)
                     .create(),
                 "creating the JIT");
  }

  // Made on first use and never destroyed: executors destroyed at exit (the
  // model cache's) still remove their JITDylibs from it.
  static llvm::orc::LLJIT& shared_jit() {
    static llvm::orc::LLJIT* j = make_jit().release();
    return *j;
  }

  // Loads an entry's object files into a new JITDylib and resolves the entry point;
  // on failure removes the JITDylib and returns the error's text.
  // `names`: its functions' names in perf's map file.
  std::string load(const std::vector<std::string>& objects, EntryKind kind, CompiledEntry& e,
                   std::map<std::string, std::string> names = {}) {
    llvm::orc::LLJIT& j = jit();
    static std::atomic<int> dylib_count{0};
    std::string id = fmt::format("{}.{}", entry_name(kind), dylib_count++);
    auto created = j.createJITDylib(id);
    if (!created) internal_error(__FILE__, __LINE__, "creating a JITDylib: " + llvm::toString(created.takeError()));
    llvm::orc::JITDylib& jd = *created;
    if (perf_map_) perf_map_->name_functions(id, std::move(names));
    llvm::Error err = llvm::Error::success();
    for (size_t i = 0; i < objects.size() && !err; ++i)
      err = j.addObjectFile(jd, llvm::MemoryBuffer::getMemBufferCopy(objects[i], id));  // tools find the names by id
    if (!err) {
      auto addr = j.lookup(jd, symbol_name(kind));
      if (addr) {
        e.set_fn(addr->toPtr<NativeEntry::Fn>());
        dylibs_.push_back(&jd);
        ++loaded_entries;
        return {};
      }
      err = addr.takeError();
    }
    std::string why = llvm::toString(std::move(err));
    llvm::consumeError(j.getExecutionSession().removeJITDylib(jd));
    return why.empty() ? "unknown error" : why;
  }

  std::unique_ptr<CompiledEntry> compile(EntryKind kind, bool profile) {
    CompileTimes t;
    auto t0 = Clock::now();
    host();
    jit();
    t.setup_ms = ms_since(t0);

    t0 = Clock::now();
    auto e = std::make_unique<CompiledEntry>(plan_program(m_, kind, profile), sm_);
    t.plan_ms = ms_since(t0);

    // The on-disk cache: a well-formed file that the JIT loads is a hit.
    t0 = Clock::now();
    std::string dir = usable_code_cache_dir();
    CodeCacheKey key;
    if (!dir.empty()) {
      key = code_cache_key(cache_key_material(e->program(), kind, opts_.debug_info));
      std::optional<std::vector<std::string>> objects;
      if (std::optional<std::string> payload = code_cache_load(dir, key)) objects = unpack_objects(*payload);
      if (objects) {
        t.cache_ms = ms_since(t0);
        auto t1 = Clock::now();
        std::map<std::string, std::string> names;
        if (opts_.perf_map) {  // the names come from the emitted module
          llvm::LLVMContext ctx;
          Emitted em = emit_module(m_, e->program(), kind, ctx, target_machine(), &sm_);
          names = perf_names(m_, kind, *em.marks);
        }
        if (load(*objects, kind, *e, std::move(names)).empty()) {
          code_cache_count_hit();
          t.link_ms = ms_since(t1);
          t.cache_hit = t.compiled = true;
          e->times = t;
          return e;
        }
        code_cache_count_rejected();  // well-formed but not loadable: recompile and overwrite
        t0 = t1;
      }
      code_cache_count_miss();
    }
    t.cache_ms += ms_since(t0);

    // Kernel marks only for tools (jit_debug.h): none by default. Kernel
    // marks belong to one module: a marked entry is compiled in one part.
    bool marked = opts_.debug_info || opts_.perf_map;
    const int threads = marked ? 1 : opts_.compile_threads;
    std::vector<std::future<std::string>> others = start_other_parts(e->program(), kind, threads);
    // A target machine only for code to compile (a cache hit needs none).
    t0 = Clock::now();
    llvm::TargetMachine& tm = target_machine();
    t.setup_ms += ms_since(t0);
    t0 = Clock::now();
    llvm::LLVMContext ctx;
    Emitted em = emit_module(m_, e->program(), kind, ctx, tm, marked ? &sm_ : nullptr, opts_.debug_info);
    std::unique_ptr<llvm::Module>& mod = em.mod;
    std::map<std::string, std::string> names;
    if (opts_.perf_map) names = perf_names(m_, kind, *em.marks);
    t.emit_ms = ms_since(t0);
    std::vector<std::string> objects = machine_code_in_parts(*mod, std::move(others), threads, t);
    if (!dir.empty()) {
      t0 = Clock::now();
      code_cache_store(dir, key, pack_objects(objects));
      t.cache_ms += ms_since(t0);
    }
    t0 = Clock::now();
    if (std::string why = load(objects, kind, *e, std::move(names)); !why.empty())
      internal_error(__FILE__, __LINE__, "loading the compiled code into the JIT: " + why);
    t.link_ms = ms_since(t0);
    t.compiled = true;
    e->times = t;
    return e;
  }

  // Parallel code generation (module_split.h): parts 1 .. threads - 1 of an
  // entry, each on a thread of its own that emits its own copy of the
  // module, splits it and compiles its part. They start before this thread
  // emits its copy (part 0), so that the copies are emitted at the same
  // time; the split depends on the module alone, so every copy splits
  // alike. A part past the split's count (a module too small for that many
  // parts) gives no object.
  std::vector<std::future<std::string>> start_other_parts(const Program& program, EntryKind kind, int threads) {
    std::vector<std::future<std::string>> others;
    for (int part = 1; part < threads; ++part)
      others.push_back(std::async(std::launch::async, [this, &program, kind, part, threads] {
        llvm::LLVMContext ctx;
        Emitted em = emit_module(m_, program, kind, ctx, target_machine());
        ModuleSplit split = split_module(*em.mod, threads, opts_.min_part_instructions);
        return part < split.parts ? compile_part(*em.mod, split, part, nullptr) : std::string();
      }));
    return others;
  }

  // Part `part` of module `m` under `split`: optimized (timed into
  // *optimize_ms) and compiled to an object file.
  static std::string compile_part(llvm::Module& m, const ModuleSplit& split, int part, double* optimize_ms) {
    llvm::TargetMachine& tm = target_machine();
    keep_part(m, split, part);
    auto t1 = Clock::now();
    optimize_module(m, tm);
    sanitize_module(m, tm);
    if (optimize_ms) *optimize_ms = ms_since(t1);
    return machine_code(m, tm, llvm::CodeGenFileType::ObjectFile);
  }

  // The entry's object files: part 0 from `mod` (emitted on this thread),
  // then those of the other parts' threads. Records the optimization and
  // machine code times: with parts, this thread's optimization and the rest
  // of the parallel work's wall time.
  std::vector<std::string> machine_code_in_parts(llvm::Module& mod, std::vector<std::future<std::string>> others,
                                                 int threads, CompileTimes& t) {
    auto t0 = Clock::now();
    ModuleSplit split = split_module(mod, threads, opts_.min_part_instructions);
    t.parts = split.parts;
    std::vector<std::string> objects{compile_part(mod, split, 0, &t.optimize_ms)};
    for (auto& f : others)
      if (std::string object = f.get(); !object.empty()) objects.push_back(std::move(object));
    t.codegen_ms = ms_since(t0) - t.optimize_ms;
    return objects;
  }

  const ModelIR& m_;
  const SourceManager& sm_;
  const JitOptions opts_;
  PerfMap* perf_map_ = nullptr;  // owned by jit_'s linker
  mutable std::mutex mutex_;
  std::map<std::pair<EntryKind, bool>, std::unique_ptr<CompiledEntry>> entries_;  // (entry, profiled)
  std::unique_ptr<llvm::orc::LLJIT> jit_;       // the model's own, for tools
  std::vector<llvm::orc::JITDylib*> dylibs_;  // the entries', in the shared JIT or jit_
};

}  // namespace

int jit_loaded_entries() { return loaded_entries; }

std::unique_ptr<Executor> make_jit_executor(const ModelIR& m, const SourceManager& sm, JitOptions opts) {
  opts.debug_info = opts.debug_info || env_flag("GRADC_DEBUG_INFO");
  opts.perf_map = opts.perf_map || env_flag("GRADC_PERF_MAP");
  if (opts.compile_threads <= 0) {
    const char* env = std::getenv("GRADC_COMPILE_THREADS");
    int n = env ? std::atoi(env) : 0;
    opts.compile_threads = n > 0 ? std::min(n, kMaxCompileThreads)
                                 : std::clamp(static_cast<int>(std::thread::hardware_concurrency()), 1, kMaxCompileThreads);
  }
  return std::make_unique<JitExecutor>(m, sm, opts);
}

std::string jit_stage_text(const ModelIR& m, EntryKind entry, const std::string& stage, const SourceManager* sm,
                           bool annotate) {
  Program p = plan_program(m, entry);
  if (stage == "loops") return print_program(p);
  llvm::TargetMachine& tm = target_machine();
  llvm::LLVMContext ctx;
  // Marked dumps are made from the module with debug locations (dump_marks.h).
  Emitted em = emit_module(m, p, entry, ctx, tm, sm, sm != nullptr);
  auto ir = [&] { return em.marks ? marked_ir_text(*em.mod, *em.marks, annotate) : module_text(*em.mod); };
  if (stage == "llvm-raw") return ir();
  optimize_module(*em.mod, tm);
  if (stage == "asm") {
    std::string text = machine_code(*em.mod, tm, llvm::CodeGenFileType::AssemblyFile);
    return em.marks ? marked_asm_text(text, *em.marks, annotate, tm.getMCAsmInfo()->getCommentString().str()) : text;
  }
  return ir();
}

}  // namespace gradc
