// The loop-level kernel IR: what the kernel planner produces and the LLVM
// emitter turns into loops. Its own header so that each planning step, the
// printer and the emitter share the types without sharing each other.
//
// A Program is the plan of one entry point: buffers (arguments or slices of
// one arena) and kernels in order. Chains of elementwise ops, broadcasts,
// transposes, slices and one_hot are fused into the expression of the one
// kernel that consumes them (no intermediate buffer); a reduction evaluates
// the fused expression of its operand inside its own loop nest; matrix
// products read (possibly transposed, batch-broadcast) operands through
// strides. Every index is an affine function of the kernel's loop indices.
// Dims are compile-time constants of the specialization.
#pragma once

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "compiler/exec/entry.h"
#include "compiler/ir/graph.h"

namespace gradc {

// offset + sum_d strides[d] * i_d, over a kernel's loop indices i, plus
// step * t, t the element the innermost enclosing Loop kernel is at (a
// scan's slice of its xs and row of its outputs).
struct Affine {
  int64_t offset = 0;
  std::vector<int64_t> strides;
  int64_t step = 0;
  bool operator==(const Affine&) const = default;
};

// A node of a kernel's per-element expression.
struct KExpr {
  enum class Kind : uint8_t { Load, Const, Index, Op } kind = Kind::Const;
  Op op = Op::Constant;   // Kind::Op: an elementwise op (Unary, Binary, Compare, Select, Cast), or
                          // random_uniform (args: the seed's two words, the step)
  DType dtype = DType::F32;
  int buffer = -1;        // Load
  Affine map;             // Load: element index; Index: the index value; random_uniform: the element's
                          // row-major index in the random tensor (Philox's counter)
  double value = 0;       // Const; random_uniform: the stream id
  std::vector<int> args;  // Kind::Op: operand expressions (indices in Kernel::exprs)
  // A Load with one arg is a gather (embedding): it reads element
  // map(i) + args[0](i) * row_stride, args[0] an i32 row already checked.
  int64_t row_stride = 0;
};

struct Buffer {
  // View: inside Loop kernel `loop`, the elements of buffer `parent` from
  // step * t on (a scan's slice of a scanned tensor, its row of a stacked
  // output); it takes no memory of its own.
  enum class Kind : uint8_t { Arg, Arena, View } kind = Kind::Arena;
  DType dtype = DType::F32;
  int64_t elems = 0;
  int arg = -1;         // Arg: index into the entry's argument array
  int64_t offset = 0;   // Arena: byte offset
  NodeId node = kNoNode;
  std::string name;     // for printouts
  int first = -1, last = -1;  // kernels that write it first and read it last
  int parent = -1;            // View
  int64_t step = 0;           // View
  // View: the Loop kernel's index. Other buffers made for a loop body: the
  // Loop kernel whose body's graph names `node` (the innermost one).
  int loop = -1;
};

// The buffer that holds a buffer's memory (a view's parent's, recursively).
inline int root_buffer(const std::vector<Buffer>& buffers, int b) {
  while (b >= 0 && static_cast<size_t>(b) < buffers.size() && buffers[b].kind == Buffer::Kind::View) b = buffers[b].parent;
  return b;
}

// Dims d and d + 1 of a loop nest over `dims` run as one, index
// i_d * dims[d + 1] + i_{d+1}, where every map steps over d as over all of
// d + 1 (the iteration order is the same).
inline bool dims_merge(const std::vector<Affine*>& maps, const std::vector<int64_t>& dims, size_t d) {
  return std::all_of(maps.begin(), maps.end(), [&](const Affine* a) {
    return a->strides.size() == dims.size() && a->strides[d] == a->strides[d + 1] * dims[d + 1];
  });
}
// Merges them: the one dim at d, with d + 1's strides.
inline void merge_dims(const std::vector<Affine*>& maps, std::vector<int64_t>& dims, size_t d) {
  dims[d] *= dims[d + 1];
  dims.erase(dims.begin() + static_cast<long>(d) + 1);
  for (Affine* a : maps) a->strides.erase(a->strides.begin() + static_cast<long>(d));
}

struct Kernel {
  enum class Kind : uint8_t {
    Elementwise,  // out[out_map(i)] = expr(i) over dims
    Reduce,       // out[out_map(i)] = op(out[...], expr(i)); out first set to `init`
    ArgMax,       // out[out_map(i without axis)] = first index of the max of expr along `axis`
                  // (dims axis.. axis + axis_dims - 1, in row-major order: a pool's window)
    MatMul,       // out[b, m, n] = sum_k a[b, m, k] * b[b, k, n]
    CheckRange,   // fails the entry when an id read by expr is outside [0, init)
    ScatterAdd,   // out = 0, then in loop order out[out_map(i) + exprs[row](i) * row_stride] += expr(i)
    Loop,         // runs kernels (this one, loop_end) dims[0] times, at element t = 0.. (T-1.. 0 when reverse)
  } kind = Kind::Elementwise;
  std::vector<int64_t> dims;  // the loop nest (MatMul: batch dims, then M, N, K)
  std::vector<KExpr> exprs;
  int root = -1;
  int out = -1;
  Affine out_map;
  Op reduce_op = Op::ReduceSum;
  double init = 0;
  int axis = -1;              // ArgMax
  int axis_dims = 1;          // ArgMax: the dims from `axis` that make up the axis (unrolled when above 1)
  int a = -1, b = -1;         // MatMul operand buffers
  Affine a_map, b_map;        // over (batch..., m, n, k)
  // MatMul epilogues: elementwise consumers of the product of its shape (a
  // bias add, an activation, the optimizer update of a weight from its
  // gradient), evaluated per output block right after the block is complete,
  // in order: out[map(i)] = exprs[root](i), over (batch..., m, n, k = 0).
  struct Epilogue {
    int root = -1;
    int out = -1;
    Affine map;
    NodeId node = kNoNode;
    NodeId body_node = kNoNode;  // in a loop body: as Kernel::body_node
    // Read only by the later epilogues of this kernel (a pre-activation):
    // kept in registers for them, never stored; `out` takes no memory.
    bool internal = false;
  };
  std::vector<Epilogue> epilogues;
  // MatMul: large products are computed by a register-tiled microkernel, in
  // blocks that run on the thread pool (`packed`); small ones are loops that
  // LLVM vectorizes. The microkernel reads A in place; B is copied into
  // panels (scratch buffer pack_b) unless it can be read in place too
  // (pack_b < 0: row-major along n, whole tiles, and short rows, see
  // lowering.cpp).
  bool packed = false;
  int pack_b = -1;
  // In a loop's body (body_loop), with B the same at every element of the
  // loop: pack_b is packed at the loop's first element only, and read at
  // every element (plan_invariant_packing, memory_plan.h).
  bool pack_b_once = false;
  // B packed block by block instead (pack_b < 0): each task copies the
  // k chunk of each panel it is about to use into per-thread scratch
  // (Program::worker_bytes, after the C block), so B is read from memory
  // once and the copy is still in L1 when the tiles read it. For products
  // whose rows fit one block (a convolution's output channels, a layer's
  // inputs in a weight gradient), where a panel packed in advance would be
  // used once and cost a write and a read of all of B through memory.
  bool pack_b_per_block = false;
  // B gathered from buffer `b` (Fusion::gathered: a convolution's implicit
  // im2col) as it is packed, never read in place: B[k, n] is
  // b[b_k(k) + b_n(n)], each an index split into mixed-radix digits (the
  // last fastest) times strides. Only 2-D products; b_map is unused.
  struct Digits {
    std::vector<int64_t> radix, stride;
    int64_t offset = 0;
  };
  bool b_gather = false;
  Digits b_k, b_n;
  // The elements of consecutive indices that lie next to each other: the
  // trailing digits laid out contiguously (1 when the last digit is not).
  // B is gathered along k or n, whichever has the longer runs, and in runs
  // of at least kMinRun, a masked load per run a vector touches.
  static int64_t run(const Digits& d) {
    int64_t len = 1;
    for (size_t j = d.radix.size(); j-- > 0 && d.stride[j] == len;) len *= d.radix[j];
    return len;
  }
  static constexpr int64_t kMinRun = 8;
  // The direction B is gathered along (k when its runs are longer), and
  // whether a vector is read a run at a time there (else by a gather).
  bool gathered_along_k() const { return run(b_k) > run(b_n); }
  static bool in_runs(const Digits& d) { return run(d) >= kMinRun; }
  // A register-tiled product that only its own epilogues read computes each
  // block of C into per-thread scratch (Program::worker_bytes) instead of
  // buffer `out`, which then takes no memory: the block stays in L2 from the
  // tile to the epilogue, and the product's full result never goes to memory.
  bool c_blocks = false;
  // With c_blocks, epilogues that update state of C's shape (an optimizer's
  // update fused into a weight gradient) and B packed whole: blocks of C
  // are whole rows (as many as fit the scratch), so the epilogues stream
  // each tensor in whole rows (KernelEmitter::matmul_packed).
  bool row_blocks = false;
  // A register-tiled 2-D product with few blocks of C and a long k (a
  // convolution's weight gradient: W5's first layer sums 16 x 25 values over
  // 50176 positions, one block) cuts k into k_segments segments of whole k
  // chunks, fixed by the shape alone: each (block, segment) is a task that
  // computes its partial sum into scratch buffer `partials` (segment after
  // segment, each C's size with its rows and columns padded to whole tiles,
  // (M + kMaxTileRows) x (N + kMaxTileCols)); then a second pass over the
  // blocks adds the segments in order into C and runs the epilogues. So the
  // sums are the same for any thread count. Not in a product with a k bound.
  int64_t k_segments = 1;
  int partials = -1;
  // Row bounds of a capacity compile (plan_row_bounds, row_bounds.h): the
  // f32 scalar buffer of the call's size n of a dynamic dim ("@size.D").
  //  - MatMul whose rows (m) hold the dim: it computes the row tiles that
  //    cover [0, n); with `rows_fill`, it then fills rows [n, M) of every
  //    result it stores with what a product of all rows holds there, copies
  //    of row 0 (or zeros, `rows_zero`), for a later kernel that reads them.
  //  - Elementwise and ArgMax kernels whose loop dim `rows_dim` walks the
  //    dim's rows of their output (`rows_capacity` of them, each `unit`
  //    iterations of the dim: dims[rows_dim] / rows_capacity), and Reduce
  //    kernels whose dim 0 walks the rows of their output or of an operand
  //    summed over that is exactly 0 past n, and ScatterAdd kernels (an
  //    embedding's gradient) whose rows of g are 0 past n along dim
  //    `rows_dim`. That dim runs [0, n * unit).
  //    (A row of a buffer is what one index of the dynamic dim selects,
  //    wherever the dim is among its axes: a convolution's im2col buffer
  //    [C*R*S, B*P] has B inside its columns.)
  // Without a fill, a kernel's rows past n hold whatever was there: no
  // later kernel reads them into a result.
  int rows_size = -1;
  bool rows_zero = false;
  bool rows_fill = true;
  int64_t rows_capacity = 0;
  size_t rows_dim = 0;
  // MatMul whose columns (n) hold the dim, B outermost in them (`cols_unit`
  // columns a row, as in a convolution's [O, B*P] product): it computes the
  // column tiles that cover [0, n * cols_unit), nothing fills the rest.
  int cols_size = -1;
  int64_t cols_unit = 1;
  // MatMul contracting a dynamic dim (k) where one operand is exactly 0 past
  // the call's size: the size's buffer, and the k loop stops at n * k_unit
  // (k_unit: the elements of k per row of the dim, B outermost in k).
  // With `k_period` (0: none), k is blocks of k_period elements with B inside
  // each (a time-major stack's T*B rows): each block stops at n * k_unit.
  int k_size = -1;
  int64_t k_unit = 1;
  int64_t k_period = 0;
  NodeId node = kNoNode;
  // A kernel of a loop body (node kNoNode): its node in the graph of the
  // body of Loop kernel `body_loop` (the innermost loop it is in).
  NodeId body_node = kNoNode;
  int body_loop = -1;
  SourceLoc loc;
  int check_id = 0;           // CheckRange: the status the entry returns on failure
  int row = -1;               // ScatterAdd: the expression of the row each element adds to
  int64_t row_stride = 0;     // ScatterAdd
  int loop_end = -1;          // Loop: one past its body's last kernel
  bool reverse = false;       // Loop
  // A pool's maximum or argmax over its window (axis_dims > 1) run by the
  // register-tiled product before it, its host (the nearest kernel before
  // it that is not per_block), block by block of C right after the block's
  // epilogues stored the values it reads: the windows are read from L1 or
  // L2, not from memory (plan_pool_epilogues, memory_plan.h). It reads one
  // buffer that the host stores row-major [M, N], at an index whose terms
  // split into three kinds of dims besides the window's:
  //  - dim pool_m, the product's rows (m);
  //  - pool_segments, outermost first, a mixed-radix number j of segments of
  //    the host's pool_span columns: j * pool_span is their sum;
  //  - the others, which with the window stay inside one segment.
  // So the output elements of block [m0, m1) x [n0, n1), its n bounds
  // multiples of pool_span, are those with m in [m0, m1) and j in
  // [n0 / span, n1 / span): every block writes its own.
  bool per_block = false;
  int pool_m = -1;
  std::vector<int> pool_segments;
  // MatMul with per_block kernels: its blocks of C hold whole segments
  // (pool_block_cols).
  int64_t pool_span = 0;
};

// Argmax over at most this many elements is unrolled (KernelEmitter::argmax);
// an argmax over several dims (a pool's window, see fusion.cpp) must be.
inline constexpr int64_t kUnrolledArgMax = 16;

// Register-tiled products: the largest register tile any target uses (rows of
// A, columns of B; every target's tile width divides kMaxTileCols, which
// sizes B's packing buffer in a target-independent plan), and the depth of
// the k chunks.
inline constexpr int64_t kMaxTileRows = 16, kMaxTileCols = 64, kPanelDepth = 128;
// The elements of a buffer B of K x N is packed into: room for the zero
// padding of the last panel with any tile width.
inline int64_t packed_b_elems(int64_t K, int64_t N) { return K * (N + kMaxTileCols - 1); }
// Blocks of C, the tasks of a register-tiled product: at most kBlockRows x
// kBlockCols (whole tiles; every target's tile width divides kBlockCols).
inline constexpr int64_t kBlockRows = 128, kBlockCols = 256;
// Blocks a register-tiled product is cut into at least, where its tiles
// allow (matmul_packed), so that small ones run on two to four threads.
inline constexpr int64_t kMinBlocks = 4;
// Products with at most this many rows (one block of rows for every
// target's tile height) pack B block by block (Kernel::pack_b_per_block).
inline constexpr int64_t kOneBlockRows = 120;
// The columns of a block of C with pool epilogues (Kernel::pool_span): the
// fewest whole tiles of nr columns that hold whole segments of `span`
// columns, times the multiple nearest `cols` (kBlockCols) from below.
inline int64_t pool_block_cols(int64_t span, int64_t nr, int64_t cols) {
  int64_t a = span, b = nr;
  while (b) a %= b, std::swap(a, b);
  const int64_t unit = span / a * nr;
  return std::max<int64_t>(1, cols / unit) * unit;
}
// A task's scratch for B packed per block starts after its C block.
inline constexpr int64_t kCBlockElems = kBlockRows * kBlockCols, kPanelElems = kPanelDepth * kMaxTileCols;
// k segments (Kernel::k_segments): a product is split into at most
// kSegmentTasks tasks (blocks times segments), each segment at least
// kSegmentDepth deep.
inline constexpr int64_t kSegmentTasks = 8, kSegmentDepth = 8 * kPanelDepth;
inline int64_t segment_stride(int64_t M, int64_t N) { return (M + kMaxTileRows) * (N + kMaxTileCols); }

struct Program {
  EntrySignature sig;
  std::vector<Buffer> buffers;
  std::vector<Kernel> kernels;
  // Set by the arena plan, the planner's last step: before it, arena buffers
  // have no offsets and no live ranges (Buffer::first, last), and the
  // printer shows them all as not placed yet.
  bool placed = false;
  int64_t arena_bytes = 0;
  int64_t peak_bytes = 0;    // largest sum of live arena buffers at one kernel
  // Scratch per thread after the arena (at arena_bytes rounded up to 64, one
  // worker_bytes slot per thread of the runtime, see thread_pool.h).
  int64_t worker_bytes = 0;
  std::vector<SourceLoc> check_locs;  // CheckRange status k -> location (index k - 1)
  std::vector<std::string> check_messages;
  // train_step: produced value k is written over the read of the same name
  // (a param or optimizer state updated in place; its own argument is not
  // used). Only where that is safe: see plan_in_place in memory_plan.h.
  std::vector<bool> in_place;
  // Timed: the entry takes one more argument after the produced values,
  // int64_t counters[kernels + 1]; each kernel adds the cycles it took
  // (llvm.readcyclecounter) to its counter, and a successful call its own
  // cycles to the last one (Session::profile turns them into seconds).
  bool profile = false;
};

}  // namespace gradc
