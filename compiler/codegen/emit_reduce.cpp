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
// Sums of at most kSumBlock elements into one element (a loss, a mean) add
// term i into lane i mod kTotalLanes, in order, and the lanes pairwise at
// the end (short_total). Other sums of at most kSumBlock elements (a row's
// sum: a softmax's denominator) keep the plain loop: one accumulator, in
// order, which LLVM vectorizes in its order (jit.cpp).
//
// Sums down the columns of a wide matrix (the innermost dim kept, more than
// kMaxAcross kept elements inside the reduced dims: a bias gradient, [B, H]
// summed over B) would walk memory one element per row if summed an output
// at a time. They keep the plain loop's order instead, a tile of columns at a
// time: a block adds its kColumnBlock rows into a row of partial sums, and the
// levels of the pairwise combination are rows of partial sums too (in the
// frame, one per bit of the block count).
#include "compiler/codegen/emitter.h"

#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <bit>

namespace gradc {
namespace {

// Accumulators of a short sum into one element (short_total): a power of two.
constexpr int64_t kTotalLanes = 16;
// Elements per block of a blocked sum; sums no longer than this are not blocked.
constexpr int64_t kSumBlock = 1024;
// Levels of the pairwise combination: one per bit of the block count.
constexpr int64_t kSumLevels = 64;
// A blocked sum computes its outputs one after the other, so kept dims inside
// the reduced ones (a sum down the columns) are walked across; it is used only
// when those kept dims hold at most this many elements (one cache line of
// f32), see blocked_sum.
constexpr int64_t kMaxAcross = 16;
// A column sum's blocks: rows of at most this many elements per column,
// added in order (128 keeps the in-block error near 1e-7 relative; a block
// costs one pass over the levels' rows, under 2 % of its additions).
constexpr int64_t kColumnBlock = 128;
// Columns summed at once: as many as the block's row and the levels' rows
// fit in kColumnFrameBytes of the frame (a [4096, 1024] sum: 7 rows of all
// 1024 columns, read as the plain loop reads them), at least kMinColumnTile
// (1 KiB of f32 a row read, 16 whole cache lines; narrower tiles measured
// slower as each row read starts a new page).
constexpr int64_t kColumnFrameBytes = 64 << 10;
constexpr int64_t kMinColumnTile = 256;

// Every index map a kernel's expression reads through (loads, index values,
// and the element indices that random ops count with).
std::vector<Affine*> expr_maps(Kernel& k) {
  std::vector<Affine*> maps;
  for (KExpr& x : k.exprs)
    if (x.kind == KExpr::Kind::Load || x.kind == KExpr::Kind::Index || x.op == Op::RandomUniform) maps.push_back(&x.map);
  return maps;
}

}  // namespace

void KernelEmitter::reduce(const Kernel& k0) {
  if (k0.reduce_op == Op::ReduceSum && blocked_sum(k0)) return;
  // The plain loop: adjacent dims that every access walks as one are one
  // loop (the same operations in the same order), so a max pool's 7 x 7
  // maps are a row of 49 that vectorizes.
  const Kernel k = collapse_dims(k0);
  if (k.rows_size >= 0) bound_rows(&k, 0, k.dims[0] / k.rows_capacity);
  // (A sum into one element: one dim after collapse_dims, reduced.)
  if (k.reduce_op == Op::ReduceSum && k.dims.size() == 1 && k.out_map.strides[0] == 0) return short_total(k);
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
  // Runs the nest over `dims` (dim 0 first): on the thread pool, a range of
  // dim 0 per task, when each index of dim 0 writes its own slab of the
  // output (a fold's images, a pool's images) and the kernel is large; every
  // output element then gets its operations from one task, in the same order.
  auto over = [&](const std::vector<size_t>& dims, const std::function<void(const std::vector<size_t>&)>& nest_rest) {
    if (dims.empty() || dims[0] != 0 || !own_slabs(k)) return nest_rest(dims);
    std::vector<size_t> rest(dims.begin() + 1, dims.end());
    parallel_ranges(k.dims[0], {}, [&](llvm::Value* lo, llvm::Value* hi) {
      loop_range(lo, bounded(0) ? smin(hi, rows_end()) : hi, [&](llvm::Value* i) {
        ivs_[0] = i;
        nest_rest(rest);
      });
    });
  };
  if (k.out_map.strides[inner] != 0) {
    over(order, [&](const std::vector<size_t>& dims) {
      nest_vectorized(k, dims, [&] {
        fresh();
        llvm::Value* addr = address(k.out, k.out_map);
        b_.CreateStore(combine(b_.CreateLoad(out_ty, addr), value(k, k.root)), addr);
      });
    });
    return;
  }
  // The innermost loop reduces into one element: its partial result
  // stays in a register (same order of operations), stored after the
  // loop, so the loop body has no store and what it reads that does not
  // depend on the inner index (a row's log-sum) is hoisted out of it.
  order.pop_back();
  over(order, [&](const std::vector<size_t>& dims) {
    nest(k, dims, 0, [&] {
      ivs_[inner] = i64(0);
      llvm::Value* addr = address(k.out, k.out_map);
      llvm::Value* r = loop_carry(extent(k, inner), {b_.CreateLoad(out_ty, addr)},
                                  [&](llvm::Value* i, const std::vector<llvm::Value*>& acc) {
                                    ivs_[inner] = i;
                                    fresh();
                                    return std::vector<llvm::Value*>{combine(acc[0], value(k, k.root))};
                                  })[0];
      b_.CreateStore(r, addr);
    });
  });
}

// A short sum into one element (a loss, a mean; after collapse_dims one
// loop of at most kSumBlock terms): term i goes to accumulator i mod
// kTotalLanes, each accumulator adds its terms in order, and the
// accumulators are added pairwise at the end. The order depends only on
// the terms' positions, not on how many there are, so a capacity compile
// stopping at n terms adds them as the model compiled for n does; and the
// kTotalLanes chains are independent, where one chain of dependent
// additions took 128 latencies for W2's 128-term loss (0.1 us of 1.5).
// A last, partial group of terms reads the last term again (in bounds) and
// adds zero for it.
void KernelEmitter::short_total(const Kernel& k) {
  const size_t inner = 0;
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  llvm::Value* n = extent(k, inner);
  const bool whole = !bounded(inner) && k.dims[inner] % kTotalLanes == 0;
  llvm::Value* groups = b_.CreateUDiv(add(n, i64(kTotalLanes - 1)), i64(kTotalLanes));
  // The accumulators in the frame: each group is then one loop over the
  // lanes with no dependence between its iterations, which vectorizes as
  // consecutive terms (the terms' vector functions included) and adds to
  // the accumulators in the order of the scalar code.
  llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
  auto* lanes_ty = llvm::ArrayType::get(ty, kTotalLanes);
  llvm::Value* lanes = entry_b.CreateAlloca(lanes_ty, nullptr, "total.lanes");
  auto lane_at = [&](llvm::Value* j) { return b_.CreateInBoundsGEP(lanes_ty, lanes, {i64(0), j}); };
  b_.CreateMemSet(lanes, b_.getInt8(0), kTotalLanes * dtype_size(p_.buffers[k.out].dtype), llvm::Align(4));
  loop_range(i64(0), groups, [&](llvm::Value* g) {
    vectorize_next_loop_ = true;
    loop(kTotalLanes, [&](llvm::Value* j) {
      llvm::Value* i = add(mul(g, kTotalLanes), j);
      ivs_[inner] = whole ? i : smin(i, b_.CreateSub(n, i64(1)));
      memo_.assign(k.exprs.size(), nullptr);
      llvm::Value* term = value(k, k.root);
      if (!whole) term = b_.CreateSelect(b_.CreateICmpSLT(i, n), term, fconst(ty, 0));
      llvm::Value* at = lane_at(j);
      b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, at), term), at);
    });
  });
  std::vector<llvm::Value*> acc;
  for (int64_t j = 0; j < kTotalLanes; ++j) acc.push_back(b_.CreateLoad(ty, lane_at(i64(j))));
  for (size_t width = acc.size(); width > 1; width /= 2)
    for (size_t j = 0; j < width / 2; ++j) acc[j] = b_.CreateFAdd(acc[2 * j], acc[2 * j + 1]);
  ivs_[inner] = i64(0);
  b_.CreateStore(acc[0], address(k.out, k.out_map));
}

