// Matrix products, the small forms: which form a product takes (register
// tiled in emit_gemm.cpp, or one of the loop forms here: a dot product per
// element, an axpy over a transposed operand, rows of C in registers, or a
// tiled loop nest that LLVM vectorizes), and the epilogues after a product.
#include "compiler/codegen/emitter.h"

#include <llvm/IR/Intrinsics.h>

#include <algorithm>

namespace gradc {
namespace {

// Products of the "rows" form with at least this many multiply-adds run on the thread pool.
constexpr int64_t kParallelMacs = int64_t{1} << 18;
// Rows of C a dot-product form computes at once (AVX-512; half with AVX2's 16 registers).
constexpr int64_t kDotRows = 8;
// Vectors of C an axpy product keeps in registers over k (a block of rows).
constexpr int64_t kAxpyVectors = 8;
// k steps ahead that a product of the "rows" form prefetches a transposed A
// (8, 16 and 32 measured alike).
constexpr int64_t kPrefetchSteps = 8;

// The largest divisor of n that is at most `limit` (tiles without remainders).
int64_t tile(int64_t n, int64_t limit) {
  for (int64_t t = std::min(n, limit); t > 1; --t)
    if (n % t == 0) return t;
  return 1;
}

}  // namespace

// C = 0; then, tile by tile of columns (nt) and of the reduction (kt):
//   for each column tile, for each k tile, for m, for k in the tile, for n in the tile:
//     C[b, m, n] += A[b, m, k] * B[b, k, n]
// so a kt x nt block of B stays in cache while all rows of A stream past it,
// and the innermost loop is contiguous in B and C (it vectorizes). When the
// column tile is complete, the epilogue (bias, activation) runs over it.
void KernelEmitter::matmul(const Kernel& k) {
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
  int64_t N = k.dims[batch + 1], K = k.dims[batch + 2];
  int64_t nt = tile(N, 256), kt = tile(K, 128);
  llvm::Value* rows = k.rows_size >= 0 ? row_bound(k) : nullptr;
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  std::vector<size_t> batch_dims = first_dims(batch);
  auto column = [&](llvm::Value* jt, llvm::Value* jj) {
    ivs_[batch + 1] = b_.CreateAdd(b_.CreateMul(jt, b_.getInt64(nt), "", true, true), jj, "n", true, true);
  };
  // With a bound on k, the k tiles that cover its ranges, the last of each
  // cut there: body(k0, kc), kc null for a whole tile of kt.
  auto k_tiles = [&](const std::function<void(llvm::Value* k0, llvm::Value* kc)>& body) {
    if (k.k_size < 0) return loop(K / kt, [&](llvm::Value* ktile) { body(mul(ktile, kt), nullptr); });
    k_ranges(k, [&](llvm::Value* lo, llvm::Value* len) {
      loop_range(i64(0), b_.CreateUDiv(add(len, i64(kt - 1)), i64(kt)), [&](llvm::Value* ktile) {
        body(add(lo, mul(ktile, kt)), smin(i64(kt), b_.CreateSub(len, mul(ktile, kt))));
      });
    });
  };
  auto k_tile = [&](llvm::Value* kc, const std::function<void(llvm::Value*)>& body) {
    if (kc) loop_range(i64(0), kc, body);
    else loop(kt, body);
  };
  nest(k, batch_dims, 0, [&] {
    loop(N / nt, [&](llvm::Value* jt) {
      k_tiles([&](llvm::Value* k0, llvm::Value* kc) {
        rows_loop(k, rows, [&](llvm::Value* i) {
          ivs_[batch] = i;
          k_tile(kc, [&](llvm::Value* kk) {
            ivs_[batch + 2] = b_.CreateAdd(k0, kk, "k", true, true);
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
      rows_loop(k, rows, [&](llvm::Value* i) {
        ivs_[batch] = i;
        vectorize_next_loop_ = true;
        loop(nt, [&](llvm::Value* jj) {
          column(jt, jj);
          epilogues(k);
        });
      });
    });
    if (rows) fill_rows(k, rows);
  });
}

void KernelEmitter::k_ranges(const Kernel& k, const std::function<void(llvm::Value* lo, llvm::Value* len)>& body) {
  if (k.k_period == 0) return body(i64(0), k_end(k));
  loop(k.dims.back() / k.k_period, [&](llvm::Value* o) { body(mul(o, k.k_period), k_end(k)); });
}

std::vector<llvm::Value*> KernelEmitter::k_carry(const Kernel& k, const std::vector<llvm::Value*>& init,
                                                 const CarryStep& step) {
  if (k.k_period == 0) return loop_carry(k_end(k), init, step);
  return loop_carry(k.dims.back() / k.k_period, init, [&](llvm::Value* o, const std::vector<llvm::Value*>& acc) {
    llvm::Value* lo = mul(o, k.k_period);
    return loop_carry(k_end(k), acc, [&](llvm::Value* i, const std::vector<llvm::Value*>& a) { return step(add(lo, i), a); });
  });
}

// A product with few columns (N at most one vector: a classifier layer and
// its gradients): each row of C is one vector, kept in a register over k.
// Four rows at a time (independent accumulators); per k, the row of B is
// one masked vector load and each row of A one broadcast.
void KernelEmitter::matmul_rows(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  int64_t M = k.dims[batch], N = k.dims[batch + 1], K = k.dims[batch + 2];
  DType dt = p_.buffers[k.out].dtype;
  llvm::Type* ty = type(dt);
  int64_t vw = vector_lanes(dt);
  if (N > vw) vw *= 2;  // f64 with more columns than one vector: two vectors' worth of lanes
  auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
  llvm::Align align(dtype_size(dt));
  std::vector<llvm::Constant*> lanes;
  for (int64_t l = 0; l < vw; ++l) lanes.push_back(b_.getInt1(l < N));
  llvm::Constant* mask = llvm::ConstantVector::get(lanes);
  llvm::Function* fma = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::fma, {vty});
  std::vector<size_t> batch_dims = first_dims(batch);
  // R rows at a time, R independent chains of FMAs: two FMA units of
  // latency 4 need 8 (with 4, W3's 64 x 10 x 256 logits took 1.43x and W4's
  // 256 x 10 x 1024 1.27x the time of 8, on 2026-12-06's Xeon); with A
  // transposed, R consecutive rows share one cache line of A per k, so more
  // rows mean fewer lines and pages touched (16 with 32 vector registers).
  const bool a_transposed = k.a_map.strides[batch] == 1;
  int64_t R = a_transposed && wide_ ? 16 : 8;
  // Rows [m0, m0 + rows) of C.
  auto block = [&](llvm::Value* m0, int64_t rows) {
    std::vector<llvm::Value*> zeros(static_cast<size_t>(rows), llvm::Constant::getNullValue(vty));
    auto over_k = [&](const CarryStep& step) {
      return k.k_size >= 0 ? k_carry(k, zeros, step) : loop_carry(K, zeros, step);
    };
    std::vector<llvm::Value*> next = over_k([&](llvm::Value* kk, const std::vector<llvm::Value*>& acc) {
      // A transposed gives one line of A per k, a row of A^T apart (4 KiB in
      // W4's 1024 x 10 x 256 weight gradient): a stride no hardware
      // prefetcher follows, so the line kPrefetchSteps ahead is asked for
      // (that product took 0.64-0.67 of its time; the address is not
      // `inbounds`, as it passes the end of A on the last steps, and a
      // prefetch never faults).
      if (a_transposed) {
        ivs_[batch] = m0;
        ivs_[batch + 1] = i64(0);
        ivs_[batch + 2] = kk;
        llvm::Value* ahead =
            b_.CreateGEP(ty, address(k.a, k.a_map), i64(kPrefetchSteps * k.a_map.strides[batch + 2]), "a.ahead");
        b_.CreateCall(llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::prefetch, {b_.getPtrTy()}),
                      {ahead, b_.getInt32(0), b_.getInt32(3), b_.getInt32(1)});
      }
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
      vectorize_next_loop_ = true;
      loop(N, [&](llvm::Value* n) {
        ivs_[batch + 1] = n;
        epilogues(k);
      });
    });
  };
  int64_t groups = M / R;
  // With a row bound, the groups that cover [0, n), and the last rows when n reaches them.
  auto groups_to = [&](llvm::Value* hi) {
    if (k.rows_size < 0) return hi;
    llvm::Value* n = row_bound(k);
    return smin(hi, b_.CreateUDiv(add(n, i64(R - 1)), i64(R)));
  };
  nest(k, batch_dims, 0, [&] {
    if (groups >= 2 && M * N * K >= kParallelMacs) {
      // Large: runs of groups are the tasks of the thread pool.
      parallel_ranges(groups, batch_dims, [&](llvm::Value* g0, llvm::Value* g1) {
        loop_range(g0, groups_to(g1), [&](llvm::Value* g) { block(mul(g, R), R); });
      });
    } else if (groups > 0) {
      auto run = [&](llvm::Value* g) { block(mul(g, R), R); };
      if (k.rows_size >= 0) loop_range(i64(0), groups_to(i64(groups)), run);
      else loop(groups, run);
    }
    llvm::Value* n = k.rows_size >= 0 ? row_bound(k) : nullptr;
    if (M % R && n) when(b_.CreateICmpSGT(n, i64(groups * R)), [&] { block(i64(groups * R), M % R); });
    else if (M % R) block(i64(groups * R), M % R);
    if (n) fill_rows(k, n);
  });
}

// A matrix-vector product whose matrix is contiguous along m (a transposed
// operand, as in the gradient of a linear layer): C[b, :, 0] = sum_k
// A[b, :, k] B[b, k, 0]. Floats: blocks of up to kAxpyVectors vectors of C
// stay in registers over k; per k, one broadcast of B and, per vector, one
// load of A's column (masked past M) and one FMA. Each element adds its
// terms in k's order, as the loop over memory did, with one rounding per
// term instead of two. (A loop over C in memory loads and stores all of C
// at every k, a chain through the store buffer: W2's weight gradient,
// 100 x 128, took 0.64 us of its 2 us step so.) Products are of floats only.
void KernelEmitter::matmul_axpy(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  int64_t M = k.dims[batch], K = k.dims[batch + 2];
  DType dt = p_.buffers[k.out].dtype;
  llvm::Type* ty = type(dt);
  std::vector<size_t> batch_dims = first_dims(batch);
  ivs_[batch + 1] = i64(0);
  llvm::Value* rows = k.rows_size >= 0 ? row_bound(k) : nullptr;
  auto run_epilogues = [&] {
    if (k.epilogues.empty()) return;
    ivs_[batch + 2] = i64(0);
    vectorize_next_loop_ = M >= 8;  // (shorter than a vector: nothing to gain)
    rows_loop(k, rows, [&](llvm::Value* m) {
      ivs_[batch] = m;
      epilogues(k);
    });
  };
  const int64_t vw = vector_lanes(dt);
  auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
  llvm::Align align(dtype_size(dt));
  llvm::Function* fma = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::fma, {vty});
  // Rows per block: kAxpyVectors vectors, or all of M when it is shorter.
  const int64_t per_block = std::min(kAxpyVectors * vw, (M + vw - 1) / vw * vw);
  const int64_t blocks = (M + per_block - 1) / per_block;
  // Rows [m0, m0 + count) of C, count <= per_block; the last vector masked when count is not whole vectors.
  auto block = [&](llvm::Value* m0, int64_t count) {
    int64_t vectors = (count + vw - 1) / vw;
    std::vector<llvm::Constant*> lanes;
    for (int64_t l = 0; l < vw; ++l) lanes.push_back(b_.getInt1(l < count - (vectors - 1) * vw));
    llvm::Constant* last = llvm::ConstantVector::get(lanes);
    auto vector_at = [&](int buffer, const Affine& map, int64_t v) {
      ivs_[batch] = add(m0, i64(v * vw));
      return address(buffer, map);
    };
    std::vector<llvm::Value*> zeros(static_cast<size_t>(vectors), llvm::Constant::getNullValue(vty));
    CarryStep step = [&](llvm::Value* kk, const std::vector<llvm::Value*>& acc) {
      ivs_[batch + 2] = kk;
      ivs_[batch] = i64(0);
      llvm::Value* bv = b_.CreateVectorSplat(static_cast<unsigned>(vw), b_.CreateLoad(ty, address(k.b, k.b_map)));
      std::vector<llvm::Value*> sums;
      for (int64_t v = 0; v < vectors; ++v) {
        llvm::Value* at = vector_at(k.a, k.a_map, v);
        llvm::Value* a = nullptr;
        if (v + 1 < vectors) a = b_.CreateAlignedLoad(vty, at, align);
        else a = b_.CreateMaskedLoad(vty, at, align, last, llvm::Constant::getNullValue(vty));
        sums.push_back(b_.CreateCall(fma, {a, bv, acc[static_cast<size_t>(v)]}));
      }
      return sums;
    };
    std::vector<llvm::Value*> c = k.k_size >= 0 ? k_carry(k, zeros, step) : loop_carry(K, zeros, step);
    ivs_[batch + 2] = i64(0);
    for (int64_t v = 0; v < vectors; ++v) {
      llvm::Value* at = vector_at(k.out, k.out_map, v);
      if (v + 1 < vectors) b_.CreateAlignedStore(c[static_cast<size_t>(v)], at, align);
      else b_.CreateMaskedStore(c[static_cast<size_t>(v)], at, align, last);
    }
  };
  const int64_t tail = M - (blocks - 1) * per_block;
  // The blocks that cover rows [0, hi) (with a row bound, at most those up to it).
  auto blocks_to = [&](llvm::Value* hi) {
    return rows ? smin(hi, b_.CreateUDiv(add(rows, i64(per_block - 1)), i64(per_block))) : hi;
  };
  auto full_blocks = [&](llvm::Value* lo, llvm::Value* hi) {
    loop_range(lo, hi, [&](llvm::Value* g) { block(mul(g, per_block), per_block); });
  };
  nest(k, batch_dims, 0, [&] {
    int64_t whole = tail == per_block ? blocks : blocks - 1;
    if (whole >= 2 && M * K >= kParallelMacs)
      parallel_ranges(whole, batch_dims, [&](llvm::Value* g0, llvm::Value* g1) { full_blocks(g0, blocks_to(g1)); });
    else if (whole > 0)
      full_blocks(i64(0), blocks_to(i64(whole)));
    if (whole < blocks) {
      int64_t m0 = whole * per_block;
      if (rows) when(b_.CreateICmpSGT(rows, i64(m0)), [&] { block(i64(m0), tail); });
      else block(i64(m0), tail);
    }
    run_epilogues();
    if (rows) fill_rows(k, rows);
  });
}

// C[b, m, n] = sum_k A[b, m, k] B[b, k, n] as a dot product along k per
// element. The sum may be reassociated (so it vectorizes into partial sums);
// the code is fixed, so results are the same on every run.
//
// Without bounds on m or k, kDotRows rows at a time: per vector of k, one
// load of B's column and, per row, one load of A's row and one FMA into
// that row's accumulator (the last vector of k masked); then each
// accumulator is added across its lanes. That shares B's loads among the
// rows and keeps the FMA unit busy with independent sums, where a dot
// product per element is one chain of dependent additions with a remainder
// loop and a reduction across lanes each (W2's forward product, 128 x 100,
// took 0.87 of its 2 us step so). With a bound, or k shorter than a vector
// (W1's 4 x 8 x 1: 11 ns more a step with a masked vector and its
// reductions across lanes), one dot product per element.
void KernelEmitter::matmul_dot(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  int64_t K = k.dims[batch + 2];
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  if (k.rows_size < 0 && k.k_size < 0 && K >= vector_lanes(p_.buffers[k.out].dtype)) return matmul_dot_rows(k);
  auto element = [&] {
    // (With a bound on k, the dot product stops at n: at least one term.)
    auto step = [&](llvm::Value* i, const std::vector<llvm::Value*>& acc) {
      ivs_[batch + 2] = i;
      llvm::Value* prod = b_.CreateFMul(b_.CreateLoad(ty, address(k.a, k.a_map)), b_.CreateLoad(ty, address(k.b, k.b_map)));
      llvm::Value* s = b_.CreateFAdd(acc[0], prod);
      llvm::cast<llvm::Instruction>(s)->setHasAllowReassoc(true);
      return std::vector<llvm::Value*>{s};
    };
    llvm::Value* sum = (k.k_size >= 0 ? k_carry(k, {fconst(ty, 0)}, step) : loop_carry(i64(K), {fconst(ty, 0)}, step))[0];
    ivs_[batch + 2] = i64(0);
    b_.CreateStore(sum, address(k.out, k.out_map));
    epilogues(k);
  };
  if (k.rows_size < 0) return nest(k, first_dims(batch + 2), 0, element);
  nest(k, first_dims(batch), 0, [&] {
    llvm::Value* rows = row_bound(k);
    rows_loop(k, rows, [&](llvm::Value* m) {
      ivs_[batch] = m;
      loop(k.dims[batch + 1], [&](llvm::Value* n) {
        ivs_[batch + 1] = n;
        element();
      });
    });
    fill_rows(k, rows);
  });
}

void KernelEmitter::matmul_dot_rows(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  int64_t M = k.dims[batch], N = k.dims[batch + 1], K = k.dims[batch + 2];
  DType dt = p_.buffers[k.out].dtype;
  llvm::Type* ty = type(dt);
  const int64_t vw = vector_lanes(dt);
  auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
  llvm::Align align(dtype_size(dt));
  llvm::Function* fma = llvm::Intrinsic::getDeclaration(&m_, llvm::Intrinsic::fma, {vty});
  const int64_t R = wide_ ? kDotRows : kDotRows / 2, chunks = K / vw, rest = K % vw;
  std::vector<llvm::Constant*> lanes;
  for (int64_t l = 0; l < vw; ++l) lanes.push_back(b_.getInt1(l < rest));
  llvm::Constant* rest_mask = llvm::ConstantVector::get(lanes);
  llvm::Value* zero = llvm::Constant::getNullValue(vty);
  // Rows [m0, m0 + rows) of C.
  auto block = [&](llvm::Value* m0, int64_t rows) {
    loop(N, [&](llvm::Value* n) {
      ivs_[batch + 1] = n;
      // The accumulators after the vector of k at k0 (masked: the last, partial one).
      auto step = [&](llvm::Value* k0, const std::vector<llvm::Value*>& acc, bool masked) {
        ivs_[batch + 2] = k0;
        ivs_[batch] = m0;
        auto load = [&](int buffer, const Affine& map) -> llvm::Value* {
          llvm::Value* at = address(buffer, map);
          if (masked) return b_.CreateMaskedLoad(vty, at, align, rest_mask, zero);
          return b_.CreateAlignedLoad(vty, at, align);
        };
        llvm::Value* bv = load(k.b, k.b_map);
        std::vector<llvm::Value*> sums;
        for (int64_t r = 0; r < rows; ++r) {
          ivs_[batch] = add(m0, i64(r));
          sums.push_back(b_.CreateCall(fma, {load(k.a, k.a_map), bv, acc[static_cast<size_t>(r)]}));
        }
        return sums;
      };
      std::vector<llvm::Value*> acc(static_cast<size_t>(rows), zero);
      if (chunks > 0)
        acc = loop_carry(chunks, acc, [&](llvm::Value* c, const std::vector<llvm::Value*>& a) { return step(mul(c, vw), a, false); });
      if (rest > 0) acc = step(i64(chunks * vw), acc, true);
      ivs_[batch + 2] = i64(0);
      for (int64_t r = 0; r < rows; ++r) {
        ivs_[batch] = add(m0, i64(r));
        llvm::Value* sum = b_.CreateFAddReduce(fconst(ty, -0.0), acc[static_cast<size_t>(r)]);
        llvm::cast<llvm::Instruction>(sum)->setHasAllowReassoc(true);
        b_.CreateStore(sum, address(k.out, k.out_map));
        epilogues(k);
      }
    });
  };
  const int64_t groups = M / R;
  std::vector<size_t> batch_dims = first_dims(batch);
  nest(k, batch_dims, 0, [&] {
    auto run = [&](llvm::Value* g) { block(mul(g, R), R); };
    if (groups >= 2 && M * N * K >= kParallelMacs)
      parallel_ranges(groups, batch_dims, [&](llvm::Value* g0, llvm::Value* g1) { loop_range(g0, g1, run); });
    else if (groups > 0)
      loop(groups, run);
    if (M % R) block(i64(groups * R), M % R);
  });
}

// The epilogues at one element, in order. Later ones read earlier ones'
// values (always at this element) from registers; internal ones are not
// stored at all. (A value updated in place is read back only as its new
// value: can_update_in_place.)
void KernelEmitter::epilogues(const Kernel& k) {
  memo_.assign(k.exprs.size(), nullptr);
  held_.assign(p_.buffers.size(), nullptr);
  for (const Kernel::Epilogue& e : k.epilogues) {
    llvm::Value* v = value(k, e.root);
    if (!e.internal) b_.CreateStore(v, address(e.out, e.map));
    held_[e.out] = v;
  }
  held_.clear();
}

llvm::Value* KernelEmitter::size_value(int buffer) {
  llvm::Value* size = b_.CreateLoad(type(p_.buffers[buffer].dtype), base(buffer), "size");
  return b_.CreateFPToSI(size, b_.getInt64Ty(), "n");
}

void KernelEmitter::rows_loop(const Kernel& k, llvm::Value* n, const std::function<void(llvm::Value*)>& body) {
  if (n) return loop_range(i64(0), n, body);
  loop(k.dims[k.dims.size() - 3], body);
}

// Rows [n, M) of the product's own result (unless it is kept in blocks) and
// of each stored epilogue, at the batch element the nest is at: copies of
// row 0 of the same result, or zeros (Kernel::rows_zero).
void KernelEmitter::fill_rows(const Kernel& k, llvm::Value* n) {
  if (!k.rows_fill) return;  // (no later kernel reads them)
  size_t batch = k.dims.size() - 3;
  std::vector<std::pair<int, const Affine*>> stored;
  if (!k.c_blocks) stored.emplace_back(k.out, &k.out_map);
  for (const Kernel::Epilogue& e : k.epilogues)
    if (!e.internal) stored.emplace_back(e.out, &e.map);
  ivs_[batch + 2] = i64(0);
  const int64_t N = k.dims[batch + 1];
  loop_range(n, i64(k.dims[batch]), [&](llvm::Value* m) {
    for (const auto& [buffer, map] : stored) {
      llvm::Type* ty = type(p_.buffers[buffer].dtype);
      auto at = [&](llvm::Value* row, llvm::Value* j) {
        ivs_[batch] = row;
        ivs_[batch + 1] = j;
        return address(buffer, *map);
      };
      if (map->strides[batch + 1] == 1) {  // a contiguous row: one copy or memset
        llvm::Align align(dtype_size(p_.buffers[buffer].dtype));
        uint64_t bytes = static_cast<uint64_t>(N) * dtype_size(p_.buffers[buffer].dtype);
        if (k.rows_zero) b_.CreateMemSet(at(m, i64(0)), b_.getInt8(0), bytes, align);
        else b_.CreateMemCpy(at(m, i64(0)), align, at(i64(0), i64(0)), align, bytes);
        continue;
      }
      loop(N, [&](llvm::Value* j) {
        llvm::Value* v = llvm::Constant::getNullValue(ty);
        if (!k.rows_zero) v = b_.CreateLoad(ty, at(i64(0), j));
        b_.CreateStore(v, at(m, j));
      });
    }
  });
}

}  // namespace gradc
