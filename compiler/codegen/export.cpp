// Ahead-of-time export: the JIT's code for a model's entries in one object
// file, behind C functions that take structs of the model's tensors, and
// the C header that declares them (export.h, docs/export.md). This file lays
// out the ABI (export_abi.h) and makes the object; export_header.cpp prints
// the header.
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
#include <llvm/Linker/Linker.h>
#include <llvm/Support/raw_ostream.h>

#include <algorithm>
#include <cctype>
#include <functional>
#include <stdexcept>

#include "compiler/codegen/export_abi.h"
#include "compiler/codegen/ir_loop.h"
#include "compiler/codegen/kernels.h"
#include "compiler/codegen/llvm_emit.h"
#include "compiler/codegen/machine.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"
#include "gradc/tensor.h"

namespace gradc {
namespace {

// A tensor name as a C identifier: '.' becomes '_', a C keyword gets a
// trailing '_' ("opt.exp_avg.W" -> exp_avg_W, "int" -> int_).
std::string c_field(std::string s) {
  std::replace(s.begin(), s.end(), '.', '_');
  return c_keyword(s) ? s + "_" : s;
}

class Exporter {
 public:
  Exporter(const ModelIR& m, const SourceManager& sm, const ExportRequest& r) : m_(m), sm_(sm), request_(r) {}

  ExportedCode run() {
    abi_.name = c_name(m_.name);
    for (char c : abi_.name) abi_.upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (const auto& dim : m_.dims) {
      bool bounded = std::any_of(m_.capacities.begin(), m_.capacities.end(), [&](const auto& c) { return c.first == dim.first; });
      (bounded ? abi_.max_dims : abi_.dims).push_back(dim);
    }
    abi_.optimizer = m_.optimizer.name;
    abi_.lr = m_.optimizer.lr();
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
      abi_.entries.push_back(std::move(e));
    }
    abi_.size_code_base = codes + 1;
    ExportedCode out;
    out.name = abi_.name;
    abi_.messages = messages();
    out.object = object();
    out.header = export_header(abi_);
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
    for (const NamedNode& n : m_.inputs) add_node(abi_.inputs, n.name, n.name, n.node);
    // The params struct holds params and buffers in declaration order:
    // both are what a checkpoint keeps, and train_step updates both in place.
    std::vector<const ParamDecl*> held;
    for (const auto* decls : {&m_.params, &m_.buffers})
      for (const ParamDecl& p : *decls) held.push_back(&p);
    std::stable_sort(held.begin(), held.end(), [](const ParamDecl* a, const ParamDecl* b) {
      return std::pair(a->loc.file, a->loc.begin) < std::pair(b->loc.file, b->loc.begin);
    });
    for (const ParamDecl* p : held) add_node(abi_.params, p->name, p->name, p->node);
    for (const NamedNode& n : m_.outputs) add_node(abi_.outputs, "out." + n.name, n.name, n.node);
    for (const NamedNode& g : m_.grads) add_node(abi_.grads, "grad." + g.name, g.name, g.node);
    if (wants(EntryKind::TrainStep)) {
      // The step counter first (i32, as checkpoints store opt.step), then
      // the optimizer's slots in the order train_step produces them.
      abi_.state.add("opt.step", "step", DType::I32, {});
      for (const StateSlot& s : m_.train.slots) {
        add_node(abi_.state, s.tensor, s.tensor.substr(4), s.out);
      }
      // The key of the random draws (dropout in training mode, genetic, es):
      // the seed as two i32 words, low first, set by the host (not a
      // checkpoint tensor: a checkpoint has it as train.seed).
      for (NodeId n = 0; n < m_.graph.size(); ++n)
        if (m_.graph[n].op == Op::Input && m_.graph[n].attrs.name == "@seed" && !abi_.state.find("@seed"))
          abi_.state.add("@seed", "seed", DType::I32, {2});
    }
    abi_.loss_dtype = m_.loss.node == kNoNode ? DType::F32 : m_.graph[m_.loss.node].dtype;
  }

