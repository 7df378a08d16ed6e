// Matrix products, the register-tiled form for large products: packing of
// B, blocks of C on the thread pool, the microkernel call per tile, and the
// tile function (an MR x NR tile of C in vector registers) itself.
#include "compiler/codegen/emitter.h"

#include <fmt/format.h>
#include <llvm/IR/Intrinsics.h>

#include <algorithm>
#include <optional>

#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// Packed matrix products: the k chunk, and the register tile with 512-bit
// vectors (rows x vectors of columns).
// (6 x 64 beat 8 x 48, 12 x 32 and 14 x 32 on the MNIST MLP's products here,
// and a 128-deep panel of B, 32 KiB, stays in L1.)
constexpr int64_t kKc = kPanelDepth;
constexpr int64_t kWideTileRows = 6, kWideTileVectors = 4;

}  // namespace

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
//  5. In a capacity compile (row_bounds.h), only the row tiles that cover the
//     call's rows run (blocks past them do nothing) and fill_rows sets the
//     rest; with a column bound, only the column tiles that cover the call's
//     columns (their panels alone are packed); with a bound on k, the k
//     chunks stop at the call's size.

KernelEmitter::GemmShape KernelEmitter::gemm_shape(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  GemmShape s;
  s.M = k.dims[batch];
  s.N = k.dims[batch + 1];
  s.K = k.dims[batch + 2];
  s.vw = vector_lanes(p_.buffers[k.out].dtype);
  // Accumulators: 6 x 4 vectors with 32 vector registers, 6 x 2 with 16.
  s.mr = wide_ ? kWideTileRows : 6;
  s.nr = (wide_ ? kWideTileVectors : 2) * s.vw;
  // Narrow products (a convolution's output channels as the columns) would
  // leave most of a 4-vector tile row zero padding: with 32 registers they
  // take the same 24 accumulators as 12 x 2 or 16 x 1 vectors.
  // A product packed block by block (few rows), or once for a loop, takes
  // 8 x 3 vectors instead when that pads less of its rows and columns: W5's
  // 32 x 400 weight gradient computes 32 x 432 rather than 36 x 448 (3.6 ->
  // 3.2 ms), W6's recurrent 32 x 768 product 32 rather than 36 rows (4.7-5.1
  // -> 4.3-4.5 ms a step).
  auto padded = [&](int64_t mr, int64_t nr) { return (s.M + mr - 1) / mr * mr * ((s.N + nr - 1) / nr * nr); };
  if (wide_ && (k.pack_b_per_block || k.pack_b_once) && s.M <= kOneBlockRows && s.N > 2 * s.vw &&
      padded(8, 3 * s.vw) < padded(s.mr, s.nr)) {
    s.mr = 8, s.nr = 3 * s.vw;
  } else if (wide_ && s.N <= s.vw) {
    s.mr = kMaxTileRows, s.nr = s.vw;
  } else if (wide_ && s.N <= 2 * s.vw) {
    s.mr = 12, s.nr = 2 * s.vw;
  }
  s.pm = (s.M + s.mr - 1) / s.mr;
  s.pn = (s.N + s.nr - 1) / s.nr;
  return s;
}

