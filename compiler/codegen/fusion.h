// Fusion decisions, the kernel planner's first step: which graph nodes get a
// buffer of their own and which are evaluated inline by the one kernel that
// reads them, and the order the kernels run in. Kept apart from lowering so
// that the decisions are made once, over the whole graph, before any kernel
// exists.
#pragma once

#include <optional>
#include <vector>

#include "compiler/exec/entry.h"
#include "compiler/ir/graph.h"

namespace gradc {

// The most graph nodes one kernel evaluates inline (see bound_size in
// fusion.cpp): larger trees are cut by materializing nodes, so that the
// recursive walks over kernel expressions use bounded stack on any thread and
// LLVM never gets an unbounded basic block.
inline constexpr int kMaxFusedNodes = 1024;

// Whether a product of these sizes is computed by the register-tiled
// microkernel (Kernel::packed), large enough for it and for the thread pool.
inline bool register_tiled(DType t, int64_t M, int64_t N, int64_t K) {
  return is_float(t) && M >= 4 && N >= 16 && M * N * K >= (int64_t{1} << 16);
}

// A reshape that only splits axes of its operand (and adds or drops axes of
// size 1) reads the operand at an affine function of its own index: each
// operand axis is a mixed-radix number whose digits are result axes. Then
// the reshape is a view like a transpose, evaluated inline by its user. For
// each operand axis, its coefficients over the result's axes; nullopt where
// the reshape merges axes (a merged axis needs a division to split again).
std::optional<std::vector<std::vector<int64_t>>> split_reshape(const std::vector<int64_t>& in,
                                                               const std::vector<int64_t>& out);

// A reshape that merges one run of its operand's axes into one axis and
// keeps the others (a pool's window axes [KH, KW] into [KH*KW]): the merged
// axis and the run's sizes.
struct MergedAxis {
  int64_t axis = 0;
  std::vector<int64_t> radices;
};
std::optional<MergedAxis> merged_axis(const std::vector<int64_t>& in, const std::vector<int64_t>& out);

struct Fusion {
  std::vector<bool> live;      // needed by a produced value
  std::vector<int> users;      // live users, plus one per produced value it is
  std::vector<bool> mat;       // materialized: computed into a buffer of its own
  std::vector<bool> absorbed;  // a transpose that its matrix product reads through strides
  // A reshape to a matrix that only register-tiled products read, as B (or
  // as B through an absorbed transpose), of a view of a buffer (transposes,
  // windows and slices of it): the products gather B from that buffer as
  // they pack it (Kernel::b_gather), so the matrix is never written. This is
  // a convolution's implicit im2col: its windows [C*R*S, N*P] are read from
  // the padded input, not copied out first.
  std::vector<bool> gathered;
  // A reshape that merges a pool's window axes (merged_axis), read only by
  // maxima and argmaxes over the merged axis, short enough to unroll, of a
  // cheap expression (a ReLU of a convolution's output through its windows):
  // neither it nor its operand gets a buffer; each reduction loops over the
  // window's axes and evaluates the expression there (lowering.cpp), so the
  // windows are never copied out.
  std::vector<bool> pooled;
  std::vector<NodeId> order;   // the live nodes in kernel order
  std::vector<int> pos;        // a node's place in `order`
};

// Decides fusion for the entry point with signature `sig` over graph `g`:
// a node with one user that can evaluate it inline is fused into that user;
// leaves, reductions, products, concatenations, pads and produced values are
// materialized, and so are the operands of reshapes that merge axes (see
// split_reshape), one_hot and products
// (a product absorbs a transpose of its last two axes instead); and a node
// that keeps a kernel's fused expression within kMaxFusedNodes; except that
// products read a reshaped view of a buffer through index digits
// (Fusion::gathered), which then has no buffer of its own.
Fusion decide_fusion(const Graph& g, const EntrySignature& sig);

}  // namespace gradc
