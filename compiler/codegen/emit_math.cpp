// tanh and expm1 of f32 values as inline polynomials.
//
// glibc's scalar tanhf goes through expm1f, two calls of 15-20 ns, and a loop
// of a few dozen elements (a small model's whole layer, or a matrix
// product's epilogue) is not worth vectorizing with libmvec's variants: xor
// (W1) spent 60 % of a train_step in __tanhf and __expm1f under load, and
// measured 475 ns a step against 400 ns with these (same run, idle machine).
// They are plain arithmetic that inlines in every loop and vectorizes with
// it, and the vector and scalar paths of a loop compute the same bits. exp
// itself stays glibc's: its expf is a fast table-driven routine and libmvec
// vectorizes it, in sums too since they vectorize in their order (jit.cpp,
// host()); an inline exp in a sum that did not vectorize measured slower
// (W2: 4.3 us against 3.6 us a step). f64 keeps libm throughout.
//
// Accuracy against libm in double over the whole float range, subnormal
// results included (tests/codegen/math_test.cpp): tanh 1.23 ulp at most,
// expm1 1.34, and the exp they use 0.92. The polynomials are Cephes's
// (S. L. Moshier, "Methods and Programs for Mathematical Functions", 1989:
// expf.c, tanhf.c), whose coefficients are minimax fits for float.
#include "compiler/codegen/emitter.h"

namespace gradc {

namespace {

// c[0] + x (c[1] + x (c[2] + ...)) by Horner's rule, with fused multiply-adds
// where the target has them (llvm.fmuladd: the same choice in the vector and
// the scalar code of one target).
llvm::Value* horner(llvm::IRBuilder<>& b, llvm::Value* x, std::initializer_list<double> c) {
  llvm::Type* t = x->getType();
  auto it = c.end();
  llvm::Value* p = llvm::ConstantFP::get(t, *--it);
  while (it != c.begin())
    p = b.CreateIntrinsic(llvm::Intrinsic::fmuladd, {t}, {p, x, llvm::ConstantFP::get(t, *--it)});
  return p;
}

}  // namespace

llvm::Value* KernelEmitter::exp_f32(llvm::Value* x) {
  llvm::Type* f = x->getType();
  llvm::Type* i = b_.getInt32Ty();
  // Outside [-104, 89] the result is 0 or inf either way; clamping keeps n in i32.
  llvm::Value* xc = b_.CreateBinaryIntrinsic(llvm::Intrinsic::minnum,
                                             b_.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, x, fconst(f, -104)),
                                             fconst(f, 89));
  // x = n ln2 + r, |r| <= ln2 / 2; ln2 in two parts so n ln2 is exact enough.
  llvm::Value* n = intrinsic(llvm::Intrinsic::floor, b_.CreateFAdd(b_.CreateFMul(xc, fconst(f, 1.44269504088896341)),
                                                                   fconst(f, 0.5)));
  llvm::Value* r = b_.CreateFSub(xc, b_.CreateFMul(n, fconst(f, 0.693359375)));
  r = b_.CreateFSub(r, b_.CreateFMul(n, fconst(f, -2.12194440e-4)));
  // e^r = 1 + r + r^2 P(r)
  llvm::Value* p = horner(b_, r, {5.0000001201E-1, 1.6666665459E-1, 4.1665795894E-2, 8.3334519073E-3,
                                  1.3981999507E-3, 1.9875691500E-4});
  p = b_.CreateFAdd(b_.CreateFAdd(b_.CreateFMul(p, b_.CreateFMul(r, r)), r), fconst(f, 1));
  // times 2^n as two factors 2^(n/2) 2^(n - n/2), each a normal float, so
  // results that are subnormal or overflow round once, correctly.
  llvm::Value* ni = b_.CreateFPToSI(n, i);
  llvm::Value* n1 = b_.CreateAShr(ni, 1);
  llvm::Value* n2 = b_.CreateSub(ni, n1);
  auto pow2 = [&](llvm::Value* k) {
    return b_.CreateBitCast(b_.CreateShl(b_.CreateAdd(k, b_.getInt32(127)), 23), f);
  };
  llvm::Value* y = b_.CreateFMul(b_.CreateFMul(p, pow2(n1)), pow2(n2));
  return b_.CreateSelect(b_.CreateFCmpUNO(x, x), x, y);  // NaN stays NaN
}

llvm::Value* KernelEmitter::expm1_f32(llvm::Value* x) {
  llvm::Type* f = x->getType();
  // |x| < ln2 / 2: the Taylor series to x^7 (its remainder is below 2e-8 of
  // the result there), which keeps the digits exp(x) - 1 cancels; else exp(x) - 1.
  llvm::Value* small = horner(b_, x, {1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040});
  small = b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {f}, {b_.CreateFMul(x, x), small, x});
  llvm::Value* big = b_.CreateFSub(exp_f32(x), fconst(f, 1));
  return b_.CreateSelect(b_.CreateFCmpOLT(intrinsic(llvm::Intrinsic::fabs, x), fconst(f, 0.34657359)), small, big);
}

llvm::Value* KernelEmitter::tanh_f32(llvm::Value* x) {
  llvm::Type* f = x->getType();
  llvm::Value* ax = intrinsic(llvm::Intrinsic::fabs, x);
  // |x| < 0.625: x + x^3 P(x^2)
  llvm::Value* z = b_.CreateFMul(x, x);
  llvm::Value* p = horner(b_, z, {-3.33332819422E-1, 1.33314422036E-1, -5.37397155531E-2, 2.06390887954E-2,
                                  -5.70498872745E-3});
  llvm::Value* small = b_.CreateIntrinsic(llvm::Intrinsic::fmuladd, {f}, {b_.CreateFMul(p, z), x, x});
  // else 1 - 2 / (e^(2|x|) + 1), with x's sign (1 for large |x|: e^(2|x|) is inf)
  llvm::Value* e = exp_f32(b_.CreateFAdd(ax, ax));
  llvm::Value* big = b_.CreateFSub(fconst(f, 1), b_.CreateFDiv(fconst(f, 2), b_.CreateFAdd(e, fconst(f, 1))));
  big = b_.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, big, x);
  return b_.CreateSelect(b_.CreateFCmpOLT(ax, fconst(f, 0.625)), small, big);
}

}  // namespace gradc