void KernelEmitter::matmul_packed(const Kernel& k) {
  size_t batch = k.dims.size() - 3;
  GemmShape s = gemm_shape(k);
  if (k.out_map.strides[batch + 1] != 1 || s.mr > kMaxTileRows || s.nr > kMaxTileCols)
    internal_error(__FILE__, __LINE__, "a packed matrix product needs a row-major output");
  if (k.pack_b < 0 && !k.pack_b_per_block && (k.b_map.strides[batch + 1] != 1 || s.N % s.nr != 0))
    internal_error(__FILE__, __LINE__, "B read in place needs contiguous rows and whole tiles");
  std::vector<size_t> batch_dims = first_dims(batch);
  int64_t bmp = std::max<int64_t>(1, kBlockRows / s.mr), bnp = std::max<int64_t>(1, kBlockCols / s.nr);
  auto blocks_of = [](int64_t tiles, int64_t per) { return (tiles + per - 1) / per; };
  // A product of one to three blocks (a recurrent step's 32 x 256 x 768 is
  // one) is cut into at least kMinBlocks where its tiles allow, so that two
  // to four threads share it evenly: columns first, then rows where B is not
  // packed per block (each block of rows would pack the same panels again).
  // Every element of C is still summed in one block in the same order, so
  // the bits are those of any other cut.
  if (blocks_of(s.pm, bmp) * blocks_of(s.pn, bnp) < kMinBlocks) {
    int64_t want = blocks_of(kMinBlocks, blocks_of(s.pm, bmp));
    bnp = std::min(bnp, blocks_of(s.pn, want));
  }
  if (!k.pack_b_per_block && blocks_of(s.pm, bmp) * blocks_of(s.pn, bnp) < kMinBlocks) {
    int64_t want = blocks_of(kMinBlocks, blocks_of(s.pn, bnp));
    bmp = std::min(bmp, blocks_of(s.pm, want));
  }
  // A product whose epilogues update state of C's shape (Kernel::row_blocks:
  // an optimizer's update fused into a weight gradient, the weight and
  // momentum or Adam's moments) takes blocks of whole rows, as many as fit
  // its C block and leave kMinBlocks blocks, so that the epilogues read and
  // write each of those tensors in runs of whole rows rather than 1 KiB
  // pieces 4 KiB apart, which the hardware prefetchers follow poorly,
  // worst when both cores stream at once. Measured on 2026-12-06's Xeon
  // (W4, whose 1024 x 1024 weight gradients carry Adam's update: one
  // process, both compiled, steps alternated): those products took 0.91-0.95
  // of their time on one thread and 0.74-0.80 on two (the step 0.98-0.99 and
  // 0.89-0.92); with momentum 0.96 and 0.86; the same bits. With plain SGD's one epilogue,
  // or for the forward products (B read in place, so read from farther away
  // for every few row tiles), they were no faster or up to 1.14x slower.
  if (k.row_blocks) {
    if (k.pool_span > 0 || s.pn * s.nr * s.mr > kCBlockElems)
      internal_error(__FILE__, __LINE__, "blocks of whole rows with pool epilogues, or wider than a C block");
    bnp = s.pn;
    bmp = std::max<int64_t>(1, std::min(kCBlockElems / (s.pn * s.nr * s.mr), blocks_of(s.pm, kMinBlocks)));
  }
  // With pool epilogues, blocks of whole segments of columns (and C's
  // per-thread block within its scratch).
  if (k.pool_span > 0) {
    bnp = pool_block_cols(k.pool_span, s.nr, bnp * s.nr) / s.nr;
    if (k.c_blocks) bmp = std::max<int64_t>(1, std::min(bmp, kCBlockElems / (bnp * s.nr * s.mr)));
    // (A segment cut by a block edge would be read by two blocks on two
    // threads, one of them before the other has written its half.)
    if (bnp * s.nr % k.pool_span != 0 || (k.c_blocks && bmp * s.mr * bnp * s.nr > kCBlockElems))
      internal_error(__FILE__, __LINE__, "a block of C with pool epilogues cuts a segment or overflows its scratch");
  }
  int64_t tm = blocks_of(s.pm, bmp), tn = blocks_of(s.pn, bnp);
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
  // k segments (Kernel::k_segments), each `per` chunks of kKc.
  const int64_t chunks = (s.K + kKc - 1) / kKc;
  int64_t segs = k.k_size < 0 ? std::min(k.k_segments, chunks) : 1;
  const int64_t per = (chunks + segs - 1) / segs;
  segs = (chunks + per - 1) / per;
  const int64_t ldp = s.N + kMaxTileCols, seg_elems = segment_stride(s.M, s.N);
  nest(k, batch_dims, 0, [&] {
    auto pack = [&] {
      parallel(s.pn, batch_dims, [&](llvm::Value* jp) {
        if (k.cols_size < 0) return pack_b(k, s, jp);
        when(b_.CreateICmpSLT(jp, col_tiles(k, s)), [&] { pack_b(k, s, jp); });
      });
    };
    if (k.pack_b >= 0 && k.pack_b_once) {
      // At the loop's first element (its last t when it runs backward).
      const Kernel& loop = p_.kernels[static_cast<size_t>(k.body_loop)];
      when(b_.CreateICmpEQ(step_, i64(loop.reverse ? loop.dims[0] - 1 : 0)), pack);
    } else if (k.pack_b >= 0) {
      pack();
    }
    // Block t of C: its tiles [ip0, ip1) x [jp0, jp1), and whether any
    // are in the call's bounds.
    struct Block {
      llvm::Value *ip0, *ip1, *jp0, *jp1, *m_lo, *n_lo, *busy;
    };
    auto block = [&](llvm::Value* t) {
      Block bk;
      llvm::Value* bm = b_.CreateUDiv(t, i64(tn));
      llvm::Value* bn = b_.CreateURem(t, i64(tn));
      bk.ip0 = mul(bm, bmp);
      bk.jp0 = mul(bn, bnp);
      // With a row bound, the tiles that cover rows [0, n); with a column
      // bound, those that cover columns [0, n * unit) (a block past them does nothing).
      llvm::Value* pm = i64(s.pm);
      if (k.rows_size >= 0) pm = smin(pm, b_.CreateUDiv(add(row_bound(k), i64(s.mr - 1)), i64(s.mr)));
      llvm::Value* pn = k.cols_size >= 0 ? col_tiles(k, s) : i64(s.pn);
      bk.ip1 = smin(add(bk.ip0, i64(bmp)), pm);
      bk.jp1 = smin(add(bk.jp0, i64(bnp)), pn);
      bk.m_lo = mul(bk.ip0, s.mr);
      bk.n_lo = mul(bk.jp0, s.nr);
      bk.busy = nullptr;
      if (k.rows_size >= 0) bk.busy = b_.CreateICmpSLT(bk.ip0, bk.ip1);
      if (k.cols_size >= 0) {
        llvm::Value* cols = b_.CreateICmpSLT(bk.jp0, bk.jp1);
        bk.busy = bk.busy ? b_.CreateAnd(bk.busy, cols) : cols;
      }
      return bk;
    };
    auto when_busy = [&](const Block& bk, const std::function<void()>& work) {
      if (bk.busy) when(bk.busy, work);
      else work();
    };
    llvm::Type* ty = type(p_.buffers[k.out].dtype);
    int64_t at = (p_.arena_bytes + 63) / 64 * 64;
    auto thread_scratch = [&] { return b_.CreateInBoundsGEP(b_.getInt8Ty(), arena_, add(i64(at), mul(slot_, p_.worker_bytes))); };
    // With C in per-thread blocks, the epilogues find C[m, n] at
    // scratch[(m - m_lo) * ldcb + (n - n_lo)].
    auto c_block = [&](const Block& bk, llvm::Value* scratch) {
      bases_[k.out] = b_.CreateGEP(ty, scratch, b_.CreateNeg(add(mul(bk.m_lo, ldcb), bk.n_lo)));
      return CBlock{scratch, bk.ip0, bk.jp0, ldcb};
    };
    // The block's elements of C, one by one: before the epilogues, the sum
    // of the k segments (into C or its per-thread block).
    auto finish = [&](const Block& bk) {
      llvm::Value* m_hi = smin(mul(bk.ip1, s.mr), i64(s.M));
      llvm::Value* n_hi = smin(mul(bk.jp1, s.nr), i64(s.N));
      if (segs > 1 || !k.epilogues.empty()) {
        ivs_[batch + 2] = i64(0);
        llvm::Value* parts = segs > 1 ? base(k.partials) : nullptr;
        loop_range(bk.m_lo, m_hi, [&](llvm::Value* m) {
          ivs_[batch] = m;
          vectorize_next_loop_ = true;
          loop_range(bk.n_lo, n_hi, [&](llvm::Value* n) {
            ivs_[batch + 1] = n;
            if (segs > 1) {
              llvm::Value* at_mn = add(mul(m, ldp), n);
              llvm::Value* sum = nullptr;
              for (int64_t sg = 0; sg < segs; ++sg) {
                llvm::Value* v = b_.CreateLoad(ty, b_.CreateInBoundsGEP(ty, parts, add(at_mn, i64(sg * seg_elems))));
                sum = sum ? b_.CreateFAdd(sum, v) : v;
              }
              b_.CreateStore(sum, k.c_blocks ? b_.CreateInBoundsGEP(ty, bases_[k.out], add(mul(m, ldcb), n))
                                             : address(k.out, k.out_map));
            }
            if (!k.epilogues.empty()) epilogues(kb);
          });
        });
      }
      // Then the pools over the block's windows (Kernel::per_block).
      // (With a column bound, the windows of the call's rows: its columns
      // are whole segments, and the last tile's columns past them hold no
      // image of the call.)
      llvm::Value* pool_hi = k.cols_size >= 0 ? smin(n_hi, mul(size_value(k.cols_size), k.cols_unit)) : n_hi;
      for (const Kernel* c : pool_kernels_) pool_block(*c, bk.m_lo, m_hi, bk.n_lo, pool_hi, k.pool_span);
    };
    // The tiles of block bk over k chunks [c0, c1) (with a bound on k, the
    // chunks that cover its ranges), into C or cb.
    auto tiles = [&](const Block& bk, llvm::Value* c0, llvm::Value* c1, const std::optional<CBlock>& cb, llvm::Value* panel) {
      auto chunk = [&](llvm::Value* k0, llvm::Value* kc, llvm::Value* first) {
        loop_range(bk.jp0, bk.jp1, [&](llvm::Value* jp) {
          if (panel) pack_b_chunk(k, s, jp, k0, kc, panel);
          loop_range(bk.ip0, bk.ip1, [&](llvm::Value* ip) { microkernel(k, s, ip, jp, k0, kc, first, cb, panel); });
        });
      };
      if (k.k_size < 0)
        return loop_range(c0, c1, [&](llvm::Value* pc) {
          llvm::Value* k0 = mul(pc, kKc);
          chunk(k0, smin(i64(kKc), b_.CreateSub(i64(s.K), k0)), b_.CreateICmpEQ(pc, c0));
        });
      k_ranges(k, [&](llvm::Value* lo, llvm::Value* len) {
        loop_range(i64(0), b_.CreateUDiv(add(len, i64(kKc - 1)), i64(kKc)), [&](llvm::Value* pc) {
          llvm::Value* at = mul(pc, kKc);
          chunk(add(lo, at), smin(i64(kKc), b_.CreateSub(len, at)),
                b_.CreateICmpEQ(add(lo, at), i64(0)));  // (the first chunk of the first range)
        });
      });
    };
    if (segs == 1) {
      parallel(tm * tn, batch_dims, [&](llvm::Value* t) {
        Block bk = block(t);
        when_busy(bk, [&] {
          llvm::Value* scratch = k.c_blocks || k.pack_b_per_block ? thread_scratch() : nullptr;
          llvm::Value* panel = k.pack_b_per_block ? b_.CreateConstInBoundsGEP1_64(ty, scratch, kCBlockElems) : nullptr;
          std::optional<CBlock> cb;
          if (k.c_blocks) cb = c_block(bk, scratch);
          tiles(bk, i64(0), i64(chunks), cb, panel);
          finish(bk);
        });
      });
    } else {
      // Each (block, segment) into its segment's partial sums, then each
      // block's sums in segment order.
      parallel(tm * tn * segs, batch_dims, [&](llvm::Value* t) {
        Block bk = block(b_.CreateUDiv(t, i64(segs)));
        llvm::Value* sg = b_.CreateURem(t, i64(segs));
        when_busy(bk, [&] {
          llvm::Value* panel = k.pack_b_per_block ? b_.CreateConstInBoundsGEP1_64(ty, thread_scratch(), kCBlockElems) : nullptr;
          llvm::Value* part = b_.CreateInBoundsGEP(ty, base(k.partials), add(mul(sg, seg_elems), add(mul(bk.m_lo, ldp), bk.n_lo)));
          llvm::Value* c0 = mul(sg, per);
          tiles(bk, c0, smin(add(c0, i64(per)), i64(chunks)), CBlock{part, bk.ip0, bk.jp0, ldp}, panel);
        });
      });
      parallel(tm * tn, batch_dims, [&](llvm::Value* t) {
        Block bk = block(t);
        when_busy(bk, [&] {
          if (k.c_blocks) c_block(bk, thread_scratch());
          finish(bk);
        });
      });
    }
    if (k.rows_size >= 0) fill_rows(k, row_bound(k));
  });
}

