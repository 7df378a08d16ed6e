// Ahead-of-time export: the JIT's code for a model's entries in one object
// file, behind C functions that take structs of the model's tensors, and
// the C header that declares them (export.h, docs/export.md).
//
// Each entry is planned, emitted and optimized in a module of its own
// exactly as the JIT does it (jit.cpp), so its machine code is the JIT's and
// so are its results, bit for bit. A second module holds what the object
// adds: per entry a wrapper that points the entry's arguments at struct
// fields and copies back the values it could not update in place, a serial
// parallel_for for hosts without a thread pool, and the return codes'
// messages. The modules are linked after optimization, so nothing of the
// wrappers reaches the entries' code.
#include "compiler/codegen/export.h"

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/Linker/Linker.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <cctype>
#include <set>
#include <stdexcept>

#include "compiler/codegen/kernels.h"
#include "compiler/codegen/llvm_emit.h"
#include "compiler/codegen/machine.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"
#include "gradc/tensor.h"

namespace gradc {
namespace {

// The version of the header's ABI: bumped when a struct's layout rule, an
// entry's parameters or the work area's layout change.
constexpr int kAbiVersion = 1;

// The work area starts with the values a train_step cannot update in place
// and continues with the entry's arena; both start on this boundary (the
// arena's own requirement, NativeEntry::arena_bytes).
constexpr int64_t kWorkAlign = 64;

int64_t align_up(int64_t n, int64_t a) { return (n + a - 1) / a * a; }

const char* c_type(DType t) {
  switch (t) {
    case DType::F32: return "float";
    case DType::F64: return "double";
    case DType::I32: return "int32_t";
  }
  return "?";
}

bool c_keyword(const std::string& s) {
  static const std::set<std::string> words = {
      "auto",     "break",    "case",     "char",   "const",    "continue", "default",  "do",     "double",
      "else",     "enum",     "extern",   "float",  "for",      "goto",     "if",       "inline", "int",
      "long",     "register", "restrict", "return", "short",    "signed",   "sizeof",   "static", "struct",
      "switch",   "typedef",  "union",    "unsigned", "void",   "volatile", "while",    "bool",   "true",
      "false",    "alignas",  "alignof",  "nullptr", "static_assert", "thread_local", "typeof", "constexpr"};
  return words.count(s) > 0;
}

// A tensor name as a C identifier: '.' becomes '_', a C keyword gets a
// trailing '_' ("opt.exp_avg.W" -> exp_avg_W, "int" -> int_).
std::string c_field(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return c_keyword(s) ? s + "_" : s;
}

// One tensor in a struct of the header.
struct Field {
  std::string tensor;  // its name in the entry signatures ("W1", "opt.exp_avg.W1", "out.pred", "grad.W1")
  std::string c_name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  int64_t offset = 0, bytes = 0;
};

// A struct of the header: the fields in order, each at its natural
// alignment (the C layout rule on every 64-bit target gradc exports for).
struct CStruct {
  std::string what;  // "inputs", "params", ...
  std::vector<Field> fields;
  int64_t size = 0;

  void add(std::string tensor, std::string c_name, DType dtype, std::vector<int64_t> shape) {
    Field f{std::move(tensor), std::move(c_name), dtype, std::move(shape)};
    int64_t elem = static_cast<int64_t>(dtype_size(dtype)), n = 1;
    for (int64_t d : f.shape) n *= d;
    f.offset = align_up(size, elem);
    f.bytes = n * elem;
    size = f.offset + f.bytes;
    fields.push_back(std::move(f));
  }
  int64_t align() const {
    int64_t a = 1;
    for (const Field& f : fields) a = std::max<int64_t>(a, static_cast<int64_t>(dtype_size(f.dtype)));
    return a;
  }
  const Field* find(const std::string& tensor) const {
    for (const Field& f : fields)
      if (f.tensor == tensor) return &f;
    return nullptr;
  }
};

// Where an argument of an entry points.
struct Arg {
  // StepIn, StepOut: the step counter, an f64 in the entry and an i32 in NAME_state.
  enum class Src { Inputs, Params, State, Outputs, Grads, Loss, Lr, StepIn, StepOut, Temp } src;
  int64_t offset = 0;  // in the struct, or in the work area (Temp)
};

// A produced value that train_step could not write over its read: computed
// into the work area, then copied to its field.
struct CopyBack {
  int64_t temp = 0;
  Arg::Src to = Arg::Src::Params;
  int64_t offset = 0, bytes = 0;
};

struct EntryPlan {
  EntryKind kind = EntryKind::Forward;
  Program program;
  std::vector<Arg> args;  // sig.reads, then sig.produces
  std::vector<CopyBack> copies;
  int64_t temp_bytes = 0;  // multiple of kWorkAlign
  int32_t code_base = 0;   // the entry's check k returns code_base + k
};

std::string dims_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += fmt::format("[{}]", d);
  return s;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

class Exporter {
 public:
  Exporter(const ModelIR& m, const SourceManager& sm, const ExportRequest& r) : m_(m), sm_(sm), request_(r) {}

