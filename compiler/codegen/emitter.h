// The LLVM emitter's state and its parts, shared by the files that emit one
// concern each: llvm_emit.cpp (the entry function, elementwise kernels,
// argmax, checks), emit_reduce.cpp (reductions, long sums blocked),
// emit_loops.cpp (loops, thread-pool bodies, addresses), emit_scalar.cpp
// (expressions), emit_matmul.cpp (the small product forms, epilogues) and
// emit_gemm.cpp (register-tiled products).
// Internal to the code generator: it includes LLVM.
#pragma once

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <functional>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "compiler/codegen/llvm_emit.h"
#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Kernels of at least this many elements run on the thread pool (elementwise
// kernels, and plain reductions whose images write their own slabs).
inline constexpr int64_t kParallelElements = int64_t{1} << 16;

// The kernel with adjacent dims that every access walks as one merged (llvm_emit.cpp).
Kernel collapse_dims(const Kernel& k);

// Emits one Program's entry function into a module (see llvm_emit.h).
class KernelEmitter {
 public:
  KernelEmitter(const Program& p, llvm::Module& m, const KernelHook& at_kernel)
      : p_(p), m_(m), ctx_(m.getContext()), b_(ctx_), at_kernel_(at_kernel) {}

  void run(const std::string& name, const std::string& cpu, const std::string& features);

 private:
  // ---- llvm_emit.cpp ----
  void load_bases();
  llvm::Value* base(int buffer);
  void fill(int buffer, double v);
  void kernels(size_t from, size_t to);
  void kernel(const Kernel& k);
  llvm::Value* clock();
  void count(size_t kernel, llvm::Value* since);
  void argmax(const Kernel& k);
  void argmax_at(const Kernel& k, bool unrolled);
  void nest_outputs(const Kernel& k, const std::vector<size_t>& dims, const std::function<void()>& body);
  bool own_slabs(const Kernel& k);
  void transpose_in_registers(std::vector<llvm::Value*>& x);
  void elementwise_tiled(const Kernel& k, size_t dt, llvm::Value* lo0, llvm::Value* hi0, const std::function<void()>& store);
  void check(const Kernel& k);
  void scatter_add(const Kernel& k);

  // ---- emit_loops.cpp ----
  void parallel(int64_t n, const std::vector<size_t>& captured, const std::function<void(llvm::Value*)>& body);
  // [0, n) in at most kMaxRangeTasks runs of equal length (the last shorter),
  // each a task of `parallel` that gets its [lo, hi).
  static constexpr int64_t kMaxRangeTasks = 16;
  void parallel_ranges(int64_t n, const std::vector<size_t>& captured,
                       const std::function<void(llvm::Value* lo, llvm::Value* hi)>& body);
  void loop_range(llvm::Value* lo, llvm::Value* hi, const std::function<void(llvm::Value*)>& body);
  void when(llvm::Value* cond, const std::function<void()>& then);
  void if_else(llvm::Value* cond, const std::function<void()>& then, const std::function<void()>& otherwise);
  void loop(int64_t n, const std::function<void(llvm::Value*)>& body);
  void force_vectorize(llvm::BranchInst* latch, bool enable = true, llvm::MDNode* group = nullptr, bool enforce = true);
  llvm::MDNode* access_group(llvm::BasicBlock* before);
  llvm::Value* loop_acc(int64_t n, llvm::Value* init,
                        const std::function<llvm::Value*(llvm::Value* i, llvm::Value* acc)>& step);
  using CarryStep = std::function<std::vector<llvm::Value*>(llvm::Value* i, const std::vector<llvm::Value*>& carried)>;
  std::vector<llvm::Value*> loop_carry(int64_t n, const std::vector<llvm::Value*>& init, const CarryStep& step);
  std::vector<llvm::Value*> loop_carry(llvm::Value* n, const std::vector<llvm::Value*>& init, const CarryStep& step);
  void nest(const Kernel& k, const std::vector<size_t>& order, size_t level, const std::function<void()>& body);
  void nest_vectorized(const Kernel& k, const std::vector<size_t>& order, const std::function<void()>& body);
  bool independent_iterations(const Kernel& k, size_t d) const;
  // The trip count of dim d of the current kernel: its size, or the run-time
  // extent of the dim a row bound stops early (rows_dim_).
  llvm::Value* extent(const Kernel& k, size_t d) { return bounded(d) ? rows_end() : i64(k.dims[d]); }
  bool bounded(size_t d) const { return d == rows_dim_ && rows_buffer_ >= 0; }
  // Kernel k's dim d (k an elementwise kernel or reduction with
  // Kernel::rows_size) runs [0, n * unit); or, with k null, no dim stops early.
  void bound_rows(const Kernel* k, size_t d = 0, int64_t unit = 1);
  // n * unit, loaded in the function being emitted.
  llvm::Value* rows_end() { return mul(size_value(rows_buffer_), rows_unit_); }
  llvm::Value* index(const Affine& a);
  llvm::Value* address(int buffer, const Affine& a);