// Pool kernel c (Kernel::per_block) over the windows in rows [m_lo, m_hi)
// and columns [n_lo, n_hi) of its host's result, both n bounds multiples of
// `span`: its rows m, its segments j from n_lo / span to n_hi / span, and
// its other dims whole, the innermost vectorized; each element as argmax
// computes it (argmax_at), so the bits are those of a kernel of its own.
void KernelEmitter::pool_block(const Kernel& c, llvm::Value* m_lo, llvm::Value* m_hi, llvm::Value* n_lo,
                               llvm::Value* n_hi, int64_t span) {
  std::vector<llvm::Value*> host_ivs = std::move(ivs_), host_memo = std::move(memo_);
  ivs_.assign(c.dims.size(), nullptr);
  memo_.assign(c.exprs.size(), nullptr);
  std::vector<size_t> inner;
  for (size_t d = 0; d < c.dims.size(); ++d) {
    const bool window = static_cast<int>(d) >= c.axis && static_cast<int>(d) < c.axis + c.axis_dims;
    const bool segment = std::find(c.pool_segments.begin(), c.pool_segments.end(), static_cast<int>(d)) != c.pool_segments.end();
    if (!window && !segment && static_cast<int>(d) != c.pool_m) inner.push_back(d);
  }
  loop_range(m_lo, m_hi, [&](llvm::Value* m) {
    ivs_[static_cast<size_t>(c.pool_m)] = m;
    loop_range(b_.CreateUDiv(n_lo, i64(span)), b_.CreateUDiv(n_hi, i64(span)), [&](llvm::Value* j) {
      for (size_t i = c.pool_segments.size(); i-- > 0;) {  // j's digits, the last fastest
        const size_t d = static_cast<size_t>(c.pool_segments[i]);
        ivs_[d] = i == 0 ? j : b_.CreateURem(j, i64(c.dims[d]));
        if (i > 0) j = b_.CreateUDiv(j, i64(c.dims[d]));
      }
      nest_outputs(c, inner, [&] { argmax_at(c, true); });
    });
  });
  ivs_ = std::move(host_ivs);
  memo_ = std::move(host_memo);
}

