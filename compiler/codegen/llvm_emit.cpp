// Emitting LLVM IR for kernel programs: one loop nest per kernel, the fused
// expression evaluated in the innermost loop.
#include "compiler/codegen/llvm_emit.h"

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <functional>
#include <optional>
#include <set>

#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// Elementwise kernels of at least this many elements run on the thread pool.
constexpr int64_t kParallelElements = int64_t{1} << 16;
// Products of the "rows" form with at least this many multiply-adds run on the thread pool.
constexpr int64_t kParallelMacs = int64_t{1} << 18;
// Packed matrix products: the k chunk, and the register tile with 512-bit
// vectors (rows x vectors of columns).
// (6 x 64 beat 8 x 48, 12 x 32 and 14 x 32 on the MNIST MLP's products here,
// and a 128-deep panel of B, 32 KiB, stays in L1.)
constexpr int64_t kKc = kPanelDepth;
constexpr int64_t kWideTileRows = 6, kWideTileVectors = 4;

class Emitter {
 public:
  Emitter(const Program& p, llvm::Module& m, const KernelHook& at_kernel)
      : p_(p), m_(m), ctx_(m.getContext()), b_(ctx_), at_kernel_(at_kernel) {}

  void run(const std::string& name, const std::string& cpu, const std::string& features) {
    auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {b_.getPtrTy(), b_.getPtrTy(), b_.getPtrTy()}, false);
    fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m_);
    fn_->addFnAttr(llvm::Attribute::NoUnwind);
    if (!cpu.empty()) fn_->addFnAttr("target-cpu", cpu);
    if (!features.empty()) fn_->addFnAttr("target-features", features);
    fn_->getArg(0)->setName("args");
    fn_->getArg(1)->setName("arena");
    fn_->getArg(2)->setName("rt");
    cpu_ = cpu;
    features_ = features;
    wide_ = features.find("+avx512f") != std::string::npos;
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn_));
    args_ = fn_->getArg(0);
    arena_ = fn_->getArg(1);
    rt_ = fn_->getArg(2);
    load_bases();
    if (!p_.profile) {
      for (const Kernel& k : p_.kernels) kernel(k);
    } else {
      // counters[k] += the cycles of kernel k; counters[kernels] += those of the call.
      size_t slot = p_.sig.reads.size() + p_.sig.produces.size();
      llvm::Value* counters = b_.CreateLoad(b_.getPtrTy(), b_.CreateConstGEP1_64(b_.getPtrTy(), args_, slot), "counters");
      auto clock = [&] { return b_.CreateIntrinsic(llvm::Intrinsic::readcyclecounter, {}, {}); };
      auto count = [&](size_t i, llvm::Value* since) {
        llvm::Value* at = b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), counters, i);
        b_.CreateStore(b_.CreateAdd(b_.CreateLoad(b_.getInt64Ty(), at), b_.CreateSub(clock(), since)), at);
      };
      llvm::Value* start = clock();
      for (size_t i = 0; i < p_.kernels.size(); ++i) {
        llvm::Value* t0 = clock();
        kernel(p_.kernels[i]);
        count(i, t0);
      }
      count(p_.kernels.size(), start);
    }
    b_.CreateRet(b_.getInt32(0));
    // The loop vectorizer finds a call's vector variants by name in the module.
    std::vector<llvm::GlobalValue*> keep(used_.begin(), used_.end());
    if (!keep.empty()) llvm::appendToCompilerUsed(m_, keep);
  }

 private:
  // Base pointers of every buffer, from the current function's args and arena.
  void load_bases() {
    bases_.clear();
    for (const Buffer& buf : p_.buffers) {
      llvm::Value* base;
      if (buf.kind == Buffer::Kind::Arg) {
        base = b_.CreateLoad(b_.getPtrTy(), b_.CreateConstGEP1_64(b_.getPtrTy(), args_, buf.arg),
                             fmt::format("arg.{}", buf.name));
      } else {
        base = b_.CreateConstGEP1_64(b_.getInt8Ty(), arena_, buf.offset);
      }
      bases_.push_back(base);
    }
  }

  // Runs body(task) for task in [0, n) through the runtime's thread pool:
  // the body becomes a function `void (ctx, task, slot)` of its own; ctx
  // carries the args and arena pointers and the loop indices `captured` (dims
  // of the current kernel whose ivs_ the body uses). slot_ is the thread's
  // slot (thread_pool.h) while the body is emitted.
  void parallel(int64_t n, const std::vector<size_t>& captured, const std::function<void(llvm::Value*)>& body) {
    llvm::Type* i64 = b_.getInt64Ty();
    auto* ctx_ty = llvm::ArrayType::get(i64, 2 + captured.size());
    // The context lives in the entry block's frame (allocas there are static).
    llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    llvm::Value* ctx = entry_b.CreateAlloca(ctx_ty, nullptr, "par.ctx");
    auto slot = [&](llvm::IRBuilder<>& b, llvm::Value* base, size_t i) { return b.CreateConstGEP2_64(ctx_ty, base, 0, i); };
    b_.CreateStore(args_, slot(b_, ctx, 0));
    b_.CreateStore(arena_, slot(b_, ctx, 1));
    for (size_t c = 0; c < captured.size(); ++c) b_.CreateStore(ivs_[captured[c]], slot(b_, ctx, 2 + c));

    auto* fty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), i64, i64}, false);
    auto* f = llvm::Function::Create(fty, llvm::Function::InternalLinkage,
                                     fmt::format("{}.par{}", fn_->getName().str(), outlined_++), m_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    if (!cpu_.empty()) f->addFnAttr("target-cpu", cpu_);
    if (!features_.empty()) f->addFnAttr("target-features", features_);
    // Switch to the new function, run the body, and switch back.
    llvm::Function* saved_fn = fn_;
    llvm::IRBuilderBase::InsertPoint saved_ip = b_.saveIP();
    std::vector<llvm::Value*> saved_bases = bases_, saved_ivs = ivs_;
    llvm::Value *saved_args = args_, *saved_arena = arena_, *saved_slot = slot_;
    fn_ = f;
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
    llvm::Value* fctx = f->getArg(0);
    args_ = b_.CreateLoad(b_.getPtrTy(), slot(b_, fctx, 0), "args");
    arena_ = b_.CreateLoad(b_.getPtrTy(), slot(b_, fctx, 1), "arena");
    load_bases();
    for (size_t c = 0; c < captured.size(); ++c) ivs_[captured[c]] = b_.CreateLoad(i64, slot(b_, fctx, 2 + c));
    slot_ = f->getArg(2);
    body(f->getArg(1));
    b_.CreateRetVoid();
    fn_ = saved_fn;
    b_.restoreIP(saved_ip);
    bases_ = std::move(saved_bases);
    ivs_ = std::move(saved_ivs);
    args_ = saved_args;
    arena_ = saved_arena;
    slot_ = saved_slot;
    // rt->parallel_for(rt, f, ctx, n)
    auto* pf_ty = llvm::FunctionType::get(b_.getVoidTy(), {b_.getPtrTy(), b_.getPtrTy(), b_.getPtrTy(), i64}, false);
    llvm::Value* pf = b_.CreateLoad(b_.getPtrTy(), rt_, "parallel_for");
    b_.CreateCall(pf_ty, pf, {rt_, f, ctx, b_.getInt64(n)});
  }

  // for (i = lo; i < hi; ++i) body(i), bounds known only at run time.
  void loop_range(llvm::Value* lo, llvm::Value* hi, const std::function<void(llvm::Value*)>& body) {
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "range", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, "range.done", fn_);
    b_.CreateCondBr(b_.CreateICmpSLT(lo, hi), header, exit);
    b_.SetInsertPoint(header);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
    i->addIncoming(lo, pre);
    body(i);
    llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpSLT(next, hi), header, exit);
    b_.SetInsertPoint(exit);
  }

  // if (cond) then();
  void when(llvm::Value* cond, const std::function<void()>& then) {
    auto* yes = llvm::BasicBlock::Create(ctx_, "then", fn_);
    auto* done = llvm::BasicBlock::Create(ctx_, "endif", fn_);
    b_.CreateCondBr(cond, yes, done);
    b_.SetInsertPoint(yes);
    then();
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
  }

  llvm::Value* smin(llvm::Value* a, llvm::Value* b) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, b); }
  llvm::Value* i64(int64_t v) { return b_.getInt64(v); }
  llvm::Value* mul(llvm::Value* a, int64_t c) { return b_.CreateMul(a, i64(c), "", true, true); }
  llvm::Value* add(llvm::Value* a, llvm::Value* c) { return b_.CreateAdd(a, c, "", true, true); }

  llvm::Type* type(DType t) {
    switch (t) {
      case DType::F32: return b_.getFloatTy();
      case DType::F64: return b_.getDoubleTy();
      case DType::I32: return b_.getInt32Ty();
    }
    return nullptr;
  }

  // for (i = 0; i < n; ++i) body(i); n >= 1, so a do-while loop.
  void loop(int64_t n, const std::function<void(llvm::Value*)>& body) {
    loop_carry(n, {}, [&](llvm::Value* i, const std::vector<llvm::Value*>&) {
      body(i);
      return std::vector<llvm::Value*>{};
    });
  }

  // acc = init; for (i = 0; i < n; ++i) acc = step(i, acc); returns acc.
  llvm::Value* loop_acc(int64_t n, llvm::Value* init,
                        const std::function<llvm::Value*(llvm::Value* i, llvm::Value* acc)>& step) {
    return loop_carry(n, {init}, [&](llvm::Value* i, const std::vector<llvm::Value*>& acc) {
      return std::vector<llvm::Value*>{step(i, acc[0])};
    })[0];
  }

  // The loop both are made of: values carried from one iteration to the next
  // (PHIs starting at `init`); returns their values after the last iteration.
  std::vector<llvm::Value*> loop_carry(
      int64_t n, const std::vector<llvm::Value*>& init,
      const std::function<std::vector<llvm::Value*>(llvm::Value* i, const std::vector<llvm::Value*>& carried)>& step) {
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "loop", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, "after", fn_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
    i->addIncoming(b_.getInt64(0), pre);
    std::vector<llvm::PHINode*> phis;
    std::vector<llvm::Value*> carried;
    for (llvm::Value* v : init) {
      phis.push_back(b_.CreatePHI(v->getType(), 2, "acc"));
      phis.back()->addIncoming(v, pre);
      carried.push_back(phis.back());
    }
    std::vector<llvm::Value*> next_values = step(i, carried);
    llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    for (size_t k = 0; k < phis.size(); ++k) phis[k]->addIncoming(next_values[k], b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpSLT(next, b_.getInt64(n)), header, exit);
    b_.SetInsertPoint(exit);
    return next_values;
  }

  // Loops over `order` (dims of k), innermost last; ivs_[d] holds dim d's index.
  void nest(const Kernel& k, const std::vector<size_t>& order, size_t level, const std::function<void()>& body) {
    if (level == order.size()) return body();
    loop(k.dims[order[level]], [&](llvm::Value* i) {
      ivs_[order[level]] = i;
      nest(k, order, level + 1, body);
    });
  }

  llvm::Value* index(const Affine& a) {
    llvm::Value* v = b_.getInt64(a.offset);
    for (size_t d = 0; d < a.strides.size(); ++d)
      if (a.strides[d] != 0) v = b_.CreateAdd(v, b_.CreateMul(ivs_[d], b_.getInt64(a.strides[d]), "", true, true), "", true, true);
    return v;
  }

  llvm::Value* address(int buffer, const Affine& a) {
    return b_.CreateInBoundsGEP(type(p_.buffers[buffer].dtype), bases_[buffer], index(a));
  }

  llvm::Value* intrinsic(llvm::Intrinsic::ID id, llvm::Value* x) {
    return b_.CreateUnaryIntrinsic(id, x);
  }

  // A libm function of one argument (expf / exp, tanhf / tanh ...). The call
  // names glibc's vector versions (libmvec: 8 floats or 4 doubles with AVX2,
  // 16 or 8 with AVX-512) as its vector variants, so loops that call it
  // still vectorize.
  llvm::Value* libm(const char* name, llvm::Value* x) {
    bool f32 = x->getType()->isFloatTy();
    std::string fname = f32 ? std::string(name) + "f" : name;
    llvm::FunctionCallee f = m_.getOrInsertFunction(fname, x->getType(), x->getType());
    // No errno: the calls are pure, so loops that make them can vectorize.
    if (auto* fn = llvm::dyn_cast<llvm::Function>(f.getCallee())) {
      fn->setDoesNotThrow();
      fn->setDoesNotAccessMemory();
    }
    llvm::CallInst* call = b_.CreateCall(f, {x});
    std::string variants;
    for (auto [isa, lanes] : {std::pair{'d', f32 ? 8 : 4}, std::pair{'e', f32 ? 16 : 8}}) {
      if (isa == 'e' && !wide_) continue;
      std::string vname = fmt::format("_ZGV{}N{}v_{}", isa, lanes, fname);
      auto* vty = llvm::FixedVectorType::get(x->getType(), static_cast<unsigned>(lanes));
      llvm::FunctionCallee vf = m_.getOrInsertFunction(vname, vty, vty);
      if (auto* vfn = llvm::dyn_cast<llvm::Function>(vf.getCallee())) {
        vfn->setDoesNotThrow();
        vfn->setDoesNotAccessMemory();
        used_.insert(vfn);
      }
      variants += (variants.empty() ? "" : ",") + fmt::format("{}({})", vname, vname);
    }
    call->addFnAttr(llvm::Attribute::get(ctx_, "vector-function-abi-variant", variants));
    return call;
  }

  llvm::Value* fconst(llvm::Type* t, double v) { return llvm::ConstantFP::get(t, v); }

  llvm::Value* value(const Kernel& k, int e) {
    if (memo_[e]) return memo_[e];
    const KExpr& x = k.exprs[e];
    llvm::Type* ty = type(x.dtype);
    llvm::Value* r = nullptr;
    switch (x.kind) {
      case KExpr::Kind::Const:
        r = x.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(x.value))) : fconst(ty, x.value);
        break;
      case KExpr::Kind::Load:
        r = !held_.empty() && held_[x.buffer] ? held_[x.buffer] : b_.CreateLoad(ty, address(x.buffer, x.map));
        break;
      case KExpr::Kind::Index: r = b_.CreateTrunc(index(x.map), b_.getInt32Ty()); break;
      case KExpr::Kind::Op: r = op(k, x, ty); break;
    }
    return memo_[e] = r;
  }

  llvm::Value* op(const Kernel& k, const KExpr& x, llvm::Type* ty) {
    auto arg = [&](size_t i) { return value(k, x.args[i]); };
    switch (x.op) {
      case Op::Neg: return b_.CreateFNeg(arg(0));
      case Op::Exp: return libm("exp", arg(0));
      case Op::Log: return libm("log", arg(0));
      case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, arg(0));
      case Op::Abs: return intrinsic(llvm::Intrinsic::fabs, arg(0));
      case Op::Sin: return libm("sin", arg(0));
      case Op::Cos: return libm("cos", arg(0));
      case Op::Expm1: return libm("expm1", arg(0));
      case Op::Log1p: return libm("log1p", arg(0));
      case Op::Tanh: return libm("tanh", arg(0));
      case Op::Erf: return libm("erf", arg(0));
      case Op::Rsqrt: return b_.CreateFDiv(fconst(ty, 1), intrinsic(llvm::Intrinsic::sqrt, arg(0)));
      case Op::Sigmoid:  // 1 / (1 + exp(-x))
        return b_.CreateFDiv(fconst(ty, 1), b_.CreateFAdd(fconst(ty, 1), libm("exp", b_.CreateFNeg(arg(0)))));
      case Op::Softplus: {  // x > 20 ? x : log1p(exp(x)), PyTorch's threshold
        llvm::Value* v = arg(0);
        return b_.CreateSelect(b_.CreateFCmpOGT(v, fconst(ty, 20)), v, libm("log1p", libm("exp", v)));
      }
      case Op::Sign: {  // 1, -1, 0, or NaN
        llvm::Value* v = arg(0);
        llvm::Value* zero_or_nan = b_.CreateSelect(b_.CreateFCmpUNO(v, v), v, fconst(ty, 0));
        return b_.CreateSelect(b_.CreateFCmpOGT(v, fconst(ty, 0)), fconst(ty, 1),
                               b_.CreateSelect(b_.CreateFCmpOLT(v, fconst(ty, 0)), fconst(ty, -1), zero_or_nan));
      }
      case Op::StopGradient: return arg(0);
      case Op::Cast: {
        llvm::Value* v = arg(0);
        llvm::Type* from = v->getType();
        if (from == ty) return v;
        if (from->isIntegerTy()) return b_.CreateSIToFP(v, ty);
        return from->getPrimitiveSizeInBits() < ty->getPrimitiveSizeInBits() ? b_.CreateFPExt(v, ty) : b_.CreateFPTrunc(v, ty);
      }
      case Op::Add: return b_.CreateFAdd(arg(0), arg(1));
      case Op::Sub: return b_.CreateFSub(arg(0), arg(1));
      case Op::Mul: return b_.CreateFMul(arg(0), arg(1));
      case Op::Div: return b_.CreateFDiv(arg(0), arg(1));
      case Op::Pow: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::pow, arg(0), arg(1));
      case Op::Maximum: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::maximum, arg(0), arg(1));
      case Op::Minimum: return b_.CreateBinaryIntrinsic(llvm::Intrinsic::minimum, arg(0), arg(1));
      case Op::Lt: case Op::Le: case Op::Gt: case Op::Ge: case Op::Eq: case Op::Ne: {
        llvm::Value *a = arg(0), *c = arg(1);
        llvm::Value* bit;
        if (a->getType()->isIntegerTy()) {
          auto pred = x.op == Op::Lt ? llvm::CmpInst::ICMP_SLT : x.op == Op::Le ? llvm::CmpInst::ICMP_SLE
                      : x.op == Op::Gt ? llvm::CmpInst::ICMP_SGT : x.op == Op::Ge ? llvm::CmpInst::ICMP_SGE
                      : x.op == Op::Eq ? llvm::CmpInst::ICMP_EQ : llvm::CmpInst::ICMP_NE;
          bit = b_.CreateICmp(pred, a, c);
        } else {
          auto pred = x.op == Op::Lt ? llvm::CmpInst::FCMP_OLT : x.op == Op::Le ? llvm::CmpInst::FCMP_OLE
                      : x.op == Op::Gt ? llvm::CmpInst::FCMP_OGT : x.op == Op::Ge ? llvm::CmpInst::FCMP_OGE
                      : x.op == Op::Eq ? llvm::CmpInst::FCMP_OEQ : llvm::CmpInst::FCMP_UNE;
          bit = b_.CreateFCmp(pred, a, c);
        }
        return b_.CreateUIToFP(bit, ty);
      }
      case Op::Where: {
        llvm::Value* c = arg(0);
        llvm::Value* bit = c->getType()->isIntegerTy() ? b_.CreateICmpNE(c, llvm::ConstantInt::get(c->getType(), 0))
                                                        : b_.CreateFCmpUNE(c, fconst(c->getType(), 0));
        return b_.CreateSelect(bit, arg(1), arg(2));
      }
      default: internal_error(__FILE__, __LINE__, fmt::format("no code for op '{}'", op_name(x.op)));
    }
  }

  // Dims 0 .. n-1 of a kernel's loop nest, outermost first.
  static std::vector<size_t> first_dims(size_t n) {
    std::vector<size_t> order(n);
    for (size_t d = 0; d < n; ++d) order[d] = d;
    return order;
  }
  static std::vector<size_t> all_dims(const Kernel& k) { return first_dims(k.dims.size()); }

  void fill(int buffer, double v) {
    const Buffer& buf = p_.buffers[buffer];
    llvm::Type* ty = type(buf.dtype);
    llvm::Value* c = buf.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(v))) : fconst(ty, v);
    loop(buf.elems, [&](llvm::Value* i) { b_.CreateStore(c, b_.CreateInBoundsGEP(ty, bases_[buffer], i)); });
  }

  void kernel(const Kernel& k) {
    if (at_kernel_) at_kernel_(b_, static_cast<size_t>(&k - p_.kernels.data()));  // debug_info.h
    memo_.assign(k.exprs.size(), nullptr);
    ivs_.assign(k.dims.size(), nullptr);
    llvm::Type* out_ty = k.out >= 0 ? type(p_.buffers[k.out].dtype) : nullptr;
    auto fresh = [&] { memo_.assign(k.exprs.size(), nullptr); };
    switch (k.kind) {
      case Kernel::Kind::Elementwise: {
        auto store = [&] {
          fresh();
          b_.CreateStore(value(k, k.root), address(k.out, k.out_map));
        };
        int64_t elems = 1;
        for (int64_t d : k.dims) elems *= d;
        if (elems < kParallelElements || k.dims[0] < 2) {
          nest(k, all_dims(k), 0, store);
          break;
        }
        // Large: blocks of the outermost dim run on the thread pool.
        int64_t tasks = std::min<int64_t>(k.dims[0], 16), chunk = (k.dims[0] + tasks - 1) / tasks;
        tasks = (k.dims[0] + chunk - 1) / chunk;
        std::vector<size_t> inner = all_dims(k);
        inner.erase(inner.begin());
        parallel(tasks, {}, [&](llvm::Value* t) {
          llvm::Value* lo = mul(t, chunk);
          loop_range(lo, smin(add(lo, i64(chunk)), i64(k.dims[0])), [&](llvm::Value* i) {
            ivs_[0] = i;
            nest(k, inner, 0, store);
          });
        });
        break;
      }
      case Kernel::Kind::Reduce: {
        fill(k.out, k.init);
        auto combine = [&](llvm::Value* acc, llvm::Value* v) {
          return k.reduce_op == Op::ReduceSum   ? b_.CreateFAdd(acc, v)
                 : k.reduce_op == Op::ReduceMax ? b_.CreateBinaryIntrinsic(llvm::Intrinsic::maximum, acc, v)
                                                : b_.CreateBinaryIntrinsic(llvm::Intrinsic::minimum, acc, v);
        };
        std::vector<size_t> order = all_dims(k);
        size_t inner = order.back();
        if (k.out_map.strides[inner] != 0) {
          nest(k, order, 0, [&] {
            fresh();
            llvm::Value* addr = address(k.out, k.out_map);
            b_.CreateStore(combine(b_.CreateLoad(out_ty, addr), value(k, k.root)), addr);
          });
          break;
        }
        // The innermost loop reduces into one element: its partial result
        // stays in a register (same order of operations), stored after the
        // loop, so the loop body has no store and what it reads that does not
        // depend on the inner index (a row's log-sum) is hoisted out of it.
        order.pop_back();
        nest(k, order, 0, [&] {
          ivs_[inner] = i64(0);
          llvm::Value* addr = address(k.out, k.out_map);
          llvm::Value* r = loop_acc(k.dims[inner], b_.CreateLoad(out_ty, addr), [&](llvm::Value* i, llvm::Value* acc) {
            ivs_[inner] = i;
            fresh();
            return combine(acc, value(k, k.root));
          });
          b_.CreateStore(r, addr);
        });
        break;
      }
      case Kernel::Kind::ArgMax: argmax(k); break;
      case Kernel::Kind::MatMul: matmul(k); break;
      case Kernel::Kind::CheckRange: check(k); break;
    }
  }

  // The first maximum along `axis` (a NaN wins, as in PyTorch).
  void argmax(const Kernel& k) {
    std::vector<size_t> outer;
    for (size_t d = 0; d < k.dims.size(); ++d)
      if (static_cast<int>(d) != k.axis) outer.push_back(d);
    nest(k, outer, 0, [&] {
      llvm::Type* ty = type(k.exprs[k.root].dtype);
      llvm::BasicBlock* pre = b_.GetInsertBlock();
      auto* header = llvm::BasicBlock::Create(ctx_, "argmax", fn_);
      auto* exit = llvm::BasicBlock::Create(ctx_, "argmax.done", fn_);
      b_.CreateBr(header);
      b_.SetInsertPoint(header);
      llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2);
      llvm::PHINode* best = b_.CreatePHI(ty, 2);
      llvm::PHINode* best_i = b_.CreatePHI(b_.getInt64Ty(), 2);
      i->addIncoming(b_.getInt64(0), pre);
      best->addIncoming(fconst(ty, -std::numeric_limits<double>::infinity()), pre);
      best_i->addIncoming(b_.getInt64(0), pre);
      ivs_[k.axis] = i;
      memo_.assign(k.exprs.size(), nullptr);
      llvm::Value* v = value(k, k.root);
      llvm::Value* take = b_.CreateOr(b_.CreateFCmpOGT(v, best),
                                      b_.CreateAnd(b_.CreateFCmpUNO(v, v), b_.CreateFCmpORD(best, best)));
      llvm::Value* nb = b_.CreateSelect(take, v, best);
      llvm::Value* ni = b_.CreateSelect(take, i, best_i);
      llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);
      i->addIncoming(next, b_.GetInsertBlock());
      best->addIncoming(nb, b_.GetInsertBlock());
      best_i->addIncoming(ni, b_.GetInsertBlock());
      b_.CreateCondBr(b_.CreateICmpSLT(next, b_.getInt64(k.dims[k.axis])), header, exit);
      b_.SetInsertPoint(exit);
      ivs_[k.axis] = b_.getInt64(0);  // the output map ignores the axis
      b_.CreateStore(b_.CreateTrunc(ni, b_.getInt32Ty()), address(k.out, k.out_map));
    });
  }

  // The largest divisor of n that is at most `limit` (tiles without remainders).
  static int64_t tile(int64_t n, int64_t limit) {
    for (int64_t t = std::min(n, limit); t > 1; --t)
      if (n % t == 0) return t;
    return 1;
  }

  // C = 0; then, tile by tile of columns (nt) and of the reduction (kt):
  //   for each column tile, for each k tile, for m, for k in the tile, for n in the tile:
  //     C[b, m, n] += A[b, m, k] * B[b, k, n]
  // so a kt x nt block of B stays in cache while all rows of A stream past it,
  // and the innermost loop is contiguous in B and C (it vectorizes). When the
  // column tile is complete, the epilogue (bias, activation) runs over it.
  void matmul(const Kernel& k) {
    if (k.packed) return matmul_packed(k);
    size_t batch = k.dims.size() - 3;
    // With B transposed (contiguous along k, strided along n) and A contiguous
    // along k, each C element is a dot product of two contiguous rows.
    if (k.a_map.strides[batch + 2] == 1 && k.b_map.strides[batch + 2] == 1 &&
        (k.b_map.strides[batch + 1] != 1 || k.dims[batch + 1] == 1))
      return matmul_dot(k);
    if (k.dims[batch + 1] == 1 && k.a_map.strides[batch] == 1) return matmul_axpy(k);
    if (k.dims[batch + 1] <= (wide_ ? 16 : 8) && k.b_map.strides[batch + 1] == 1 && k.out_map.strides[batch + 1] == 1 &&
        is_float(p_.buffers[k.out].dtype))
      return matmul_rows(k);
    fill(k.out, 0);
    int64_t M = k.dims[batch], N = k.dims[batch + 1], K = k.dims[batch + 2];
    int64_t nt = tile(N, 256), kt = tile(K, 128);
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    std::vector<size_t> batch_dims = first_dims(batch);
    auto column = [&](llvm::Value* jt, llvm::Value* jj) {
      ivs_[batch + 1] = b_.CreateAdd(b_.CreateMul(jt, b_.getInt64(nt), "", true, true), jj, "n", true, true);
    };
    nest(k, batch_dims, 0, [&] {
      loop(N / nt, [&](llvm::Value* jt) {
        loop(K / kt, [&](llvm::Value* ktile) {
          loop(M, [&](llvm::Value* i) {
            ivs_[batch] = i;
            loop(kt, [&](llvm::Value* kk) {
              ivs_[batch + 2] = b_.CreateAdd(b_.CreateMul(ktile, b_.getInt64(kt), "", true, true), kk, "k", true, true);
              llvm::Value* a = b_.CreateLoad(ty, address(k.a, k.a_map));
              loop(nt, [&](llvm::Value* jj) {
                column(jt, jj);
                llvm::Value* bv = b_.CreateLoad(ty, address(k.b, k.b_map));
                llvm::Value* addr = address(k.out, k.out_map);
                b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, addr), b_.CreateFMul(a, bv)), addr);
              });
            });
          });
        });
        if (k.epilogues.empty()) return;
        ivs_[batch + 2] = b_.getInt64(0);
        loop(M, [&](llvm::Value* i) {
          ivs_[batch] = i;
          loop(nt, [&](llvm::Value* jj) {
            column(jt, jj);
            epilogues(k);
          });
        });
      });
    });
  }

  // A product with few columns (N at most one vector: a classifier layer and
  // its gradients): each row of C is one vector, kept in a register over k.
  // Four rows at a time (independent accumulators); per k, the row of B is
  // one masked vector load and each row of A one broadcast.
  void matmul_rows(const Kernel& k) {
    size_t batch = k.dims.size() - 3;
    int64_t M = k.dims[batch], N = k.dims[batch + 1], K = k.dims[batch + 2];
    DType dt = p_.buffers[k.out].dtype;
    llvm::Type* ty = type(dt);
    int64_t vw = (wide_ ? 16 : 8) / (dt == DType::F64 ? 2 : 1);
    if (N > vw) vw *= 2;  // f64 with more columns than one vector: two vectors' worth of lanes
    auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
    llvm::Align align(dtype_size(dt));
    std::vector<llvm::Constant*> lanes;
    for (int64_t l = 0; l < vw; ++l) lanes.push_back(b_.getInt1(l < N));
    llvm::Constant* mask = llvm::ConstantVector::get(lanes);
    llvm::Function* fma = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::fma, {vty});
    std::vector<size_t> batch_dims = first_dims(batch);
    // R rows at a time: 4 keep the FMA unit busy (latency 4); with A
    // transposed, R consecutive rows share one cache line of A per k, so more
    // rows mean fewer lines and pages touched (16 with 32 vector registers).
    int64_t R = k.a_map.strides[batch] == 1 ? (wide_ ? 16 : 8) : 4;
    // Rows [m0, m0 + rows) of C.
    auto block = [&](llvm::Value* m0, int64_t rows) {
      std::vector<llvm::Value*> zeros(static_cast<size_t>(rows), llvm::Constant::getNullValue(vty));
      std::vector<llvm::Value*> next = loop_carry(K, zeros, [&](llvm::Value* kk, const std::vector<llvm::Value*>& acc) {
        ivs_[batch + 2] = kk;
        ivs_[batch] = i64(0);
        ivs_[batch + 1] = i64(0);
        llvm::Value* brow =
            b_.CreateMaskedLoad(vty, address(k.b, k.b_map), align, mask, llvm::Constant::getNullValue(vty));
        std::vector<llvm::Value*> sums;
        for (int64_t r = 0; r < rows; ++r) {
          ivs_[batch] = add(m0, i64(r));
          llvm::Value* a = b_.CreateVectorSplat(static_cast<unsigned>(vw), b_.CreateLoad(ty, address(k.a, k.a_map)));
          sums.push_back(b_.CreateCall(fma, {a, brow, acc[static_cast<size_t>(r)]}));
        }
        return sums;
      });
      ivs_[batch + 1] = i64(0);
      ivs_[batch + 2] = i64(0);
      for (int64_t r = 0; r < rows; ++r) {
        ivs_[batch] = add(m0, i64(r));
        b_.CreateMaskedStore(next[r], address(k.out, k.out_map), align, mask);
      }
      if (k.epilogues.empty()) return;
      loop(rows, [&](llvm::Value* r) {
        ivs_[batch] = add(m0, r);
        loop(N, [&](llvm::Value* n) {
          ivs_[batch + 1] = n;
          epilogues(k);
        });
      });
    };
    int64_t groups = M / R;
    nest(k, batch_dims, 0, [&] {
      if (groups >= 2 && M * N * K >= kParallelMacs) {
        // Large: runs of groups are the tasks of the thread pool.
        int64_t tasks = std::min<int64_t>(groups, 16), per = (groups + tasks - 1) / tasks;
        tasks = (groups + per - 1) / per;
        parallel(tasks, batch_dims, [&](llvm::Value* t) {
          llvm::Value* g0 = mul(t, per);
          loop_range(g0, smin(add(g0, i64(per)), i64(groups)), [&](llvm::Value* g) { block(mul(g, R), R); });
        });
      } else if (groups > 0) {
        loop(groups, [&](llvm::Value* g) { block(mul(g, R), R); });
      }
      if (M % R) block(i64(groups * R), M % R);
    });
  }

  // A matrix-vector product whose matrix is contiguous along m (a transposed
  // operand, as in the gradient of a linear layer): C = 0, then for each k,
  // C[b, :, 0] += A[b, :, k] * B[b, k, 0], a contiguous loop that vectorizes.
  void matmul_axpy(const Kernel& k) {
    size_t batch = k.dims.size() - 3;
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    fill(k.out, 0);
    std::vector<size_t> batch_dims = first_dims(batch);
    ivs_[batch + 1] = i64(0);
    nest(k, batch_dims, 0, [&] {
      loop(k.dims[batch + 2], [&](llvm::Value* kk) {
        ivs_[batch + 2] = kk;
        ivs_[batch] = i64(0);
        llvm::Value* bv = b_.CreateLoad(ty, address(k.b, k.b_map));
        loop(k.dims[batch], [&](llvm::Value* m) {
          ivs_[batch] = m;
          llvm::Value* addr = address(k.out, k.out_map);
          llvm::Value* a = b_.CreateLoad(ty, address(k.a, k.a_map));
          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, addr), b_.CreateFMul(a, bv)), addr);
        });
      });
      if (k.epilogues.empty()) return;
      ivs_[batch + 2] = i64(0);
      loop(k.dims[batch], [&](llvm::Value* m) {
        ivs_[batch] = m;
        epilogues(k);
      });
    });
  }

  // C[b, m, n] = sum_k A[b, m, k] B[b, k, n] as a dot product along k per
  // element. The sum may be reassociated (so it vectorizes into partial sums);
  // the code is fixed, so results are the same on every run.
  void matmul_dot(const Kernel& k) {
    size_t batch = k.dims.size() - 3;
    int64_t K = k.dims[batch + 2];
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    std::vector<size_t> order = first_dims(batch + 2);
    nest(k, order, 0, [&] {
      llvm::BasicBlock* pre = b_.GetInsertBlock();
      auto* header = llvm::BasicBlock::Create(ctx_, "dot", fn_);
      auto* exit = llvm::BasicBlock::Create(ctx_, "dot.done", fn_);
      b_.CreateBr(header);
      b_.SetInsertPoint(header);
      llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2);
      llvm::PHINode* acc = b_.CreatePHI(ty, 2);
      i->addIncoming(b_.getInt64(0), pre);
      acc->addIncoming(fconst(ty, 0), pre);
      ivs_[batch + 2] = i;
      llvm::Value* prod = b_.CreateFMul(b_.CreateLoad(ty, address(k.a, k.a_map)), b_.CreateLoad(ty, address(k.b, k.b_map)));
      llvm::Value* sum = b_.CreateFAdd(acc, prod);
      llvm::cast<llvm::Instruction>(sum)->setHasAllowReassoc(true);
      llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "", true, true);
      i->addIncoming(next, b_.GetInsertBlock());
      acc->addIncoming(sum, b_.GetInsertBlock());
      b_.CreateCondBr(b_.CreateICmpSLT(next, b_.getInt64(K)), header, exit);
      b_.SetInsertPoint(exit);
      ivs_[batch + 2] = b_.getInt64(0);
      b_.CreateStore(sum, address(k.out, k.out_map));
      epilogues(k);
    });
  }

  // The product's epilogues at the element ivs_ points to, in order.
  // The epilogues at one element, in order. Later ones read earlier ones'
  // values (always at this element) from registers; internal ones are not
  // stored at all. (A value updated in place is read back only as its new
  // value: can_update_in_place.)
  void epilogues(const Kernel& k) {
    memo_.assign(k.exprs.size(), nullptr);
    held_.assign(p_.buffers.size(), nullptr);
    for (const Kernel::Epilogue& e : k.epilogues) {
      llvm::Value* v = value(k, e.root);
      if (!e.internal) b_.CreateStore(v, address(e.out, e.map));
      held_[e.out] = v;
    }
    held_.clear();
  }

  // ---- packed matrix products ----
  //
  // C[b] = A[b] B[b] for large products, in the manner of BLIS/GotoBLAS:
  //  1. B is packed into panels of NR columns (B[k, jp*NR + j] at
  //     (jp*K + k)*NR + j), zero-padded at the edge and read through its
  //     strides when transposed, unless the plan lets the microkernel read it
  //     in place (its rows contiguous, whole panels, short rows). A is read in
  //     place through its strides: its MR rows of a k step are MR scalars to
  //     broadcast, from one cache line when A is transposed and from MR lines
  //     that each serve 16 k steps otherwise (packing A measured 5-10 % slower
  //     on the MLP products, with its extra pass over A).
  //  2. The MR x NR microkernel keeps an MR x NR tile of C in vector registers
  //     (MR * NR / VW accumulators) and, per k, loads NR/VW vectors of B and
  //     broadcasts MR values of A into fused multiply-adds.
  //  3. C is cut into blocks of whole panels (about 128 rows x 256 columns);
  //     blocks are the tasks of the thread pool. Within a block, k runs in
  //     chunks of KC so a KC x NR panel of B stays in L1 while the block's A
  //     rows stream from L2. Every element of C is summed in the same order
  //     whatever the thread count (k chunks in order, k within a chunk in order).
  //  4. The epilogue (bias, activation) runs over each block once it is done.
  struct GemmShape {
    int64_t M, N, K, mr, nr, vw, pm, pn;  // pm, pn: tiles of rows of A and of columns of B
  };

  GemmShape gemm_shape(const Kernel& k) {
    size_t batch = k.dims.size() - 3;
    GemmShape s;
    s.M = k.dims[batch];
    s.N = k.dims[batch + 1];
    s.K = k.dims[batch + 2];
    bool f64 = p_.buffers[k.out].dtype == DType::F64;
    s.vw = (wide_ ? 16 : 8) / (f64 ? 2 : 1);
    // Accumulators: 6 x 4 vectors with 32 vector registers, 6 x 2 with 16.
    s.mr = wide_ ? kWideTileRows : 6;
    s.nr = (wide_ ? kWideTileVectors : 2) * s.vw;
    s.pm = (s.M + s.mr - 1) / s.mr;
    s.pn = (s.N + s.nr - 1) / s.nr;
    return s;
  }

  void matmul_packed(const Kernel& k) {
    size_t batch = k.dims.size() - 3;
    GemmShape s = gemm_shape(k);
    if (k.out_map.strides[batch + 1] != 1 || s.mr > kMaxTileRows || s.nr > kMaxTileCols)
      internal_error(__FILE__, __LINE__, "a packed matrix product needs a row-major output");
    if (k.pack_b < 0 && (k.b_map.strides[batch + 1] != 1 || s.N % s.nr != 0))
      internal_error(__FILE__, __LINE__, "B read in place needs contiguous rows and whole tiles");
    std::vector<size_t> batch_dims = first_dims(batch);
    int64_t bmp = std::max<int64_t>(1, kBlockRows / s.mr), bnp = std::max<int64_t>(1, kBlockCols / s.nr);
    int64_t tm = (s.pm + bmp - 1) / bmp, tn = (s.pn + bnp - 1) / bnp;
    // With C in per-thread blocks, the epilogues read C at the block's row-major layout.
    int64_t ldcb = bnp * s.nr;
    Kernel kb = k;
    if (k.c_blocks) {
      Affine block{0, std::vector<int64_t>(k.dims.size(), 0)};
      block.strides[batch] = ldcb;
      block.strides[batch + 1] = 1;
      for (KExpr& e : kb.exprs)
        if (e.kind == KExpr::Kind::Load && e.buffer == k.out) e.map = block;
    }
    nest(k, batch_dims, 0, [&] {
      if (k.pack_b >= 0) parallel(s.pn, batch_dims, [&](llvm::Value* jp) { pack_b(k, s, jp); });
      parallel(tm * tn, batch_dims, [&](llvm::Value* t) {
        llvm::Value* bm = b_.CreateUDiv(t, i64(tn));
        llvm::Value* bn = b_.CreateURem(t, i64(tn));
        llvm::Value* ip0 = mul(bm, bmp);
        llvm::Value* jp0 = mul(bn, bnp);
        llvm::Value* ip1 = smin(add(ip0, i64(bmp)), i64(s.pm));
        llvm::Value* jp1 = smin(add(jp0, i64(bnp)), i64(s.pn));
        llvm::Value* m_lo = mul(ip0, s.mr);
        llvm::Value* n_lo = mul(jp0, s.nr);
        std::optional<CBlock> cb;
        if (k.c_blocks) {
          llvm::Type* ty = type(p_.buffers[k.out].dtype);
          int64_t at = (p_.arena_bytes + 63) / 64 * 64;
          llvm::Value* scratch = b_.CreateInBoundsGEP(b_.getInt8Ty(), arena_, add(i64(at), mul(slot_, p_.worker_bytes)));
          cb = CBlock{scratch, ip0, jp0, ldcb};
          // The epilogues find C[m, n] at scratch[(m - m_lo) * ldcb + (n - n_lo)].
          bases_[k.out] = b_.CreateGEP(ty, scratch, b_.CreateNeg(add(mul(m_lo, ldcb), n_lo)));
        }
        loop((s.K + kKc - 1) / kKc, [&](llvm::Value* pc) {
          llvm::Value* k0 = mul(pc, kKc);
          llvm::Value* kc = smin(i64(kKc), b_.CreateSub(i64(s.K), k0));
          llvm::Value* first = b_.CreateICmpEQ(pc, i64(0));
          loop_range(jp0, jp1, [&](llvm::Value* jp) {
            loop_range(ip0, ip1, [&](llvm::Value* ip) { microkernel(k, s, ip, jp, k0, kc, first, cb); });
          });
        });
        if (k.epilogues.empty()) return;
        ivs_[batch + 2] = i64(0);
        llvm::Value* n_hi = smin(mul(jp1, s.nr), i64(s.N));
        loop_range(m_lo, smin(mul(ip1, s.mr), i64(s.M)), [&](llvm::Value* m) {
          ivs_[batch] = m;
          loop_range(n_lo, n_hi, [&](llvm::Value* n) {
            ivs_[batch + 1] = n;
            epilogues(kb);
          });
        });
      });
    });
  }

  // Copies one panel of an operand into packed order. `rows` is the panel's
  // loop dim in the kernel (m for A, n for B), `w` its width (MR or NR), `count`
  // the operand's extent along it; the last panel is zero-padded.
  void pack_panel(const Kernel& k, int buffer, const Affine& map, int packed, size_t rows, int64_t w, int64_t count,
                  int64_t K, int64_t vw, llvm::Value* panel) {
    size_t batch = k.dims.size() - 3;
    llvm::Type* ty = type(p_.buffers[packed].dtype);
    ivs_[batch] = ivs_[batch + 1] = ivs_[batch + 2] = i64(0);
    llvm::Value* dst_base = b_.CreateInBoundsGEP(ty, bases_[packed], mul(mul(panel, K), w));
    bool row_inner = map.strides[rows] == 1;  // contiguous along the panel's rows: copy them innermost
    auto copy = [&](bool guarded) {
      auto elem = [&](llvm::Value* r, llvm::Value* kk) {
        llvm::Value* idx = add(mul(panel, w), r);
        ivs_[rows] = guarded ? smin(idx, i64(count - 1)) : idx;
        ivs_[batch + 2] = kk;
        llvm::Value* v = b_.CreateLoad(ty, address(buffer, map));
        if (guarded) v = b_.CreateSelect(b_.CreateICmpSLT(idx, i64(count)), v, llvm::ConstantFP::get(ty, 0.0));
        b_.CreateStore(v, b_.CreateInBoundsGEP(ty, dst_base, add(mul(kk, w), r)));
      };
      if (row_inner && !guarded && w % vw == 0) {
        // Whole vectors: w consecutive elements of the operand per k.
        auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
        llvm::Align align(dtype_size(p_.buffers[packed].dtype));
        loop(K, [&](llvm::Value* kk) {
          ivs_[rows] = mul(panel, w);
          ivs_[batch + 2] = kk;
          llvm::Value* src = address(buffer, map);
          llvm::Value* dst = b_.CreateInBoundsGEP(ty, dst_base, mul(kk, w));
          for (int64_t v = 0; v < w; v += vw)
            b_.CreateAlignedStore(b_.CreateAlignedLoad(vty, b_.CreateConstInBoundsGEP1_64(ty, src, v), align),
                                  b_.CreateConstInBoundsGEP1_64(ty, dst, v), align);
        });
      } else if (row_inner) {
        loop(K, [&](llvm::Value* kk) { loop(w, [&](llvm::Value* r) { elem(r, kk); }); });
      } else {
        loop(w, [&](llvm::Value* r) { loop(K, [&](llvm::Value* kk) { elem(r, kk); }); });
      }
    };
    int64_t full = count / w;
    if (full == (count + w - 1) / w) return copy(false);
    auto* guarded = llvm::BasicBlock::Create(ctx_, "pack.edge", fn_);
    auto* plain = llvm::BasicBlock::Create(ctx_, "pack.full", fn_);
    auto* done = llvm::BasicBlock::Create(ctx_, "pack.done", fn_);
    b_.CreateCondBr(b_.CreateICmpSLT(panel, i64(full)), plain, guarded);
    b_.SetInsertPoint(plain);
    copy(false);
    b_.CreateBr(done);
    b_.SetInsertPoint(guarded);
    copy(true);
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
  }

  void pack_b(const Kernel& k, const GemmShape& s, llvm::Value* jp) {
    size_t batch = k.dims.size() - 3;
    pack_panel(k, k.b, k.b_map, k.pack_b, batch + 1, s.nr, s.N, s.K, s.vw, jp);
  }

  // C[ip*MR.., jp*NR..] (+)= sum over k in [k0, k0 + kc) of A's rows and
  // B's panel (packed or in place).
  // A block of C in per-thread scratch: tile (ip0, jp0) at `base`, rows `ld` apart.
  struct CBlock {
    llvm::Value *base, *ip0, *jp0;
    int64_t ld;
  };

  void microkernel(const Kernel& k, const GemmShape& s, llvm::Value* ip, llvm::Value* jp, llvm::Value* k0,
                   llvm::Value* kc, llvm::Value* first, const std::optional<CBlock>& cb) {
    size_t batch = k.dims.size() - 3;
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    llvm::Value* m0 = mul(ip, s.mr);
    llvm::Value* n0 = mul(jp, s.nr);
    ivs_[batch] = m0, ivs_[batch + 1] = i64(0), ivs_[batch + 2] = k0;
    llvm::Value* pa = address(k.a, k.a_map);
    int64_t sa_r = k.a_map.strides[batch], sa_k = k.a_map.strides[batch + 2];
    llvm::Value* pb;
    int64_t sb_k = s.nr;
    if (k.pack_b < 0) {
      ivs_[batch] = i64(0), ivs_[batch + 1] = n0, ivs_[batch + 2] = k0;
      pb = address(k.b, k.b_map);
      sb_k = k.b_map.strides[batch + 2];
    } else {
      pb = b_.CreateInBoundsGEP(ty, bases_[k.pack_b], add(mul(mul(jp, s.K), s.nr), mul(k0, s.nr)));
    }
    ivs_[batch] = ivs_[batch + 1] = ivs_[batch + 2] = i64(0);
    int64_t ldc = cb ? cb->ld : k.out_map.strides[batch];
    llvm::Value* c =
        cb ? b_.CreateInBoundsGEP(ty, cb->base, add(mul(b_.CreateSub(ip, cb->ip0), s.mr * ldc), mul(b_.CreateSub(jp, cb->jp0), s.nr)))
           : b_.CreateInBoundsGEP(ty, bases_[k.out], add(add(index(k.out_map), n0), mul(m0, ldc)));
    llvm::Value* rows = smin(i64(s.mr), b_.CreateSub(i64(s.M), m0));
    llvm::Value* cols = smin(i64(s.nr), b_.CreateSub(i64(s.N), n0));
    b_.CreateCall(tile_function(ty, s), {pa, i64(sa_r), i64(sa_k), pb, i64(sb_k), kc, c, i64(ldc), rows, cols, first});
  }

  // One function per module and tile shape, shared by every packed product:
  //   tile(pa, sa_r, sa_k, pb, sb_k, kc, c, ldc, rows, cols, first)
  // C[r, j] (+)= sum_k pa[r*sa_r + k*sa_k] * pb[k*sb_k + j] for r < rows, j < cols, with
  // C = acc on the first k chunk and C += acc after it. The MR x NR tile is
  // held in MR * NR / VW vector registers; edge tiles store with masks.
  llvm::Function* tile_function(llvm::Type* ty, const GemmShape& s) {
    std::string name = fmt::format("gradc.tile.{}x{}.{}", s.mr, s.nr, ty->isDoubleTy() ? "f64" : "f32");
    if (llvm::Function* f = m_.getFunction(name)) return f;
    llvm::Type* i64t = b_.getInt64Ty();
    llvm::Type* ptr = b_.getPtrTy();
    auto* fty = llvm::FunctionType::get(
        b_.getVoidTy(), {ptr, i64t, i64t, ptr, i64t, i64t, ptr, i64t, i64t, i64t, b_.getInt1Ty()}, false);
    auto* f = llvm::Function::Create(fty, llvm::Function::InternalLinkage, name, m_);
    f->addFnAttr(llvm::Attribute::NoUnwind);
    f->addFnAttr(llvm::Attribute::NoInline);  // one copy of the register tile per module
    if (!cpu_.empty()) f->addFnAttr("target-cpu", cpu_);
    if (!features_.empty()) f->addFnAttr("target-features", features_);
    for (unsigned a : {0u, 3u, 6u}) f->addParamAttr(a, llvm::Attribute::NoAlias);
    llvm::Function* saved_fn = fn_;
    llvm::IRBuilderBase::InsertPoint saved_ip = b_.saveIP();
    fn_ = f;
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", f));
    llvm::Value *pa = f->getArg(0), *sa_r = f->getArg(1), *sa_k = f->getArg(2), *pb = f->getArg(3),
                *sb_k = f->getArg(4), *kc = f->getArg(5), *c = f->getArg(6), *ldc = f->getArg(7), *rows = f->getArg(8),
                *cols = f->getArg(9), *first = f->getArg(10);

    auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(s.vw));
    int64_t nv = s.nr / s.vw;
    llvm::Function* fma = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::fma, {vty});
    llvm::Align elem_align(ty->getPrimitiveSizeInBits() / 8);
    // Rows past the edge read the last row (in bounds) and are not stored.
    std::vector<llvm::Value*> arows;
    llvm::Value* last_row = b_.CreateSub(rows, i64(1));
    for (int64_t r = 0; r < s.mr; ++r)
      arows.push_back(b_.CreateInBoundsGEP(ty, pa, b_.CreateMul(smin(i64(r), last_row), sa_r)));
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "k", f);
    auto* exit = llvm::BasicBlock::Create(ctx_, "k.done", f);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* kk = b_.CreatePHI(i64t, 2, "kk");
    kk->addIncoming(i64(0), pre);
    std::vector<llvm::PHINode*> acc;
    for (int64_t i = 0; i < s.mr * nv; ++i) {
      acc.push_back(b_.CreatePHI(vty, 2, "acc"));
      acc.back()->addIncoming(llvm::Constant::getNullValue(vty), pre);
    }
    std::vector<llvm::Value*> bv;
    llvm::Value* brow = b_.CreateInBoundsGEP(ty, pb, b_.CreateMul(kk, sb_k));
    for (int64_t v = 0; v < nv; ++v)
      bv.push_back(b_.CreateAlignedLoad(vty, b_.CreateConstInBoundsGEP1_64(ty, brow, v * s.vw), elem_align));
    llvm::Value* ak = b_.CreateMul(kk, sa_k);
    std::vector<llvm::Value*> next(acc.size());
    for (int64_t r = 0; r < s.mr; ++r) {
      llvm::Value* a = b_.CreateVectorSplat(static_cast<unsigned>(s.vw),
                                            b_.CreateLoad(ty, b_.CreateInBoundsGEP(ty, arows[r], ak)));
      for (int64_t v = 0; v < nv; ++v) next[r * nv + v] = b_.CreateCall(fma, {a, bv[v], acc[r * nv + v]});
    }
    llvm::Value* kn = b_.CreateAdd(kk, i64(1), "", true, true);
    kk->addIncoming(kn, b_.GetInsertBlock());
    for (size_t i = 0; i < acc.size(); ++i) acc[i]->addIncoming(next[i], b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpSLT(kn, kc), header, exit);
    b_.SetInsertPoint(exit);

    auto tile_row = [&](int64_t r) { return b_.CreateInBoundsGEP(ty, c, b_.CreateMul(i64(r), ldc)); };
    auto update = [&](llvm::Value* old, llvm::Value* a) { return b_.CreateSelect(first, a, b_.CreateFAdd(old, a)); };
    llvm::Value* full = b_.CreateAnd(b_.CreateICmpEQ(rows, i64(s.mr)), b_.CreateICmpEQ(cols, i64(s.nr)));
    auto* fast = llvm::BasicBlock::Create(ctx_, "tile.full", f);
    auto* edge = llvm::BasicBlock::Create(ctx_, "tile.edge", f);
    auto* done = llvm::BasicBlock::Create(ctx_, "tile.done", f);
    b_.CreateCondBr(full, fast, edge);
    b_.SetInsertPoint(fast);
    for (int64_t r = 0; r < s.mr; ++r) {
      llvm::Value* row = tile_row(r);
      for (int64_t v = 0; v < nv; ++v) {
        llvm::Value* addr = b_.CreateConstInBoundsGEP1_64(ty, row, v * s.vw);
        llvm::Value* old = b_.CreateAlignedLoad(vty, addr, elem_align);
        b_.CreateAlignedStore(update(old, next[r * nv + v]), addr, elem_align);
      }
    }
    b_.CreateBr(done);
    b_.SetInsertPoint(edge);
    std::vector<llvm::Constant*> lanes;
    for (int64_t l = 0; l < s.vw; ++l) lanes.push_back(b_.getInt64(l));
    llvm::Value* iota = llvm::ConstantVector::get(lanes);
    for (int64_t r = 0; r < s.mr; ++r) {
      when(b_.CreateICmpSLT(i64(r), rows), [&] {
        llvm::Value* row = tile_row(r);
        for (int64_t v = 0; v < nv; ++v) {
          llvm::Value* left = b_.CreateVectorSplat(static_cast<unsigned>(s.vw), b_.CreateSub(cols, i64(v * s.vw)));
          llvm::Value* mask = b_.CreateICmpSLT(iota, left);
          llvm::Value* addr = b_.CreateConstInBoundsGEP1_64(ty, row, v * s.vw);
          llvm::Value* old = b_.CreateMaskedLoad(vty, addr, elem_align, mask, llvm::Constant::getNullValue(vty));
          b_.CreateMaskedStore(update(old, next[r * nv + v]), addr, elem_align, mask);
        }
      });
    }
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    b_.CreateRetVoid();
    fn_ = saved_fn;
    b_.restoreIP(saved_ip);
    return f;
  }

  // Returns check_id from the entry when a class id is outside [0, init).
  void check(const Kernel& k) {
    auto* fail = llvm::BasicBlock::Create(ctx_, "check.fail", fn_);
    nest(k, all_dims(k), 0, [&] {
      memo_.assign(k.exprs.size(), nullptr);
      llvm::Value* v = value(k, k.root);
      llvm::Value* bad = b_.CreateOr(b_.CreateICmpSLT(v, b_.getInt32(0)),
                                     b_.CreateICmpSGE(v, b_.getInt32(static_cast<int32_t>(k.init))));
      auto* ok = llvm::BasicBlock::Create(ctx_, "check.ok", fn_);
      b_.CreateCondBr(bad, fail, ok);
      b_.SetInsertPoint(ok);
    });
    llvm::BasicBlock* cont = b_.GetInsertBlock();
    b_.SetInsertPoint(fail);
    b_.CreateRet(b_.getInt32(k.check_id));
    b_.SetInsertPoint(cont);
  }

  const Program& p_;
  std::string cpu_, features_;
  bool wide_ = false;  // 512-bit vectors (AVX-512); else 256-bit
  llvm::Value *args_ = nullptr, *arena_ = nullptr, *rt_ = nullptr;
  llvm::Value* slot_ = nullptr;  // in a parallel body: the thread's slot
  std::vector<llvm::Value*> held_;  // in epilogues(): the values of the earlier epilogues, by buffer
  int outlined_ = 0;
  std::set<llvm::Function*> used_;  // vector math declarations the optimizer must keep
  llvm::Module& m_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  const KernelHook& at_kernel_;
  llvm::Function* fn_ = nullptr;
  std::vector<llvm::Value*> bases_;
  std::vector<llvm::Value*> ivs_;
  std::vector<llvm::Value*> memo_;
};

}  // namespace

// One of glibc's vector math functions, referenced so that libmvec is linked
// into every program that can run generated code (the JIT resolves the
// calls from the process's symbols).
extern "C" void _ZGVdN8v_expf();

void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features, const KernelHook& at_kernel) {
  [[maybe_unused]] static void (*volatile keep_libmvec)() = &_ZGVdN8v_expf;
  Emitter(p, m, at_kernel).run(name, cpu, features);
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(m, &os)) internal_error(__FILE__, __LINE__, "generated LLVM IR is invalid: " + os.str());
}

}  // namespace gradc