  llvm::Value* smin(llvm::Value* a, llvm::Value* b) { return b_.CreateBinaryIntrinsic(llvm::Intrinsic::smin, a, b); }
  llvm::Value* i64(int64_t v) { return b_.getInt64(v); }
  // Lanes of one vector register of dtype t: 16 f32 with AVX-512, 8 with AVX2; f64 half.
  int64_t vector_lanes(DType t) const { return (wide_ ? 16 : 8) / (t == DType::F64 ? 2 : 1); }
  llvm::Value* mul(llvm::Value* a, int64_t c) { return b_.CreateMul(a, i64(c), "", true, true); }
  llvm::Value* add(llvm::Value* a, llvm::Value* c) { return b_.CreateAdd(a, c, "", true, true); }
  // Dims 0 .. n-1 of a kernel's loop nest, outermost first.
  static std::vector<size_t> first_dims(size_t n) {
    std::vector<size_t> order(n);
    for (size_t d = 0; d < n; ++d) order[d] = d;
    return order;
  }
  static std::vector<size_t> all_dims(const Kernel& k) { return first_dims(k.dims.size()); }

  // ---- emit_scalar.cpp ----
  llvm::Type* type(DType t);
  llvm::Value* intrinsic(llvm::Intrinsic::ID id, llvm::Value* x);
  llvm::Value* libm(const char* name, llvm::Value* x);
  llvm::Value* value(const Kernel& k, int e);
  llvm::Value* op(const Kernel& k, const KExpr& x, llvm::Type* ty);
  llvm::Value* random_uniform(const Kernel& k, const KExpr& x, llvm::Type* ty);
  llvm::Value* fconst(llvm::Type* t, double v) { return llvm::ConstantFP::get(t, v); }
  // ---- emit_math.cpp: f32 tanh and expm1 inline (and the exp they use) ----
  llvm::Value* exp_f32(llvm::Value* x);
  llvm::Value* expm1_f32(llvm::Value* x);
  llvm::Value* tanh_f32(llvm::Value* x);

  // ---- emit_reduce.cpp ----
  void reduce(const Kernel& k);
  void short_total(const Kernel& k);
  bool blocked_sum(const Kernel& k);
  // A long sum: the kernel with its reduced dims merged where possible, and
  // its dims of size > 1, reduced and kept, outermost first.
  struct SumShape {
    Kernel k;
    std::vector<size_t> reduced, kept;
    // A row bound (Kernel::rows_size) on a reduced dim: that dim (after the
    // merges), and the run-time end of its rows, `rows` elements of it.
    size_t rows_dim = SIZE_MAX;
    llvm::Value* rows = nullptr;
  };
  struct SumBlocks {
    size_t run = 0, inner = 0;
    bool rows = false;
    int64_t n = 0, per = 0, chunks = 0, rest = 0, count = 0;
    std::vector<size_t> outer;
  };
  SumBlocks sum_blocks(const SumShape& s, int64_t block);
  void each_block(const SumShape& s, const SumBlocks& b, const std::function<void(llvm::Value* lo, llvm::Value* len)>& block);
  llvm::Value* masked_rows(const SumShape& s, const SumBlocks& b, llvm::Value* v);
  void output_sum(const SumShape& s);
  void column_sum(const SumShape& s);
  void carry(llvm::Value* done, const std::function<void(llvm::Value* l)>& fold,
             const std::function<void(llvm::Value* l)>& land);
  void for_levels(int64_t blocks, const std::function<void(int64_t l)>& visit);

  // ---- emit_matmul.cpp ----
  void matmul(const Kernel& k);
  void matmul_rows(const Kernel& k);
  void matmul_axpy(const Kernel& k);
  void matmul_dot(const Kernel& k);
  void matmul_dot_rows(const Kernel& k);
  void epilogues(const Kernel& k);
  // A product with a row bound (Kernel::rows_size): the call's rows of M, n
  // (i64; n times the rows of M per row of the dim where B is merged with
  // the axes after it), loops over rows [0, n) (or all M rows without a
  // bound: n null), and the fill of rows [n, M) of its stored results.
  llvm::Value* row_bound(const Kernel& k) {
    const int64_t unit = k.dims[k.dims.size() - 3] / k.rows_capacity;  // rows of M per row of the dim
    return unit == 1 ? size_value(k.rows_size) : mul(size_value(k.rows_size), unit);
  }
  // The end of k with a bound on it (Kernel::k_size): n * k_unit (in each block of k_period).
  llvm::Value* k_end(const Kernel& k) { return mul(size_value(k.k_size), k.k_unit); }
  // The k a product with a k bound runs: body(lo, len) for [0, n * k_unit),
  // or with a period for [o * k_period, o * k_period + n * k_unit), each block o.
  void k_ranges(const Kernel& k, const std::function<void(llvm::Value* lo, llvm::Value* len)>& body);
  // A loop over those k carrying values (step(k, carried) -> carried).
  std::vector<llvm::Value*> k_carry(const Kernel& k, const std::vector<llvm::Value*>& init, const CarryStep& step);
  llvm::Value* size_value(int buffer);  // the f32 size in `buffer` as an i64
  void rows_loop(const Kernel& k, llvm::Value* n, const std::function<void(llvm::Value*)>& body);
  void fill_rows(const Kernel& k, llvm::Value* n);

