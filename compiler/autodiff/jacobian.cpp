// The Jacobian driver: one directional derivative or gradient per slice,
// stacked.
#include "compiler/autodiff/jacobian.h"

#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// The k-th basis tensor of x's type: one at flat index k, zeros elsewhere (a
// padded one, so it is a constant the optimizer can fold).
NodeId basis(Builder& b, NodeId x, int64_t k) {
  int64_t n = numel(b[x].shape);
  Attrs a;
  a.ints = {0, k, n - 1 - k};
  NodeId one = b.reshape(b.scalar_like(1.0, x), {1});
  return b.reshape(b.make(Op::Pad, {one}, std::move(a)), sizes(b[x].shape));
}

// The parts laid side by side along `axis` (0: rows, 1: columns).
NodeId stack(Builder& b, std::vector<NodeId> parts, int64_t axis) {
  if (parts.size() == 1) return parts[0];
  Attrs a;
  a.ints = {axis};
  return b.make(Op::Concat, std::move(parts), std::move(a));
}

// Column j of the [numel(e), numel(x)] matrix is d e / d x along basis j.
NodeId forward_matrix(Builder& b, NodeId e, NodeId x) {
  int64_t m = numel(b[e].shape), n = numel(b[x].shape);
  std::vector<NodeId> columns;
  for (int64_t j = 0; j < n; ++j)
    columns.push_back(b.reshape(directional_derivative(b, e, x, basis(b, x, j)), {m, 1}));
  return stack(b, std::move(columns), 1);
}

// Row i of the [numel(e), numel(x)] matrix is the gradient of e's element i.
NodeId reverse_matrix(Builder& b, NodeId e, NodeId x) {
  int64_t m = numel(b[e].shape), n = numel(b[x].shape);
  NodeId flat = b.reshape(e, {m});
  std::vector<NodeId> rows;
  for (int64_t i = 0; i < m; ++i) {
    Attrs a;
    a.ints = {0, i, i + 1};
    NodeId element = b.reshape(b.make(Op::Slice, {flat}, std::move(a)), {});
    rows.push_back(b.reshape(gradients(b, element, {x})[0], {1, n}));
  }
  NodeId matrix = stack(b, std::move(rows), 0);
  // A gradient has x's dtype; the Jacobian, like a tangent, has e's.
  return b[matrix].dtype == b[e].dtype ? matrix : b.cast(matrix, b[e].dtype);
}

}  // namespace

Accumulation jacobian_accumulation(int64_t e_elements, int64_t x_elements) {
  return x_elements <= e_elements ? Accumulation::Forward : Accumulation::Reverse;
}

NodeId jacobian(Builder& b, NodeId e, NodeId x, Accumulation mode) {
  GRADC_ASSERT(is_float(b[e].dtype) && is_float(b[x].dtype), "jacobian: e and x must be float");
  Shape shape = b[e].shape;
  shape.insert(shape.end(), b[x].shape.begin(), b[x].shape.end());
  // Ids are topological: e made before x cannot depend on it.
  if (x > e) return b.broadcast_to(b.constant(0.0, b[e].dtype), shape);
  NodeId matrix = mode == Accumulation::Forward ? forward_matrix(b, e, x) : reverse_matrix(b, e, x);
  return b.reshape(matrix, sizes(shape));
}

}  // namespace gradc