// B packed whole (Kernel::pack_b): panel jp, all K rows, at jp * K * NR in
// the pack_b buffer, the layout of pack_b_chunk over k in [0, K). (Copied
// element by element, a transposed B became scatters: LLVM vectorized the
// copy along k, each vector of k's stored NR elements apart. W4's
// `g @ W2^T`, 256 x 1024 x 1024, took 5.1 ms, against 3.4 through
// pack_b_chunk's register transposes, 2026-12-06.)
void KernelEmitter::pack_b(const Kernel& k, const GemmShape& s, llvm::Value* jp) {
  llvm::Type* ty = type(p_.buffers[k.pack_b].dtype);
  pack_b_chunk(k, s, jp, i64(0), i64(s.K), b_.CreateInBoundsGEP(ty, base(k.pack_b), mul(mul(jp, s.K), s.nr)));
}

// B packed, rows [k0, k0 + kc) of panel jp into dst (kc x NR, row by row),
// columns past N zero: a block's chunk into per-thread scratch, or all of
// a panel (pack_b). Rows of B contiguous along n are copied a vector at a
// time; a transposed B (contiguous along k) in tiles of vw x vw through
// registers; a gathered B by gather_b_rows.
void KernelEmitter::pack_b_chunk(const Kernel& k, const GemmShape& s, llvm::Value* jp, llvm::Value* k0,
                                 llvm::Value* kc, llvm::Value* dst) {
  if (k.b_gather) return gather_b_rows(k, s, jp, k0, kc, dst);
  size_t batch = k.dims.size() - 3;
  size_t n_dim = batch + 1, k_dim = batch + 2;
  const Affine& map = k.b_map;
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  const int64_t w = s.nr;
  llvm::Value* n0 = mul(jp, w);
  ivs_[batch] = i64(0);
  auto copy = [&](bool guarded) {
    auto elem = [&](llvm::Value* r, llvm::Value* kk) {
      llvm::Value* n = add(n0, r);
      ivs_[n_dim] = guarded ? smin(n, i64(s.N - 1)) : n;
      ivs_[k_dim] = add(k0, kk);
      llvm::Value* v = b_.CreateLoad(ty, address(k.b, map));
      if (guarded) v = b_.CreateSelect(b_.CreateICmpSLT(n, i64(s.N)), v, llvm::ConstantFP::get(ty, 0.0));
      b_.CreateStore(v, b_.CreateInBoundsGEP(ty, dst, add(mul(kk, w), r)));
    };
    if (map.strides[n_dim] != 1 && map.strides[k_dim] == 1 && w % s.vw == 0) {
      // Tiles of vw columns x vw rows through registers (a vector load along
      // k per column, a transpose, a vector store per row), then the rows
      // past the last whole tile element by element. Columns past N (the
      // last panel) load the last column and keep zeros.
      auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(s.vw));
      llvm::Align align(dtype_size(p_.buffers[k.out].dtype));
      llvm::Value* tiles = b_.CreateUDiv(kc, i64(s.vw));
      loop_range(i64(0), tiles, [&](llvm::Value* kt) {
        llvm::Value* kk0 = mul(kt, s.vw);
        for (int64_t c0 = 0; c0 < w; c0 += s.vw) {
          std::vector<llvm::Value*> x;
          ivs_[k_dim] = add(k0, kk0);
          for (int64_t c = 0; c < s.vw; ++c) {
            llvm::Value* n = add(n0, i64(c0 + c));
            ivs_[n_dim] = guarded ? smin(n, i64(s.N - 1)) : n;
            llvm::Value* v = b_.CreateAlignedLoad(vty, address(k.b, map), align);
            if (guarded) v = b_.CreateSelect(b_.CreateICmpSLT(n, i64(s.N)), v, llvm::Constant::getNullValue(vty));
            x.push_back(v);
          }
          transpose_in_registers(x);
          for (int64_t r = 0; r < s.vw; ++r)
            b_.CreateAlignedStore(x[r], b_.CreateInBoundsGEP(ty, dst, add(mul(add(kk0, i64(r)), w), i64(c0))), align);
        }
      });
      loop_range(mul(tiles, s.vw), kc, [&](llvm::Value* kk) { loop(w, [&](llvm::Value* r) { elem(r, kk); }); });
    } else if (map.strides[n_dim] != 1) {
      loop(w, [&](llvm::Value* r) { loop_carry(kc, {}, [&](llvm::Value* kk, const std::vector<llvm::Value*>&) {
        elem(r, kk);
        return std::vector<llvm::Value*>{};
      }); });
    } else if (!guarded) {
      auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(s.vw));
      llvm::Align align(dtype_size(p_.buffers[k.out].dtype));
      loop_carry(kc, {}, [&](llvm::Value* kk, const std::vector<llvm::Value*>&) {
        ivs_[n_dim] = n0;
        ivs_[k_dim] = add(k0, kk);
        llvm::Value* src = address(k.b, map);
        llvm::Value* to = b_.CreateInBoundsGEP(ty, dst, mul(kk, w));
        for (int64_t v = 0; v < w; v += s.vw)
          b_.CreateAlignedStore(b_.CreateAlignedLoad(vty, b_.CreateConstInBoundsGEP1_64(ty, src, v), align),
                                b_.CreateConstInBoundsGEP1_64(ty, to, v), align);
        return std::vector<llvm::Value*>{};
      });
    } else {
      loop_carry(kc, {}, [&](llvm::Value* kk, const std::vector<llvm::Value*>&) {
        loop(w, [&](llvm::Value* r) { elem(r, kk); });
        return std::vector<llvm::Value*>{};
      });
    }
  };
  int64_t full = s.N / w;
  if (full == s.pn) return copy(false);
  if_else(b_.CreateICmpSLT(jp, i64(full)), [&] { copy(false); }, [&] { copy(true); });
}