  // ---- emit_gemm.cpp ----
  struct GemmShape {
    int64_t M, N, K, mr, nr, vw, pm, pn;  // pm, pn: tiles of rows of A and of columns of B
  };
  // A block of C in per-thread scratch: tile (ip0, jp0) at `base`, rows `ld` apart.
  struct CBlock {
    llvm::Value *base, *ip0, *jp0;
    int64_t ld;
  };
  GemmShape gemm_shape(const Kernel& k);
  // With a column bound (Kernel::cols_size): the tiles of columns that cover [0, n * cols_unit).
  llvm::Value* col_tiles(const Kernel& k, const GemmShape& s) {
    llvm::Value* end = mul(size_value(k.cols_size), k.cols_unit);
    return smin(i64(s.pn), b_.CreateUDiv(add(end, i64(s.nr - 1)), i64(s.nr)));
  }
  void matmul_packed(const Kernel& k);
  void pool_block(const Kernel& c, llvm::Value* m_lo, llvm::Value* m_hi, llvm::Value* n_lo, llvm::Value* n_hi,
                  int64_t span);
  void pack_b(const Kernel& k, const GemmShape& s, llvm::Value* jp);
  void pack_b_chunk(const Kernel& k, const GemmShape& s, llvm::Value* jp, llvm::Value* k0, llvm::Value* kc,
                    llvm::Value* dst);
  void gather_b_rows(const Kernel& k, const GemmShape& s, llvm::Value* jp, llvm::Value* k0, llvm::Value* kc,
                     llvm::Value* dst);
  void microkernel(const Kernel& k, const GemmShape& s, llvm::Value* ip, llvm::Value* jp, llvm::Value* k0,
                   llvm::Value* kc, llvm::Value* first, const std::optional<CBlock>& cb, llvm::Value* panel);
  llvm::Function* tile_function(llvm::Type* ty, const GemmShape& s);

  const Program& p_;
  std::string cpu_, features_;
  bool wide_ = false;  // 512-bit vectors (AVX-512); else 256-bit
  // Set just before a loop whose vectorization LLVM's cost model would
  // refuse (a short epilogue loop over rows of C, where it cannot prove the
  // buffers apart and its run-time check looks too dear): that loop carries
  // llvm.loop.vectorize.enable. Consumed by the next loop made.
  bool vectorize_next_loop_ = false;
  bool scalar_next_loop_ = false;       // the next loop stays scalar (see force_vectorize)
  bool masked_tail_next_loop_ = false;  // the next vectorized loop folds its remainder into masked iterations
  bool parallel_next_loop_ = false;     // the next loop's iterations access memory independently (access_group)
  llvm::Value *args_ = nullptr, *arena_ = nullptr, *rt_ = nullptr;
  llvm::Value* slot_ = nullptr;  // in a parallel body: the thread's slot
  llvm::Value* step_ = nullptr;  // in a Loop's body: the element t it is at (Affine::step)
  llvm::Value* counters_ = nullptr;  // profiling: the kernels' cycle counters
  std::vector<llvm::Value*> held_;  // in epilogues(): the values of the earlier epilogues, by buffer
  int outlined_ = 0;
  std::set<llvm::Function*> used_;  // vector math declarations the optimizer must keep
  llvm::Module& m_;
  llvm::LLVMContext& ctx_;
  llvm::IRBuilder<> b_;
  const KernelHook& at_kernel_;  // called where each kernel's code starts (debug_info.h)
  llvm::Function* fn_ = nullptr;
  std::vector<llvm::Value*> bases_;
  std::vector<llvm::Value*> ivs_;
  // The current elementwise kernel's or reduction's dim that stops at the
  // call's rows (Kernel::rows_size): n * rows_unit_, n in rows_buffer_ (-1: none stops early).
  size_t rows_dim_ = SIZE_MAX;
  int rows_buffer_ = -1;
  int64_t rows_unit_ = 1;
  std::vector<llvm::Value*> memo_;
  // The kernels that run in the blocks of the product being emitted
  // (Kernel::per_block), in order.
  std::vector<const Kernel*> pool_kernels_;
  // Expressions made before the innermost loop of an elementwise kernel
  // (loads that stay put along it), kept by each element's fresh memo_.
  std::vector<std::pair<int, llvm::Value*>> pinned_;
};

}  // namespace gradc
