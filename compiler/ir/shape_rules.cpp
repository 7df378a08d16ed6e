// Type inference for every op kind (see ops.def for attribute meanings).
#include "compiler/ir/shape_rules.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/support/diagnostics.h"

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
    return fail(fmt::format("tensor of shape {} has more than 2^40 elements", shape_str(r.shape)));
  return r;
}

InferResult infer_impl(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& at) {
  const OpInfo& info = op_info(op);
  if (info.arity >= 0 && static_cast<int>(operands.size()) != info.arity)
    return fail(fmt::format("'{}' takes {} operands, got {}", info.spelling, info.arity, operands.size()));
  if (operands.empty() && info.kind != OpKind::Leaf) return fail(fmt::format("'{}' needs operands", info.spelling));
  const Node* x = operands.empty() ? nullptr : &g[operands[0]];
  switch (info.kind) {
    case OpKind::Leaf:
      return fail("leaves are created with their type, not inferred");

    case OpKind::Unary:
      if (!is_float(x->dtype))
        return fail(fmt::format("'{}' needs a float tensor, got {}", info.spelling, type_of(*x)));
      return ok(x->dtype, x->shape);

    case OpKind::Cast: {
      if (at.ints.size() != 1 || at.ints[0] < 0 || at.ints[0] > 2) return fail("cast needs a target dtype");
      return ok(static_cast<DType>(at.ints[0]), x->shape);
    }

    case OpKind::Binary:
    case OpKind::Compare: {
      const Node& y = g[operands[1]];
      bool compare = info.kind == OpKind::Compare;
      if (x->dtype != y.dtype)
        return fail(fmt::format("cannot {} {} and {} values (use cast(x, {}) to convert)", info.verb,
                                dtype_name(x->dtype), dtype_name(y.dtype),
                                dtype_name(x->dtype == DType::I32 ? y.dtype : x->dtype)));
      if (!compare && !is_float(x->dtype))
        return fail(fmt::format("cannot {} i32 values (i32 is only for labels; use cast(x, f32))", info.verb));
      auto s = broadcast_shapes(x->shape, y.shape);
      if (!s) return fail(fmt::format("cannot {} tensors of shapes {} and {}", info.verb, shape_str(x->shape), shape_str(y.shape)));
      return check_elements(ok(compare && x->dtype == DType::I32 ? DType::F32 : x->dtype, *s));
    }

    case OpKind::Select: {
      const Node& a = g[operands[1]];
      const Node& b = g[operands[2]];
      if (a.dtype != b.dtype)
        return fail(fmt::format("where: the two branches have different dtypes ({} and {})", dtype_name(a.dtype),
                                dtype_name(b.dtype)));
      auto s = broadcast_shapes(x->shape, a.shape);
      if (s) s = broadcast_shapes(*s, b.shape);
      if (!s)
        return fail(fmt::format("where: cannot broadcast condition {} and branches {} and {} together",
                                shape_str(x->shape), shape_str(a.shape), shape_str(b.shape)));
      return check_elements(ok(a.dtype, *s));
    }

    case OpKind::Reduce:
    case OpKind::ArgMax: {
      if (!is_float(x->dtype))
        return fail(fmt::format("'{}' needs a float tensor, got {}", info.spelling, type_of(*x)));
      if (info.kind == OpKind::ArgMax && at.ints.size() != 1) return fail("argmax reduces exactly one axis");
      Shape out;
      for (int i = 0; i < x->rank(); ++i) {
        bool reduced = std::find(at.ints.begin(), at.ints.end(), i) != at.ints.end();
        if (!reduced) out.push_back(x->shape[i]);
        else if (at.keepdims) out.push_back({1, {}});
      }
      for (size_t i = 0; i < at.ints.size(); ++i)
        if (at.ints[i] < 0 || at.ints[i] >= x->rank() || (i > 0 && at.ints[i] <= at.ints[i - 1]))
          return fail(fmt::format("invalid reduction axes for a tensor of shape {}", shape_str(x->shape)));
      return ok(info.kind == OpKind::ArgMax ? DType::I32 : x->dtype, out);
    }

    case OpKind::MatMul: {
      const Node& y = g[operands[1]];
      if (x->dtype != y.dtype || !is_float(x->dtype))
        return fail(fmt::format("cannot multiply matrices of dtypes {} and {}", dtype_name(x->dtype), dtype_name(y.dtype)));
      if (x->rank() < 2 || y.rank() < 2) return fail("matmul operands must have rank >= 2");
      const Dim& k1 = x->shape[x->rank() - 1];
      const Dim& k2 = y.shape[y.rank() - 2];
      if (k1.size != k2.size)
        return fail(fmt::format("cannot multiply matrices of shapes {} and {}: inner dimensions {} and {} differ",
                                shape_str(x->shape), shape_str(y.shape), k1.size, k2.size));
      Shape bx(x->shape.begin(), x->shape.end() - 2), by(y.shape.begin(), y.shape.end() - 2);
      auto batch = broadcast_shapes(bx, by);
      if (!batch)
        return fail(fmt::format("cannot multiply matrices of shapes {} and {}: batch dimensions {} and {} do not broadcast",
                                shape_str(x->shape), shape_str(y.shape), shape_str(bx), shape_str(by)));
      batch->push_back(x->shape[x->rank() - 2]);
      batch->push_back(y.shape[y.rank() - 1]);
      return check_elements(ok(x->dtype, *batch));
    }

    case OpKind::Reshape: {
      Shape out;
      for (int64_t v : at.ints) {
        if (v <= 0) return fail(fmt::format("reshape sizes must be positive, got {}", v));
        out.push_back({v, {}});
      }
      auto n = element_count(out);
      if (!n || *n != numel(x->shape))
        return fail(fmt::format("cannot reshape a tensor of shape {} ({} elements) into {}", shape_str(x->shape),
                                numel(x->shape), shape_str(out)));
      // Keep dim names where the size lines up with the operand's at the same position.
      for (size_t i = 0; i < out.size() && i < x->shape.size(); ++i)
        if (out[i].size == x->shape[i].size) out[i].name = x->shape[i].name;
      return ok(x->dtype, out);
    }

    case OpKind::Transpose: {
      if (static_cast<int>(at.ints.size()) != x->rank())
        return fail(fmt::format("transpose: permutation has {} entries for a tensor of rank {}", at.ints.size(), x->rank()));
      std::vector<bool> seen(at.ints.size());
      Shape out;
      for (int64_t p : at.ints) {
        if (p < 0 || p >= x->rank() || seen[p]) return fail("transpose: not a permutation of the axes");
        seen[p] = true;
        out.push_back(x->shape[p]);
      }
      return ok(x->dtype, out);
    }

    case OpKind::BroadcastTo: {
      Shape target;
      for (int64_t v : at.ints) {
        if (v <= 0) return fail(fmt::format("broadcast_to sizes must be positive, got {}", v));
        target.push_back({v, {}});
      }
      auto s = broadcast_shapes(x->shape, target);
      if (!s || *s != target || x->rank() > static_cast<int>(target.size()))
        return fail(fmt::format("cannot broadcast a tensor of shape {} to {}", shape_str(x->shape), shape_str(target)));
      return check_elements(ok(x->dtype, *s));
    }

    case OpKind::Concat: {
      if (at.ints.size() != 1 || at.ints[0] < 0 || at.ints[0] >= x->rank())
        return fail(fmt::format("concat: axis out of range for rank {}", x->rank()));
      int axis = static_cast<int>(at.ints[0]);
      Shape out = x->shape;
      for (size_t i = 1; i < operands.size(); ++i) {
        const Node& y = g[operands[i]];
        if (y.dtype != x->dtype)
          return fail(fmt::format("concat: tensor {} has dtype {}, the first has {}", i + 1, dtype_name(y.dtype),
                                  dtype_name(x->dtype)));
        bool same = y.rank() == x->rank();
        for (int a = 0; same && a < x->rank(); ++a) same = a == axis || y.shape[a].size == x->shape[a].size;
        if (!same)
          return fail(fmt::format("concat along axis {}: shapes {} and {} differ in another axis", axis,
                                  shape_str(x->shape), shape_str(y.shape)));
        out[axis].size += y.shape[axis].size;
        out[axis].name.clear();
      }
      return check_elements(ok(x->dtype, out));
    }

    case OpKind::Slice:
    case OpKind::Pad: {
      if (at.ints.size() != 3 || at.ints[0] < 0 || at.ints[0] >= x->rank())
        return fail(fmt::format("'{}': axis out of range for rank {}", info.spelling, x->rank()));
      int axis = static_cast<int>(at.ints[0]);
      int64_t size = x->shape[axis].size, a = at.ints[1], b = at.ints[2];
      Shape out = x->shape;
      out[axis].name.clear();
      if (info.kind == OpKind::Slice) {
        if (a < 0 || b > size || a >= b)
          return fail(fmt::format("slice [{}, {}) is empty or outside axis {} of size {}", a, b, axis, size));
        out[axis].size = b - a;
      } else {
        if (a < 0 || b < 0) return fail("pad amounts must be non-negative");
        out[axis].size = size + a + b;
      }
      return check_elements(ok(x->dtype, out));
    }

    case OpKind::OneHot: {
      if (x->dtype != DType::I32)
        return fail(fmt::format("one_hot needs i32 class ids, got {}", type_of(*x)));
      if (at.ints.size() != 1 || at.ints[0] <= 0) return fail("one_hot needs a positive class count");
      Shape out = x->shape;
      out.push_back({at.ints[0], {}});
      return check_elements(ok(DType::F32, out));
    }
  }
  return fail("unknown op kind");
}

}  // namespace

InferResult infer_type(const Graph& g, Op op, const std::vector<NodeId>& operands, const Attrs& attrs) {
  return infer_impl(g, op, operands, attrs);
}

}  // namespace gradc
