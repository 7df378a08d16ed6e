// The builtin functions of SPEC 2.4 and how each lowers to graph ops.
//
// Composite builtins (softmax, the losses, gelu, ...) expand into primitive
// ops here, in their numerically stable forms; autodiff then needs rules for
// the primitives only. Every node made here carries the call's location.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/jacobian.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/frontend/sema_impl.h"
#include "compiler/ir/shape_rules.h"
#include "compiler/support/messages.h"

namespace gradc {
namespace {

using K = ArgKind;

// Sets the builder's location for the lifetime of the object.
struct At {
  Builder& b;
  SourceLoc old;
  At(Sema& s, SourceLoc loc) : b(s.b()), old(s.b().at(loc)) {}
  ~At() { b.at(old); }
};

std::string_view fn_name(const CallArgs& a) { return a.call->name; }
SourceLoc loc(const CallArgs& a) { return a.call->loc; }

// The float tensor argument i.
std::optional<NodeId> ftensor(Sema& s, CallArgs& a, size_t i, std::string_view what = "tensor") {
  return s.float_tensor(a.values[i], fn_name(a), what);
}

// Two float tensor arguments of one dtype; a literal takes the other's dtype.
bool float_pair(Sema& s, CallArgs& a, NodeId& x, NodeId& y) {
  const Value &va = a.values[0], &vb = a.values[1];
  if (va.kind == Value::Kind::Number && vb.kind == Value::Kind::Number) {
    x = s.materialize(va, DType::F32);
    y = s.materialize(vb, DType::F32);
    return true;
  }
  const Value& t = va.kind == Value::Kind::Tensor ? va : vb;
  DType dt = s.g()[t.node].dtype;
  x = s.materialize(va, dt);
  y = s.materialize(vb, dt);
  for (const Value* v : {&va, &vb}) {
    NodeId n = v == &va ? x : y;
    if (!is_float(s.g()[n].dtype)) {
      s.error(v->loc, diag::err_builtin_needs_float(fn_name(a), type_str(s.g()[n].dtype, s.g()[n].shape)));
      return false;
    }
  }
  if (s.g()[x].dtype != s.g()[y].dtype) {
    s.error(loc(a), diag::err_builtin_mixed_dtypes(fn_name(a),
                                dtype_name(s.g()[x].dtype), dtype_name(s.g()[y].dtype), dtype_name(s.g()[x].dtype)));
    s.note_operands({&va, &vb});
    return false;
  }
  return true;
}

bool same_shape(Sema& s, CallArgs& a, NodeId x, NodeId y, std::string_view what) {
  if (s.g()[x].shape == s.g()[y].shape) return true;
  s.error(loc(a), diag::err_builtin_same_shape(fn_name(a), what,
                              shape_str(s.g()[x].shape), shape_str(s.g()[y].shape)));
  s.note_operands({&a.values[0], &a.values[1]});
  return false;
}

std::optional<bool> flag(Sema& s, CallArgs& a, size_t i, std::string_view name = "keepdims") {
  if (!a.given(i)) return false;
  const Expr& e = *a.exprs[i];
  if (e.kind == ExprKind::Bool) return e.bool_value;
  if (e.kind == ExprKind::Number && (e.number == 0 || e.number == 1)) return e.number != 0;
  s.error(e.loc, diag::err_not_a_flag(a.call->kwargs.empty() ? "flag" : name));
  return std::nullopt;
}

// Reduction axes from an optional int-or-list argument; all axes when absent.
std::optional<std::vector<int64_t>> axes_arg(Sema& s, CallArgs& a, size_t i, int rank) {
  std::vector<int64_t> axes;
  if (!a.given(i)) {
    for (int k = 0; k < rank; ++k) axes.push_back(k);
    return axes;
  }
  const Expr& e = *a.exprs[i];
  std::vector<const Expr*> items;
  if (e.kind == ExprKind::List) items.assign(e.args.begin(), e.args.end());
  else items.push_back(&e);
  for (const Expr* it : items) {
    auto ax = s.axis_of(*it, rank, fn_name(a));
    if (!ax) return std::nullopt;
    if (std::find(axes.begin(), axes.end(), *ax) != axes.end()) {
      s.error(it->loc, diag::err_axis_twice(*ax));
      return std::nullopt;
    }
    axes.push_back(*ax);
  }
  std::sort(axes.begin(), axes.end());
  return axes;
}

// A list of sizes (integers or dim names); -1 allowed when `allow_infer`.
std::optional<std::vector<int64_t>> sizes_arg(Sema& s, const Expr& e, std::string_view fn, bool allow_infer) {
  if (e.kind != ExprKind::List) {
    s.error(e.loc, diag::err_sizes_not_list(fn));
    return std::nullopt;
  }
  std::vector<int64_t> out;
  for (const Expr* it : e.args) {
    auto v = s.const_int(*it, "a size");
    if (!v) return std::nullopt;
    if (*v < 1 && !(allow_infer && *v == -1)) {
      s.error(it->loc, diag::err_sizes_nonpositive(fn, allow_infer ? " (or one -1)" : "", *v));
      return std::nullopt;
    }
    out.push_back(*v);
  }
  return out;
}

// ---- unary ----

// A Dsl Fn row of one operand: a float tensor.
Value lower_unary(Sema& s, CallArgs& a, Op op) {
  auto x = ftensor(s, a, 0);
  if (!x) return Value::bad();
  return s.build(op, {*x}, {}, loc(a));
}

Value lower_composite_unary(Sema& s, CallArgs& a) {
  auto xo = ftensor(s, a, 0);
  if (!xo) return Value::bad();
  NodeId x = *xo;
  At at(s, loc(a));
  Builder& b = s.b();
  auto c = [&](double v) { return b.scalar_like(v, x); };
  std::string_view f = fn_name(a);
  NodeId r = kNoNode;
  if (f == "square") {
    r = b.mul(x, x);
  } else if (f == "relu") {  // where(x > 0, x, 0): the gradient at 0 is 0
    r = b.where(b.binary(Op::Gt, x, c(0)), x, c(0));
  } else if (f == "silu") {  // x * sigmoid(x)
    r = b.mul(x, b.unary(Op::Sigmoid, x));
  } else if (f == "gelu") {  // x * 0.5 * (1 + erf(x / sqrt(2))), PyTorch's default (erf) form
    r = b.mul(b.mul(x, c(0.5)), b.add(c(1), b.unary(Op::Erf, b.mul(x, c(M_SQRT1_2)))));
  } else if (f == "leaky_relu" || f == "elu") {
    double k = 0.01;
    if (f == "elu") k = 1;
    if (a.given(1)) {
      auto v = s.const_float(*a.exprs[1], f == "elu" ? "alpha" : "slope");
      if (!v) return Value::bad();
      k = *v;
    }
    // leaky_relu: where(x > 0, x, slope * x);  elu: where(x > 0, x, alpha * expm1(x))
    NodeId neg = f == "elu" ? b.mul(c(k), b.unary(Op::Expm1, x)) : b.mul(x, c(k));
    r = b.where(b.binary(Op::Gt, x, c(0)), x, neg);
  }
  return Value::tensor(r, loc(a));
}

// ---- binary ----

// A Dsl Fn row of two operands: two float tensors of one dtype.
Value lower_binary(Sema& s, CallArgs& a, Op op) {
  NodeId x, y;
  if (!float_pair(s, a, x, y)) return Value::bad();
  Value r = s.build(op, {x, y}, {}, loc(a));
  if (r.poison()) s.note_operands({&a.values[0], &a.values[1]});
  return r;
}

Value lower_where(Sema& s, CallArgs& a) {
  const Value& cv = a.values[0];
  NodeId cond = s.materialize(cv, DType::F32);
  CallArgs branches = a;
  branches.values = {a.values[1], a.values[2]};
  NodeId x, y;
  if (!float_pair(s, branches, x, y)) return Value::bad();
  Value r = s.build(Op::Where, {cond, x, y}, {}, loc(a));
  if (r.poison()) s.note_operands({&a.values[0], &a.values[1], &a.values[2]});
  return r;
}

// ---- reductions ----

// logsumexp(x) = m + log(sum(exp(x - m))), m = stop_gradient(max(x)) (stable; m cancels in the gradient)
NodeId logsumexp(Builder& b, NodeId x, const std::vector<int64_t>& axes, bool keepdims) {
  NodeId m = b.unary(Op::StopGradient, b.reduce(Op::ReduceMax, x, axes, true));
  NodeId r = b.add(b.unary(Op::Log, b.reduce(Op::ReduceSum, b.unary(Op::Exp, b.sub(x, m)), axes, true)), m);
  if (keepdims) return r;
  Shape out;
  for (int i = 0; i < b[x].rank(); ++i)
    if (std::find(axes.begin(), axes.end(), i) == axes.end()) out.push_back(b[x].shape[i]);
  return b.reshape(r, sizes(out));
}

Value lower_reduce(Sema& s, CallArgs& a) {
  auto xo = ftensor(s, a, 0);
  if (!xo) return Value::bad();
  NodeId x = *xo;
  auto axes = axes_arg(s, a, 1, s.g()[x].rank());
  auto keep = flag(s, a, 2);
  if (!axes || !keep) return Value::bad();
  At at(s, loc(a));
  Builder& b = s.b();
  std::string_view f = fn_name(a);
  NodeId r;
  if (f == "sum") {
    r = b.reduce(Op::ReduceSum, x, *axes, *keep);
  } else if (f == "mean") {  // sum / count, as PyTorch
    r = b.div(b.reduce(Op::ReduceSum, x, *axes, *keep), s.count(x, *axes));
  } else if (f == "max") {
    r = b.reduce(Op::ReduceMax, x, *axes, *keep);
  } else if (f == "min") {
    r = b.reduce(Op::ReduceMin, x, *axes, *keep);
  } else {
    r = logsumexp(b, x, *axes, *keep);
  }
  return Value::tensor(r, loc(a));
}

Value lower_argmax(Sema& s, CallArgs& a) {
  auto xo = ftensor(s, a, 0);
  if (!xo) return Value::bad();
  auto axis = s.axis_of(*a.exprs[1], s.g()[*xo].rank(), "argmax");
  auto keep = flag(s, a, 2);
  if (!axis || !keep) return Value::bad();
  Attrs at;
  at.ints = {*axis};
  at.keepdims = *keep;
  return s.build(Op::ArgMax, {*xo}, at, loc(a));
}

// ---- shapes ----

NodeId any_tensor(Sema& s, const Value& v) { return s.materialize(v, DType::F32); }

Value lower_reshape(Sema& s, CallArgs& a) {
  NodeId x = any_tensor(s, a.values[0]);
  auto sz = sizes_arg(s, *a.exprs[1], "reshape", true);
  if (!sz) return Value::bad();
  int64_t known = 1;
  int infer = -1;
  for (size_t i = 0; i < sz->size(); ++i) {
    if ((*sz)[i] == -1) {
      if (infer >= 0) {
        s.error(loc(a), diag::err_reshape_two_infer());
        return Value::bad();
      }
      infer = static_cast<int>(i);
    } else if (known > kMaxElements / (*sz)[i]) {
      s.error(loc(a), diag::err_reshape_too_large(shape_str(s.g()[x].shape)));
      return Value::bad();
    } else {
      known *= (*sz)[i];
    }
  }
  int64_t total = numel(s.g()[x].shape);
  if (infer >= 0) {
    if (known == 0 || total % known != 0) {
      std::string want = "[";
      for (size_t i = 0; i < sz->size(); ++i) want += (i ? ", " : "") + std::to_string((*sz)[i]);
      s.error(loc(a), diag::err_reshape_infer( shape_str(s.g()[x].shape), total, want, total, known));
      return Value::bad();
    }
    (*sz)[infer] = total / known;
  }
  Attrs at;
  at.ints = *sz;
  return s.build(Op::Reshape, {x}, at, loc(a));
}

Value lower_transpose(Sema& s, CallArgs& a) {
  NodeId x = any_tensor(s, a.values[0]);
  int rank = s.g()[x].rank();
  std::vector<int64_t> perm;
  if (!a.given(1)) {
    for (int i = rank - 1; i >= 0; --i) perm.push_back(i);
  } else {
    const Expr& e = *a.exprs[1];
    if (e.kind != ExprKind::List) {
      s.error(e.loc, diag::err_transpose_needs_list());
      return Value::bad();
    }
    for (const Expr* it : e.args) {
      auto ax = s.axis_of(*it, rank, "transpose");
      if (!ax) return Value::bad();
      perm.push_back(*ax);
    }
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    bool is_perm = static_cast<int>(perm.size()) == rank;
    for (int i = 0; is_perm && i < rank; ++i) is_perm = sorted[i] == i;
    if (!is_perm) {
      s.error(e.loc, diag::err_transpose_permutation(
                                 [&] {
                                   std::string t = "[";
                                   for (size_t i = 0; i < perm.size(); ++i) t += (i ? ", " : "") + std::to_string(perm[i]);
                                   return t + "]";
                                 }(),
                                 rank, shape_str(s.g()[x].shape)));
      return Value::bad();
    }
  }
  Attrs at;
  at.ints = perm;
  if (rank < 2) return Value::tensor(x, loc(a));
  return s.build(Op::Transpose, {x}, at, loc(a));
}

Value lower_concat(Sema& s, CallArgs& a) {
  const Expr& list = *a.exprs[0];
  if (list.kind != ExprKind::List || list.args.empty()) {
    s.error(list.loc, diag::err_concat_needs_list());
    return Value::bad();
  }
  std::vector<Value> vals;
  for (const Expr* e : list.args) {
    vals.push_back(s.eval(*e));
    if (vals.back().poison()) return Value::bad();
  }
  for (size_t i = 0; i < vals.size(); ++i) {
    const Value& v = vals[i];
    if (v.kind != Value::Kind::Tensor || s.g()[v.node].rank() == 0) {
      s.error(v.loc, diag::err_concat_scalar(
                                 i + 1, v.kind == Value::Kind::Tensor ? "a scalar" : "a number"));
      return Value::bad();
    }
  }
  const Value* first = &vals[0];
  int rank = s.g()[first->node].rank();
  int64_t axis = 0;
  if (a.given(1)) {
    auto ax = s.axis_of(*a.exprs[1], rank, "concat");
    if (!ax) return Value::bad();
    axis = *ax;
  }
  std::vector<NodeId> parts;
  for (const Value& v : vals) parts.push_back(s.materialize(v, s.g()[first->node].dtype));
  Attrs at;
  at.ints = {axis};
  return s.build(Op::Concat, parts, at, loc(a));
}

Value lower_slice(Sema& s, CallArgs& a) {
  NodeId x = any_tensor(s, a.values[0]);
  int rank = s.g()[x].rank();
  if (rank == 0) {
    s.error(loc(a), diag::err_slice_scalar());
    return Value::bad();
  }
  auto axis = s.axis_of(*a.exprs[1], rank, "slice");
  if (!axis) return Value::bad();
  int64_t size = s.g()[x].shape[*axis].size;
  int64_t bounds[2] = {0, size};
  for (int k = 0; k < 2; ++k) {
    if (!a.given(2 + k)) continue;
    auto v = s.const_int(*a.exprs[2 + k], k == 0 ? "start" : "stop");
    if (!v) return Value::bad();
    int64_t p = *v < 0 ? *v + size : *v;  // negative counts from the end, as in Python
    if (p < 0 || p > size) {
      s.error(a.exprs[2 + k]->loc, diag::err_slice_bound(
                                               k == 0 ? "start" : "stop", *v, *axis, size, shape_str(s.g()[x].shape)));
      return Value::bad();
    }
    bounds[k] = p;
  }
  if (bounds[0] >= bounds[1]) {
    s.error(loc(a), diag::err_slice_empty(bounds[0],
                                bounds[1], *axis));
    return Value::bad();
  }
  Attrs at;
  at.ints = {*axis, bounds[0], bounds[1]};
  return s.build(Op::Slice, {x}, at, loc(a));
}

Value lower_broadcast_to(Sema& s, CallArgs& a) {
  NodeId x = any_tensor(s, a.values[0]);
  auto sz = sizes_arg(s, *a.exprs[1], "broadcast_to", false);
  if (!sz) return Value::bad();
  Attrs at;
  at.ints = *sz;
  Value r = s.build(Op::BroadcastTo, {x}, at, loc(a));
  if (r.poison()) s.note_operands({&a.values[0]});
  return r;
}

Value lower_cast(Sema& s, CallArgs& a) {
  const Expr& d = *a.exprs[1];
  std::optional<DType> to = d.kind == ExprKind::Name ? parse_dtype(d.name) : std::nullopt;
  if (!to || *to == DType::I32) {
    s.error(d.loc, to ? diag::err_cast_to_i32() : diag::err_cast_target());
    return Value::bad();
  }
  NodeId x = s.materialize(a.values[0], *to);
  At at(s, loc(a));
  return Value::tensor(s.b().cast(x, *to), loc(a));
}

// ---- nn ----

Value lower_softmax(Sema& s, CallArgs& a) {
  auto xo = ftensor(s, a, 0);
  if (!xo) return Value::bad();
  NodeId x = *xo;
  if (s.g()[x].rank() == 0) {
    s.error(loc(a), diag::err_needs_rank1(fn_name(a)));
    return Value::bad();
  }
  int axis = s.g()[x].rank() - 1;
  if (a.given(1)) {
    auto ax = s.axis_of(*a.exprs[1], s.g()[x].rank(), fn_name(a));
    if (!ax) return Value::bad();
    axis = *ax;
  }
  At at(s, loc(a));
  Builder& b = s.b();
  // log_softmax(x) = x - logsumexp(x);  softmax(x) = exp(log_softmax(x))
  NodeId ls = b.sub(x, logsumexp(b, x, {axis}, true));
  return Value::tensor(fn_name(a) == "softmax" ? b.unary(Op::Exp, ls) : ls, loc(a));
}

Value lower_one_hot(Sema& s, CallArgs& a) {
  const Value& v = a.values[0];
  if (v.kind != Value::Kind::Tensor || s.g()[v.node].dtype != DType::I32) {
    s.error(v.loc, diag::err_one_hot_ids_value(
                               v.kind == Value::Kind::Tensor ? type_str(s.g()[v.node].dtype, s.g()[v.node].shape)
                                                             : std::string("a number")));
    s.note_operands({&v});
    return Value::bad();
  }
  auto n = s.const_int(*a.exprs[1], "the class count of one_hot");
  if (!n) return Value::bad();
  if (*n < 1) {
    s.error(a.exprs[1]->loc, diag::err_one_hot_count_value(*n));
    return Value::bad();
  }
  Attrs at;
  at.ints = {*n};
  return s.build(Op::OneHot, {v.node}, at, loc(a));
}

// ---- images: convolution, pooling, flatten (SPEC 2.7) ----
//
// Each is a window op (im2col as a gather, ops.def) and existing ops: a
// convolution multiplies the windows by the weight in one batched product
// (the groups are a batch axis), a pooling reduces each window. Padding is
// a pad before the windows are taken. Gradients follow from the rules of
// those ops; the window's is its adjoint, fold.

// Spatial axes of a builtin: 1 for the *1d ones, 2 for the *2d ones.
int64_t spatial_axes(const CallArgs& a) { return fn_name(a).ends_with("1d") ? 1 : 2; }

constexpr int64_t kMaxWindowOption = int64_t{1} << 20;

// An INT2 option (an integer, or a list of one per spatial axis), each at least `least`.
std::optional<std::vector<int64_t>> window_option(Sema& s, CallArgs& a, size_t i, std::string_view what, int64_t d,
                                                  int64_t least, std::vector<int64_t> fallback) {
  if (!a.given(i)) return fallback;
  const Expr& e = *a.exprs[i];
  std::vector<const Expr*> items(static_cast<size_t>(d), &e);
  if (e.kind == ExprKind::List) {
    if (static_cast<int64_t>(e.args.size()) != d) {
      s.error(e.loc, diag::err_window_option_list(fn_name(a), what, d));
      return std::nullopt;
    }
    items.assign(e.args.begin(), e.args.end());
  }
  std::vector<int64_t> out;
  for (const Expr* it : items) {
    auto v = s.const_int(*it, what);
    if (!v) return std::nullopt;
    if (*v < least) {
      s.error(it->loc, diag::err_window_option_value(fn_name(a), what, least == 0 ? ">= 0" : ">= 1", *v));
      return std::nullopt;
    }
    // Bounded so that the sizes computed from it cannot overflow (a
    // dilation times a kernel of up to 2^40 elements stays below 2^60).
    if (*v > kMaxWindowOption) {
      s.error(it->loc, diag::err_window_option_value(fn_name(a), what, "<= 2^20", *v));
      return std::nullopt;
    }
    out.push_back(*v);
  }
  return out;
}

// x of rank 2 + d ([N, C, spatial...]); `what` names it in the message.
bool window_rank(Sema& s, CallArgs& a, size_t i, NodeId x, int64_t d, std::string_view what, std::string_view layout) {
  const Node& n = s.g()[x];
  if (n.rank() == 2 + d) return true;
  s.error(a.values[i].loc, diag::err_window_input_rank(fn_name(a), what, 2 + d, layout, type_str(n.dtype, n.shape)));
  s.note_operands({&a.values[i]});
  return false;
}

// The window counts along each spatial axis of x padded by `padding`;
// nullopt, with a message naming the sizes and the formula, when an axis has none.
std::optional<std::vector<int64_t>> window_counts(Sema& s, CallArgs& a, NodeId x, const std::vector<int64_t>& kernel,
                                                  const std::vector<int64_t>& stride,
                                                  const std::vector<int64_t>& padding,
                                                  const std::vector<int64_t>& dilation) {
  std::vector<int64_t> counts;
  for (size_t j = 0; j < kernel.size(); ++j) {
    int64_t size = s.g()[x].shape[2 + j].size;
    int64_t o = window_count(size + 2 * padding[j], kernel[j], stride[j], dilation[j]);
    if (o < 1) {
      s.error(loc(a), diag::err_window_output_size(fn_name(a), static_cast<int64_t>(2 + j), size, padding[j],
                                                   dilation[j], kernel[j], stride[j], o,
                                                   dilation[j] * (kernel[j] - 1) + 1, size + 2 * padding[j]));
      s.note_operands({&a.values[0]});
      return std::nullopt;
    }
    counts.push_back(o);
  }
  return counts;
}

// x padded on both sides of each spatial axis with `value` (0 or -inf);
// nullopt, reported at the call, when the padded tensor is too large.
std::optional<NodeId> pad_spatial(Sema& s, CallArgs& a, NodeId x, const std::vector<int64_t>& padding,
                                  double value) {
  auto pad = [&](NodeId t) -> std::optional<NodeId> {
    for (size_t j = 0; j < padding.size(); ++j) {
      if (padding[j] == 0) continue;
      Attrs at;
      at.ints = {static_cast<int64_t>(2 + j), padding[j], padding[j]};
      Value v = s.build(Op::Pad, {t}, at, loc(a));
      if (v.poison()) return std::nullopt;
      t = v.node;
    }
    return t;
  };
  auto padded = pad(x);
  if (!padded || value == 0 || *padded == x) return padded;
  // Pad pads with zeros: a padded mask of ones selects x, the rest is `value`.
  Builder& b = s.b();
  return b.where(*pad(b.full_like(1.0, x)), *padded, b.scalar_like(value, x));
}

// The windows [N, C, K.., O..] of x (already padded); nullopt, reported at
// the call, when they would be too large a tensor.
std::optional<NodeId> windows(Sema& s, CallArgs& a, NodeId x, const std::vector<int64_t>& kernel,
                              const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation) {
  Attrs at;
  for (size_t j = 0; j < kernel.size(); ++j)
    at.ints.insert(at.ints.end(), {kernel[j], stride[j], dilation[j], s.g()[x].shape[2 + j].size});
  Value v = s.build(Op::Window, {x}, at, loc(a));
  if (v.poison()) return std::nullopt;
  return v.node;
}

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// conv1d / conv2d(x, w, stride=1, padding=0, dilation=1, groups=1)
Value lower_conv(Sema& s, CallArgs& a) {
  int64_t d = spatial_axes(a);
  NodeId x, w;
  if (!float_pair(s, a, x, w)) return Value::bad();
  std::string_view layout = d == 1 ? "[N, C, L]" : "[N, C, H, W]";
  std::string_view wlayout = d == 1 ? "[O, C/groups, K]" : "[O, C/groups, KH, KW]";
  if (!window_rank(s, a, 0, x, d, "x", layout) || !window_rank(s, a, 1, w, d, "the weight w", wlayout))
    return Value::bad();
  std::vector<int64_t> one(static_cast<size_t>(d), 1), zero(static_cast<size_t>(d), 0);
  auto stride = window_option(s, a, 2, "stride", d, 1, one);
  auto padding = window_option(s, a, 3, "padding", d, 0, zero);
  auto dilation = window_option(s, a, 4, "dilation", d, 1, one);
  if (!stride || !padding || !dilation) return Value::bad();
  int64_t groups = 1;
  if (a.given(5)) {
    auto g = s.const_int(*a.exprs[5], "groups");
    if (!g) return Value::bad();
    if (*g < 1) {
      s.error(a.exprs[5]->loc, diag::err_window_option_value(fn_name(a), "groups", ">= 1", *g));
      return Value::bad();
    }
    groups = *g;
  }
  const Shape &xs = s.g()[x].shape, &ws = s.g()[w].shape;
  int64_t n = xs[0].size, c = xs[1].size, o = ws[0].size, cg = ws[1].size;
  if (c % groups != 0 || o % groups != 0) {
    s.error(loc(a), diag::err_conv_groups(fn_name(a), groups, groups, c, o));
    s.note_operands({&a.values[0], &a.values[1]});
    return Value::bad();
  }
  if (c / groups != cg) {
    s.error(loc(a), diag::err_conv_channels(fn_name(a), c, shape_str(ws), cg * groups, cg, groups));
    s.note_operands({&a.values[0], &a.values[1]});
    return Value::bad();
  }
  std::vector<int64_t> kernel;
  for (int64_t j = 0; j < d; ++j) kernel.push_back(ws[2 + j].size);
  auto counts = window_counts(s, a, x, kernel, *stride, *padding, *dilation);
  if (!counts) return Value::bad();
  s.mark_conv_weight(w);
  At at(s, loc(a));
  Builder& b = s.b();
  // A convolution is one product per group of the weight [O/G, C/G*prod(K)]
  // and the windows laid out [C/G*prod(K), N*prod(O)]: the batch joins the
  // window positions, so that the forward product and both gradient
  // products (the weight's sums over images and positions in its inner
  // dimension) are each one large product, not one small product per image.
  // The product is w @ windows [G, O/G, N*prod(O)], so that the windows'
  // gradient, w^T @ g, comes out in the windows' own layout for the fold
  // (the transposed form, windows^T @ w^T, needed a transpose of all of it:
  // 5M elements on the Fashion-MNIST CNN's second layer, slower than its
  // product); its rows are the few output channels, so B is packed block by
  // block (Kernel::pack_b_per_block) and the weight gradient g @ windows^T
  // transposes its windows in registers as it packs them.
  auto padded = pad_spatial(s, a, x, *padding, 0.0);
  auto u = padded ? windows(s, a, *padded, kernel, *stride, *dilation) : std::nullopt;  // [N, C, K.., O..]
  if (!u) return Value::bad();
  std::vector<int64_t> to_columns = {1};  // [C, K.., N, O..]
  for (int64_t j = 0; j < d; ++j) to_columns.push_back(2 + j);
  to_columns.push_back(0);
  for (int64_t j = 0; j < d; ++j) to_columns.push_back(2 + d + j);
  int64_t depth = cg * product(kernel), columns = n * product(*counts), og = o / groups;
  std::vector<int64_t> col_shape = {depth, columns}, row_shape = {og, depth};
  if (groups > 1) col_shape.insert(col_shape.begin(), groups), row_shape.insert(row_shape.begin(), groups);
  NodeId cols = b.reshape(b.transpose(*u, to_columns), col_shape);
  NodeId rows = b.reshape(w, row_shape);
  NodeId prod = b.make(Op::MatMul, {rows, cols});  // [G, O/G, N*P]
  // [G, O/G, N, O..] -> [N, G, O/G, O..] -> [N, O, O..]
  std::vector<int64_t> split = {groups, og, n};
  split.insert(split.end(), counts->begin(), counts->end());
  std::vector<int64_t> to_images = {2, 0, 1};
  for (int64_t j = 0; j < d; ++j) to_images.push_back(3 + j);
  std::vector<int64_t> out = {n, o};
  out.insert(out.end(), counts->begin(), counts->end());
  return Value::tensor(b.reshape(b.transpose(b.reshape(prod, split), to_images), out), loc(a));
}

// max_pool1d/2d, avg_pool1d/2d(x, kernel, stride=kernel, padding=0)
Value lower_pool(Sema& s, CallArgs& a) {
  int64_t d = spatial_axes(a);
  bool is_max = fn_name(a).starts_with("max");
  auto xo = ftensor(s, a, 0);
  if (!xo || !window_rank(s, a, 0, *xo, d, "x", d == 1 ? "[N, C, L]" : "[N, C, H, W]")) return Value::bad();
  NodeId x = *xo;
  auto kernel = window_option(s, a, 1, "kernel", d, 1, {});
  if (!kernel) return Value::bad();
  auto stride = window_option(s, a, 2, "stride", d, 1, *kernel);
  auto padding = window_option(s, a, 3, "padding", d, 0, std::vector<int64_t>(static_cast<size_t>(d), 0));
  if (!stride || !padding) return Value::bad();
  // As PyTorch: every window then holds at least one element of x.
  for (int64_t j = 0; j < d; ++j)
    if ((*padding)[j] > (*kernel)[j] / 2) {
      s.error(a.exprs[3]->loc, diag::err_pool_padding(fn_name(a), 2 + j, (*padding)[j], (*kernel)[j]));
      return Value::bad();
    }
  std::vector<int64_t> one(static_cast<size_t>(d), 1);
  auto counts = window_counts(s, a, x, *kernel, *stride, *padding, one);
  if (!counts) return Value::bad();
  At at(s, loc(a));
  Builder& b = s.b();
  double pad_value = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
  auto padded = pad_spatial(s, a, x, *padding, pad_value);
  auto u = padded ? windows(s, a, *padded, *kernel, *stride, one) : std::nullopt;
  if (!u) return Value::bad();
  const Shape& xs = s.g()[x].shape;
  std::vector<int64_t> flat = {xs[0].size, xs[1].size, product(*kernel)};
  flat.insert(flat.end(), counts->begin(), counts->end());
  // max: the first maximum in the window's row-major order gets the gradient
  // (ReduceMax's rule), as in PyTorch; avg: the padding counts (count_include_pad)
  NodeId flat_u = b.reshape(*u, flat);
  NodeId r = is_max ? b.reduce(Op::ReduceMax, flat_u, {2}, false)
                    : b.div(b.reduce(Op::ReduceSum, flat_u, {2}, false),
                            b.scalar_like(static_cast<double>(product(*kernel)), x));
  return Value::tensor(r, loc(a));
}

// flatten(x, start=1): axes start.. merged into one
Value lower_flatten(Sema& s, CallArgs& a) {
  NodeId x = any_tensor(s, a.values[0]);
  const Node& xn = s.g()[x];
  int start = 1;
  if (a.given(1)) {
    auto ax = s.axis_of(*a.exprs[1], xn.rank(), fn_name(a));
    if (!ax) return Value::bad();
    start = *ax;
  } else if (xn.rank() < 2) {
    s.error(a.values[0].loc, diag::err_window_input_rank(fn_name(a), "x", 2, "or give start=0",
                                                         type_str(xn.dtype, xn.shape)));
    return Value::bad();
  }
  std::vector<int64_t> out;
  int64_t merged = 1;
  for (int i = 0; i < xn.rank(); ++i) {
    if (i < start) out.push_back(xn.shape[i].size);
    else merged *= xn.shape[i].size;
  }
  out.push_back(merged);
  At at(s, loc(a));
  return Value::tensor(s.b().reshape(x, out), loc(a));
}

// ---- losses (each the mean over elements; cross_entropy the mean over rows) ----

std::vector<int64_t> all_axes(Sema& s, NodeId x) {
  std::vector<int64_t> axes;
  for (int i = 0; i < s.g()[x].rank(); ++i) axes.push_back(i);
  return axes;
}

Value lower_mse(Sema& s, CallArgs& a) {
  NodeId p, t;
  if (!float_pair(s, a, p, t) || !same_shape(s, a, p, t, "pred and target")) return Value::bad();
  At at(s, loc(a));
  Builder& b = s.b();
  NodeId d = b.sub(p, t);
  NodeId sq = b.mul(d, d);
  return Value::tensor(b.div(b.sum_all(sq), s.count(p, all_axes(s, p))), loc(a));
}

Value lower_bce(Sema& s, CallArgs& a) {
  NodeId p, t;
  if (!float_pair(s, a, p, t) || !same_shape(s, a, p, t, "probabilities and targets")) return Value::bad();
  At at(s, loc(a));
  Builder& b = s.b();
  auto c = [&](double v) { return b.scalar_like(v, p); };
  auto sg = [&](NodeId x) { return b.unary(Op::StopGradient, x); };
  // -(t * max(log p, -100) + (1 - t) * max(log(1 - p), -100)), as PyTorch clamps each log
  auto loss = [&](NodeId q) {
    NodeId lp = b.binary(Op::Maximum, b.unary(Op::Log, q), c(-100));
    NodeId lq = b.binary(Op::Maximum, b.unary(Op::Log, b.sub(c(1), q)), c(-100));
    return std::pair{b.neg(b.add(b.mul(t, lp), b.mul(b.sub(c(1), t), lq))), b.sub(lq, lp)};
  };
  // PyTorch's gradient is (p - t) / max(p (1 - p), 1e-12): the natural one
  // where p (1 - p) >= 1e-12, and a finite one at p = 0 or 1, where the
  // logs' own derivatives are infinite. Where p is extreme, the value comes
  // through stop_gradient and the gradient through (p - sg(p)) * sg(G), which
  // adds nothing to the value; the natural branch reads a safe p there, so no
  // infinity times zero turns into NaN.
  NodeId normal = b.binary(Op::Ge, b.mul(p, b.sub(c(1), p)), c(1e-12));
  auto [natural, unused] = loss(b.where(normal, p, c(0.5)));
  (void)unused;
  auto [clamped, dt] = loss(p);
  NodeId dp = b.div(b.sub(p, t), c(1e-12));
  NodeId extreme = b.add(b.add(sg(clamped), b.mul(b.sub(p, sg(p)), sg(dp))), b.mul(b.sub(t, sg(t)), sg(dt)));
  NodeId l = b.where(normal, natural, extreme);
  return Value::tensor(b.div(b.sum_all(l), s.count(p, all_axes(s, p))), loc(a));
}

Value lower_bce_with_logits(Sema& s, CallArgs& a) {
  NodeId x, t;
  if (!float_pair(s, a, x, t) || !same_shape(s, a, x, t, "logits and targets")) return Value::bad();
  At at(s, loc(a));
  Builder& b = s.b();
  auto c = [&](double v) { return b.scalar_like(v, x); };
  // (1 - t) * x + softplus(-x): stable, and its gradient is exactly sigmoid(x) - t
  NodeId l = b.add(b.mul(b.sub(c(1), t), x), b.unary(Op::Softplus, b.neg(x)));
  return Value::tensor(b.div(b.sum_all(l), s.count(x, all_axes(s, x))), loc(a));
}

Value lower_cross_entropy(Sema& s, CallArgs& a) {
  auto xo = ftensor(s, a, 0, "tensor of logits");
  if (!xo) return Value::bad();
  NodeId x = *xo;
  const Node& xn = s.g()[x];
  if (xn.rank() != 2) {
    s.error(a.values[0].loc, diag::err_cross_entropy_logits(shape_str(xn.shape)));
    s.note_operands({&a.values[0]});
    return Value::bad();
  }
  const Value& lv = a.values[1];
  if (lv.kind != Value::Kind::Tensor) {
    s.error(lv.loc, diag::err_cross_entropy_target());
    return Value::bad();
  }
  const Node& ln = s.g()[lv.node];
  int64_t n = xn.shape[0].size, classes = xn.shape[1].size;
  NodeId target;
  At at(s, loc(a));
  Builder& b = s.b();
  if (ln.dtype == DType::I32) {
    if (ln.rank() != 1 || ln.shape[0].size != n) {
      s.error(lv.loc, diag::err_cross_entropy_ids(
                                  shape_str(Shape{xn.shape[0]}), shape_str(xn.shape), shape_str(ln.shape)));
      s.note_operands({&a.values[0], &lv});
      return Value::bad();
    }
    Attrs oh;
    oh.ints = {classes};
    target = b.cast(b.make(Op::OneHot, {lv.node}, oh), xn.dtype);
  } else {
    if (ln.dtype != xn.dtype || ln.shape != xn.shape) {
      s.error(lv.loc, diag::err_cross_entropy_probs(
                                  type_str(xn.dtype, xn.shape), type_str(ln.dtype, ln.shape)));
      s.note_operands({&a.values[0], &lv});
      return Value::bad();
    }
    target = lv.node;
  }
  // -sum(target * log_softmax(x)) / N
  NodeId ls = b.sub(x, logsumexp(b, x, {1}, true));
  NodeId tot = b.sum_all(b.mul(target, ls));
  return Value::tensor(b.div(b.neg(tot), s.count(x, {0})), loc(a));
}

// ---- autodiff ----

// The type of an operand for a message: "f32[B=4, 3]", or "a number".
std::string type_of(Sema& s, const Value& v) {
  return v.kind == Value::Kind::Tensor ? type_str(s.g()[v.node].dtype, s.g()[v.node].shape) : std::string("a number");
}

// What every derivative builtin needs of e and x: float tensors.
bool is_float_tensor(Sema& s, const Value& v) {
  return v.kind == Value::Kind::Tensor && is_float(s.g()[v.node].dtype);
}

Value lower_grad(Sema& s, CallArgs& a) {
  const Value& e = a.values[0];
  const Value& x = a.values[1];
  if (!is_float_tensor(s, e) || !s.g()[e.node].shape.empty()) {
    s.error(e.loc, diag::err_grad_of(type_of(s, e)));
    return Value::bad();
  }
  if (!is_float_tensor(s, x)) {
    s.error(x.loc, diag::err_grad_wrt(x.name, type_of(s, x)));
    return Value::bad();
  }
  At at(s, loc(a));
  return Value::tensor(gradients(s.b(), e.node, {x.node})[0], loc(a));
}

// jvp(e, x, v): the directional derivative of e with respect to x along v,
// by forward accumulation (autodiff/forward.h).
Value lower_jvp(Sema& s, CallArgs& a) {
  const Value& e = a.values[0];
  const Value& x = a.values[1];
  const Value& v = a.values[2];
  if (!is_float_tensor(s, e)) {
    s.error(e.loc, diag::err_jvp_of(type_of(s, e)));
    return Value::bad();
  }
  if (!is_float_tensor(s, x)) {
    s.error(x.loc, diag::err_jvp_wrt(x.name, type_of(s, x)));
    return Value::bad();
  }
  if (v.kind != Value::Kind::Tensor || s.g()[v.node].dtype != s.g()[x.node].dtype ||
      s.g()[v.node].shape != s.g()[x.node].shape) {
    s.error(v.loc, diag::err_jvp_direction(type_of(s, x), type_of(s, v)));
    return Value::bad();
  }
  At at(s, loc(a));
  return Value::tensor(directional_derivative(s.b(), e.node, x.node, v.node), loc(a));
}

// jacobian(e, x[, forward=B]): every derivative d e[i...] / d x[j...], shape
// e ++ x, by forward or reverse accumulation, whichever needs fewer
// evaluations (autodiff/jacobian.h), or the one `forward` names (as JAX's
// jacfwd and jacrev). The choice is a remark that graph dumps print.
Value lower_jacobian(Sema& s, CallArgs& a) {
  const Value& e = a.values[0];
  const Value& x = a.values[1];
  if (!is_float_tensor(s, e)) {
    s.error(e.loc, diag::err_jacobian_of(type_of(s, e)));
    return Value::bad();
  }
  if (!is_float_tensor(s, x)) {
    s.error(x.loc, diag::err_jacobian_wrt(x.name, type_of(s, x)));
    return Value::bad();
  }
  int64_t m = numel(s.g()[e.node].shape), n = numel(s.g()[x.node].shape);
  if (m > kMaxJacobianElements / n) {
    s.error(loc(a), diag::err_jacobian_too_large(type_of(s, e), type_of(s, x), m, n, kMaxJacobianElements));
    s.note_operands({&e, &x});
    return Value::bad();
  }
  Accumulation mode = jacobian_accumulation(m, n);
  if (a.given(2)) {
    auto forward = flag(s, a, 2, "forward");
    if (!forward) return Value::bad();
    mode = *forward ? Accumulation::Forward : Accumulation::Reverse;
  }
  auto plural = [](int64_t k) { return k == 1 ? "" : "s"; };
  s.remark(loc(a), (mode == Accumulation::Forward ? diag::remark_jacobian_forward(n, plural(n), m, plural(m))
                                                  : diag::remark_jacobian_reverse(m, plural(m), n, plural(n))) +
                       (a.given(2) ? fmt::format(", as forward={} asks", mode == Accumulation::Forward) : ""));
  At at(s, loc(a));
  return Value::tensor(jacobian(s.b(), e.node, x.node, mode), loc(a));
}

// ---- lookup and randomness ----

// embedding(ids, table): rows of a [V, D] float table picked by i32 ids; the
// ids are checked against [0, V) when the model runs (lowering.cpp, interpreter.cpp).
Value lower_embedding(Sema& s, CallArgs& a) {
  const Value &ids = a.values[0], &table = a.values[1];
  if (ids.kind != Value::Kind::Tensor || s.g()[ids.node].dtype != DType::I32) {
    s.error(ids.loc, diag::err_embedding_ids(type_of(s, ids)));
    s.note_operands({&ids});
    return Value::bad();
  }
  if (!is_float_tensor(s, table) || s.g()[table.node].rank() != 2) {
    s.error(table.loc, diag::err_embedding_table(type_of(s, table)));
    s.note_operands({&table});
    return Value::bad();
  }
  return s.build(Op::Embedding, {ids.node, table.node}, {}, loc(a));
}

// dropout(x, p=0.5): in training mode, each element is kept with probability
// 1 - p and scaled by 1/(1 - p), else zeroed (PyTorch's F.dropout); the
// identity in evaluation mode. The mask is a node: the forward value and
// the gradient (where's rule: g / (1 - p) where kept) use the same one. Its
// bits come from random_uniform with a stream id of its own per call site,
// keyed by the seed and the step number (runtime/philox.h).
Value lower_dropout(Sema& s, CallArgs& a) {
  if (s.in_loop_body()) {
    s.error(a.call->op_loc, diag::err_random_in_loop(fn_name(a)));
    return Value::bad();
  }
  auto xo = ftensor(s, a, 0);
  if (!xo) return Value::bad();
  NodeId x = *xo;
  double p = 0.5;
  if (a.given(1)) {
    auto v = s.const_float(*a.exprs[1], "the drop probability p");
    if (!v) return Value::bad();
    if (!(*v >= 0 && *v <= 1)) {
      s.error(a.exprs[1]->loc, diag::err_dropout_probability(*v));
      return Value::bad();
    }
    p = *v;
  }
  if (!s.training() || p == 0) return Value::tensor(x, loc(a));
  At at(s, loc(a));
  Builder& b = s.b();
  const Node xn = s.g()[x];
  // p = 1 drops everything (as PyTorch): zeros, and a zero gradient rather than 0 * inf.
  if (p == 1) return Value::tensor(b.full_like(0.0, x), loc(a));
  Attrs r;
  r.ints = {s.next_stream(), static_cast<int64_t>(xn.dtype)};
  for (const Dim& d : xn.shape) r.ints.push_back(d.size);
  NodeId u = b.make(Op::RandomUniform, {s.random_seed(), s.step_number()}, r);
  NodeId keep = b.binary(Op::Ge, u, b.scalar_like(p, u));
  return Value::tensor(b.where(keep, b.mul(x, b.scalar_like(1 / (1 - p), x)), b.scalar_like(0, x)), loc(a));
}

// ---- the table ----

// One table of every builtin. The ops that are plain DSL functions (Dsl Fn in
// ops.def) come first, made from their rows; then the builtins with
// arguments of their own (Dsl Own rows, named by their op so the table
// cannot drift from ops.def) and the composites that expand to several ops.
std::vector<BuiltinSpec> make_table() {
  std::vector<BuiltinSpec> t;
  for (const OpInfo& row : all_ops()) {
    if (row.dsl != OpDsl::Fn) continue;
    Op op = row.op;
    if (row.kind == OpKind::Unary)
      t.push_back({row.dsl_name, {{"x", K::Tensor}}, [op](Sema& s, CallArgs& a) { return lower_unary(s, a, op); }, &row});
    else
      t.push_back({row.dsl_name, {{"a", K::Tensor}, {"b", K::Tensor}},
                   [op](Sema& s, CallArgs& a) { return lower_binary(s, a, op); }, &row});
  }
  auto own = [&](Op op, std::vector<ParamSpec> params, std::function<Value(Sema&, CallArgs&)> lower) {
    const OpInfo& row = op_info(op);
    GRADC_ASSERT(row.dsl == OpDsl::Own, fmt::format("op '{}' is not marked Own in ops.def", row.spelling));
    t.push_back({row.dsl_name, std::move(params), std::move(lower), &row});
  };
  auto composite = [&](std::string_view name, std::vector<ParamSpec> params,
                       std::function<Value(Sema&, CallArgs&)> lower) {
    t.push_back({name, std::move(params), std::move(lower), nullptr});
  };
  const std::vector<ParamSpec> x1 = {{"x", K::Tensor}};
  for (std::string_view n : {"square", "relu", "silu", "gelu"}) composite(n, x1, lower_composite_unary);
  composite("leaky_relu", {{"x", K::Tensor}, {"slope", K::Float, false}}, lower_composite_unary);
  composite("elu", {{"x", K::Tensor}, {"alpha", K::Float, false}}, lower_composite_unary);
  own(Op::Where, {{"cond", K::Tensor}, {"a", K::Tensor}, {"b", K::Tensor}}, lower_where);
  const std::vector<ParamSpec> reduce = {{"x", K::Tensor}, {"axis", K::IntOrList, false}, {"keepdims", K::Float, false}};
  own(Op::ReduceSum, reduce, lower_reduce);
  composite("mean", reduce, lower_reduce);
  own(Op::ReduceMax, reduce, lower_reduce);
  own(Op::ReduceMin, reduce, lower_reduce);
  composite("logsumexp", reduce, lower_reduce);
  own(Op::ArgMax, {{"x", K::Tensor}, {"axis", K::Int}, {"keepdims", K::Float, false}}, lower_argmax);
  own(Op::Reshape, {{"x", K::Tensor}, {"shape", K::IntList}}, lower_reshape);
  own(Op::Transpose, {{"x", K::Tensor}, {"perm", K::IntList, false}}, lower_transpose);
  own(Op::Concat, {{"tensors", K::TensorList}, {"axis", K::Int, false}}, lower_concat);
  own(Op::Slice, {{"x", K::Tensor}, {"axis", K::Int}, {"start", K::Int, false}, {"stop", K::Int, false}}, lower_slice);
  own(Op::BroadcastTo, {{"x", K::Tensor}, {"shape", K::IntList}}, lower_broadcast_to);
  own(Op::Cast, {{"x", K::Tensor}, {"dtype", K::DType}}, lower_cast);
  composite("softmax", {{"x", K::Tensor}, {"axis", K::Int, false}}, lower_softmax);
  composite("log_softmax", {{"x", K::Tensor}, {"axis", K::Int, false}}, lower_softmax);
  own(Op::OneHot, {{"labels", K::Tensor}, {"n", K::Int}}, lower_one_hot);
  const std::vector<ParamSpec> conv = {{"x", K::Tensor},           {"w", K::Tensor},
                                       {"stride", K::IntOrList, false}, {"padding", K::IntOrList, false},
                                       {"dilation", K::IntOrList, false}, {"groups", K::Int, false}};
  for (std::string_view n : {"conv1d", "conv2d"}) composite(n, conv, lower_conv);
  const std::vector<ParamSpec> pool = {{"x", K::Tensor}, {"kernel", K::IntOrList}, {"stride", K::IntOrList, false},
                                       {"padding", K::IntOrList, false}};
  for (std::string_view n : {"max_pool1d", "max_pool2d", "avg_pool1d", "avg_pool2d"}) composite(n, pool, lower_pool);
  composite("flatten", {{"x", K::Tensor}, {"start", K::Int, false}}, lower_flatten);
  composite("mse", {{"pred", K::Tensor}, {"target", K::Tensor}}, lower_mse);
  composite("bce", {{"prob", K::Tensor}, {"target", K::Tensor}}, lower_bce);
  composite("bce_with_logits", {{"logits", K::Tensor}, {"target", K::Tensor}}, lower_bce_with_logits);
  composite("cross_entropy", {{"logits", K::Tensor}, {"labels", K::Tensor}}, lower_cross_entropy);
  composite("grad", {{"e", K::Tensor}, {"x", K::Name}}, lower_grad);
  composite("jvp", {{"e", K::Tensor}, {"x", K::Name}, {"v", K::Tensor}}, lower_jvp);
  composite("jacobian", {{"e", K::Tensor}, {"x", K::Name}, {"forward", K::Float, false}}, lower_jacobian);
  own(Op::Embedding, {{"ids", K::Tensor}, {"table", K::Tensor}}, lower_embedding);
  composite("dropout", {{"x", K::Tensor}, {"p", K::Float, false}}, lower_dropout);
  own(Op::Scan,
      {{"f", K::Fn}, {"init", K::Tensor}, {"xs", K::TensorOrList}, {"axis", K::Int, false}, {"reverse", K::Float, false},
       {"checkpoint", K::Int, false}},
      [](Sema& s, CallArgs& a) { return s.scan(a); });
  add_norm_builtins(t);
  // Every row that the language reaches by name has exactly one entry.
  for (const OpInfo& row : all_ops()) {
    size_t n = std::count_if(t.begin(), t.end(), [&](const BuiltinSpec& b) { return b.row == &row; });
    GRADC_ASSERT(n == (row.dsl == OpDsl::None ? 0u : 1u),
                 fmt::format("op '{}' has {} builtin entries; ops.def says {}", row.spelling, n,
                             row.dsl == OpDsl::None ? "none" : "one"));
  }
  return t;
}

const std::vector<BuiltinSpec>& table() {
  static const std::vector<BuiltinSpec> t = make_table();
  return t;
}

}  // namespace

const BuiltinSpec* find_builtin(std::string_view name) {
  for (const BuiltinSpec& b : table())
    if (b.name == name) return &b;
  return nullptr;
}

std::vector<std::string_view> builtin_names() {
  std::vector<std::string_view> out;
  for (const BuiltinSpec& b : table()) out.push_back(b.name);
  return out;
}

}  // namespace gradc
