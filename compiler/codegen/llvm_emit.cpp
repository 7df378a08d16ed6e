// The LLVM emitter's core: the entry function, and per kernel its loop
// nest (elementwise kernels, on the thread pool when large; reductions;
// argmax; run-time checks). Matrix products are emitted by emit_matmul.cpp
// and emit_gemm.cpp, reductions by emit_reduce.cpp, loops by emit_loops.cpp,
// expressions by emit_scalar.cpp.
#include "compiler/codegen/llvm_emit.h"

#include <fmt/format.h>
#include <llvm/IR/DiagnosticHandler.h>
#include <llvm/IR/DiagnosticInfo.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Transforms/Utils/ModuleUtils.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <optional>
#include <utility>

#include "compiler/codegen/emitter.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// An entry of more kernels than this is compiled without optimization. Its
// kernels share one function, and LLVM's machine scheduler and register
// allocator take time quadratic in the number of kernels there (each kernel's
// loop is a scheduling region, and the buffers' base pointers are used in all
// of them): 16,000 kernels took 80 s of machine code. Real models have tens
// of kernels; only generated, very deep ones get here, and they still run.
constexpr size_t kMaxOptimizedKernels = 256;

// The side of the square tiles of a transposing kernel: a cache line of f32.
constexpr int64_t kTransposeTile = 16;

// A transposing elementwise kernel writes its output contiguously along the
// innermost dim while one of its loads steps through memory along it and is
// contiguous along another dim `dt` (a transpose, or a layout change such as
// [N*P, O] -> [N, O, P] around a convolution's product). In loop order, every
// element read touches a new cache line and the line is gone before the next
// iteration of dim dt reads its neighbour: a [400, 12544] transpose took 22 ms.
// Such a kernel runs in kTransposeTile x kTransposeTile tiles of (dt,
// innermost), whose lines stay in L1 from their first use to their last.
std::optional<size_t> transposing_dim(const Kernel& k) {
  size_t last = k.dims.size() - 1;
  if (k.dims.size() < 2 || k.out_map.strides.size() != k.dims.size() || k.out_map.strides[last] != 1 ||
      k.dims[last] < kTransposeTile)
    return std::nullopt;
  for (const KExpr& e : k.exprs) {
    // (Loads of values outside the loop nest, such as the seed words, have no strides.)
    if (e.kind != KExpr::Kind::Load || !e.args.empty() || e.map.strides.size() != k.dims.size() ||
        std::abs(e.map.strides[last]) < kTransposeTile)
      continue;
    for (size_t d = 0; d < last; ++d)
      if (e.map.strides[d] == 1 && k.dims[d] >= kTransposeTile) return d;
  }
  return std::nullopt;
}

// Whether expressions a and b of k compute the same value: the same node,
// or the same kind, operation, operands and access.
bool same_expr(const Kernel& k, int a, int b) {
  if (a == b) return true;
  const KExpr &x = k.exprs[static_cast<size_t>(a)], &y = k.exprs[static_cast<size_t>(b)];
  if (x.kind != y.kind || x.op != y.op || x.dtype != y.dtype || x.buffer != y.buffer || x.value != y.value ||
      x.row_stride != y.row_stride || x.map != y.map || x.args.size() != y.args.size())
    return false;
  for (size_t i = 0; i < x.args.size(); ++i)
    if (!same_expr(k, x.args[i], y.args[i])) return false;
  return true;
}

bool ordinary_number(double v) { return !std::isnan(v) && !(v == 0 && std::signbit(v)); }