// Whether a plain reduction is large enough for the thread pool and each
// index of its dim 0 writes a slab of the output no other index touches:
// dim 0's output stride is larger than the farthest the other dims reach.
bool KernelEmitter::own_slabs(const Kernel& k) {
  if (k.dims.size() < 2 || k.dims[0] < 2 || k.out_map.strides[0] <= 0) return false;
  int64_t reach = 0, elems = k.dims[0];
  for (size_t d = 1; d < k.dims.size(); ++d) {
    if (k.out_map.strides[d] < 0) return false;
    reach += k.out_map.strides[d] * (k.dims[d] - 1);
    elems *= k.dims[d];
  }
  return reach < k.out_map.strides[0] && elems >= kParallelElements;
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
  SumShape s{k0, {}, {}};
  Kernel& k = s.k;
  std::vector<Affine*> maps = expr_maps(k);
  for (size_t d = 0; d < k.dims.size(); ++d)
    if (k.dims[d] > 1) (k.out_map.strides[d] == 0 ? s.reduced : s.kept).push_back(d);
  // A row bound stops dim 0 early (at n * unit: B may be merged with the
  // axes after it); it follows dim 0 into the dim it merges with.
  int64_t rows_unit = k.rows_size >= 0 ? k.dims[0] / k.rows_capacity : 1;
  if (k.rows_size >= 0) s.rows_dim = 0;
  for (size_t i = s.reduced.size(); i-- > 1;) {
    size_t d1 = s.reduced[i - 1], d2 = s.reduced[i];
    bool contiguous = true;
    for (const Affine* m : maps) contiguous &= m->strides[d1] == m->strides[d2] * k.dims[d2];
    if (!contiguous) continue;
    if (s.rows_dim == d1) s.rows_dim = d2, rows_unit *= k.dims[d2];
    k.dims[d2] *= k.dims[d1];
    k.dims[d1] = 1;
    for (Affine* m : maps) m->strides[d1] = 0;
    s.reduced.erase(s.reduced.begin() + static_cast<std::ptrdiff_t>(i - 1));
  }
  for (size_t d = 0; d < k.dims.size(); ++d)
    if (k.dims[d] == 1) ivs_[d] = i64(0);
  // A kept dim stops early in its loop (nest); a reduced one by its blocks
  // (each_block) or, where it is not the dim cut into blocks, by a mask.
  if (s.rows_dim != SIZE_MAX) {
    if (k.out_map.strides[s.rows_dim] != 0) {
      bound_rows(&k, s.rows_dim, rows_unit);
      s.rows_dim = SIZE_MAX;
    } else {
      s.rows = mul(size_value(k.rows_size), rows_unit);
    }
  }
  // Kept dims inside a reduced one: each output element is a strided walk.
  // When the innermost dim is a wide kept one (a bias gradient, [B, H]
  // summed over B), that walk reads one element per row (it made a
  // [4096, 1024] column sum 45 times slower), so such sums are blocked a
  // tile of columns at a time instead.
  int64_t across = 1;
  for (size_t d : s.kept)
    if (d > s.reduced.front()) across *= k.dims[d];
  if (across > kMaxAcross && s.kept.back() > s.reduced.back())
    column_sum(s);
  else
    output_sum(s);
  return true;
}

