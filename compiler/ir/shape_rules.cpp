// Type inference for every op kind (see ops.def for attribute meanings).
#include "compiler/ir/shape_rules.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/support/diagnostics.h"
#include "compiler/support/messages.h"

namespace gradc {
namespace {

InferResult fail(std::string msg) {
  InferResult r;
  r.error = std::move(msg);
  return r;
}

InferResult ok(DType t, Shape s) { return {t, std::move(s), {}}; }

std::string type_of(const Node& n) { return type_str(n.dtype, n.shape); }

InferResult check_elements(InferResult r) {
  if (r.error.empty() && !element_count(r.shape))
    return fail(diag::err_too_many_elements(shape_str(r.shape)));
  return r;
}

InferResult infer_impl(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& at) {
  const OpInfo& info = op_info(op);
  if (info.arity >= 0 && static_cast<int>(operands.size()) != info.arity)
    return fail(diag::err_op_arity(info.spelling, info.arity, operands.size()));
  if (operands.empty() && info.kind != OpKind::Leaf) return fail(diag::err_op_needs_operands(info.spelling));
  const Node* x = operands.empty() ? nullptr : &g[operands[0]];
  switch (info.kind) {
    case OpKind::Leaf:
      return fail(diag::err_leaf_inferred());

    case OpKind::Unary:
      if (!is_float(x->dtype))
        return fail(diag::err_op_needs_float(info.spelling, type_of(*x)));
      return ok(x->dtype, x->shape);

    case OpKind::Cast: {
      if (at.ints.size() != 1 || at.ints[0] < 0 || at.ints[0] > 2) return fail(diag::err_cast_needs_dtype());
      return ok(static_cast<DType>(at.ints[0]), x->shape);
    }

    case OpKind::Binary:
    case OpKind::Compare: {
      const Node& y = g[operands[1]];
      bool compare = info.kind == OpKind::Compare;
      if (x->dtype != y.dtype)
        return fail(diag::err_binary_dtypes(info.verb,
                                dtype_name(x->dtype), dtype_name(y.dtype),
                                dtype_name(x->dtype == DType::I32 ? y.dtype : x->dtype)));
      if (!compare && !is_float(x->dtype))
        return fail(diag::err_binary_i32(info.verb));
      auto s = broadcast_shapes(x->shape, y.shape);
      if (!s) return fail(diag::err_binary_shapes(info.verb, shape_str(x->shape), shape_str(y.shape)));
      return check_elements(ok(compare && x->dtype == DType::I32 ? DType::F32 : x->dtype, *s));
    }

    case OpKind::Select: {
      const Node& a = g[operands[1]];
      const Node& b = g[operands[2]];
      if (a.dtype != b.dtype)
        return fail(diag::err_where_dtypes(dtype_name(a.dtype),
                                dtype_name(b.dtype)));
      auto s = broadcast_shapes(x->shape, a.shape);
      if (s) s = broadcast_shapes(*s, b.shape);
      if (!s)
        return fail(diag::err_where_broadcast(
                                shape_str(x->shape), shape_str(a.shape), shape_str(b.shape)));
      return check_elements(ok(a.dtype, *s));
    }

    case OpKind::Reduce:
    case OpKind::ArgMax: {
      if (!is_float(x->dtype))
        return fail(diag::err_op_needs_float(info.spelling, type_of(*x)));
      if (info.kind == OpKind::ArgMax && at.ints.size() != 1) return fail(diag::err_argmax_one_axis());
      Shape out;
      for (int i = 0; i < x->rank(); ++i) {
        bool reduced = std::find(at.ints.begin(), at.ints.end(), i) != at.ints.end();
        if (!reduced) out.push_back(x->shape[i]);
        else if (at.keepdims) out.push_back({1, {}});
      }
      for (size_t i = 0; i < at.ints.size(); ++i)
        if (at.ints[i] < 0 || at.ints[i] >= x->rank() || (i > 0 && at.ints[i] <= at.ints[i - 1]))
          return fail(diag::err_reduction_axes(shape_str(x->shape)));
      return ok(info.kind == OpKind::ArgMax ? DType::I32 : x->dtype, out);
    }

    case OpKind::MatMul: {
      const Node& y = g[operands[1]];
      if (x->dtype != y.dtype || !is_float(x->dtype))
        return fail(diag::err_matmul_dtypes(dtype_name(x->dtype), dtype_name(y.dtype)));
      if (x->rank() < 2 || y.rank() < 2) return fail(diag::err_matmul_rank());
      const Dim& k1 = x->shape[x->rank() - 1];
      const Dim& k2 = y.shape[y.rank() - 2];
      if (k1.size != k2.size)
        return fail(diag::err_matmul_inner(
                                shape_str(x->shape), shape_str(y.shape), k1.size, k2.size));
      Shape bx(x->shape.begin(), x->shape.end() - 2), by(y.shape.begin(), y.shape.end() - 2);
      auto batch = broadcast_shapes(bx, by);
      if (!batch)
        return fail(diag::err_matmul_batch(
                                shape_str(x->shape), shape_str(y.shape), shape_str(bx), shape_str(by)));
      batch->push_back(x->shape[x->rank() - 2]);
      batch->push_back(y.shape[y.rank() - 1]);
      return check_elements(ok(x->dtype, *batch));
    }

    case OpKind::Reshape: {
      Shape out;
      for (int64_t v : at.ints) {
        if (v <= 0) return fail(diag::err_reshape_size(v));
        out.push_back({v, {}});
      }
      auto n = element_count(out);
      if (!n || *n != numel(x->shape))
        return fail(diag::err_reshape_count(shape_str(x->shape),
                                numel(x->shape), shape_str(out)));
      // Keep dim names where the size lines up with the operand's at the same position.
      for (size_t i = 0; i < out.size() && i < x->shape.size(); ++i)
        if (out[i].size == x->shape[i].size) out[i].name = x->shape[i].name;
      return ok(x->dtype, out);
    }

    case OpKind::Transpose: {
      if (static_cast<int>(at.ints.size()) != x->rank())
        return fail(diag::err_transpose_length(at.ints.size(), x->rank()));
      std::vector<bool> seen(at.ints.size());
      Shape out;
      for (int64_t p : at.ints) {
        if (p < 0 || p >= x->rank() || seen[p]) return fail(diag::err_transpose_not_permutation());
        seen[p] = true;
        out.push_back(x->shape[p]);
      }
      return ok(x->dtype, out);
    }

    case OpKind::BroadcastTo: {
      Shape target;
      for (int64_t v : at.ints) {
        if (v <= 0) return fail(diag::err_broadcast_size(v));
        target.push_back({v, {}});
      }
      auto s = broadcast_shapes(x->shape, target);
      if (!s || *s != target || x->rank() > static_cast<int>(target.size()))
        return fail(diag::err_broadcast_to(shape_str(x->shape), shape_str(target)));
      return check_elements(ok(x->dtype, *s));
    }

    case OpKind::Concat: {
      if (at.ints.size() != 1 || at.ints[0] < 0 || at.ints[0] >= x->rank())
        return fail(diag::err_concat_axis(x->rank()));
      int axis = static_cast<int>(at.ints[0]);
      Shape out = x->shape;
      for (size_t i = 1; i < operands.size(); ++i) {
        const Node& y = g[operands[i]];
        if (y.dtype != x->dtype)
          return fail(diag::err_concat_dtype(i + 1, dtype_name(y.dtype),
                                  dtype_name(x->dtype)));
        bool same = y.rank() == x->rank();
        for (int a = 0; same && a < x->rank(); ++a) same = a == axis || y.shape[a].size == x->shape[a].size;
        if (!same)
          return fail(diag::err_concat_shapes(axis,
                                  shape_str(x->shape), shape_str(y.shape)));
        out[axis].size += y.shape[axis].size;
        out[axis].name.clear();
      }
      return check_elements(ok(x->dtype, out));
    }

    case OpKind::Slice:
    case OpKind::Pad: {
      if (at.ints.size() != 3 || at.ints[0] < 0 || at.ints[0] >= x->rank())
        return fail(diag::err_axis_out_of_range_rank(info.spelling, x->rank()));
      int axis = static_cast<int>(at.ints[0]);
      int64_t size = x->shape[axis].size, a = at.ints[1], b = at.ints[2];
      Shape out = x->shape;
      out[axis].name.clear();
      if (info.kind == OpKind::Slice) {
        if (a < 0 || b > size || a >= b)
          return fail(diag::err_slice_range(a, b, axis, size));
        out[axis].size = b - a;
      } else {
        if (a < 0 || b < 0) return fail(diag::err_pad_negative());
        out[axis].size = size + a + b;
      }
      return check_elements(ok(x->dtype, out));
    }

    case OpKind::OneHot: {
      if (x->dtype != DType::I32)
        return fail(diag::err_one_hot_ids(type_of(*x)));
      if (at.ints.size() != 1 || at.ints[0] <= 0) return fail(diag::err_one_hot_count());
      Shape out = x->shape;
      out.push_back({at.ints[0], {}});
      return check_elements(ok(DType::F32, out));
    }

    case OpKind::Window: {
      if (!is_float(x->dtype)) return fail(diag::err_op_needs_float(info.spelling, type_of(*x)));
      size_t d = at.ints.size() / 4;
      bool window = op == Op::Window;
      if (d == 0 || at.ints.size() % 4 != 0 || x->rank() != static_cast<int>(window ? 2 + d : 2 + 2 * d))
        return fail(diag::err_window_rank(info.spelling, static_cast<int64_t>(d), type_of(*x)));
      Shape out(x->shape.begin(), x->shape.begin() + 2);
      Shape kernel, spatial, windows;
      for (size_t j = 0; j < d; ++j) {
        int64_t k = at.ints[4 * j], s = at.ints[4 * j + 1], dil = at.ints[4 * j + 2], size = at.ints[4 * j + 3];
        int64_t o = window_count(size, k, s, dil);
        if (k < 1 || s < 1 || dil < 1 || o < 1) return fail(diag::err_window_attrs(info.spelling, k, s, dil, size));
        kernel.push_back({k, {}});
        spatial.push_back({size, {}});
        windows.push_back({o, {}});
      }
      Shape folded = kernel;
      folded.insert(folded.end(), windows.begin(), windows.end());
      Shape expected = window ? spatial : folded;
      if (!std::equal(expected.begin(), expected.end(), x->shape.begin() + 2))
        return fail(diag::err_window_sizes(info.spelling, shape_str(x->shape), shape_str(expected)));
      const Shape& tail = window ? folded : spatial;
      out.insert(out.end(), tail.begin(), tail.end());
      return check_elements(ok(x->dtype, out));
    }

    // embedding(ids [...], table [V, D]) -> [..., D]
    case OpKind::Gather: {
      const Node& table = g[operands[1]];
      if (x->dtype != DType::I32) return fail(diag::err_embedding_ids(type_of(*x)));
      if (table.rank() != 2 || !is_float(table.dtype)) return fail(diag::err_embedding_table(type_of(table)));
      Shape out = x->shape;
      out.push_back(table.shape[1]);
      return check_elements(ok(table.dtype, out));
    }

    // embedding_grad(ids [...], g [..., D]) -> [V, D]
    case OpKind::ScatterAdd: {
      const Node& grad = g[operands[1]];
      if (x->dtype != DType::I32) return fail(diag::err_embedding_ids(type_of(*x)));
      bool fits = is_float(grad.dtype) && grad.rank() == x->rank() + 1 &&
                  std::equal(x->shape.begin(), x->shape.end(), grad.shape.begin());
      if (!fits) return fail(diag::err_embedding_grad_shape(type_of(grad), type_of(*x)));
      if (at.ints.size() != 1 || at.ints[0] <= 0) return fail(diag::err_embedding_rows());
      return check_elements(ok(grad.dtype, {{at.ints[0], {}}, grad.shape.back()}));
    }

    // random_uniform(seed i32[2], step scalar) [stream, dtype, sizes...] -> dtype[sizes]
    case OpKind::Random: {
      const Node& step = g[operands[1]];
      bool seed_ok = x->dtype == DType::I32 && x->rank() == 1 && x->shape[0].size == 2;
      if (!seed_ok || step.rank() != 0) return fail(diag::err_random_operands(type_of(*x), type_of(step)));
      bool attrs_ok = at.ints.size() >= 2 && at.ints[0] >= 0 && at.ints[0] <= UINT32_MAX &&
                      (at.ints[1] == static_cast<int64_t>(DType::F32) || at.ints[1] == static_cast<int64_t>(DType::F64));
      Shape out;
      for (size_t i = 2; i < at.ints.size(); ++i) {
        attrs_ok = attrs_ok && at.ints[i] > 0;
        out.push_back({at.ints[i], {}});
      }
      if (!attrs_ok) return fail(diag::err_random_attrs());
      return check_elements(ok(static_cast<DType>(at.ints[1]), out));
    }

    // scan(carries.., xs.., captures..): every operand has its body argument's
    // type, an xs with the steps in front; every carry result the carry's
    // type. The scan itself is a tuple: a placeholder f32 scalar.
    case OpKind::Scan: {
      const Region* r = at.region.get();
      if (!r || at.ints.size() != 5) return fail(diag::err_scan_attrs());
      ScanAttrs sa = ScanAttrs::of(at);
      bool counts = sa.carries >= 1 && sa.xs >= 0 && sa.length >= 1 && r->args.size() == operands.size() &&
                    sa.carries + sa.xs <= static_cast<int64_t>(operands.size()) &&
                    static_cast<int64_t>(r->results.size()) >= sa.carries;
      if (!counts) return fail(diag::err_scan_attrs());
      for (size_t i = 0; i < operands.size(); ++i) {
        const Node& o = g[operands[i]];
        const Node& arg = r->body[r->args[i]];
        Shape want = arg.shape;
        bool sliced = static_cast<int64_t>(i) >= sa.carries && static_cast<int64_t>(i) < sa.carries + sa.xs;
        if (sliced) want.insert(want.begin(), Dim{sa.length, {}});
        if (o.dtype != arg.dtype || o.shape != want)
          return fail(diag::err_scan_operand(static_cast<int64_t>(i), type_of(o), type_str(arg.dtype, want)));
      }
      for (int64_t i = 0; i < sa.carries; ++i) {
        const Node& arg = r->body[r->args[i]];
        const Node& res = r->body[r->results[i]];
        if (res.dtype != arg.dtype || res.shape != arg.shape)
          return fail(diag::err_scan_operand(static_cast<int64_t>(i), type_of(res), type_of(arg)));
      }
      return ok(DType::F32, {});
    }

    // scan_out(scan) [i]: the final carry i, or output i - m stacked over the steps
    case OpKind::ScanOut: {
      const Region* r = x->op == Op::Scan ? x->attrs.region.get() : nullptr;
      if (!r || at.ints.size() != 1 || at.ints[0] < 0 || at.ints[0] >= static_cast<int64_t>(r->results.size()))
        return fail(diag::err_scan_attrs());
      ScanAttrs sa = ScanAttrs::of(x->attrs);
      const Node& res = r->body[r->results[at.ints[0]]];
      Shape out = res.shape;
      // The steps axis keeps the name of the scanned tensors' (for printing).
      Dim steps{sa.length, {}};
      if (sa.xs > 0) steps.name = g[x->operands[sa.carries]].shape[0].name;
      if (at.ints[0] >= sa.carries) out.insert(out.begin(), steps);
      return check_elements(ok(res.dtype, out));
    }
  }
  return fail(diag::err_unknown_op_kind());
}

}  // namespace

int64_t window_count(int64_t size, int64_t kernel, int64_t stride, int64_t dilation) {
  int64_t span = size - dilation * (kernel - 1) - 1;
  // Floor division: a negative span means no window fits.
  return (span >= 0 ? span / stride : (span - stride + 1) / stride) + 1;
}

std::vector<int64_t> window_steps(const std::vector<int64_t>& spatial, const std::vector<int64_t>& attrs) {
  std::vector<int64_t> rs = row_major_strides(spatial);
  size_t d = attrs.size() / 4;
  std::vector<int64_t> steps = {rs[0], rs[1]};
  for (size_t j = 0; j < d; ++j) steps.push_back(attrs[4 * j + 2] * rs[2 + j]);
  for (size_t j = 0; j < d; ++j) steps.push_back(attrs[4 * j + 1] * rs[2 + j]);
  return steps;
}

InferResult infer_type(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& attrs) {
  return infer_impl(g, op, operands, attrs);
}

}  // namespace gradc
