// The LLVM emitter's core: the entry function, and per kernel its loop
// nest (elementwise kernels, on the thread pool when large; reductions;
// argmax; run-time checks). Matrix products are emitted by emit_matmul.cpp
// and emit_gemm.cpp, reductions by emit_reduce.cpp, loops by emit_loops.cpp,
// expressions by emit_scalar.cpp.
#include "compiler/codegen/llvm_emit.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <algorithm>
#include <limits>

#include "compiler/codegen/emitter.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// Elementwise kernels of at least this many elements run on the thread pool.
constexpr int64_t kParallelElements = int64_t{1} << 16;

// An entry of more kernels than this is compiled without optimization. Its
// kernels share one function, and LLVM's machine scheduler and register
// allocator take time quadratic in the number of kernels there (each kernel's
// loop is a scheduling region, and the buffers' base pointers are used in all
// of them): 16,000 kernels took 80 s of machine code. Real models have tens
// of kernels; only generated, very deep ones get here, and they still run.
constexpr size_t kMaxOptimizedKernels = 256;

}  // namespace

void KernelEmitter::run(const std::string& name, const std::string& cpu, const std::string& features) {
  auto* fty = llvm::FunctionType::get(b_.getInt32Ty(), {b_.getPtrTy(), b_.getPtrTy(), b_.getPtrTy()}, false);
  fn_ = llvm::Function::Create(fty, llvm::Function::ExternalLinkage, name, m_);
  fn_->addFnAttr(llvm::Attribute::NoUnwind);
  if (p_.kernels.size() > kMaxOptimizedKernels) {
    fn_->addFnAttr(llvm::Attribute::OptimizeNone);
    fn_->addFnAttr(llvm::Attribute::NoInline);
  }
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
  // In name order, so the printed IR does not depend on pointer values.
  std::vector<llvm::GlobalValue*> keep(used_.begin(), used_.end());
  std::sort(keep.begin(), keep.end(),
            [](const llvm::GlobalValue* a, const llvm::GlobalValue* b) { return a->getName() < b->getName(); });
  if (!keep.empty()) llvm::appendToCompilerUsed(m_, keep);
}

// Base pointers of every buffer, from the current function's args and arena.
void KernelEmitter::load_bases() {
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

void KernelEmitter::fill(int buffer, double v) {
  const Buffer& buf = p_.buffers[buffer];
  llvm::Type* ty = type(buf.dtype);
  llvm::Value* c = buf.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(v))) : fconst(ty, v);
  loop(buf.elems, [&](llvm::Value* i) { b_.CreateStore(c, b_.CreateInBoundsGEP(ty, bases_[buffer], i)); });
}

void KernelEmitter::kernel(const Kernel& k) {
  if (at_kernel_) at_kernel_(b_, static_cast<size_t>(&k - p_.kernels.data()));
  memo_.assign(k.exprs.size(), nullptr);
  ivs_.assign(k.dims.size(), nullptr);
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
    case Kernel::Kind::Reduce: reduce(k); break;
    case Kernel::Kind::ArgMax: argmax(k); break;
    case Kernel::Kind::MatMul: matmul(k); break;
    case Kernel::Kind::CheckRange: check(k); break;
    case Kernel::Kind::ScatterAdd: scatter_add(k); break;
  }
}

// The first maximum along `axis` (a NaN wins, as in PyTorch).
void KernelEmitter::argmax(const Kernel& k) {
  std::vector<size_t> outer;
  for (size_t d = 0; d < k.dims.size(); ++d)
    if (static_cast<int>(d) != k.axis) outer.push_back(d);
  nest(k, outer, 0, [&] {
    llvm::Type* ty = type(k.exprs[k.root].dtype);
    // Carried: the best value so far and its index.
    llvm::Value* lowest = fconst(ty, -std::numeric_limits<double>::infinity());
    std::vector<llvm::Value*> best =
        loop_carry(k.dims[k.axis], {lowest, i64(0)}, [&](llvm::Value* i, const std::vector<llvm::Value*>& at) {
          ivs_[k.axis] = i;
          memo_.assign(k.exprs.size(), nullptr);
          llvm::Value* v = value(k, k.root);
          llvm::Value* take = b_.CreateOr(b_.CreateFCmpOGT(v, at[0]),
                                          b_.CreateAnd(b_.CreateFCmpUNO(v, v), b_.CreateFCmpORD(at[0], at[0])));
          return std::vector<llvm::Value*>{b_.CreateSelect(take, v, at[0]), b_.CreateSelect(take, i, at[1])};
        });
    ivs_[k.axis] = i64(0);  // the output map ignores the axis
    b_.CreateStore(b_.CreateTrunc(best[1], b_.getInt32Ty()), address(k.out, k.out_map));
  });
}

// Returns check_id from the entry when a class id is outside [0, init).
void KernelEmitter::check(const Kernel& k) {
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

// out = 0, then out[row(i) * row_stride + out_map(i)] += expr(i) in loop
// order, on one thread: each element's additions happen in the order of the
// ids whatever the thread count (the inner loop, along a row, vectorizes).
void KernelEmitter::scatter_add(const Kernel& k) {
  fill(k.out, 0);
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  nest(k, all_dims(k), 0, [&] {
    memo_.assign(k.exprs.size(), nullptr);
    llvm::Value* row = b_.CreateSExt(value(k, k.row), b_.getInt64Ty());
    llvm::Value* addr = b_.CreateInBoundsGEP(ty, bases_[k.out], add(index(k.out_map), mul(row, k.row_stride)));
    b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, addr), value(k, k.root)), addr);
  });
}

// One of glibc's vector math functions, referenced so that libmvec is linked
// into every program that can run generated code (the JIT resolves the
// calls from the process's symbols).
extern "C" void _ZGVdN8v_expf();

void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features, const KernelHook& at_kernel) {
  [[maybe_unused]] static void (*volatile keep_libmvec)() = &_ZGVdN8v_expf;
  KernelEmitter(p, m, at_kernel).run(name, cpu, features);
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(m, &os)) internal_error(__FILE__, __LINE__, "generated LLVM IR is invalid: " + os.str());
}

}  // namespace gradc