// How a blocked sum cuts its reduced elements into blocks of at most `block`:
// `per` steps along dim `run`, each step one element of the innermost reduced
// dim or, when that is shorter than a block, one whole row of it (`rows`).
KernelEmitter::SumBlocks KernelEmitter::sum_blocks(const SumShape& s, int64_t block) {
  SumBlocks b;
  b.inner = s.reduced.back();
  b.n = s.k.dims[b.inner];
  b.rows = b.n < block && s.reduced.size() >= 2;
  b.run = b.rows ? s.reduced[s.reduced.size() - 2] : b.inner;
  b.per = b.rows ? block / b.n : block;
  b.chunks = s.k.dims[b.run] / b.per;
  b.rest = s.k.dims[b.run] % b.per;
  b.outer.assign(s.reduced.begin(), s.reduced.end() - (b.rows ? 2 : 1));
  b.count = b.chunks + (b.rest ? 1 : 0);
  for (size_t d : b.outer) b.count *= s.k.dims[d];
  return b;
}

// Runs block(lo, len) over every block of b, in order (the outer reduced
// dims, then the chunks along `run`).
// With a row bound on dim `run`, a block's steps stop at the rows' end (a
// block past it has none): the blocks, and so the order of the additions
// within the call's rows, are those of the capacity.
void KernelEmitter::each_block(const SumShape& s, const SumBlocks& b,
                               const std::function<void(llvm::Value* lo, llvm::Value* len)>& block) {
  auto steps = [&](llvm::Value* lo, int64_t len) {
    if (s.rows_dim != b.run) return block(lo, i64(len));
    llvm::Value* left = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, b_.CreateSub(s.rows, lo), i64(0));
    block(lo, smin(left, i64(len)));
  };
  nest(s.k, b.outer, 0, [&] {
    if (b.chunks > 0) loop(b.chunks, [&](llvm::Value* c) { steps(mul(c, b.per), b.per); });
    if (b.rest > 0) steps(i64(b.chunks * b.per), b.rest);
  });
}