  ExportedCode run() {
    name_ = c_name(m_.name);
    upper_ = upper(name_);
    check_entries();
    build_structs();
    int32_t codes = 0;
    for (EntryKind kind : request_.entries) {
      EntryPlan e;
      e.kind = kind;
      e.program = plan_program(m_, kind);
      e.code_base = codes;
      codes += static_cast<int32_t>(e.program.check_messages.size());
      bind(e);
      plans_.push_back(std::move(e));
    }
    ExportedCode out;
    out.name = name_;
    out.object = object();
    out.header = header();
    return out;
  }

 private:
  // The model's name as the C prefix: it must already be an identifier
  // (a file name like my-model.grad makes "my-model": say how to name it).
  static std::string c_name(const std::string& name) {
    bool ok = !name.empty() && !std::isdigit(static_cast<unsigned char>(name[0]));
    for (char c : name) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_');
    if (!ok || c_keyword(name))
      throw DataError(fmt::format("the model's name '{}' is not a C identifier, and the exported symbols start with "
                                  "it; name the model with a `model NAME` line",
                                  name));
    return name;
  }

  void check_entries() const {
    for (EntryKind kind : request_.entries) {
      if (kind == EntryKind::Forward && m_.outputs.empty())
        throw DataError("forward: the model declares no `output`, so forward computes nothing");
      if ((kind == EntryKind::Grad || kind == EntryKind::TrainStep) && m_.loss.node == kNoNode)
        throw DataError(fmt::format("{}: the model declares no `loss`", entry_name(kind)));
      if (kind == EntryKind::TrainStep && !m_.train.built())
        throw DataError("train_step: the model has no optimizer step");
    }
  }

  bool wants(EntryKind kind) const {
    return std::find(request_.entries.begin(), request_.entries.end(), kind) != request_.entries.end();
  }

  void add_node(CStruct& s, std::string tensor, const std::string& name, NodeId id) {
    const Node& n = m_.graph[id];
    s.add(std::move(tensor), c_field(name), n.dtype, sizes(n.shape));
  }

  void build_structs() {
    inputs_.what = "inputs";
    params_.what = "params";
    state_.what = "state";
    outputs_.what = "outputs";
    grads_.what = "grads";
    for (const NamedNode& n : m_.inputs) add_node(inputs_, n.name, n.name, n.node);
    for (const ParamDecl& p : m_.params) add_node(params_, p.name, p.name, p.node);
    for (const NamedNode& n : m_.outputs) add_node(outputs_, "out." + n.name, n.name, n.node);
    for (const NamedNode& g : m_.grads) add_node(grads_, "grad." + g.name, g.name, g.node);
    if (wants(EntryKind::TrainStep)) {
      // The step counter first (i32, as checkpoints store opt.step), then
      // the optimizer's slots in the order train_step produces them.
      state_.add("opt.step", "step", DType::I32, {});
      for (const StateSlot& s : m_.train.slots) {
        std::string tensor = fmt::format("opt.{}.{}", s.slot, m_.params[s.param].name);
        add_node(state_, tensor, tensor.substr(4), s.out);
      }
    }
    loss_dtype_ = m_.loss.node == kNoNode ? DType::F32 : m_.graph[m_.loss.node].dtype;
  }

  // Points every argument of the entry at its field, its wrapper parameter
  // or its temporary (entry.h: NativeEntry's argument list).
  void bind(EntryPlan& e) {
    const Program& p = e.program;
    for (const EntryValue& v : p.sig.reads) {
      bool trains = m_.train.built();
      if (trains && v.node == m_.train.lr) e.args.push_back({Arg::Src::Lr});
      else if (trains && v.node == m_.train.step_in) e.args.push_back({Arg::Src::StepIn});
      else if (const Field* f = params_.find(v.name)) e.args.push_back({Arg::Src::Params, f->offset});
      else if (const Field* f = state_.find(v.name)) e.args.push_back({Arg::Src::State, f->offset});
      else if (const Field* f = inputs_.find(v.name)) e.args.push_back({Arg::Src::Inputs, f->offset});
      else internal_error(__FILE__, __LINE__, "export: no field for the read " + v.name);
    }
    for (size_t k = 0; k < p.sig.produces.size(); ++k) {
      const EntryValue& v = p.sig.produces[k];
      if (v.name == "loss") {
        e.args.push_back({Arg::Src::Loss});
      } else if (e.kind == EntryKind::TrainStep && v.node == m_.train.step_out) {
        e.args.push_back({Arg::Src::StepOut});
      } else if (const Field* f = outputs_.find(v.name)) {
        e.args.push_back({Arg::Src::Outputs, f->offset});
      } else if (const Field* f = grads_.find(v.name)) {
        e.args.push_back({Arg::Src::Grads, f->offset});
      } else {
        // train_step's new params and state: in place where the plan allows.
        const Field* to = params_.find(v.name);
        Arg::Src src = Arg::Src::Params;
        if (!to) to = state_.find(v.name), src = Arg::Src::State;
        if (!to) internal_error(__FILE__, __LINE__, "export: no field for the result " + v.name);
        if (p.in_place[k]) {
          e.args.push_back({src, to->offset});  // not used by the entry
        } else {
          e.args.push_back({Arg::Src::Temp, e.temp_bytes});
          e.copies.push_back({e.temp_bytes, src, to->offset, to->bytes});
          e.temp_bytes = align_up(e.temp_bytes + to->bytes, kWorkAlign);
        }
      }
    }
  }

