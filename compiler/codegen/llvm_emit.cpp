// Emitting LLVM IR for kernel programs: one loop nest per kernel, the fused
// expression evaluated in the innermost loop.
#include "compiler/codegen/llvm_emit.h"

#include <fmt/format.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <functional>

#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

class Emitter {
 public:
  Emitter(const Program& p, llvm::Module& m) : p_(p), m_(m), ctx_(m.getContext()), b_(ctx_) {}

  void run(const std::string& name, const std::string& cpu, const std::string& features) {
    auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {b_.getPtrTy(), b_.getPtrTy(), b_.getPtrTy()}, false);
    fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m_);
    fn_->addFnAttr(llvm::Attribute::NoUnwind);
    if (!cpu.empty()) fn_->addFnAttr("target-cpu", cpu);
    if (!features.empty()) fn_->addFnAttr("target-features", features);
    fn_->getArg(0)->setName("args");
    fn_->getArg(1)->setName("arena");
    fn_->getArg(2)->setName("rt");
    b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn_));
    // Base pointers of every buffer.
    for (const Buffer& buf : p_.buffers) {
      llvm::Value* base;
      if (buf.kind == Buffer::Kind::Arg) {
        base = b_.CreateLoad(b_.getPtrTy(), b_.CreateConstGEP1_64(b_.getPtrTy(), fn_->getArg(0), buf.arg),
                             fmt::format("arg.{}", buf.name));
      } else {
        base = b_.CreateConstGEP1_64(b_.getInt8Ty(), fn_->getArg(1), buf.offset);
      }
      bases_.push_back(base);
    }
    for (const Kernel& k : p_.kernels) kernel(k);
    b_.CreateRet(b_.getInt32(0));
  }

 private:
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
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "loop", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, "after", fn_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* i = b_.CreatePHI(b_.getInt64Ty(), 2, "i");
    i->addIncoming(b_.getInt64(0), pre);
    body(i);
    llvm::Value* next = b_.CreateAdd(i, b_.getInt64(1), "i.next", true, true);
    i->addIncoming(next, b_.GetInsertBlock());
    b_.CreateCondBr(b_.CreateICmpSLT(next, b_.getInt64(n)), header, exit);
    b_.SetInsertPoint(exit);
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

  // A libm function of one argument (expm1f / expm1 ...).
  llvm::Value* libm(const char* name, llvm::Value* x) {
    bool f32 = x->getType()->isFloatTy();
    std::string fname = f32 ? std::string(name) + "f" : name;
    llvm::FunctionCallee f = m_.getOrInsertFunction(fname, x->getType(), x->getType());
    if (auto* fn = llvm::dyn_cast<llvm::Function>(f.getCallee())) {
      fn->setDoesNotThrow();
      fn->setOnlyAccessesInaccessibleMemory();
    }
    return b_.CreateCall(f, {x});
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
      case KExpr::Kind::Load: r = b_.CreateLoad(ty, address(x.buffer, x.map)); break;
      case KExpr::Kind::Index: r = b_.CreateTrunc(index(x.map), b_.getInt32Ty()); break;
      case KExpr::Kind::Op: r = op(k, x, ty); break;
    }
    return memo_[e] = r;
  }

  llvm::Value* op(const Kernel& k, const KExpr& x, llvm::Type* ty) {
    auto arg = [&](size_t i) { return value(k, x.args[i]); };
    switch (x.op) {
      case Op::Neg: return b_.CreateFNeg(arg(0));
      case Op::Exp: return intrinsic(llvm::Intrinsic::exp, arg(0));
      case Op::Log: return intrinsic(llvm::Intrinsic::log, arg(0));
      case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, arg(0));
      case Op::Abs: return intrinsic(llvm::Intrinsic::fabs, arg(0));
      case Op::Sin: return intrinsic(llvm::Intrinsic::sin, arg(0));
      case Op::Cos: return intrinsic(llvm::Intrinsic::cos, arg(0));
      case Op::Expm1: return libm("expm1", arg(0));
      case Op::Log1p: return libm("log1p", arg(0));
      case Op::Tanh: return libm("tanh", arg(0));
      case Op::Erf: return libm("erf", arg(0));
      case Op::Rsqrt: return b_.CreateFDiv(fconst(ty, 1), intrinsic(llvm::Intrinsic::sqrt, arg(0)));
      case Op::Sigmoid:  // 1 / (1 + exp(-x))
        return b_.CreateFDiv(fconst(ty, 1), b_.CreateFAdd(fconst(ty, 1), intrinsic(llvm::Intrinsic::exp, b_.CreateFNeg(arg(0)))));
      case Op::Softplus: {  // x > 20 ? x : log1p(exp(x)), PyTorch's threshold
        llvm::Value* v = arg(0);
        return b_.CreateSelect(b_.CreateFCmpOGT(v, fconst(ty, 20)), v, libm("log1p", intrinsic(llvm::Intrinsic::exp, v)));
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

  std::vector<size_t> all_dims(const Kernel& k) {
    std::vector<size_t> order(k.dims.size());
    for (size_t d = 0; d < order.size(); ++d) order[d] = d;
    return order;
  }

  void fill(int buffer, double v) {
    const Buffer& buf = p_.buffers[buffer];
    llvm::Type* ty = type(buf.dtype);
    llvm::Value* c = buf.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(v))) : fconst(ty, v);
    loop(buf.elems, [&](llvm::Value* i) { b_.CreateStore(c, b_.CreateInBoundsGEP(ty, bases_[buffer], i)); });
  }

  void kernel(const Kernel& k) {
    memo_.assign(k.exprs.size(), nullptr);
    ivs_.assign(k.dims.size(), nullptr);
    llvm::Type* out_ty = k.out >= 0 ? type(p_.buffers[k.out].dtype) : nullptr;
    auto fresh = [&] { memo_.assign(k.exprs.size(), nullptr); };
    switch (k.kind) {
      case Kernel::Kind::Elementwise:
        nest(k, all_dims(k), 0, [&] {
          fresh();
          b_.CreateStore(value(k, k.root), address(k.out, k.out_map));
        });
        break;
      case Kernel::Kind::Reduce:
        fill(k.out, k.init);
        nest(k, all_dims(k), 0, [&] {
          fresh();
          llvm::Value* addr = address(k.out, k.out_map);
          llvm::Value* acc = b_.CreateLoad(out_ty, addr);
          llvm::Value* v = value(k, k.root);
          llvm::Value* r = k.reduce_op == Op::ReduceSum ? b_.CreateFAdd(acc, v)
                           : k.reduce_op == Op::ReduceMax ? b_.CreateBinaryIntrinsic(llvm::Intrinsic::maximum, acc, v)
                                                          : b_.CreateBinaryIntrinsic(llvm::Intrinsic::minimum, acc, v);
          b_.CreateStore(r, addr);
        });
        break;
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
    size_t batch = k.dims.size() - 3;
    // With B transposed (contiguous along k, strided along n) and A contiguous
    // along k, each C element is a dot product of two contiguous rows.
    if (k.a_map.strides[batch + 2] == 1 && k.b_map.strides[batch + 2] == 1 && k.b_map.strides[batch + 1] != 1)
      return matmul_dot(k);
    fill(k.out, 0);
    int64_t M = k.dims[batch], N = k.dims[batch + 1], K = k.dims[batch + 2];
    int64_t nt = tile(N, 256), kt = tile(K, 128);
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    std::vector<size_t> batch_dims;
    for (size_t d = 0; d < batch; ++d) batch_dims.push_back(d);
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
        if (k.epi_root < 0) return;
        ivs_[batch + 2] = b_.getInt64(0);
        loop(M, [&](llvm::Value* i) {
          ivs_[batch] = i;
          loop(nt, [&](llvm::Value* jj) {
            column(jt, jj);
            memo_.assign(k.exprs.size(), nullptr);
            b_.CreateStore(value(k, k.epi_root), address(k.epi_out, k.epi_map));
          });
        });
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
    std::vector<size_t> order;
    for (size_t d = 0; d < batch + 2; ++d) order.push_back(d);
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
      if (k.epi_root >= 0) {
        memo_.assign(k.exprs.size(), nullptr);
        b_.CreateStore(value(k, k.epi_root), address(k.epi_out, k.epi_map));
      }
    });
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
  llvm::Module& m_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  llvm::Function* fn_ = nullptr;
  std::vector<llvm::Value*> bases_;
  std::vector<llvm::Value*> ivs_;
  std::vector<llvm::Value*> memo_;
};

}  // namespace

void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features) {
  Emitter(p, m).run(name, cpu, features);
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(m, &os)) internal_error(__FILE__, __LINE__, "generated LLVM IR is invalid: " + os.str());
}

}  // namespace gradc