// Whether floating-point expression e of k is never NaN and never -0: a
// constant that is neither, or a ReLU, where(gt(x, c), x, d) with c >= 0 and
// d such a constant (where x > c >= 0 holds, x is positive; a NaN x fails the
// comparison). Among such values `>` alone orders them: there is no NaN to
// pass on and no -0 to tell from +0, so a pool of them picks by one `max`
// instruction where the NaN test takes four more.
bool ordinary(const Kernel& k, int e) {
  const KExpr& x = k.exprs[static_cast<size_t>(e)];
  if (x.dtype != DType::F32 && x.dtype != DType::F64) return false;
  if (x.kind == KExpr::Kind::Const) return ordinary_number(x.value);
  if (x.kind != KExpr::Kind::Op || x.op != Op::Where) return false;
  const KExpr& cond = k.exprs[static_cast<size_t>(x.args[0])];
  if (cond.kind != KExpr::Kind::Op || cond.op != Op::Gt) return false;
  const KExpr& bound = k.exprs[static_cast<size_t>(cond.args[1])];
  return bound.kind == KExpr::Kind::Const && bound.value >= 0 && same_expr(k, cond.args[0], x.args[1]) &&
         ordinary(k, x.args[2]);
}

// Adjacent loop dims that every access walks as one (the outer one's stride
// is the inner one's times its extent, in the output and in every load) are
// one loop: the 14 x 14 maps of a convolution's layers become loops of 196,
// long enough for LLVM to vectorize. The iteration order is the same.
// Elementwise kernels, argmax (whose axis stays a dim of its own), checks,
// and reductions that take the plain loop (emit_reduce.cpp: the blocked sums
// choose their blocks from the planned dims); products and scatters keep
// their dims, which their emitters read.
}  // namespace