  // Points every argument of the entry at its field, its wrapper parameter
  // or its temporary (entry.h: NativeEntry's argument list).
  void bind(EntryPlan& e) {
    const Program& p = e.program;
    for (const EntryValue& v : p.sig.reads) {
      bool trains = m_.train.built();
      if (trains && v.node == m_.train.lr) e.args.push_back({Arg::Src::Lr});
      else if (trains && v.node == m_.train.step_in) e.args.push_back({Arg::Src::StepIn});
      else if (const Field* f = abi_.params.find(v.name)) e.args.push_back({Arg::Src::Params, f->offset});
      else if (const Field* f = abi_.state.find(v.name); f && e.kind == EntryKind::TrainStep)
        e.args.push_back({Arg::Src::State, f->offset});
      else if (const Field* f = abi_.inputs.find(v.name)) bind_input(e, *f, v.node);
      else if (size_t d = max_dim(v.name, "@size."); d != kNone) e.args.push_back({Arg::Src::Size, static_cast<int64_t>(d)});
      else if (size_t d = max_dim(v.name, "@valid."); d != kNone) {
        e.args.push_back({Arg::Src::Temp, e.temp_bytes});
        e.masks.push_back({e.temp_bytes, d});
        e.temp_bytes = align_up(e.temp_bytes + abi_.max_dims[d].second * 4, kWorkAlign);
      }
      else if (v.name == "@seed" || v.name == "@step")  // (autodiff/optimizers.h: read by dropout's random bits)
        throw DataError(fmt::format("{}: the model draws random numbers (dropout in training mode), which the "
                                    "exported {} does not support yet (its C API has no seed and no step; "
                                    "train_step's has them in NAME_state)",
                                    entry_name(e.kind), entry_name(e.kind)));
      else internal_error(__FILE__, __LINE__, "export: no field for the read " + v.name);
    }
    for (size_t k = 0; k < p.sig.produces.size(); ++k) {
      const EntryValue& v = p.sig.produces[k];
      if (v.name == "loss") {
        e.args.push_back({Arg::Src::Loss});
      } else if (e.kind == EntryKind::TrainStep && v.node == m_.train.step_out) {
        e.args.push_back({Arg::Src::StepOut});
      } else if (const Field* f = abi_.outputs.find(v.name)) {
        e.args.push_back({Arg::Src::Outputs, f->offset});
      } else if (const Field* f = abi_.grads.find(v.name)) {
        e.args.push_back({Arg::Src::Grads, f->offset});
      } else {
        // train_step's new params and state: in place where the plan allows.
        const Field* to = abi_.params.find(v.name);
        Arg::Src src = Arg::Src::Params;
        if (!to) to = abi_.state.find(v.name), src = Arg::Src::State;
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

  static constexpr size_t kNone = SIZE_MAX;
  // The position of dim `dim` in ExportAbi::max_dims, or kNone.
  size_t max_dim(std::string_view dim) const {
    for (size_t d = 0; d < abi_.max_dims.size(); ++d)
      if (abi_.max_dims[d].first == dim) return d;
    return kNone;
  }
  // The same for the dim a hidden input "@size.D" or "@valid.D" (`prefix`) is of.
  size_t max_dim(std::string_view name, std::string_view prefix) const {
    return name.substr(0, prefix.size()) == prefix ? max_dim(name.substr(prefix.size())) : kNone;
  }

  // An input: read from its field, or, when it has a dynamic dim, from its
  // padded copy in the work area (StagedInput).
  void bind_input(EntryPlan& e, const Field& f, NodeId node) {
    StagedInput s;
    const Shape& shape = m_.graph[node].shape;
    for (size_t a = 0; a < shape.size(); ++a)
      if (size_t d = max_dim(shape[a].name); shape[a].dynamic && d != kNone) s.axes.emplace_back(a, d);
    if (s.axes.empty()) {
      e.args.push_back({Arg::Src::Inputs, f.offset});
      return;
    }
    s.temp = e.temp_bytes;
    s.field = f.offset;
    s.bytes = f.bytes;
    s.elem = static_cast<int64_t>(dtype_size(f.dtype));
    s.shape = f.shape;
    e.args.push_back({Arg::Src::Temp, e.temp_bytes});
    e.temp_bytes = align_up(e.temp_bytes + f.bytes, kWorkAlign);
    e.staged.push_back(std::move(s));
  }

  // ---- the object file ----

  std::string impl_symbol(EntryKind kind) const { return fmt::format("{}.gradc.{}", abi_.name, entry_name(kind)); }
  std::string entry_symbol(EntryKind kind) const { return fmt::format("{}_{}", abi_.name, entry_name(kind)); }

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
      abi_.cpu = h.cpu;
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
    abi_.cpu = !request_.cpu.empty() ? request_.cpu : triple.isX86() ? "x86-64" : "generic";
    // Checked before a target machine is made for it (LLVM would only warn).
    std::unique_ptr<llvm::MCSubtargetInfo> sti(target->createMCSubtargetInfo(triple.str(), "", ""));
    if (!sti || !sti->isCPUStringValid(abi_.cpu))
      throw std::invalid_argument(fmt::format("--cpu {}: not a CPU of {} (llc-19 -mtriple={} -mcpu=help lists them)",
                                              abi_.cpu, triple.str(), triple.str()));
    std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
        triple.str(), abi_.cpu, "", llvm::TargetOptions(), llvm::Reloc::PIC_, std::nullopt, llvm::CodeGenOptLevel::Aggressive));
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
    abi_.triple = tm->getTargetTriple().str();
    abi_.host = request_.target.empty() && request_.cpu.empty();

    llvm::LLVMContext ctx;
    auto merged = std::make_unique<llvm::Module>(fmt::format("gradc.{}.export", m_.name), ctx);
    merged->setDataLayout(tm->createDataLayout());
    merged->setTargetTriple(abi_.triple);
    llvm::Linker linker(*merged);
    for (const EntryPlan& e : abi_.entries) {
      // As jit.cpp's emit_module and compile: the same IR, the same passes.
      auto mod = std::make_unique<llvm::Module>(fmt::format("gradc.{}.{}", m_.name, entry_name(e.kind)), ctx);
      mod->setDataLayout(tm->createDataLayout());
      mod->setTargetTriple(abi_.triple);
      emit_program(e.program, impl_symbol(e.kind), *mod, abi_.cpu, features);
      if (!abi_.host) restrict_vector_math(*mod, features);
      optimize_module(*mod, *tm);
      // Only this object's wrappers call it.
      mod->getFunction(impl_symbol(e.kind))->setVisibility(llvm::GlobalValue::HiddenVisibility);
      if (linker.linkInModule(std::move(mod))) internal_error(__FILE__, __LINE__, "export: linking an entry's module");
    }
    auto glue = std::make_unique<llvm::Module>(fmt::format("gradc.{}.abi", m_.name), ctx);
    glue->setDataLayout(tm->createDataLayout());
    glue->setTargetTriple(abi_.triple);
    emit_glue(*glue, abi_.cpu, features);
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
    auto* serial = llvm::Function::Create(for_ty, llvm::Function::InternalLinkage, abi_.name + ".gradc.serial_for", mod);
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
        abi_.name + ".gradc.serial_runtime");

