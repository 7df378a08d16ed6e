// The ORC JIT: optimizing emitted modules for the host CPU and running them.
#include "compiler/codegen/jit.h"

#include <fmt/format.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Transforms/Instrumentation/AddressSanitizer.h>
#include <llvm/Transforms/Utils/Cloning.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "compiler/codegen/kernels.h"
#include "compiler/codegen/llvm_emit.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"
#include "gradc/session.h"
#include "runtime/thread_pool.h"

namespace gradc {
namespace {

void init_llvm() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    llvm::InitializeNativeTargetAsmParser();
  });
}

template <class T>
T check(llvm::Expected<T> v, const char* what) {
  if (!v) internal_error(__FILE__, __LINE__, fmt::format("{}: {}", what, llvm::toString(v.takeError())));
  return std::move(*v);
}

std::string module_text(const llvm::Module& m) {
  std::string s;
  llvm::raw_string_ostream os(s);
  m.print(os, nullptr);
  return os.str();
}

// Runs the module pass pipeline that `build` makes, with every analysis
// registered for the target machine.
template <class Build>
void run_passes(llvm::Module& mod, llvm::TargetMachine& tm, Build build) {
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(&tm);
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::ModulePassManager mpm = build(pb);
  mpm.run(mod, mam);
}

// One entry point compiled for the host: its plan, its module, its code.
struct CompiledEntry {
  Program program;
  std::string raw_ir, opt_ir;
  std::unique_ptr<llvm::orc::LLJIT> jit;
  int32_t (*fn)(void**, uint8_t*, const GradcRuntime*) = nullptr;
};

// Plans, emits, verifies and optimizes one entry; with `want_jit` also compiles it.
CompiledEntry compile_entry(const ModelIR& m, EntryKind kind, bool want_jit, std::string* asm_text = nullptr) {
  init_llvm();
  CompiledEntry ce;
  ce.program = plan_program(m, kind);
  auto jtmb = check(llvm::orc::JITTargetMachineBuilder::detectHost(), "detecting the host CPU");
  jtmb.setCodeGenOptLevel(llvm::CodeGenOptLevel::Aggressive);
  auto tm = check(jtmb.createTargetMachine(), "creating the target machine");
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto mod = std::make_unique<llvm::Module>(fmt::format("gradc.{}.{}", m.name, entry_name(kind)), *ctx);
  mod->setDataLayout(tm->createDataLayout());
  mod->setTargetTriple(tm->getTargetTriple().str());
  std::string name = fmt::format("gradc_{}", entry_name(kind));
  emit_program(ce.program, name, *mod, jtmb.getCPU(), jtmb.getFeatures().getString());
  ce.raw_ir = module_text(*mod);

  // The new pass manager's O3 pipeline for the host (loops vectorize with its widest vectors).
  run_passes(*mod, *tm, [](llvm::PassBuilder& pb) { return pb.buildPerModuleDefaultPipeline(llvm::OptimizationLevel::O3); });
  ce.opt_ir = module_text(*mod);

  if (asm_text) {
    llvm::SmallVector<char, 0> buf;
    llvm::raw_svector_ostream os(buf);
    llvm::legacy::PassManager pm;
    auto clone = llvm::CloneModule(*mod);
    if (tm->addPassesToEmitFile(pm, os, nullptr, llvm::CodeGenFileType::AssemblyFile))
      internal_error(__FILE__, __LINE__, "the target cannot emit assembly");
    pm.run(*clone);
    *asm_text = std::string(buf.begin(), buf.end());
  }
  if (!want_jit) return ce;
#ifdef GRADC_SANITIZE_JIT
  // The sanitizer build instruments the generated code too: every load and
  // store of an entry point is checked by the process's AddressSanitizer
  // runtime (no module constructor: the runtime is already initialized).
  {
    for (llvm::Function& f : *mod)
      if (!f.isDeclaration()) f.addFnAttr(llvm::Attribute::SanitizeAddress);
    run_passes(*mod, *tm, [](llvm::PassBuilder&) {
      llvm::ModulePassManager mpm;
      mpm.addPass(llvm::AddressSanitizerPass(llvm::AddressSanitizerOptions{}, false, false, llvm::AsanDtorKind::None,
                                             llvm::AsanCtorKind::None));
      return mpm;
    });
  }
#endif

  ce.jit = check(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(), "creating the JIT");
  // Math functions (expf, tanhf, ...) come from the process's libm.
  ce.jit->getMainJITDylib().addGenerator(check(
      llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(ce.jit->getDataLayout().getGlobalPrefix()),
      "finding the process's symbols"));
  if (auto err = ce.jit->addIRModule(llvm::orc::ThreadSafeModule(std::move(mod), std::move(ctx))))
    internal_error(__FILE__, __LINE__, "adding the module to the JIT: " + llvm::toString(std::move(err)));
  auto addr = check(ce.jit->lookup(name), "looking up the entry point");
  ce.fn = addr.toPtr<int32_t (*)(void**, uint8_t*, const GradcRuntime*)>();
  return ce;
}