Kernel collapse_dims(const Kernel& k) {
  Kernel c = k;
  if ((k.kind != Kernel::Kind::Elementwise && k.kind != Kernel::Kind::ArgMax && k.kind != Kernel::Kind::CheckRange &&
       k.kind != Kernel::Kind::Reduce) ||
      k.dims.size() < 2 || k.out_map.strides.size() != k.dims.size())
    return c;
  std::vector<Affine*> maps = {&c.out_map};
  for (KExpr& e : c.exprs)
    if (e.map.strides.size() == k.dims.size()) maps.push_back(&e.map);
  for (size_t d = c.dims.size() - 1; d-- > 0;) {
    if ((c.kind == Kernel::Kind::ArgMax || c.axis_dims > 1) && static_cast<int>(d) + 1 >= c.axis &&
        static_cast<int>(d) < c.axis + c.axis_dims)
      continue;
    // (A dim with a row bound may take in the dims after it, its rows grow,
    // but not be taken into the one before it.)
    if (c.rows_size >= 0 && c.rows_dim == d + 1) continue;
    if (!dims_merge(maps, c.dims, d)) continue;
    merge_dims(maps, c.dims, d);
    if (c.axis > static_cast<int>(d)) --c.axis;
    if (c.rows_dim > d) --c.rows_dim;
  }
  return c;
}

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
  // LLVM's tuning for Intel's AVX-512 cores vectorizes loops with 256-bit
  // vectors (a 512-bit instruction once lowered the whole core's clock).
  // The tile functions use 512-bit vectors regardless; the other kernels
  // take them too: on 2026-12-06's Xeon (one process, both compiled, steps
  // alternated) W6's GRU cells, a sigmoid and a tanh per element, took
  // 0.76-0.84 of their time (the step 0.976), W2's step 0.93, W1's 1.01,
  // and W3-W5 0.98-0.99. Sums vectorize in their order at the wider width,
  // so their bits change with it (and not with the thread count).
  if (wide_) fn_->addFnAttr("prefer-vector-width", "512");
  b_.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", fn_));
  args_ = fn_->getArg(0);
  arena_ = fn_->getArg(1);
  rt_ = fn_->getArg(2);
  load_bases();
  if (!p_.profile) {
    kernels(0, p_.kernels.size());
  } else {
    // counters[k] += the cycles of kernel k; counters[kernels] += those of the call.
    size_t slot = p_.sig.reads.size() + p_.sig.produces.size();
    counters_ = b_.CreateLoad(b_.getPtrTy(), b_.CreateConstGEP1_64(b_.getPtrTy(), args_, slot), "counters");
    llvm::Value* start = clock();
    kernels(0, p_.kernels.size());
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

llvm::Value* KernelEmitter::clock() { return b_.CreateIntrinsic(llvm::Intrinsic::readcyclecounter, {}, {}); }

void KernelEmitter::count(size_t i, llvm::Value* since) {
  llvm::Value* at = b_.CreateConstInBoundsGEP1_64(b_.getInt64Ty(), counters_, i);
  b_.CreateStore(b_.CreateAdd(b_.CreateLoad(b_.getInt64Ty(), at), b_.CreateSub(clock(), since)), at);
}

// Kernels [from, to) in order; a Loop kernel runs its body (the kernels
// up to its loop_end) in a counted loop whose element index is step_.
void KernelEmitter::kernels(size_t from, size_t to) {
  for (size_t i = from; i < to;) {
    const Kernel& k = p_.kernels[i];
    if (k.per_block) {  // (run by its host, in the host's time)
      ++i;
      continue;
    }
    llvm::Value* t0 = p_.profile ? clock() : nullptr;
    if (k.kind != Kernel::Kind::Loop) {
      kernel(k);
      if (t0) count(i, t0);
      ++i;
      continue;
    }
    if (at_kernel_) at_kernel_(b_, i);
    const size_t end = static_cast<size_t>(k.loop_end);
    const int64_t T = k.dims[0];
    llvm::Value* outer = step_;
    loop(T, [&](llvm::Value* s) {
      step_ = k.reverse ? b_.CreateSub(i64(T - 1), s, "t", true, true) : s;
      // The loop's views: row t of their parents (in buffer order, so a
      // view of an enclosing loop's view sees that view's row).
      for (size_t v = 0; v < p_.buffers.size(); ++v) {
        const Buffer& buf = p_.buffers[v];
        if (buf.kind == Buffer::Kind::View && buf.loop == static_cast<int>(i))
          bases_[v] = b_.CreateInBoundsGEP(type(buf.dtype), base(buf.parent), mul(step_, buf.step));
      }
      kernels(i + 1, end);
    });
    step_ = outer;
    for (size_t v = 0; v < p_.buffers.size(); ++v)  // (not in use past their loop)
      if (p_.buffers[v].kind == Buffer::Kind::View && p_.buffers[v].loop == static_cast<int>(i)) bases_[v] = nullptr;
    if (t0) count(i, t0);
    i = end;
  }
}

// Base pointers of every buffer in the current function: none yet. base()
// makes one where a kernel first uses it; a view's is set where its loop
// starts. So a function holds only the loads of the buffers it uses, not
// those of every buffer of the program (a parallel body of W6 used to load
// all 140, dead code that LLVM's first passes then removed).
void KernelEmitter::load_bases() { bases_.assign(p_.buffers.size(), nullptr); }

// The base pointer of `buffer` in the current function: loaded from the args
// (an argument) or offset into the arena, at the end of the function's entry
// block so that it dominates every use.
llvm::Value* KernelEmitter::base(int buffer) {
  llvm::Value*& base = bases_[static_cast<size_t>(buffer)];
  if (base) return base;
  const Buffer& buf = p_.buffers[static_cast<size_t>(buffer)];
  GRADC_ASSERT(buf.kind != Buffer::Kind::View, "a view's base is set where its loop starts");
  llvm::BasicBlock& entry = fn_->getEntryBlock();
  llvm::IRBuilder<> eb(&entry, entry.getTerminator() ? entry.getTerminator()->getIterator() : entry.end());
  if (buf.kind == Buffer::Kind::Arg)
    base = eb.CreateLoad(eb.getPtrTy(), eb.CreateConstGEP1_64(eb.getPtrTy(), args_, buf.arg), fmt::format("arg.{}", buf.name));
  else
    base = eb.CreateConstGEP1_64(eb.getInt8Ty(), arena_, buf.offset);
  return base;
}

void KernelEmitter::fill(int buffer, double v) {
  const Buffer& buf = p_.buffers[buffer];
  llvm::Type* ty = type(buf.dtype);
  llvm::Value* c = buf.dtype == DType::I32 ? static_cast<llvm::Value*>(b_.getInt32(static_cast<int32_t>(v))) : fconst(ty, v);
  loop(buf.elems, [&](llvm::Value* i) { b_.CreateStore(c, b_.CreateInBoundsGEP(ty, base(buffer), i)); });
}

void KernelEmitter::kernel(const Kernel& planned) {
  if (at_kernel_) at_kernel_(b_, static_cast<size_t>(&planned - p_.kernels.data()));
  // (Reductions collapse their dims themselves, in the plain loop only.)
  const Kernel k = planned.kind == Kernel::Kind::Reduce ? planned : collapse_dims(planned);
  // The kernels that run in its blocks (Kernel::per_block), right after it.
  pool_kernels_.clear();
  for (const Kernel* c = &planned + 1; c < p_.kernels.data() + p_.kernels.size() && c->per_block; ++c)
    pool_kernels_.push_back(c);
  memo_.assign(k.exprs.size(), nullptr);
  ivs_.assign(k.dims.size(), nullptr);
  bound_rows(nullptr);
  // A row bound stops its dim (merged with the dims after it, n rows of them) early.
  if ((k.kind == Kernel::Kind::Elementwise || k.kind == Kernel::Kind::ArgMax || k.kind == Kernel::Kind::ScatterAdd) &&
      k.rows_size >= 0)
    bound_rows(&k, k.rows_dim, k.dims[k.rows_dim] / k.rows_capacity);
  auto fresh = [&] {
    memo_.assign(k.exprs.size(), nullptr);
    for (auto [e, v] : pinned_) memo_[e] = v;
  };
  switch (k.kind) {
    case Kernel::Kind::Elementwise: {
      auto store = [&] {
        fresh();
        b_.CreateStore(value(k, k.root), address(k.out, k.out_map));
      };
      int64_t elems = 1;
      for (int64_t d : k.dims) elems *= d;
      std::optional<size_t> dt = transposing_dim(k);
      if (elems < kParallelElements || k.dims[0] < 2) {
        if (dt)
          elementwise_tiled(k, *dt, i64(0), extent(k, 0), store);
        else
          nest_vectorized(k, all_dims(k), store);
        break;
      }
      // Large: blocks of the outermost dim run on the thread pool.
      std::vector<size_t> inner = all_dims(k);
      inner.erase(inner.begin());
      parallel_ranges(k.dims[0], {}, [&](llvm::Value* lo, llvm::Value* hi) {
        if (bounded(0)) hi = smin(hi, rows_end());  // (a task past the rows does nothing)
        if (dt) return elementwise_tiled(k, *dt, lo, hi, store);
        loop_range(lo, hi, [&](llvm::Value* i) {
          ivs_[0] = i;
          nest_vectorized(k, inner, store);
        });
      });
      break;
    }
    case Kernel::Kind::Reduce: k.axis_dims > 1 ? argmax(k) : reduce(k); break;
    case Kernel::Kind::ArgMax: argmax(k); break;
    case Kernel::Kind::MatMul: matmul(k); break;
    case Kernel::Kind::CheckRange: check(k); break;
    case Kernel::Kind::ScatterAdd: scatter_add(k); break;
    case Kernel::Kind::Loop: GRADC_ASSERT(false, "a loop is emitted by kernels()"); break;
  }
  bound_rows(nullptr);
}

// A transposing elementwise kernel (see transposing_dim) over dim 0 in
// [lo0, hi0): the dims other than dt and the innermost in order, then tiles
// of (dt, innermost), each tile row by row. A plain copy (a layout change)
// moves whole tiles of one vector width per side through registers: a vector
// load per column of the tile, a transpose by shuffles, a vector store per
// row; its edge tiles, and other kernels, go element by element.
void KernelEmitter::elementwise_tiled(const Kernel& k, size_t dt, llvm::Value* lo0, llvm::Value* hi0,
                                      const std::function<void()>& store) {
  size_t last = k.dims.size() - 1;
  const KExpr& root = k.exprs[k.root];
  DType dtype = p_.buffers[k.out].dtype;
  const int64_t vw = (wide_ ? 64 : 32) / static_cast<int64_t>(dtype_size(dtype));
  const bool copy = root.kind == KExpr::Kind::Load && root.args.empty() && root.dtype == dtype &&
                    root.map.strides.size() == k.dims.size() && root.map.strides[dt] == 1;
  const int64_t side = copy ? vw : kTransposeTile;
  auto range = [&](size_t d) { return d == 0 ? std::pair{lo0, hi0} : std::pair{i64(0), extent(k, d)}; };
  auto elements = [&](llvm::Value* a0, llvm::Value* a1, llvm::Value* b0, llvm::Value* b1) {
    loop_range(a0, a1, [&](llvm::Value* i) {
      ivs_[dt] = i;
      scalar_next_loop_ = true;
      loop_range(b0, b1, [&](llvm::Value* j) {
        ivs_[last] = j;
        store();
      });
    });
  };
  // out[a0 + r, b0 + c] = in[a0 + r, b0 + c] for a whole tile, r, c < vw.
  auto registers = [&](llvm::Value* a0, llvm::Value* b0) {
    llvm::Type* ty = type(dtype);
    auto* vty = llvm::FixedVectorType::get(ty, static_cast<unsigned>(vw));
    llvm::Align align(dtype_size(dtype));
    std::vector<llvm::Value*> x;  // x[c][r] = in[a0 + r, b0 + c]
    ivs_[dt] = a0;
    for (int64_t c = 0; c < vw; ++c) {
      ivs_[last] = add(b0, i64(c));
      x.push_back(b_.CreateAlignedLoad(vty, address(root.buffer, root.map), align));
    }
    transpose_in_registers(x);
    ivs_[last] = b0;
    for (int64_t r = 0; r < vw; ++r) {
      ivs_[dt] = add(a0, i64(r));
      b_.CreateAlignedStore(x[r], address(k.out, k.out_map), align);
    }
  };
  auto tiles = [&] {
    auto [lo, hi] = range(dt);
    llvm::Value* count = b_.CreateUDiv(add(b_.CreateSub(hi, lo), i64(side - 1)), i64(side));
    loop_range(i64(0), count, [&](llvm::Value* ta) {
      llvm::Value* a0 = add(lo, mul(ta, side));
      llvm::Value* a1 = smin(add(a0, i64(side)), hi);
      auto tile = [&](llvm::Value* tb) {
        llvm::Value* b0 = mul(tb, side);
        llvm::Value* b1 = smin(add(b0, i64(side)), extent(k, last));
        if (!copy) return elements(a0, a1, b0, b1);
        llvm::Value* whole = b_.CreateAnd(b_.CreateICmpEQ(b_.CreateSub(a1, a0), i64(side)),
                                          b_.CreateICmpEQ(b_.CreateSub(b1, b0), i64(side)));
        if_else(whole, [&] { registers(a0, b0); }, [&] { elements(a0, a1, b0, b1); });
      };
      if (bounded(last))
        loop_range(i64(0), b_.CreateUDiv(add(rows_end(), i64(side - 1)), i64(side)), tile);
      else
        loop((k.dims[last] + side - 1) / side, tile);
    });
  };
  std::vector<size_t> outer;
  for (size_t d = 0; d < last; ++d)
    if (d != dt) outer.push_back(d);
  std::function<void(size_t)> outer_loops = [&](size_t level) {
    if (level == outer.size()) return tiles();
    auto [lo, hi] = range(outer[level]);
    loop_range(lo, hi, [&](llvm::Value* i) {
      ivs_[outer[level]] = i;
      outer_loops(level + 1);
    });
  };
  outer_loops(0);
}

// x[c][r] -> x[r][c] for a square of vectors (a power of two of them, as
// many as their lanes): each step swaps the off-diagonal h x h blocks of
// every 2h x 2h block, one shuffle of two rows per row.
void KernelEmitter::transpose_in_registers(std::vector<llvm::Value*>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  for (int64_t h = n / 2; h >= 1; h /= 2) {
    std::vector<int> lo_mask, hi_mask;
    for (int64_t l = 0; l < n; ++l) {
      bool left = (l & h) == 0;
      lo_mask.push_back(static_cast<int>(left ? l : n + l - h));
      hi_mask.push_back(static_cast<int>(left ? l + h : n + l));
    }
    for (int64_t i = 0; i < n; ++i) {
      if (i & h) continue;
      llvm::Value *xi = x[i], *xj = x[i + h];
      x[i] = b_.CreateShuffleVector(xi, xj, lo_mask);
      x[i + h] = b_.CreateShuffleVector(xi, xj, hi_mask);
    }
  }
}

// The first maximum along `axis` (a NaN wins, as in PyTorch). Also a pool's
// maximum (or minimum) over its window's dims (a Reduce kernel with
// axis_dims > 1, Fusion::pooled): the same loops, the value stored.
void KernelEmitter::argmax(const Kernel& k) {
  std::vector<size_t> outer;
  const size_t axis = static_cast<size_t>(k.axis), axis_end = axis + static_cast<size_t>(k.axis_dims);
  int64_t window = 1;
  for (size_t d = 0; d < k.dims.size(); ++d)
    if (d < axis || d >= axis_end) outer.push_back(d);
    else window *= k.dims[d];
  // A short axis (a pooling window) is unrolled, so that the innermost other
  // dim is a loop without inner loops, which LLVM vectorizes. An axis of
  // several dims (a pool's window read through the input's rows) always is.
  const bool unrolled = window <= kUnrolledArgMax && !outer.empty();
  if (k.axis_dims > 1 && !unrolled) internal_error(__FILE__, __LINE__, "an argmax over several dims too long to unroll");
  auto nest_outer = [&](const std::vector<size_t>& dims, const std::function<void()>& body) {
    if (!unrolled) return nest(k, dims, 0, body);
    nest_outputs(k, dims, body);
  };
  // Large ones on the thread pool, a range of dim 0 per task (each output
  // element is one task's, found in the same order).
  int64_t elems = 1;
  for (int64_t d : k.dims) elems *= d;
  auto each = [&](const std::function<void()>& body) {
    if (outer.empty() || outer[0] != 0 || k.dims[0] < 2 || elems < kParallelElements) return nest_outer(outer, body);
    std::vector<size_t> rest(outer.begin() + 1, outer.end());
    parallel_ranges(k.dims[0], {}, [&](llvm::Value* lo, llvm::Value* hi) {
      if (rest.empty() && unrolled) vectorize_next_loop_ = true;
      loop_range(lo, bounded(0) ? smin(hi, rows_end()) : hi, [&](llvm::Value* i) {
        ivs_[0] = i;
        nest_outer(rest, body);
      });
    });
  };
  each([&] { argmax_at(k, unrolled); });
}

// The loops over dims `dims` of an argmax (or a pool's maximum) whose axis
// is unrolled: the innermost vectorized and marked parallel, since each
// iteration writes its own output element and the windows it reads are
// another buffer.
void KernelEmitter::nest_outputs(const Kernel& k, const std::vector<size_t>& dims, const std::function<void()>& body) {
  if (dims.empty()) return body();
  std::vector<size_t> rest(dims.begin(), dims.end() - 1);
  nest(k, rest, 0, [&] {
    vectorize_next_loop_ = parallel_next_loop_ = true;
    loop_range(i64(0), extent(k, dims.back()), [&](llvm::Value* i) {
      ivs_[dims.back()] = i;
      body();
    });
  });
}

// One output element of argmax kernel k (or a pool's maximum) at the
// current indices of its dims other than the axis. A pool's maximum is its
// argmax's value: the first largest in the window's order, a NaN winning, as
// PyTorch's max_pool2d and the interpreter's fold of max (so of -0 and +0 the
// first; llvm.maximum would take +0).
void KernelEmitter::argmax_at(const Kernel& k, bool unrolled) {
  const bool value_only = k.kind == Kernel::Kind::Reduce;
  const size_t axis = static_cast<size_t>(k.axis), axis_end = axis + static_cast<size_t>(k.axis_dims);
  int64_t window = 1;
  for (size_t d = axis; d < axis_end; ++d) window *= k.dims[d];
  llvm::Type* ty = type(k.exprs[k.root].dtype);
  // Carried: the best value so far and its index.
  llvm::Value* lowest = fconst(ty, -std::numeric_limits<double>::infinity());
  const bool largest = !value_only || k.reduce_op == Op::ReduceMax;
  // Values never NaN or -0 (a pool of ReLUs) from a start that is neither:
  // the comparison alone picks (one `max` instruction for a pool's value).
  const bool plain = ordinary(k, k.root) && (!value_only || ordinary_number(k.init));
  auto step = [&](llvm::Value* i, const std::vector<llvm::Value*>& at) {
    if (k.axis_dims == 1) ivs_[axis] = i;
    memo_.assign(k.exprs.size(), nullptr);
    llvm::Value* v = value(k, k.root);
    llvm::Value* take = largest ? b_.CreateFCmpOGT(v, at[0]) : b_.CreateFCmpOLT(v, at[0]);
    if (!plain) take = b_.CreateOr(take, b_.CreateAnd(b_.CreateFCmpUNO(v, v), b_.CreateFCmpORD(at[0], at[0])));
    return std::vector<llvm::Value*>{b_.CreateSelect(take, v, at[0]), value_only ? at[1] : b_.CreateSelect(take, i, at[1])};
  };
  std::vector<llvm::Value*> best = {value_only ? fconst(ty, k.init) : lowest, i64(0)};
  if (unrolled) {
    for (int64_t i = 0; i < window; ++i) {
      for (size_t d = axis_end, rest = static_cast<size_t>(i); d-- > axis;) {  // i's digits, row-major
        ivs_[d] = i64(static_cast<int64_t>(rest % static_cast<size_t>(k.dims[d])));
        rest /= static_cast<size_t>(k.dims[d]);
      }
      best = step(i64(i), best);
    }
  } else {
    best = loop_carry(k.dims[axis], best, step);
  }
  for (size_t d = axis; d < axis_end; ++d) ivs_[d] = i64(0);  // the output map ignores the axis
  if (value_only) b_.CreateStore(best[0], address(k.out, k.out_map));
  else b_.CreateStore(b_.CreateTrunc(best[1], b_.getInt32Ty()), address(k.out, k.out_map));
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
    llvm::Value* addr = b_.CreateInBoundsGEP(ty, base(k.out), add(index(k.out_map), mul(row, k.row_stride)));
    b_.CreateStore(b_.CreateFAdd(b_.CreateLoad(ty, addr), value(k, k.root)), addr);
  });
}

