// Reduction kernels (sum, max, min). Long sums are blocked so that they stay
// accurate: one f32 accumulator over 2^20 squared differences drifts about
// 5e-4 relative (each addend is rounded against an ever larger running sum),
// where PyTorch and the interpreter are within 1e-8. Max and min are exact in
// any order and keep the plain loop.
//
// A blocked sum, per output element:
//   - the reduced elements, in row-major order of the reduced dims (adjacent
//     reduced dims that every access walks contiguously are merged into one,
//     dims of size 1 dropped), are cut into blocks of at most kSumBlock: the
//     innermost reduced dim in runs of kSumBlock elements (the last run
//     shorter), or, when it is shorter than that, runs of as many of its
//     rows as fit (a [256, 10] loss: blocks of 102 rows);
//   - a block is one loop whose additions may be reassociated, so LLVM keeps
//     it in several vector accumulators (as matmul_dot's dot products);
//   - block sums are combined pairwise, as a binary counter carries: after
//     block b, the partial sums of the levels where b has trailing ones are
//     folded into it, s = stack[l] + s, and it lands on the next level; at the
//     end the levels left (the set bits of the block count) are added from
//     the lowest up. For 2^k blocks that is a balanced tree.
// The tree depends only on the kernel's shape, and a reduction runs on one
// thread, so results are the same for every thread count. The error grows
// with the log of the length instead of the length.
//
// Sums of at most kSumBlock elements keep the loop they always had (same code,
// same results, same cost): one accumulator, in order. So do, for now, sums
// down the columns of a wide matrix (more than kMaxAcross kept elements
// inside the reduced dims): blocking those without losing their contiguous
// row-by-row loop needs per-level rows of partial sums in scratch memory.
#include "compiler/codegen/emitter.h"

#include <llvm/IR/Intrinsics.h>