  // ---- the object file ----

  std::string impl_symbol(EntryKind kind) const { return fmt::format("{}.gradc.{}", name_, entry_name(kind)); }
  std::string entry_symbol(EntryKind kind) const { return fmt::format("{}_{}", name_, entry_name(kind)); }

  // The machine the code is for: the host's CPU, as the JIT compiles for
  // (then the code is the JIT's), or the --target and --cpu asked for.
  // Position-independent, so the object links into PIE executables and
  // shared libraries alike.
  std::unique_ptr<llvm::TargetMachine> target_machine(std::string& features) {
    const Host& h = host();  // sets LLVM's process options as the JIT does
    if (request_.target.empty() && request_.cpu.empty()) {
      llvm::orc::JITTargetMachineBuilder jtmb = h.jtmb;
      jtmb.setRelocationModel(llvm::Reloc::PIC_);
      auto tm = jtmb.createTargetMachine();
      if (!tm) internal_error(__FILE__, __LINE__, "creating the target machine: " + llvm::toString(tm.takeError()));
      cpu_ = h.cpu;
      features = h.features;
      return std::move(*tm);
    }
    static const bool all_targets = [] {
      llvm::InitializeAllTargetInfos();
      llvm::InitializeAllTargets();
      llvm::InitializeAllTargetMCs();
      llvm::InitializeAllAsmPrinters();
      return true;
    }();
    (void)all_targets;
    llvm::Triple triple(request_.target.empty() ? h.jtmb.getTargetTriple().str() : llvm::Triple::normalize(request_.target));
    std::string why;
    const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple.str(), why);
    if (!target) throw std::invalid_argument(fmt::format("--target {}: LLVM knows no such target ({})", request_.target, why));
    // The header's layout rule (natural alignment, little-endian data as in
    // safetensors files) holds on 64-bit little-endian ELF targets.
    if (!triple.isArch64Bit() || !triple.isLittleEndian() || !triple.isOSBinFormatELF())
      throw std::invalid_argument(fmt::format("--target {}: export makes ELF objects for 64-bit little-endian targets "
                                  "(x86_64-linux-gnu, aarch64-linux-gnu, ...)",
                                  request_.target));
    cpu_ = !request_.cpu.empty() ? request_.cpu : triple.isX86() ? "x86-64" : "generic";
    // Checked before a target machine is made for it (LLVM would only warn).
    std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple.str(), "", ""));
    if (!sti || !sti->isCPUStringValid(cpu_))
      throw std::invalid_argument(fmt::format("--cpu {}: not a CPU of {} (llc-19 -mtriple={} -mcpu=help lists them)",
                                              cpu_, triple.str(), triple.str()));
    std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
        triple.str(), cpu_, "", llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
    if (!tm) internal_error(__FILE__, __LINE__, "creating the target machine for " + triple.str());
    // The CPU's own features (the emitter reads AVX-512 from them).
    features.clear();
    if (triple.isX86() && tm->getMCSubtargetInfo()->checkFeatures("+avx512f")) features = "+avx512f";
    // glibc's vector math (libmvec) exists for x86-64 only, and its variants
    // that the emitter names need AVX2 (AVX-512 for the 16-lane ones).
    vector_math_ = triple.isX86() && tm->getMCSubtargetInfo()->checkFeatures("+avx2");
    return tm;
  }

  // Drops the libmvec variants that the code must not call on this target:
  // all of them (no AVX2, or not x86-64), or the AVX-512 ones. Loops over
  // math functions then call the scalar ones of libm.
  void restrict_vector_math(llvm::Module& mod, const std::string& features) const {
    bool wide = features.find("+avx512f") != std::string::npos;
    for (llvm::Function& f : mod)
      for (llvm::BasicBlock& bb : f)
        for (llvm::Instruction& i : bb) {
          auto* call = llvm::dyn_cast<llvm::CallInst>(&i);
          if (!call || !call->hasFnAttr("vector-function-abi-variant")) continue;
          std::string kept;
          if (vector_math_) {
            llvm::StringRef list = call->getFnAttr("vector-function-abi-variant").getValueAsString();
            while (!list.empty()) {
              auto [v, rest] = list.split(',');
              if (!v.starts_with("_ZGVe") || wide) kept += (kept.empty() ? "" : ",") + v.str();
              list = rest;
            }
          }
          call->removeFnAttr("vector-function-abi-variant");
          if (!kept.empty()) call->addFnAttr(llvm::Attribute::get(mod.getContext(), "vector-function-abi-variant", kept));
        }
  }

  std::string object() {
    std::string features;
    std::unique_ptr<llvm::TargetMachine> tm = target_machine(features);
    triple_ = tm->getTargetTriple().str();
    host_ = request_.target.empty() && request_.cpu.empty();

    llvm::LLVMContext ctx;
    auto merged = std::make_unique<llvm::Module>(fmt::format("gradc.{}.export", m_.name), ctx);
    merged->setDataLayout(tm->createDataLayout());
    merged->setTargetTriple(triple_);
    llvm::Linker linker(*merged);
    for (const EntryPlan& e : plans_) {
      // As jit.cpp's emit_module and compile: the same IR, the same passes.
      auto mod = std::make_unique<llvm::Module>(fmt::format("gradc.{}.{}", m_.name, entry_name(e.kind)), ctx);
      mod->setDataLayout(tm->createDataLayout());
      mod->setTargetTriple(triple_);
      emit_program(e.program, impl_symbol(e.kind), *mod, cpu_, features);
      if (!host_) restrict_vector_math(*mod, features);
      optimize_module(*mod, *tm);
      // Only this object's wrappers call it.
      mod->getFunction(impl_symbol(e.kind))->setVisibility(llvm::GlobalValue::HiddenVisibility);
      if (linker.linkInModule(std::move(mod))) internal_error(__FILE__, __LINE__, "export: linking an entry's module");
    }
    auto glue = std::make_unique<llvm::Module>(fmt::format("gradc.{}.abi", m_.name), ctx);
    glue->setDataLayout(tm->createDataLayout());
    glue->setTargetTriple(triple_);
    emit_glue(*glue, cpu_, features);
    optimize_module(*glue, *tm);
    if (linker.linkInModule(std::move(glue))) internal_error(__FILE__, __LINE__, "export: linking the wrappers");
    std::string err;
    llvm::raw_string_ostream os(err);
    if (llvm::verifyModule(*merged, &os)) internal_error(__FILE__, __LINE__, "export: invalid module: " + os.str());
    return machine_code(*merged, *tm, llvm::CodeGenFileType::ObjectFile);
  }

  // The wrappers, the serial runtime and the messages of the return codes.
  void emit_glue(llvm::Module& mod, const std::string& cpu, const std::string& features) {
    llvm::LLVMContext& ctx = mod.getContext();
    llvm::IRBuilder<> b(ctx);
    llvm::Type* ptr = b.getPtrTy();
    llvm::Type* i64 = b.getInt64Ty();
    auto attrs = [&](llvm::Function* f) {
      f->addFnAttr(llvm::Attribute::NoUnwind);
      if (!cpu.empty()) f->addFnAttr("target-cpu", cpu);
      if (!features.empty()) f->addFnAttr("target-features", features);
    };

    // void serial_for(rt, body, ctx, n): body(ctx, i, 0) for i in [0, n).
    auto* for_ty = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr, ptr, i64}, false);
    auto* serial = llvm::Function::Create(for_ty, llvm::Function::InternalLinkage, name_ + ".gradc.serial_for", mod);
    attrs(serial);
    {
      auto* entry = llvm::BasicBlock::Create(ctx, "entry", serial);
      auto* loop = llvm::BasicBlock::Create(ctx, "loop", serial);
      auto* done = llvm::BasicBlock::Create(ctx, "done", serial);
      b.SetInsertPoint(entry);
      llvm::Value* n = serial->getArg(3);
      b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), loop, done);
      b.SetInsertPoint(loop);
      llvm::PHINode* i = b.CreatePHI(i64, 2, "i");
      i->addIncoming(b.getInt64(0), entry);
      auto* body_ty = llvm::FunctionType::get(b.getVoidTy(), {ptr, i64, i64}, false);
      b.CreateCall(body_ty, serial->getArg(1), {serial->getArg(2), i, b.getInt64(0)});
      llvm::Value* next = b.CreateAdd(i, b.getInt64(1));
      i->addIncoming(next, loop);
      b.CreateCondBr(b.CreateICmpSLT(next, n), loop, done);
      b.SetInsertPoint(done);
      b.CreateRetVoid();
    }
    // The runtime struct (thread_pool.h's GradcRuntime; the header's NAME_runtime).
    auto* rt_ty = llvm::StructType::get(ctx, {ptr, ptr, b.getInt32Ty()});
    auto* serial_rt = new llvm::GlobalVariable(
        mod, rt_ty, true, llvm::GlobalValue::InternalLinkage,
        llvm::ConstantStruct::get(rt_ty, {serial, llvm::ConstantPointerNull::get(llvm::PointerType::get(ctx, 0)),
                                          b.getInt32(1)}),
        name_ + ".gradc.serial_runtime");

    for (const EntryPlan& e : plans_) emit_wrapper(mod, e, serial_rt, attrs);
    emit_messages(mod, attrs);
  }

  template <class Attrs>
  void emit_wrapper(llvm::Module& mod, const EntryPlan& e, llvm::GlobalVariable* serial_rt, Attrs attrs) {
    llvm::LLVMContext& ctx = mod.getContext();
    llvm::IRBuilder<> b(ctx);
    llvm::Type* ptr = b.getPtrTy();
    // Parameters in the header's order (entry_declaration).
    std::vector<llvm::Type*> params;
    std::vector<Arg::Src> order;
    switch (e.kind) {
      case EntryKind::Forward: order = {Arg::Src::Inputs, Arg::Src::Params, Arg::Src::Outputs}; break;
      case EntryKind::Grad: order = {Arg::Src::Inputs, Arg::Src::Params, Arg::Src::Loss, Arg::Src::Grads, Arg::Src::Outputs}; break;
      case EntryKind::TrainStep: order = {Arg::Src::Inputs, Arg::Src::Params, Arg::Src::State, Arg::Src::Lr, Arg::Src::Loss}; break;
      case EntryKind::Evaluate: internal_error(__FILE__, __LINE__, "export: evaluate has no wrapper");
    }
    for (Arg::Src s : order) params.push_back(s == Arg::Src::Lr ? b.getDoubleTy() : ptr);
    params.push_back(ptr);  // work
    params.push_back(ptr);  // runtime
    auto* fty = llvm::FunctionType::get(b.getInt32Ty(), params, false);
    auto* w = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, entry_symbol(e.kind), mod);
    attrs(w);
    auto* impl_ty = llvm::FunctionType::get(b.getInt32Ty(), {ptr, ptr, ptr}, false);
    llvm::FunctionCallee impl = mod.getOrInsertFunction(impl_symbol(e.kind), impl_ty);

    b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", w));
    llvm::Value* work = w->getArg(static_cast<unsigned>(order.size()));
    llvm::Value* rt = w->getArg(static_cast<unsigned>(order.size() + 1));
    auto param = [&](Arg::Src s) -> llvm::Value* {
      for (size_t i = 0; i < order.size(); ++i)
        if (order[i] == s) return w->getArg(static_cast<unsigned>(i));
      internal_error(__FILE__, __LINE__, "export: an argument without a parameter");
    };
    llvm::Value *lr = nullptr, *step_in = nullptr, *step_out = nullptr, *step_field = nullptr;
    if (e.kind == EntryKind::TrainStep) {
      lr = b.CreateAlloca(b.getDoubleTy(), nullptr, "lr");
      b.CreateStore(param(Arg::Src::Lr), lr);
      step_field = b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), param(Arg::Src::State),
                                                static_cast<uint64_t>(state_.find("opt.step")->offset));
      step_in = b.CreateAlloca(b.getDoubleTy(), nullptr, "step.in");
      b.CreateStore(b.CreateSIToFP(b.CreateLoad(b.getInt32Ty(), step_field), b.getDoubleTy()), step_in);
      step_out = b.CreateAlloca(b.getDoubleTy(), nullptr, "step.out");
    }
    auto address = [&](Arg::Src s, int64_t offset) -> llvm::Value* {
      if (s == Arg::Src::Lr) return lr;
      if (s == Arg::Src::StepIn) return step_in;
      if (s == Arg::Src::StepOut) return step_out;
      llvm::Value* base = s == Arg::Src::Temp ? work : param(s);
      return offset == 0 ? base : b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), base, static_cast<uint64_t>(offset));
    };
    auto* args_ty = llvm::ArrayType::get(ptr, e.args.size());
    llvm::Value* args = b.CreateAlloca(args_ty, nullptr, "args");
    for (size_t i = 0; i < e.args.size(); ++i)
      b.CreateStore(address(e.args[i].src, e.args[i].offset), b.CreateConstGEP2_64(args_ty, args, 0, i));
    llvm::Value* use_rt = b.CreateSelect(b.CreateIsNull(rt), serial_rt, rt, "rt");
    llvm::Value* arena =
        e.temp_bytes == 0 ? work : b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), work, static_cast<uint64_t>(e.temp_bytes));
    llvm::Value* status = b.CreateCall(impl, {args, arena, use_rt}, "status");
    auto* failed = llvm::BasicBlock::Create(ctx, "failed", w);
    auto* ok = llvm::BasicBlock::Create(ctx, "ok", w);
    b.CreateCondBr(b.CreateICmpNE(status, b.getInt32(0)), failed, ok);
    b.SetInsertPoint(failed);
    b.CreateRet(b.CreateAdd(status, b.getInt32(e.code_base)));
    b.SetInsertPoint(ok);
    if (step_out)
      b.CreateStore(b.CreateFPToSI(b.CreateLoad(b.getDoubleTy(), step_out), b.getInt32Ty()), step_field);
    for (const CopyBack& c : e.copies)
      b.CreateMemCpy(address(c.to, c.offset), llvm::MaybeAlign(4), address(Arg::Src::Temp, c.temp), llvm::MaybeAlign(4),
                     static_cast<uint64_t>(c.bytes));
    b.CreateRet(b.getInt32(0));
  }

  // const char* NAME_error_message(int32_t code)
  template <class Attrs>
  void emit_messages(llvm::Module& mod, Attrs attrs) {
    llvm::LLVMContext& ctx = mod.getContext();
    llvm::IRBuilder<> b(ctx);
    std::vector<llvm::Constant*> texts;
    for (const std::string& m : messages()) texts.push_back(b.CreateGlobalString(m, "", 0, &mod));
    auto* table_ty = llvm::ArrayType::get(b.getPtrTy(), texts.size());
    auto* table = new llvm::GlobalVariable(mod, table_ty, true, llvm::GlobalValue::InternalLinkage,
                                           llvm::ConstantArray::get(table_ty, texts), name_ + ".gradc.messages");
    auto* fty = llvm::FunctionType::get(b.getPtrTy(), {b.getInt32Ty()}, false);
    auto* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name_ + "_error_message", mod);
    attrs(f);
    b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", f));
    llvm::Value* code = f->getArg(0);
    auto* known = llvm::BasicBlock::Create(ctx, "known", f);
    auto* unknown = llvm::BasicBlock::Create(ctx, "unknown", f);
    b.CreateCondBr(b.CreateICmpULT(code, b.getInt32(static_cast<uint32_t>(texts.size()))), known, unknown);
    b.SetInsertPoint(known);
    llvm::Value* at = b.CreateInBoundsGEP(table_ty, table, {b.getInt64(0), b.CreateZExt(code, b.getInt64Ty())});
    b.CreateRet(b.CreateLoad(b.getPtrTy(), at));
    b.SetInsertPoint(unknown);
    b.CreateRet(b.CreateGlobalString(fmt::format("{}: not a return code of this model", name_), "", 0, &mod));
  }

  // The text of every return code: 0, then each entry's checks in order.
  std::vector<std::string> messages() const {
    std::vector<std::string> ms = {"ok"};
    for (const EntryPlan& e : plans_)
      for (size_t k = 0; k < e.program.check_messages.size(); ++k) {
        SourceLoc loc = e.program.check_locs[k];
        std::string where;
        if (loc.valid()) {
          LineCol lc = sm_.line_col(loc.file, loc.begin);
          where = fmt::format("{}:{}:{}: ", sm_.name(loc.file), lc.line, lc.column);
        }
        ms.push_back(fmt::format("{}error: {} (in {})", where, e.program.check_messages[k], entry_name(e.kind)));
      }
    return ms;
  }

  // ---- the header ----

  std::string header() const {
    std::string guard = upper_ + "_GRADC_H";
    std::string h;
    h += fmt::format(
        "/* {name}.h: the model '{name}' compiled ahead of time by `gradc export`.\n"
        " *\n"
        " * Link {name}.o into a C or C++ program: it needs the C library and libm only\n"
        " * (cc app.c {name}.o -lm). docs/export.md describes this ABI in full.\n"
        " *\n"
        " * Tensors are row-major arrays inside the structs below, each field at its\n"
        " * type's natural alignment. Every entry takes a caller-provided work area of\n"
        " * {UP}_<ENTRY>_WORK_BYTES(threads) bytes, aligned to {UP}_WORK_ALIGN, used\n"
        " * by one call at a time, and an optional runtime (NULL: run on the calling\n"
        " * thread). Entries return {UP}_OK (0) or a run-time check's code; then\n"
        " * nothing was updated, and {name}_error_message names the model line.\n"
        " * {same}\n"
        " */\n"
        "#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
        "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n",
        fmt::arg("name", name_), fmt::arg("UP", upper_), fmt::arg("guard", guard),
        fmt::arg("same", host_ ? "Results are bit-identical to gradc's JIT on the CPU that exported it."
                               : "Made for another CPU than gradc's: results match the JIT's up to rounding."));
    h += fmt::format("#define {}_ABI_VERSION {}        /* changes with the layout or the entries' parameters */\n",
                     upper_, kAbiVersion);
    h += fmt::format("#define {}_TARGET \"{}\"  /* the code runs on this target and CPU */\n", upper_, triple_);
    h += fmt::format("#define {}_CPU \"{}\"\n\n", upper_, cpu_);
    if (!m_.dims.empty()) {
      h += "/* The dims the model was compiled for (gradc export --set D=N). */\n";
      for (const auto& [d, v] : m_.dims) h += fmt::format("#define {}_DIM_{} {}\n", upper_, d, v);
      h += "\n";
    }
    h += struct_text(inputs_, "The model's inputs (what the entries read; forward ignores those only the loss reads).");
    h += struct_text(params_, "The params (and buffers), by name; train_step updates them in place.");
    if (wants(EntryKind::TrainStep))
      h += struct_text(state_,
                       "The optimizer state, as in checkpoints (opt.step, opt.SLOT.PARAM): zeros before the first "
                       "step; train_step updates it in place.");
    if (wants(EntryKind::Forward) || wants(EntryKind::Grad)) h += struct_text(outputs_, "The outputs, by name.");
    if (wants(EntryKind::Grad)) h += struct_text(grads_, "The gradient of the loss for every param, by param name.");
    h += tensor_tables();
    h += runtime_text();
    for (const EntryPlan& e : plans_) h += entry_text(e);
    h += fmt::format(
        "/* Return codes: {UP}_OK, or one of {UP}_ERROR_CODES - 1 run-time checks\n"
        " * (a class id out of range...); the message names the model line. Never NULL. */\n"
        "#define {UP}_OK 0\n#define {UP}_ERROR_CODES {n}\n"
        "const char *{name}_error_message(int32_t code);\n\n",
        fmt::arg("UP", upper_), fmt::arg("name", name_), fmt::arg("n", messages().size()));
    std::vector<std::string> ms = messages();
    for (size_t i = 1; i < ms.size(); ++i) h += fmt::format("/*   {}: {} */\n", i, ms[i]);
    if (ms.size() > 1) h += "\n";
    h += fmt::format("#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {} */\n", guard);
    return h;
  }

  std::string struct_text(const CStruct& s, const std::string& doc) const {
    std::string t = fmt::format("/* {} */\ntypedef struct {}_{} {{\n", doc, name_, s.what);
    if (s.fields.empty()) t += "  char none; /* (the model has none) */\n";
    for (const Field& f : s.fields)
      t += fmt::format("  {} {}{}; /* {}: {}{} */\n", c_type(f.dtype), f.c_name, dims_text(f.shape), f.tensor,
                       dtype_name(f.dtype), shape_text(f.shape));
    return t + fmt::format("}} {}_{};\n\n", name_, s.what);
  }

  // Every struct's tensors as data, for code that loads or prints them by
  // name (a checkpoint's tensors into NAME_params, for example).
  std::string tensor_tables() const {
    size_t rank = 1;
    for (const CStruct* s : structs())
      for (const Field& f : s->fields) rank = std::max(rank, f.shape.size());
    std::string t = fmt::format(
        "/* Each struct's tensors by name: dtype \"f32\", \"f64\" or \"i32\", the shape (rank\n"
        " * entries of shape[]), and the field's offset and size in bytes. */\n"
        "typedef struct {n}_tensor {{\n  const char *name;\n  const char *dtype;\n  int32_t rank;\n"
        "  int64_t shape[{r}];\n  size_t offset, bytes;\n}} {n}_tensor;\n\n",
        fmt::arg("n", name_), fmt::arg("r", rank));
    for (const CStruct* s : structs()) {
      t += fmt::format("#define {}_{}_COUNT {}\n", upper_, upper(s->what), s->fields.size());
      if (s->fields.empty()) {  // no table: C has no empty arrays
        t += "\n";
        continue;
      }
      t += fmt::format("static const {n}_tensor {n}_{w}_tensors[{}] = {{\n", s->fields.size(), fmt::arg("n", name_),
                       fmt::arg("w", s->what));
      for (const Field& f : s->fields) {
        std::string shape;
        for (int64_t d : f.shape) shape += fmt::format("{}{}", shape.empty() ? "" : ", ", d);
        t += fmt::format("  {{\"{}\", \"{}\", {}, {{{}}}, offsetof({}_{}, {}), {}}},\n", f.tensor, dtype_name(f.dtype),
                         f.shape.size(), shape.empty() ? "0" : shape, name_, s->what, f.c_name, f.bytes);
      }
      t += "};\n\n";
    }
    return t;
  }

  std::vector<const CStruct*> structs() const {
    std::vector<const CStruct*> ss = {&inputs_, &params_};
    if (wants(EntryKind::TrainStep)) ss.push_back(&state_);
    if (wants(EntryKind::Forward) || wants(EntryKind::Grad)) ss.push_back(&outputs_);
    if (wants(EntryKind::Grad)) ss.push_back(&grads_);
    return ss;
  }

  static std::string upper(std::string s) {
    for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
  }

  std::string runtime_text() const {
    return fmt::format(
        "/* An optional thread pool. An entry runs each large kernel as\n"
        " * rt->parallel_for(rt, body, ctx, n): call body(ctx, i, slot) once for every i\n"
        " * in [0, n), in any order and on any threads, and return when all are done.\n"
        " * slot tells apart the threads of one call: in [0, rt->threads), the calling\n"
        " * thread 0, no two running bodies with the same slot (each slot has scratch in\n"
        " * the work area, sized by the threads given to _WORK_BYTES). Results do not\n"
        " * depend on the thread count. pool is yours. Pass NULL for one thread. */\n"
        "typedef struct {n}_runtime {{\n"
        "  void (*parallel_for)(const struct {n}_runtime *rt, void (*body)(void *ctx, int64_t i, int64_t slot),\n"
        "                       void *ctx, int64_t n);\n"
        "  void *pool;\n"
        "  int32_t threads;\n"
        "}} {n}_runtime;\n\n"
        "#define {UP}_WORK_ALIGN {a}\n\n",
        fmt::arg("n", name_), fmt::arg("UP", upper_), fmt::arg("a", kWorkAlign));
  }

  std::string entry_text(const EntryPlan& e) const {
    const Program& p = e.program;
    std::string entry = upper(entry_name(e.kind));
    std::string loss = c_type(loss_dtype_);
    std::string t;
    switch (e.kind) {
      case EntryKind::Forward:
        t += "/* forward: the outputs for the inputs and params (evaluation mode). */\n";
        break;
      case EntryKind::Grad:
        t += "/* grad: the loss and its gradient for every param (training mode), and the\n"
             " * outputs; params are not changed. */\n";
        break;
      case EntryKind::TrainStep:
        t += fmt::format(
            "/* train_step: one optimizer step ({}): *loss is the loss before it;\n"
            " * params and state are updated in place. lr is the learning rate (the\n"
            " * model's: {}). */\n",
            m_.optimizer.name, m_.optimizer.option("lr"));
        t += fmt::format("#define {}_LR {}\n", upper_, m_.optimizer.option("lr"));
        break;
      case EntryKind::Evaluate: break;
    }
    int64_t arena = align_up(p.arena_bytes, kWorkAlign);
    t += fmt::format("#define {}_{}_WORK_BYTES(threads) ((size_t){} + (size_t)(threads) * {})\n", upper_, entry,
                     e.temp_bytes + arena, p.worker_bytes);
    switch (e.kind) {
      case EntryKind::Forward:
        t += fmt::format("int32_t {n}_forward(const {n}_inputs *inputs, const {n}_params *params, {n}_outputs *outputs,\n"
                         "                    void *work, const {n}_runtime *rt);\n\n",
                         fmt::arg("n", name_));
        break;
      case EntryKind::Grad:
        t += fmt::format("int32_t {n}_grad(const {n}_inputs *inputs, const {n}_params *params, {l} *loss, {n}_grads *grads,\n"
                         "                 {n}_outputs *outputs, void *work, const {n}_runtime *rt);\n\n",
                         fmt::arg("n", name_), fmt::arg("l", loss));
        break;
      case EntryKind::TrainStep:
        t += fmt::format("int32_t {n}_train_step(const {n}_inputs *inputs, {n}_params *params, {n}_state *state, double lr,\n"
                         "                       {l} *loss, void *work, const {n}_runtime *rt);\n\n",
                         fmt::arg("n", name_), fmt::arg("l", loss));
        break;
      case EntryKind::Evaluate: break;
    }
    return t;
  }

  const ModelIR& m_;
  const SourceManager& sm_;
  const ExportRequest& request_;
  std::string name_, upper_, triple_, cpu_;
  bool host_ = true;         // the JIT's machine: this CPU
  bool vector_math_ = true;  // the target may call libmvec's AVX2 variants
  CStruct inputs_, params_, state_, outputs_, grads_;
  DType loss_dtype_ = DType::F32;
  std::vector<EntryPlan> plans_;
};

}  // namespace

ExportedCode export_model(const ModelIR& m, const SourceManager& sm, const ExportRequest& request) {
  return Exporter(m, sm, request).run();
}

}  // namespace gradc