    for (const EntryPlan& e : abi_.entries) emit_wrapper(mod, e, serial_rt, attrs);
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
      case EntryKind::Evaluate:
      case EntryKind::ApplyUpdate: internal_error(__FILE__, __LINE__, "export: only forward, grad and train_step have wrappers");
    }
    for (Arg::Src s : order) params.push_back(s == Arg::Src::Lr ? b.getDoubleTy() : ptr);
    for (size_t d = 0; d < abi_.max_dims.size(); ++d) params.push_back(b.getInt64Ty());  // the dynamic dims' sizes
    params.push_back(ptr);  // work
    params.push_back(ptr);  // runtime
    auto* fty = llvm::FunctionType::get(b.getInt32Ty(), params, false);
    auto* w = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, entry_symbol(e.kind), mod);
    attrs(w);
    auto* impl_ty = llvm::FunctionType::get(b.getInt32Ty(), {ptr, ptr, ptr}, false);
    llvm::FunctionCallee impl = mod.getOrInsertFunction(impl_symbol(e.kind), impl_ty);

    b.SetInsertPoint(llvm::BasicBlock::Create(ctx, "entry", w));
    const size_t dims = abi_.max_dims.size();
    llvm::Value* work = w->getArg(static_cast<unsigned>(order.size() + dims));
    llvm::Value* rt = w->getArg(static_cast<unsigned>(order.size() + dims + 1));
    // The dynamic dims' sizes: each in [1, capacity], else its return code
    // before anything is read or written; then as the f32 "@size.D" the entry reads.
    std::vector<llvm::Value*> sizes, size_values;
    for (size_t d = 0; d < dims; ++d) {
      llvm::Value* n = w->getArg(static_cast<unsigned>(order.size() + d));
      auto* bad = llvm::BasicBlock::Create(ctx, "bad.size", w);
      auto* good = llvm::BasicBlock::Create(ctx, "size.ok", w);
      llvm::Value* outside = b.CreateOr(b.CreateICmpSLT(n, b.getInt64(1)), b.CreateICmpSGT(n, b.getInt64(abi_.max_dims[d].second)));
      b.CreateCondBr(outside, bad, good);
      b.SetInsertPoint(bad);
      b.CreateRet(b.getInt32(abi_.size_code_base + static_cast<int32_t>(d)));
      b.SetInsertPoint(good);
      sizes.push_back(n);
      llvm::Value* v = b.CreateAlloca(b.getFloatTy(), nullptr, "size." + abi_.max_dims[d].first);
      b.CreateStore(b.CreateSIToFP(n, b.getFloatTy()), v);
      size_values.push_back(v);
    }
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
                                                static_cast<uint64_t>(abi_.state.find("opt.step")->offset));
      step_in = b.CreateAlloca(b.getDoubleTy(), nullptr, "step.in");
      b.CreateStore(b.CreateSIToFP(b.CreateLoad(b.getInt32Ty(), step_field), b.getDoubleTy()), step_in);
      step_out = b.CreateAlloca(b.getDoubleTy(), nullptr, "step.out");
    }
    auto address = [&](Arg::Src s, int64_t offset) -> llvm::Value* {
      if (s == Arg::Src::Lr) return lr;
      if (s == Arg::Src::StepIn) return step_in;
      if (s == Arg::Src::StepOut) return step_out;
      if (s == Arg::Src::Size) return size_values[static_cast<size_t>(offset)];
      llvm::Value* base = s == Arg::Src::Temp ? work : param(s);
      return offset == 0 ? base : b.CreateConstInBoundsGEP1_64(b.getInt8Ty(), base, static_cast<uint64_t>(offset));
    };
    // for (i = lo; i < hi; ++i) body(i), in the wrapper.
    auto for_range = [&](llvm::Value* lo, llvm::Value* hi, const std::function<void(llvm::Value*)>& body) {
      emit_counted_loop(b, lo, hi, body, "pad");
    };
    auto byte_at = [&](llvm::Value* base, llvm::Value* offset) { return b.CreateInBoundsGEP(b.getInt8Ty(), base, offset); };
    // Inputs with a dynamic dim: copied, then padded axis by axis (a second
    // dynamic axis pads the padded copy, as the session does).
    for (const StagedInput& st : e.staged) {
      llvm::Value* to = address(Arg::Src::Temp, st.temp);
      b.CreateMemCpy(to, llvm::MaybeAlign(4), address(Arg::Src::Inputs, st.field), llvm::MaybeAlign(4),
                     static_cast<uint64_t>(st.bytes));
      for (const auto& [axis, d] : st.axes) {
        int64_t outer = 1, row = st.elem, capacity = st.shape[axis];
        for (size_t a = 0; a < st.shape.size(); ++a)
          if (a < axis) outer *= st.shape[a];
          else if (a > axis) row *= st.shape[a];
        for_range(b.getInt64(0), b.getInt64(outer), [&](llvm::Value* o) {
          llvm::Value* first = b.CreateMul(o, b.getInt64(capacity * row));
          for_range(sizes[d], b.getInt64(capacity), [&](llvm::Value* r) {
            b.CreateMemCpy(byte_at(to, b.CreateAdd(first, b.CreateMul(r, b.getInt64(row)))), llvm::MaybeAlign(st.elem),
                           byte_at(to, first), llvm::MaybeAlign(st.elem), static_cast<uint64_t>(row));
          });
        });
      }
    }
    for (const ValidMask& v : e.masks) {
      llvm::Value* to = address(Arg::Src::Temp, v.temp);
      for_range(b.getInt64(0), b.getInt64(abi_.max_dims[v.dim].second), [&](llvm::Value* i) {
        llvm::Value* one = b.CreateSelect(b.CreateICmpSLT(i, sizes[v.dim]), llvm::ConstantFP::get(b.getFloatTy(), 1.0),
                                          llvm::ConstantFP::get(b.getFloatTy(), 0.0));
        b.CreateStore(one, b.CreateInBoundsGEP(b.getFloatTy(), to, i));
      });
    }
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
    for (const std::string& m : abi_.messages) texts.push_back(b.CreateGlobalString(m, "", 0, &mod));
    auto* table_ty = llvm::ArrayType::get(b.getPtrTy(), texts.size());
    auto* table = new llvm::GlobalVariable(mod, table_ty, true, llvm::GlobalValue::InternalLinkage,
                                           llvm::ConstantArray::get(table_ty, texts), abi_.name + ".gradc.messages");
    auto* fty = llvm::FunctionType::get(b.getPtrTy(), {b.getInt32Ty()}, false);
    auto* f = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, abi_.name + "_error_message", mod);
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
    b.CreateRet(b.CreateGlobalString(fmt::format("{}: not a return code of this model", abi_.name), "", 0, &mod));
  }

  // The text of every return code: 0, then each entry's checks in order,
  // then a size out of range for each dynamic dim.
  std::vector<std::string> messages() const {
    std::vector<std::string> ms = {"ok"};
    for (const EntryPlan& e : abi_.entries)
      for (size_t k = 0; k < e.program.check_messages.size(); ++k) {
        SourceLoc loc = e.program.check_locs[k];
        std::string where;
        if (loc.valid()) {
          LineCol lc = sm_.line_col(loc.file, loc.begin);
          where = fmt::format("{}:{}:{}: ", sm_.name(loc.file), lc.line, lc.column);
        }
        ms.push_back(fmt::format("{}error: {} (in {})", where, e.program.check_messages[k], entry_name(e.kind)));
      }
    for (const auto& [d, capacity] : abi_.max_dims)
      ms.push_back(fmt::format("{}: error: the size of dim {} is outside [1, {}] (the model was exported for sizes "
                               "up to {}_MAX_{})",
                               abi_.name, d, capacity, abi_.upper, d));
    return ms;
  }

  const ModelIR& m_;
  const SourceManager& sm_;
  const ExportRequest& request_;
  ExportAbi abi_;
  bool vector_math_ = true;  // the target may call libmvec's AVX2 variants
};

}  // namespace

ExportedCode export_model(const ModelIR& m, const SourceManager& sm, const ExportRequest& request) {
  return Exporter(m, sm, request).run();
}

}  // namespace gradc
