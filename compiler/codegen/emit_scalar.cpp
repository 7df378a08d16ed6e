// Scalar lowering: a kernel's fused expression (loads, constants, indices,
// elementwise ops) to LLVM values at the current loop indices: f32 tanh and
// expm1 inline (emit_math.cpp), the other functions libm calls that keep
// their vector variants so loops that make them vectorize.
#include "compiler/codegen/emitter.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>

#include "compiler/support/diagnostics.h"
#include "runtime/philox.h"

namespace gradc {

llvm::Type* KernelEmitter::type(DType t) {
  switch (t) {
    case DType::F32: return b_.getFloatTy();
    case DType::F64: return b_.getDoubleTy();
    case DType::I32: return b_.getInt32Ty();
  }
  return nullptr;
}

llvm::Value* KernelEmitter::intrinsic(llvm::Intrinsic::ID id, llvm::Value* x) {
  return b_.CreateUnaryIntrinsic(id, x);
}

// A libm function of one argument (expf / exp, tanhf / tanh ...). The call
// names glibc's vector versions (libmvec: 8 floats or 4 doubles with AVX2,
// 16 or 8 with AVX-512) as its vector variants, so loops that call it
// still vectorize.
llvm::Value* KernelEmitter::libm(const char* name, llvm::Value* x) {
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

llvm::Value* KernelEmitter::value(const Kernel& k, int e) {
  if (memo_[e]) return memo_[e];
  const KExpr& x = k.exprs[e];
  llvm::Type* ty = type(x.dtype);
  llvm::Value* r = nullptr;
  switch (x.kind) {
    case KExpr::Kind::Const:
      r = x.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(x.value))) : fconst(ty, x.value);
      break;
    case KExpr::Kind::Load:
      if (!x.args.empty()) {  // a gather: the row is a run-time value, checked before this kernel
        llvm::Value* row = b_.CreateSExt(value(k, x.args[0]), b_.getInt64Ty());
        llvm::Value* at = add(index(x.map), mul(row, x.row_stride));
        r = b_.CreateLoad(ty, b_.CreateInBoundsGEP(ty, base(x.buffer), at));
        break;
      }
      r = !held_.empty() && held_[x.buffer] ? held_[x.buffer] : b_.CreateLoad(ty, address(x.buffer, x.map));
      break;
    case KExpr::Kind::Index: r = b_.CreateTrunc(index(x.map), b_.getInt32Ty()); break;
    case KExpr::Kind::Op: r = op(k, x, ty); break;
  }
  return memo_[e] = r;
}

llvm::Value* KernelEmitter::op(const Kernel& k, const KExpr& x, llvm::Type* ty) {
  auto arg = [&](size_t i) { return value(k, x.args[i]); };
  switch (x.op) {
    case Op::Neg: return b_.CreateFNeg(arg(0));
    case Op::Exp: return libm("exp", arg(0));
    case Op::Log: return libm("log", arg(0));
    case Op::Sqrt: return intrinsic(llvm::Intrinsic::sqrt, arg(0));
    case Op::Abs: return intrinsic(llvm::Intrinsic::fabs, arg(0));
    case Op::Sin: return libm("sin", arg(0));
    case Op::Cos: return libm("cos", arg(0));
    case Op::Expm1: return ty->isFloatTy() ? expm1_f32(arg(0)) : libm("expm1", arg(0));
    case Op::Log1p: return libm("log1p", arg(0));
    case Op::Tanh: return ty->isFloatTy() ? tanh_f32(arg(0)) : libm("tanh", arg(0));
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
      // To i32 (the optimizers' index arithmetic): toward zero, saturating, NaN to 0.
      if (ty->isIntegerTy()) return b_.CreateIntrinsic(llvm::Intrinsic::fptosi_sat, {ty, from}, {v});
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
    // Not elementwise: kernels of their own (lowering.cpp), never in an expression.
    case Op::Input: case Op::Param: case Op::Constant:
    case Op::ReduceSum: case Op::ReduceMax: case Op::ReduceMin: case Op::ArgMax: case Op::MatMul:
    case Op::Reshape: case Op::Transpose: case Op::BroadcastTo: case Op::Concat: case Op::Slice: case Op::Reverse: case Op::Pad:
    case Op::OneHot:
    case Op::Window: case Op::Fold:
    case Op::Embedding: case Op::EmbeddingGrad:
    case Op::Scan: case Op::ScanOut:
      break;
    case Op::RandomUniform: return random_uniform(k, x, ty);
  }
  internal_error(__FILE__, __LINE__, fmt::format("no code for op '{}'", op_name(x.op)));
}

// Philox4x32-10 (runtime/philox.h, which this mirrors word for word) at
// counter (index, stream, step) and key (seed words), turned into a uniform
// in [0, 1) from the 24 high bits of word 0. Only integer products, shifts
// and xors: the loop around it vectorizes (32 x 32 -> 64-bit products are
// one instruction per lane with AVX2 and AVX-512).
llvm::Value* KernelEmitter::random_uniform(const Kernel& k, const KExpr& x, llvm::Type* ty) {
  llvm::Type* i32 = b_.getInt32Ty();
  llvm::Type* i64 = b_.getInt64Ty();
  llvm::Value* index = KernelEmitter::index(x.map);
  llvm::Value* step = value(k, x.args[2]);
  step = step->getType()->isIntegerTy() ? step : b_.CreateFPToUI(step, i32);
  std::array<llvm::Value*, 4> c = {b_.CreateTrunc(index, i32), b_.CreateTrunc(b_.CreateLShr(index, 32), i32),
                                   b_.getInt32(static_cast<uint32_t>(x.value)), step};
  std::array<llvm::Value*, 2> key = {value(k, x.args[0]), value(k, x.args[1])};
  auto product = [&](llvm::Value* a, uint32_t m) {
    llvm::Value* p = b_.CreateMul(b_.CreateZExt(a, i64), llvm::ConstantInt::get(i64, m));
    return std::pair{b_.CreateTrunc(b_.CreateLShr(p, 32), i32), b_.CreateTrunc(p, i32)};
  };
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) key = {b_.CreateAdd(key[0], b_.getInt32(kPhiloxW0)), b_.CreateAdd(key[1], b_.getInt32(kPhiloxW1))};
    auto [hi0, lo0] = product(c[0], kPhiloxM0);
    auto [hi1, lo1] = product(c[2], kPhiloxM1);
    c = {b_.CreateXor(b_.CreateXor(hi1, c[1]), key[0]), lo1, b_.CreateXor(b_.CreateXor(hi0, c[3]), key[1]), lo0};
  }
  llvm::Value* high = b_.CreateLShr(c[0], 8);
  return b_.CreateFMul(b_.CreateUIToFP(high, ty), fconst(ty, 0x1.0p-24));
}

}  // namespace gradc