// A sum's element v, or 0 past the rows' end where the bounded dim is not
// the one the blocks cut (its rows are then read, but not added).
llvm::Value* KernelEmitter::masked_rows(const SumShape& s, const SumBlocks& b, llvm::Value* v) {
  if (s.rows_dim == SIZE_MAX || s.rows_dim == b.run) return v;
  return b_.CreateSelect(b_.CreateICmpSLT(ivs_[s.rows_dim], s.rows), v, llvm::Constant::getNullValue(v->getType()));
}

// Blocks summed one output element at a time: a block is one loop whose
// additions may be reassociated, so LLVM keeps it in several vector
// accumulators; the block sums go through the levels in the frame.
void KernelEmitter::output_sum(const SumShape& s) {
  const Kernel& k = s.k;
  SumBlocks b = sum_blocks(s, kSumBlock);
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  auto* stack_ty = llvm::ArrayType::get(ty, kSumLevels);
  // The outputs `dims` (kept dims), each summed on its own: the partial
  // sums of each level and the blocks done so far in the frame of the
  // function that runs them.
  auto outputs = [&](const std::vector<size_t>& dims) {
    llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    llvm::Value* stack = entry_b.CreateAlloca(stack_ty, nullptr, "sum.levels");
    llvm::Value* done = entry_b.CreateAlloca(b_.getInt64Ty(), nullptr, "sum.blocks");
    llvm::Value* partial = entry_b.CreateAlloca(ty, nullptr, "sum.partial");
    auto level = [&](llvm::Value* l) { return b_.CreateInBoundsGEP(stack_ty, stack, {i64(0), l}); };

    auto element = [&](llvm::Value* acc) {
      memo_.assign(k.exprs.size(), nullptr);
      llvm::Value* sum = b_.CreateFAdd(acc, masked_rows(s, b, value(k, k.root)));
      llvm::cast<llvm::Instruction>(sum)->setHasAllowReassoc(true);
      return sum;
    };
    // One block: steps [lo, lo + len) along `run`, in one accumulator, into `partial`.
    auto block = [&](llvm::Value* lo, llvm::Value* len) {
      b_.CreateStore(fconst(ty, 0), partial);
      auto steps = [&] {
        auto step = [&](llvm::Value* i, const std::vector<llvm::Value*>& acc) {
          ivs_[b.run] = add(lo, i);
          if (!b.rows) return std::vector<llvm::Value*>{element(acc[0])};
          return std::vector<llvm::Value*>{loop_acc(b.n, acc[0], [&](llvm::Value* j, llvm::Value* a) {
            ivs_[b.inner] = j;
            return element(a);
          })};
        };
        b_.CreateStore(loop_carry(len, {fconst(ty, 0)}, step)[0], partial);
      };
      if (llvm::isa<llvm::ConstantInt>(len)) steps();  // (at least one step)
      else when(b_.CreateICmpSGT(len, i64(0)), steps);
    };
    nest(k, dims, 0, [&] {
      b_.CreateStore(i64(0), done);
      each_block(s, b, [&](llvm::Value* lo, llvm::Value* len) {
        block(lo, len);
        carry(done, [&](llvm::Value* l) {
          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, level(l)), b_.CreateLoad(ty, partial)), partial);
        }, [&](llvm::Value* l) { b_.CreateStore(b_.CreateLoad(ty, partial), level(l)); });
      });
      llvm::Value* total = nullptr;
      for_levels(b.count, [&](int64_t l) {
        llvm::Value* v = b_.CreateLoad(ty, level(i64(l)));
        total = total ? b_.CreateFAdd(v, total) : v;
      });
      for (size_t d : s.reduced) ivs_[d] = i64(0);
      b_.CreateStore(total, address(k.out, k.out_map));
    });
  };
  // A large sum into several outputs (a convolution's bias gradient: 16
  // channels of 64 x 28 x 28) runs ranges of its outermost kept dim on the
  // thread pool; each output is still summed by one thread in one order, so
  // the bits do not depend on the thread count. (Not where a row bound cuts
  // the summed dims: s.rows, the call's size, is read in the calling
  // function. A bound on a kept dim is read where the loops run.) W5's first
  // bias gradient took 0.66 of its time on two threads, its second 0.94
  // (2026-12-06's Xeon).
  int64_t elems = 1;
  for (int64_t d : k.dims) elems *= d;
  const bool in_parallel = !s.kept.empty() && k.dims[s.kept.front()] >= 2 && elems >= kParallelElements &&
                           s.rows_dim == SIZE_MAX;
  if (!in_parallel) return outputs(s.kept);
  const size_t first = s.kept.front();
  const std::vector<size_t> rest(s.kept.begin() + 1, s.kept.end());
  parallel_ranges(k.dims[first], {}, [&](llvm::Value* lo, llvm::Value* hi) {
    loop_range(lo, hi, [&](llvm::Value* i) {
      ivs_[first] = i;
      outputs(rest);
    });
  });
}