class JitExecutor : public Executor {
 public:
  JitExecutor(const ModelIR& m, const SourceManager& sm) : m_(m), sm_(sm) {}

  void run(const EntrySignature& sig, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out, int threads) override {
    CompiledEntry& ce = entry(sig.kind);
    std::vector<void*> args;
    for (const Tensor* t : in) args.push_back(const_cast<void*>(t->raw()));
    for (Tensor* t : out) args.push_back(t->raw());
    // A fresh arena per call, so sessions of one model may run on several threads.
    if (ce.program.arena_bytes > kMaxSessionBytes)
      throw DataError(fmt::format("{} needs {:.1f} GiB of working memory; the limit is {} GiB", entry_name(sig.kind),
                                  static_cast<double>(ce.program.arena_bytes) / (1 << 30), kMaxSessionBytes >> 30));
    size_t bytes = static_cast<size_t>(std::max<int64_t>(ce.program.arena_bytes, 64));
    std::unique_ptr<uint8_t, decltype(&std::free)> arena(
        static_cast<uint8_t*>(std::aligned_alloc(64, (bytes + 63) / 64 * 64)), &std::free);
    if (!arena) throw DataError(fmt::format("cannot allocate the {} bytes of working memory", bytes));
    int32_t status = ce.fn(args.data(), arena.get(), runtime_for_threads(threads));
    if (status != 0) {
      size_t k = static_cast<size_t>(status) - 1;
      SourceLoc loc = ce.program.check_locs.at(k);
      LineCol lc = sm_.line_col(loc.file, loc.begin);
      throw DataError(fmt::format("{}:{}:{}: {}", sm_.name(loc.file), lc.line, lc.column, ce.program.check_messages.at(k)));
    }
  }

 private:
  CompiledEntry& entry(EntryKind kind) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = entries_.find(kind);
    if (it == entries_.end()) it = entries_.emplace(kind, compile_entry(m_, kind, true)).first;
    return it->second;
  }

  const ModelIR& m_;
  const SourceManager& sm_;
  std::mutex mutex_;
  std::map<EntryKind, CompiledEntry> entries_;
};

}  // namespace

std::unique_ptr<Executor> make_jit_executor(const ModelIR& m, const SourceManager& sm) {
  return std::make_unique<JitExecutor>(m, sm);
}

std::string jit_stage_text(const ModelIR& m, EntryKind entry, const std::string& stage) {
  if (stage == "loops") return print_program(plan_program(m, entry));
  std::string asm_text;
  CompiledEntry ce = compile_entry(m, entry, false, stage == "asm" ? &asm_text : nullptr);
  if (stage == "llvm-raw") return ce.raw_ir;
  if (stage == "asm") return asm_text;
  return ce.opt_ir;
}

}  // namespace gradc