namespace gradc {
namespace {

// Elements per block of a blocked sum; sums no longer than this are not blocked.
constexpr int64_t kSumBlock = 1024;
// Levels of the pairwise combination: one per bit of the block count.
constexpr int64_t kSumLevels = 64;
// A blocked sum computes its outputs one after the other, so kept dims inside
// the reduced ones (a sum down the columns) are walked across; it is used only
// when those kept dims hold at most this many elements (one cache line of
// f32), see blocked_sum.
constexpr int64_t kMaxAcross = 16;

// Every index map a kernel's expression reads through (loads and index values).
std::vector<Affine*> expr_maps(Kernel& k) {
  std::vector<Affine*> maps;
  for (KExpr& x : k.exprs)
    if (x.kind == KExpr::Kind::Load || x.kind == KExpr::Kind::Index) maps.push_back(&x.map);
  return maps;
}

}  // namespace

void KernelEmitter::reduce(const Kernel& k) {
  if (k.reduce_op == Op::ReduceSum && blocked_sum(k)) return;
  fill(k.out, k.init);
  llvm::Type* out_ty = type(p_.buffers[k.out].dtype);
  auto fresh = [&] { memo_.assign(k.exprs.size(), nullptr); };
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
    return;
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
}

// The blocked sum (see the top of the file); false, emitting nothing, when
// the sum is short enough for the plain loop.
bool KernelEmitter::blocked_sum(const Kernel& k0) {
  int64_t length = 1;
  for (size_t d = 0; d < k0.dims.size(); ++d)
    if (k0.out_map.strides[d] == 0) length *= k0.dims[d];
  if (length <= kSumBlock) return false;

  // The reduced dims, merged where the accesses allow: dims d1 < d2, both
  // reduced, are one dim when every map has stride(d1) = stride(d2) * size(d2).
  // The merged dim is d2 with both sizes; d1 becomes a dim of size 1.
  Kernel k = k0;
  std::vector<Affine*> maps = expr_maps(k);
  std::vector<size_t> reduced, kept;
  for (size_t d = 0; d < k.dims.size(); ++d)
    if (k.dims[d] > 1) (k.out_map.strides[d] == 0 ? reduced : kept).push_back(d);
  for (size_t i = reduced.size(); i-- > 1;) {
    size_t d1 = reduced[i - 1], d2 = reduced[i];
    bool contiguous = true;
    for (const Affine* m : maps) contiguous &= m->strides[d1] == m->strides[d2] * k.dims[d2];
    if (!contiguous) continue;
    k.dims[d2] *= k.dims[d1];
    k.dims[d1] = 1;
    for (Affine* m : maps) m->strides[d1] = 0;
    reduced.erase(reduced.begin() + static_cast<std::ptrdiff_t>(i - 1));
  }
  // Kept dims inside a reduced one: each output element is a strided walk.
  // Wide ones (a bias gradient, [B, H] summed over B) keep the plain loop,
  // which adds whole contiguous rows into the outputs: the walk made a
  // [4096, 1024] column sum 45 times slower. Such sums are not blocked yet.
  int64_t across = 1;
  for (size_t d : kept)
    if (d > reduced.front()) across *= k.dims[d];
  if (across > kMaxAcross) return false;

  // A block is `per` steps along dim `run`: elements of the innermost
  // reduced dim, or, when that is shorter than a block, whole rows of it
  // (steps along the reduced dim outside it).
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  size_t inner = reduced.back();
  int64_t n = k.dims[inner];
  bool rows = n < kSumBlock && reduced.size() >= 2;
  size_t run = rows ? reduced[reduced.size() - 2] : inner;
  int64_t per = rows ? kSumBlock / n : kSumBlock;
  int64_t chunks = k.dims[run] / per, rest = k.dims[run] % per;
  std::vector<size_t> outer(reduced.begin(), reduced.end() - (rows ? 2 : 1));
  int64_t blocks = chunks + (rest ? 1 : 0);
  for (size_t d : outer) blocks *= k.dims[d];
  // The partial sums of each level and the blocks done so far, in the frame.
  llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
  auto* stack_ty = llvm::ArrayType::get(ty, kSumLevels);
  llvm::Value* stack = entry_b.CreateAlloca(stack_ty, nullptr, "sum.levels");
  llvm::Value* done = entry_b.CreateAlloca(b_.getInt64Ty(), nullptr, "sum.blocks");
  auto level = [&](llvm::Value* l) { return b_.CreateInBoundsGEP(stack_ty, stack, {i64(0), l}); };

  // One block: steps [lo, lo + len) along `run`, in one accumulator.
  auto element = [&](llvm::Value* acc) {
    memo_.assign(k.exprs.size(), nullptr);
    llvm::Value* s = b_.CreateFAdd(acc, value(k, k.root));
    llvm::cast<llvm::Instruction>(s)->setHasAllowReassoc(true);
    return s;
  };
  auto block = [&](llvm::Value* lo, int64_t len) {
    return loop_acc(len, fconst(ty, 0), [&](llvm::Value* i, llvm::Value* acc) {
      ivs_[run] = add(lo, i);
      if (!rows) return element(acc);
      return loop_acc(n, acc, [&](llvm::Value* j, llvm::Value* a) {
        ivs_[inner] = j;
        return element(a);
      });
    });
  };
  // Folds block sum s into the levels: while (c & 1) { s = stack[l] + s; c >>= 1; ++l; } stack[l] = s.
  auto push = [&](llvm::Value* s) {
    llvm::Value* count = b_.CreateLoad(b_.getInt64Ty(), done);
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* header = llvm::BasicBlock::Create(ctx_, "sum.carry", fn_);
    auto* body = llvm::BasicBlock::Create(ctx_, "sum.fold", fn_);
    auto* exit = llvm::BasicBlock::Create(ctx_, "sum.land", fn_);
    b_.CreateBr(header);
    b_.SetInsertPoint(header);
    llvm::PHINode* l = b_.CreatePHI(b_.getInt64Ty(), 2, "level");
    llvm::PHINode* c = b_.CreatePHI(b_.getInt64Ty(), 2, "carry");
    llvm::PHINode* sum = b_.CreatePHI(ty, 2, "partial");
    l->addIncoming(i64(0), pre);
    c->addIncoming(count, pre);
    sum->addIncoming(s, pre);
    b_.CreateCondBr(b_.CreateTrunc(c, b_.getInt1Ty()), body, exit);
    b_.SetInsertPoint(body);
    llvm::Value* folded = b_.CreateFAdd(b_.CreateLoad(ty, level(l)), sum);
    l->addIncoming(b_.CreateAdd(l, i64(1), "", true, true), body);
    c->addIncoming(b_.CreateLShr(c, i64(1)), body);
    sum->addIncoming(folded, body);
    b_.CreateBr(header);
    b_.SetInsertPoint(exit);
    b_.CreateStore(sum, level(l));
    b_.CreateStore(add(count, i64(1)), done);
  };

  for (size_t d = 0; d < k.dims.size(); ++d)
    if (k.dims[d] == 1) ivs_[d] = i64(0);
  nest(k, kept, 0, [&] {
    b_.CreateStore(i64(0), done);
    nest(k, outer, 0, [&] {
      if (chunks > 0) loop(chunks, [&](llvm::Value* c) { push(block(mul(c, per), per)); });
      if (rest > 0) push(block(i64(chunks * per), rest));
    });
    // The levels left hold the set bits of the block count, lowest (latest) first.
    llvm::Value* total = nullptr;
    for (int64_t l = 0; l < kSumLevels; ++l) {
      if (!((blocks >> l) & 1)) continue;
      llvm::Value* v = b_.CreateLoad(ty, level(i64(l)));
      total = total ? b_.CreateFAdd(v, total) : v;
    }
    for (size_t d : reduced) ivs_[d] = i64(0);
    b_.CreateStore(total, address(k.out, k.out_map));
  });
  return true;
}

}  // namespace gradc