// B gathered (Kernel::b_gather), rows [k0, k0 + kc) of panel jp into dst
// (row kk at dst + kk * NR), a vector at a time along whichever of n and k
// has the longer contiguous runs in the buffer (a convolution's windows:
// n, the positions along a row of the image, in the forward product; k in
// the weight gradient, which reads them transposed), so that one gather
// touches few cache lines:
//  - along n: the offsets of the panel's columns are computed once, in
//    vectors of 32-bit lanes (the digits by division by constants); each row
//    adds its own offset to them and gathers, lanes past N masked off to 0.
//  - along k: vw rows at a time, each column's vw elements gathered along k
//    and the vw x vw tile transposed in registers, as pack_b_chunk does for
//    a transposed B; the rows past the last whole tile element by element.
// Where that direction's indices lie in runs of at least Kernel::kMinRun
// contiguous elements (a row of an image's positions), a vector is instead a
// masked load per run it touches (2 or 3), their offsets computed once per
// panel (along n) or per vw rows (along k): on W5, 1.4-1.5x faster products
// than with the gathers (second layer's forward 5.05 -> 3.48 ms, its weight
// gradient 5.86 -> 4.04 ms; first layer's 0.90 -> 0.48 and 1.29 -> 0.86 ms).
// (A convolution's windows, read this way from the padded input, are never
// written out: on W5's second layer that was 20 MB written and read twice a
// step.)
void KernelEmitter::gather_b_rows(const Kernel& k, const GemmShape& s, llvm::Value* jp, llvm::Value* k0,
                                  llvm::Value* kc, llvm::Value* dst) {
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  llvm::Type* i32 = b_.getInt32Ty();
  const unsigned vw = static_cast<unsigned>(s.vw);
  auto* vty = llvm::FixedVectorType::get(ty, vw);
  auto* ity = llvm::FixedVectorType::get(i32, vw);
  auto* i64ty = llvm::FixedVectorType::get(b_.getInt64Ty(), vw);
  auto ci = [&](llvm::Type* t, int64_t v) { return llvm::ConstantInt::get(t, static_cast<uint64_t>(v)); };
  // Index i (an i32 scalar or vector) split into its digits: the first is
  // the quotient by the later radices, the others remainders. Returns the
  // sum of digit * stride, then digits J-1 down to 1 (for next_digits).
  auto digits_of = [&](const Kernel::Digits& d, llvm::Value* i) {
    llvm::Type* t = i->getType();
    std::vector<llvm::Value*> v{ci(t, d.offset)};
    int64_t below = 1;
    for (size_t j = d.radix.size(); j-- > 0;) {
      llvm::Value* q = below > 1 ? b_.CreateUDiv(i, ci(t, below)) : i;
      if (j > 0) v.push_back(q = b_.CreateURem(q, ci(t, d.radix[j])));
      v[0] = b_.CreateAdd(v[0], b_.CreateMul(q, ci(t, d.stride[j])));
      below *= d.radix[j];
    }
    return v;
  };
  auto offset = [&](const Kernel::Digits& d, llvm::Value* i) { return digits_of(d, i)[0]; };
  // The same for index i + 1: the last digit steps, and each digit that
  // reaches its radix wraps to 0 and carries into the one before.
  auto next_digits = [&](const Kernel::Digits& d, const std::vector<llvm::Value*>& v) {
    const size_t J = d.radix.size();
    if (J == 0) return v;
    std::vector<llvm::Value*> next(v.size());
    llvm::Value* off = b_.CreateAdd(v[0], ci(i32, d.stride[J - 1]));
    llvm::Value* carry = b_.getTrue();
    for (size_t j = J - 1, slot = 1; j >= 1; --j, ++slot) {
      llvm::Value* stepped = b_.CreateAdd(v[slot], b_.CreateZExt(carry, i32));
      carry = b_.CreateICmpEQ(stepped, ci(i32, d.radix[j]));
      next[slot] = b_.CreateSelect(carry, ci(i32, 0), stepped);
      // Wrapping digit j takes back radix * stride and adds the stride of j - 1.
      off = b_.CreateSelect(carry, b_.CreateAdd(off, ci(i32, d.stride[j - 1] - d.radix[j] * d.stride[j])), off);
    }
    next[0] = off;
    return next;
  };
  // Lanes i0, i0 + 1, ..: a vector of consecutive indices.
  auto lanes = [&](llvm::Value* i0) {
    std::vector<llvm::Constant*> c;
    for (unsigned l = 0; l < vw; ++l) c.push_back(ci(i32, l));
    return b_.CreateAdd(b_.CreateVectorSplat(vw, i0), llvm::ConstantVector::get(c));
  };
  const llvm::Align align(dtype_size(p_.buffers[k.out].dtype));
  auto gather = [&](llvm::Value* idx, llvm::Value* mask) {
    llvm::Value* ptrs = b_.CreateInBoundsGEP(ty, base(k.b), b_.CreateSExt(idx, i64ty));
    return b_.CreateMaskedGather(vty, ptrs, align, mask, llvm::Constant::getNullValue(vty));
  };
  llvm::Value* n0 = b_.CreateTrunc(mul(jp, s.nr), i32);
  const bool ragged = s.N % s.nr != 0;
  // Runs of r contiguous elements (Kernel::in_runs): vw consecutive indices from
  // `first` (of digits d) lie in at most `pieces` runs, each read by a masked
  // load from its own offset rather than all by one gather of vw elements
  // (a convolution's windows: runs of a row of the image, 14 positions on
  // W5's second layer, so 2 or 3 pieces).
  struct Piece {
    llvm::Value *at, *mask;  // lane l of the piece reads buffer[at + l + the other index's offset]
    llvm::Value* some = nullptr;  // whether any lane is on, where that depends on the phase (else null: always)
  };
  auto pieces_of = [&](const Kernel::Digits& d, llvm::Value* first, int64_t count) {
    const int64_t r = Kernel::run(d), pieces = (r + s.vw - 2) / r + 1;  // (at most 3 with r >= 8 and vw <= 16)
    llvm::Value* iota = lanes(ci(i32, 0));
    llvm::Value* phase = b_.CreateURem(first, ci(i32, r));  // lane 0's place in its run
    llvm::Value* live = count < 0 ? nullptr : b_.CreateICmpSLT(lanes(first), ci(ity, count));
    std::vector<Piece> ps;
    for (int64_t p = 0; p < pieces; ++p) {
      // Lanes [lo, hi) lie in the p-th run the vector touches.
      llvm::Value* lo = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smax, b_.CreateSub(ci(i32, p * r), phase), ci(i32, 0));
      llvm::Value* hi = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, b_.CreateSub(ci(i32, (p + 1) * r), phase),
                                                 ci(i32, s.vw));
      llvm::Value* mask = b_.CreateAnd(b_.CreateICmpSGE(iota, b_.CreateVectorSplat(vw, lo)),
                                       b_.CreateICmpSLT(iota, b_.CreateVectorSplat(vw, hi)));
      if (live) mask = b_.CreateAnd(mask, live);
      // (A piece past the last index or past the vector has no lane on: its
      // offset is the last index's, never read.)
      llvm::Value* i = b_.CreateAdd(first, lo);
      if (count >= 0) i = b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, i, ci(i32, count - 1));
      // The p-th run has lanes only when it starts inside the vector
      // (p * r - phase < vw): always where p * r < vw, else for some phases
      // (runs of 14 and vw 16: the third run for phase 13 alone).
      llvm::Value* some = p * r < s.vw ? nullptr : b_.CreateICmpSGT(phase, ci(i32, p * r - s.vw));
      ps.push_back({b_.CreateSExt(b_.CreateSub(offset(d, i), lo), b_.getInt64Ty()), mask, some});
    }
    return ps;
  };
  // The pieces' masked loads at offset `at` plus each piece's (lane 0 of a
  // piece may lie before the buffer: a plain GEP), lanes off 0. A piece that
  // may have no lane on is loaded under a branch, taken alike for every row
  // of the panel: the loads are what these loops wait on (on W5's second
  // layer the third piece has lanes in 1 vector of 14).
  auto load_pieces = [&](const std::vector<Piece>& ps, llvm::Value* at, llvm::Value* live) {
    llvm::Value* x = llvm::Constant::getNullValue(vty);
    for (const Piece& p : ps) {
      auto load = [&] {
        return b_.CreateMaskedLoad(vty, b_.CreateGEP(ty, base(k.b), add(at, p.at)), align, live ? b_.CreateAnd(p.mask, live) : p.mask, x);
      };
      if (!p.some) {
        x = load();
        continue;
      }
      llvm::BasicBlock* skipped = b_.GetInsertBlock();
      llvm::Value* loaded = nullptr;
      llvm::BasicBlock* in = nullptr;
      when(p.some, [&] {
        loaded = load();
        in = b_.GetInsertBlock();
      });
      llvm::PHINode* phi = b_.CreatePHI(vty, 2);
      phi->addIncoming(x, skipped);
      phi->addIncoming(loaded, in);
      x = phi;
    }
    return x;
  };
  if (k.gathered_along_k()) {
    // Along k. A column past N gathers nothing and keeps zeros; its offset
    // is the last column's, so that the element-by-element rows below read
    // inside the buffer before they drop it.
    std::vector<llvm::Value*> col(static_cast<size_t>(s.nr)), live(static_cast<size_t>(s.nr), nullptr);
    for (int64_t c = 0; c < s.nr; ++c) {
      llvm::Value* n = b_.CreateAdd(n0, ci(i32, c));
      col[c] = offset(k.b_n, ragged ? b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, n, ci(i32, s.N - 1)) : n);
      if (ragged) live[c] = b_.CreateVectorSplat(vw, b_.CreateICmpSLT(n, ci(i32, s.N)));
    }
    llvm::Value* tiles = b_.CreateUDiv(kc, i64(s.vw));
    loop_range(i64(0), tiles, [&](llvm::Value* kt) {
      llvm::Value* kk0 = mul(kt, s.vw);
      llvm::Value* first = b_.CreateTrunc(add(k0, kk0), i32);
      const bool in_pieces = Kernel::in_runs(k.b_k);
      llvm::Value* rows = in_pieces ? nullptr : offset(k.b_k, lanes(first));
      std::vector<Piece> ps = in_pieces ? pieces_of(k.b_k, first, -1) : std::vector<Piece>{};
      for (int64_t c0 = 0; c0 < s.nr; c0 += s.vw) {
        std::vector<llvm::Value*> x;
        for (int64_t c = 0; c < s.vw; ++c)
          x.push_back(in_pieces ? load_pieces(ps, b_.CreateSExt(col[c0 + c], b_.getInt64Ty()), live[c0 + c])
                                : gather(b_.CreateAdd(rows, b_.CreateVectorSplat(vw, col[c0 + c])), live[c0 + c]));
        transpose_in_registers(x);
        for (int64_t r = 0; r < s.vw; ++r)
          b_.CreateAlignedStore(x[r], b_.CreateInBoundsGEP(ty, dst, add(mul(add(kk0, i64(r)), s.nr), i64(c0))), align);
      }
    });
    loop_range(mul(tiles, s.vw), kc, [&](llvm::Value* kk) {
      llvm::Value* row = offset(k.b_k, b_.CreateTrunc(add(k0, kk), i32));
      for (int64_t c = 0; c < s.nr; ++c) {
        llvm::Value* v = b_.CreateLoad(ty, b_.CreateInBoundsGEP(ty, base(k.b), b_.CreateSExt(b_.CreateAdd(row, col[c]), b_.getInt64Ty())));
        if (ragged) v = b_.CreateSelect(b_.CreateExtractElement(live[c], uint64_t{0}), v, llvm::ConstantFP::get(ty, 0.0));
        b_.CreateStore(v, b_.CreateInBoundsGEP(ty, dst, add(mul(kk, s.nr), i64(c))));
      }
    });
    return;
  }
  // Along n: in pieces of runs, or else a gather per vector of columns.
  if (Kernel::in_runs(k.b_n)) {
    std::vector<std::vector<Piece>> vectors;
    for (int64_t c0 = 0; c0 < s.nr; c0 += s.vw)
      vectors.push_back(pieces_of(k.b_n, b_.CreateAdd(n0, ci(i32, c0)), ragged ? s.N : -1));
    // Row k0 + kk's offset counted from k0's, digit by digit (the divisions
    // of `offset` per row were half the loop's instructions).
    std::vector<llvm::Value*> at = digits_of(k.b_k, b_.CreateTrunc(k0, i32));
    loop_carry(kc, at, [&](llvm::Value* kk, const std::vector<llvm::Value*>& digits) {
      llvm::Value* row = b_.CreateSExt(digits[0], b_.getInt64Ty());
      llvm::Value* to = b_.CreateInBoundsGEP(ty, dst, mul(kk, s.nr));
      for (size_t v = 0; v < vectors.size(); ++v)
        b_.CreateAlignedStore(load_pieces(vectors[v], row, nullptr),
                              b_.CreateConstInBoundsGEP1_64(ty, to, static_cast<int64_t>(v) * s.vw), align);
      return next_digits(k.b_k, digits);
    });
    return;
  }
  // Otherwise a gather per vector of columns.
  std::vector<llvm::Value*> cols, masks;
  for (int64_t c0 = 0; c0 < s.nr; c0 += s.vw) {
    llvm::Value* n = lanes(b_.CreateAdd(n0, ci(i32, c0)));
    cols.push_back(offset(k.b_n, n));
    masks.push_back(ragged ? b_.CreateICmpSLT(n, ci(ity, s.N)) : nullptr);
  }
  loop_range(i64(0), kc, [&](llvm::Value* kk) {
    llvm::Value* at = b_.CreateVectorSplat(vw, offset(k.b_k, b_.CreateTrunc(add(k0, kk), i32)));
    llvm::Value* to = b_.CreateInBoundsGEP(ty, dst, mul(kk, s.nr));
    for (size_t v = 0; v < cols.size(); ++v)
      b_.CreateAlignedStore(gather(b_.CreateAdd(cols[v], at), masks[v]),
                            b_.CreateConstInBoundsGEP1_64(ty, to, static_cast<int64_t>(v) * s.vw), align);
  });
}