// Blocks summed for a tile of columns (steps along the
// innermost dim, a kept one) at once: a block adds its rows into a row of
// partial sums in order, vectorized across the columns (the plain loop's
// access pattern, one contiguous run per row), and the levels are rows too.
void KernelEmitter::column_sum(const SumShape& s) {
  const Kernel& k = s.k;
  size_t col = s.kept.back();
  std::vector<size_t> outputs(s.kept.begin(), s.kept.end() - 1);
  SumBlocks b = sum_blocks(s, kColumnBlock);
  int64_t levels = std::bit_width(static_cast<uint64_t>(b.count));
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  int64_t fit = kColumnFrameBytes / (levels + 1) / dtype_size(p_.buffers[k.out].dtype);
  int64_t width = std::min(k.dims[col], std::max(fit, kMinColumnTile));
  // In the frame: the block's row, then one row per level; their lifetime
  // is this kernel, so the frame slots of several column sums are shared.
  llvm::IRBuilder<> entry_b(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
  auto* rows_ty = llvm::ArrayType::get(ty, static_cast<uint64_t>((levels + 1) * width));
  llvm::AllocaInst* scratch = entry_b.CreateAlloca(rows_ty, nullptr, "sum.rows");
  llvm::Value* done = entry_b.CreateAlloca(b_.getInt64Ty(), nullptr, "sum.blocks");
  auto bytes = static_cast<uint64_t>(m_.getDataLayout().getTypeAllocSize(rows_ty));
  b_.CreateLifetimeStart(scratch, b_.getInt64(bytes));
  // Element c of the block's row (row 0) or of level l's (row l + 1).
  auto at = [&](llvm::Value* row, llvm::Value* c) { return b_.CreateInBoundsGEP(ty, scratch, add(mul(row, width), c)); };
  auto block_row = [&](llvm::Value* c) { return at(i64(0), c); };
  auto level_row = [&](llvm::Value* l, llvm::Value* c) { return at(add(l, i64(1)), c); };

  // The columns [c0, c0 + w) of every output, w <= width.
  auto tile = [&](llvm::Value* c0, int64_t w) {
    b_.CreateStore(i64(0), done);
    each_block(s, b, [&](llvm::Value* lo, llvm::Value* len) {
      loop(w, [&](llvm::Value* c) { b_.CreateStore(fconst(ty, 0), block_row(c)); });
      loop_range(i64(0), len, [&](llvm::Value* i) {
        ivs_[b.run] = add(lo, i);
        auto row = [&] {
          loop(w, [&](llvm::Value* c) {
            ivs_[col] = add(c0, c);
            memo_.assign(k.exprs.size(), nullptr);
            llvm::Value* addr = block_row(c);
            b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, addr), masked_rows(s, b, value(k, k.root))), addr);
          });
        };
        if (!b.rows) return row();
        loop(b.n, [&](llvm::Value* j) {
          ivs_[b.inner] = j;
          row();
        });
      });
      carry(done, [&](llvm::Value* l) {
        loop(w, [&](llvm::Value* c) {
          llvm::Value* addr = block_row(c);
          b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, level_row(l, c)), b_.CreateLoad(ty, addr)), addr);
        });
      }, [&](llvm::Value* l) {
        loop(w, [&](llvm::Value* c) { b_.CreateStore(b_.CreateLoad(ty, block_row(c)), level_row(l, c)); });
      });
    });
    for (size_t d : s.reduced) ivs_[d] = i64(0);
    loop(w, [&](llvm::Value* c) {
      llvm::Value* total = nullptr;
      for_levels(b.count, [&](int64_t l) {
        llvm::Value* v = b_.CreateLoad(ty, level_row(i64(l), c));
        total = total ? b_.CreateFAdd(v, total) : v;
      });
      ivs_[col] = add(c0, c);
      b_.CreateStore(total, address(k.out, k.out_map));
    });
  };
  nest(k, outputs, 0, [&] {
    int64_t tiles = k.dims[col] / width, rest = k.dims[col] % width;
    loop(tiles, [&](llvm::Value* t) { tile(mul(t, width), width); });
    if (rest > 0) tile(i64(tiles * width), rest);
  });
  b_.CreateLifetimeEnd(scratch, b_.getInt64(bytes));
}