// One of glibc's vector math functions, referenced so that libmvec is linked
// into every program that can run generated code (the JIT resolves the
// calls from the process's symbols).
extern "C" void _ZGVdN8v_expf();

namespace {
// The loops the emitter marks for vectorization are hints: where LLVM cannot
// follow one (a row shorter than a vector, a reduction it cannot reorder),
// it says on stderr that the loop was not vectorized, and why (a warning
// and remarks). That is a matter of speed for gradc's developers (the loops
// dump and the benchmarks show it), not something a user can act on, so the
// optimizers' remarks and failures are dropped; every other diagnostic goes
// to LLVM's default handler.
struct QuietHints : llvm::DiagnosticHandler {
  bool handleDiagnostics(const llvm::DiagnosticInfo& d) override {
    return d.getKind() >= llvm::DK_FirstRemark && d.getKind() <= llvm::DK_LastRemark;
  }
};
}  // namespace

void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features, const KernelHook& at_kernel) {
  [[maybe_unused]] static void (*volatile keep_libmvec)() = &_ZGVdN8v_expf;
  m.getContext().setDiagnosticHandler(std::make_unique<QuietHints>());
  KernelEmitter(p, m, at_kernel).run(name, cpu, features);
  std::string err;
  llvm::raw_string_ostream os(err);
  if (llvm::verifyModule(m, &os)) internal_error(__FILE__, __LINE__, "generated LLVM IR is invalid: " + os.str());
}

}  // namespace gradc