// C[ip*MR.., jp*NR..] (+)= sum over k in [k0, k0 + kc) of A's rows and
// B's panel (packed or in place).
void KernelEmitter::microkernel(const Kernel& k, const GemmShape& s, llvm::Value* ip, llvm::Value* jp, llvm::Value* k0,
                 llvm::Value* kc, llvm::Value* first, const std::optional<CBlock>& cb, llvm::Value* panel) {
  size_t batch = k.dims.size() - 3;
  llvm::Type* ty = type(p_.buffers[k.out].dtype);
  llvm::Value* m0 = mul(ip, s.mr);
  llvm::Value* n0 = mul(jp, s.nr);
  ivs_[batch] = m0, ivs_[batch + 1] = i64(0), ivs_[batch + 2] = k0;
  llvm::Value* pa = address(k.a, k.a_map);
  int64_t sa_r = k.a_map.strides[batch], sa_k = k.a_map.strides[batch + 2];
  llvm::Value* pb;
  int64_t sb_k = s.nr;
  if (panel) {
    pb = panel;
  } else if (k.pack_b < 0) {
    ivs_[batch] = i64(0), ivs_[batch + 1] = n0, ivs_[batch + 2] = k0;
    pb = address(k.b, k.b_map);
    sb_k = k.b_map.strides[batch + 2];
  } else {
    pb = b_.CreateInBoundsGEP(ty, base(k.pack_b), add(mul(mul(jp, s.K), s.nr), mul(k0, s.nr)));
  }
  ivs_[batch] = ivs_[batch + 1] = ivs_[batch + 2] = i64(0);
  int64_t ldc = cb ? cb->ld : k.out_map.strides[batch];
  llvm::Value* c =
      cb ? b_.CreateInBoundsGEP(ty, cb->base, add(mul(b_.CreateSub(ip, cb->ip0), s.mr * ldc), mul(b_.CreateSub(jp, cb->jp0), s.nr)))
         : b_.CreateInBoundsGEP(ty, base(k.out), add(add(index(k.out_map), n0), mul(m0, ldc)));
  llvm::Value* rows = smin(i64(s.mr), b_.CreateSub(i64(s.M), m0));
  llvm::Value* cols = smin(i64(s.nr), b_.CreateSub(i64(s.N), n0));
  b_.CreateCall(tile_function(ty, s), {pa, i64(sa_r), i64(sa_k), pb, i64(sb_k), kc, c, i64(ldc), rows, cols, first});
}