// Lands a new block sum on the levels, as a binary counter carries (*done
// counts the blocks so far): while (c & 1) { fold(l); c >>= 1; ++l; }
// land(l); ++*done. fold(l) adds level l's partial sum in front of the new
// one, land(l) stores it as level l's.
void KernelEmitter::carry(llvm::Value* done, const std::function<void(llvm::Value* l)>& fold,
                          const std::function<void(llvm::Value* l)>& land) {
  llvm::Value* count = b_.CreateLoad(b_.getInt64Ty(), done);
  llvm::BasicBlock* pre = b_.GetInsertBlock();
  auto* header = llvm::BasicBlock::Create(ctx_, "sum.carry", fn_);
  auto* body = llvm::BasicBlock::Create(ctx_, "sum.fold", fn_);
  auto* exit = llvm::BasicBlock::Create(ctx_, "sum.land", fn_);
  b_.CreateBr(header);
  b_.SetInsertPoint(header);
  llvm::PHINode* l = b_.CreatePHI(b_.getInt64Ty(), 2, "level");
  llvm::PHINode* c = b_.CreatePHI(b_.getInt64Ty(), 2, "carry");
  l->addIncoming(i64(0), pre);
  c->addIncoming(count, pre);
  b_.CreateCondBr(b_.CreateTrunc(c, b_.getInt1Ty()), body, exit);
  b_.SetInsertPoint(body);
  fold(l);
  l->addIncoming(b_.CreateAdd(l, i64(1), "", true, true), b_.GetInsertBlock());
  c->addIncoming(b_.CreateLShr(c, i64(1)), b_.GetInsertBlock());
  b_.CreateBr(header);
  b_.SetInsertPoint(exit);
  land(l);
  b_.CreateStore(add(count, i64(1)), done);
}

// The levels left after `blocks` blocks hold the set bits of the count;
// visits them from the lowest (latest) up.
void KernelEmitter::for_levels(int64_t blocks, const std::function<void(int64_t l)>& visit) {
  for (int64_t l = 0; l < kSumLevels; ++l)
    if ((blocks >> l) & 1) visit(l);
}

}  // namespace gradc
