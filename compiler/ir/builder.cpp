// Node construction with type inference, and the small compound helpers that
// lowering and autodiff share.
#include "compiler/ir/builder.h"

#include <fmt/format.h>

#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId Builder::try_make(Op op, std::vector<NodeId> operands, Attrs attrs) {
  InferResult r = infer_type(*g_, op, operands, attrs);
  if (!r.error.empty()) {
    error_ = std::move(r.error);
    return kNoNode;
  }
  if (g_->size() >= kMaxNodes) {
    error_ = fmt::format("the model's graph grows past {} nodes", kMaxNodes);
    return kNoNode;
  }
  Node n;
  n.op = op;
  n.dtype = r.dtype;
  n.shape = std::move(r.shape);
  n.operands = std::move(operands);
  n.attrs = std::move(attrs);
  n.loc = loc_;
  return g_->add(std::move(n));
}

NodeId Builder::make(Op op, std::vector<NodeId> operands, Attrs attrs) {
  NodeId id = try_make(op, std::move(operands), std::move(attrs));
  GRADC_ASSERT(id != kNoNode, fmt::format("ill-typed '{}' node: {}", op_name(op), error_));
  return id;
}

NodeId Builder::leaf(Op op, std::string name, DType dtype, Shape shape) {
  Node n;
  n.op = op;
  n.dtype = dtype;
  n.shape = std::move(shape);
  n.attrs.name = std::move(name);
  n.loc = loc_;
  return g_->add(std::move(n));
}

NodeId Builder::constant(double value, DType dtype) {
  Node n;
  n.op = Op::Constant;
  n.dtype = dtype;
  n.attrs.value = value;
  n.loc = loc_;
  return g_->add(std::move(n));
}

NodeId Builder::full_like(double value, NodeId x) {
  return broadcast_to(constant(value, (*g_)[x].dtype), (*g_)[x].shape);
}

NodeId Builder::reduce(Op op, NodeId x, std::vector<int64_t> axes, bool keepdims) {
  if (axes.empty() && !keepdims) return x;
  Attrs a;
  a.ints = std::move(axes);
  a.keepdims = keepdims;
  return make(op, {x}, std::move(a));
}

NodeId Builder::sum_all(NodeId x) {
  std::vector<int64_t> axes;
  for (int i = 0; i < (*g_)[x].rank(); ++i) axes.push_back(i);
  return reduce(Op::ReduceSum, x, axes, false);
}

NodeId Builder::reshape(NodeId x, std::vector<int64_t> sizes) {
  if (sizes == gradc::sizes((*g_)[x].shape)) return x;
  Attrs a;
  a.ints = std::move(sizes);
  return make(Op::Reshape, {x}, std::move(a));
}

NodeId Builder::transpose(NodeId x, std::vector<int64_t> perm) {
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i) identity = identity && perm[i] == static_cast<int64_t>(i);
  if (identity) return x;
  Attrs a;
  a.ints = std::move(perm);
  return make(Op::Transpose, {x}, std::move(a));
}

NodeId Builder::transpose_last2(NodeId x) {
  int r = (*g_)[x].rank();
  std::vector<int64_t> perm;
  for (int i = 0; i < r; ++i) perm.push_back(i);
  std::swap(perm[r - 1], perm[r - 2]);
  return transpose(x, perm);
}

NodeId Builder::broadcast_to(NodeId x, const Shape& shape) {
  if ((*g_)[x].shape == shape) return x;
  Attrs a;
  a.ints = sizes(shape);
  return make(Op::BroadcastTo, {x}, std::move(a));
}

NodeId Builder::sum_to(NodeId x, const Shape& shape) {
  const Shape& from = (*g_)[x].shape;
  if (from == shape) return x;
  int lead = static_cast<int>(from.size()) - static_cast<int>(shape.size());
  GRADC_ASSERT(lead >= 0, "sum_to: target has a higher rank");
  std::vector<int64_t> axes;
  for (int i = 0; i < static_cast<int>(from.size()); ++i)
    if (i < lead || (shape[i - lead].size == 1 && from[i].size != 1)) axes.push_back(i);
  NodeId r = reduce(Op::ReduceSum, x, axes, true);
  return reshape(r, sizes(shape));
}

NodeId Builder::cast(NodeId x, DType to) {
  if ((*g_)[x].dtype == to) return x;
  Attrs a;
  a.ints = {static_cast<int64_t>(to)};
  return make(Op::Cast, {x}, std::move(a));
}

}  // namespace gradc