// One function per module and tile shape, shared by every packed product:
//   tile(pa, sa_r, sa_k, pb, sb_k, kc, c, ldc, rows, cols, first)
// C[r, j] (+)= sum_k pa[r*sa_r + k*sa_k] * pb[k*sb_k + j] for r < rows, j < cols, with
// C = acc on the first k chunk and C += acc after it. The MR x NR tile is
// held in MR * NR / VW vector registers; edge tiles store with masks.
llvm::Function* KernelEmitter::tile_function(llvm::Type* ty, const GemmShape& s) {
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
  // The tile's accumulators, carried over k in [0, kc) (kc >= 1).
  std::vector<llvm::Value*> zeros(static_cast<size_t>(s.mr * nv), llvm::Constant::getNullValue(vty));
  // One k step: B's row at brow, A's column at offset ak of each row.
  auto k_step = [&](llvm::Value* brow, llvm::Value* ak, const std::vector<llvm::Value*>& acc) {
    std::vector<llvm::Value*> bv;
    for (int64_t v = 0; v < nv; ++v)
      bv.push_back(b_.CreateAlignedLoad(vty, b_.CreateConstInBoundsGEP1_64(ty, brow, v * s.vw), elem_align));
    std::vector<llvm::Value*> sums(acc.size());
    for (int64_t r = 0; r < s.mr; ++r) {
      llvm::Value* a = b_.CreateVectorSplat(static_cast<unsigned>(s.vw),
                                            b_.CreateLoad(ty, b_.CreateInBoundsGEP(ty, arows[r], ak)));
      for (int64_t v = 0; v < nv; ++v) sums[r * nv + v] = b_.CreateCall(fma, {a, bv[v], acc[r * nv + v]});
    }
    return sums;
  };
  // k in steps of kUnroll while a whole step is left, then one at a time
  // (the same sums in the same order): B's row and A's offset advance by a
  // step's stride instead of a multiplication per k. Unrolled by 4, the
  // products took 0.96-0.99 of their time (W6, W3, the GEMM line; the same
  // bits) on 2026-12-06's Xeon; by 2 or 8 about the same. It costs compile
  // time: W3's train_step took 50 ms to compile against 45 (one loop, 45;
  // unrolled by 2, 50). A tile unrolled without the loop for the steps left
  // over, where K is a multiple of 4, beside the plain tile for the other
  // products made W3's 56 -> 68 ms, both being in its module.
  constexpr int64_t kUnroll = 4;
  std::vector<llvm::Value*> sb_u, sa_u;
  for (int64_t u = 0; u < kUnroll; ++u) sb_u.push_back(b_.CreateMul(sb_k, i64(u))), sa_u.push_back(b_.CreateMul(sa_k, i64(u)));
  // `trips` (>= 0) iterations of `per` k steps, carrying the accumulators,
  // B's row and A's offset (the last two of `init`).
  auto k_loop = [&](llvm::Value* trips, const std::vector<llvm::Value*>& init, int64_t per) {
    llvm::Value* b_step = b_.CreateMul(sb_k, i64(per));
    llvm::Value* a_step = b_.CreateMul(sa_k, i64(per));
    llvm::BasicBlock* pre = b_.GetInsertBlock();
    auto* body = llvm::BasicBlock::Create(ctx_, "k.loop", f);
    auto* exit = llvm::BasicBlock::Create(ctx_, "k.after", f);
    b_.CreateCondBr(b_.CreateICmpSGT(trips, i64(0)), body, exit);
    b_.SetInsertPoint(body);
    llvm::PHINode* j = b_.CreatePHI(i64t, 2);
    j->addIncoming(i64(0), pre);
    std::vector<llvm::PHINode*> phis;
    for (llvm::Value* v : init) {
      phis.push_back(b_.CreatePHI(v->getType(), 2));
      phis.back()->addIncoming(v, pre);
    }
    const size_t na = init.size() - 2;
    std::vector<llvm::Value*> acc(phis.begin(), phis.begin() + static_cast<std::ptrdiff_t>(na));
    llvm::Value *brow = phis[na], *ak = phis[na + 1];
    for (int64_t u = 0; u < per; ++u)
      acc = k_step(b_.CreateInBoundsGEP(ty, brow, sb_u[static_cast<size_t>(u)]), b_.CreateAdd(ak, sa_u[static_cast<size_t>(u)]), acc);
    acc.push_back(b_.CreateInBoundsGEP(ty, brow, b_step));
    acc.push_back(b_.CreateAdd(ak, a_step));
    llvm::Value* jn = b_.CreateAdd(j, i64(1));
    llvm::BasicBlock* latch = b_.GetInsertBlock();
    j->addIncoming(jn, latch);
    for (size_t q = 0; q < phis.size(); ++q) phis[q]->addIncoming(acc[q], latch);
    b_.CreateCondBr(b_.CreateICmpSLT(jn, trips), body, exit);
    b_.SetInsertPoint(exit);
    std::vector<llvm::Value*> out;
    for (size_t q = 0; q < init.size(); ++q) {
      llvm::PHINode* phi = b_.CreatePHI(init[q]->getType(), 2);
      phi->addIncoming(init[q], pre);
      phi->addIncoming(acc[q], latch);
      out.push_back(phi);
    }
    return out;
  };
  std::vector<llvm::Value*> init = zeros;
  init.push_back(pb);
  init.push_back(i64(0));
  llvm::Value* whole = b_.CreateUDiv(kc, i64(kUnroll));
  std::vector<llvm::Value*> next = k_loop(whole, init, kUnroll);
  next = k_loop(b_.CreateSub(kc, b_.CreateMul(whole, i64(kUnroll))), next, 1);
  next.resize(zeros.size());

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

}  // namespace gradc
