// The normalization builtins of SPEC 2.7, batch_norm and layer_norm, as
// compositions of primitive ops (reductions, rsqrt, broadcasting): their
// gradients come from the primitives' rules, and their values follow
// torch.nn.functional.batch_norm and layer_norm.
#include <fmt/format.h>

#include "compiler/frontend/sema_impl.h"
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

// The float tensor arguments of a call, all of x's dtype (argument 0).
std::optional<std::vector<NodeId>> float_args(Sema& s, CallArgs& a, size_t count) {
  std::string_view fn = a.call->name;
  std::vector<NodeId> out;
  for (size_t i = 0; i < count; ++i) {
    auto n = s.float_tensor(a.values[i], fn, "tensor");
    if (!n) return std::nullopt;
    out.push_back(*n);
  }
  for (size_t i = 1; i < count; ++i) {
    DType want = s.g()[out[0]].dtype, got = s.g()[out[i]].dtype;
    if (got == want) continue;
    s.error(a.values[i].loc, diag::err_builtin_mixed_dtypes(fn, dtype_name(want), dtype_name(got), dtype_name(want)));
    s.note_operands({&a.values[0], &a.values[i]});
    return std::nullopt;
  }
  return out;
}

// The optional Float argument i, or `fallback`; nullopt after an error.
std::optional<double> float_option(Sema& s, CallArgs& a, size_t i, double fallback, std::string_view what) {
  return a.given(i) ? s.const_float(*a.exprs[i], what) : std::optional<double>(fallback);
}

// The mean of x over `axes`, kept as size-1 axes.
NodeId mean_over(Sema& s, NodeId x, const std::vector<int64_t>& axes) {
  return s.b().div(s.b().reduce(Op::ReduceSum, x, axes, true), s.count(x, axes));
}

// layer_norm(x, weight, bias, eps=1e-5): with k the rank of weight, x is
// normalized over its last k axes with the biased variance,
//   y = (x - mean) * rsqrt(var + eps) * weight + bias,
// as torch.nn.functional.layer_norm(x, weight.shape, weight, bias, eps).
Value lower_layer_norm(Sema& s, CallArgs& a) {
  auto args = float_args(s, a, 3);
  if (!args) return Value::bad();
  auto eps = float_option(s, a, 3, 1e-5, "eps");
  if (!eps) return Value::bad();
  NodeId x = (*args)[0], w = (*args)[1], bias = (*args)[2];
  const Shape xs = s.g()[x].shape, ws = s.g()[w].shape, bs = s.g()[bias].shape;
  int rank = static_cast<int>(xs.size()), k = static_cast<int>(ws.size());
  bool covers = k >= 1 && k <= rank;
  for (int i = 0; covers && i < k; ++i) covers = xs[rank - k + i].size == ws[i].size;
  if (!covers) {
    int shown = std::min(std::max(k, 1), rank);
    Shape tail(xs.end() - shown, xs.end());
    std::string axes = shown == 1 ? "axis" : fmt::format("{} axes", shown);
    s.error(a.values[1].loc, k == 0 ? diag::err_layer_norm_scalar_weight(shape_str(xs))
                                    : diag::err_layer_norm_weight(shape_str(ws), shape_str(xs), axes, shape_str(tail)));
    s.note_operands({&a.values[0], &a.values[1]});
    return Value::bad();
  }
  if (bs != ws) {
    s.error(a.values[2].loc, diag::err_layer_norm_bias(shape_str(bs), shape_str(ws)));
    s.note_operands({&a.values[1], &a.values[2]});
    return Value::bad();
  }
  At at(s, a.call->loc);
  Builder& b = s.b();
  std::vector<int64_t> axes;
  for (int i = rank - k; i < rank; ++i) axes.push_back(i);
  NodeId centered = b.sub(x, mean_over(s, x, axes));
  NodeId var = mean_over(s, b.mul(centered, centered), axes);
  NodeId normalized = b.mul(centered, b.unary(Op::Rsqrt, b.add(var, b.scalar_like(*eps, x))));
  return Value::tensor(b.add(b.mul(normalized, w), bias), a.call->loc);
}

// batch_norm(x, running_mean, running_var, weight, bias, momentum=0.1, eps=1e-5)
// on x [N, C, ...], the others [C]. Training mode normalizes with the batch's
// statistics over every axis but 1 (biased variance) and updates the
// running buffers as torch.nn.functional.batch_norm(training=True) does:
//   r_mean = (1 - m) r_mean + m mean,   r_var = (1 - m) r_var + m var n/(n-1)
// with n the values per channel; the statistics in the update carry no
// gradient. Evaluation mode normalizes with the buffers.
Value lower_batch_norm(Sema& s, CallArgs& a) {
  auto args = float_args(s, a, 5);
  if (!args) return Value::bad();
  auto momentum = float_option(s, a, 5, 0.1, "momentum");
  auto eps = float_option(s, a, 6, 1e-5, "eps");
  if (!momentum || !eps) return Value::bad();
  if (!(*momentum >= 0 && *momentum <= 1)) {
    s.error(a.exprs[5]->loc, diag::err_batch_norm_momentum(*momentum));
    return Value::bad();
  }
  NodeId x = (*args)[0];
  const Shape xs = s.g()[x].shape;
  if (xs.size() < 2) {
    s.error(a.values[0].loc, diag::err_batch_norm_rank(shape_str(xs)));
    s.note_operands({&a.values[0]});
    return Value::bad();
  }
  int64_t channels = xs[1].size;
  static constexpr std::string_view kNames[] = {"x", "running_mean", "running_var", "weight", "bias"};
  for (size_t i = 1; i < 5; ++i) {
    const Shape& shape = s.g()[(*args)[i]].shape;
    if (shape.size() == 1 && shape[0].size == channels) continue;
    s.error(a.values[i].loc, diag::err_batch_norm_channels(kNames[i], shape_str(shape), shape_str(xs), channels, channels));
    s.note_operands({&a.values[0], &a.values[i]});
    return Value::bad();
  }
  for (size_t i = 1; i < 3; ++i) {
    if (s.buffer_of((*args)[i])) continue;
    s.error(a.values[i].loc, diag::err_batch_norm_not_buffer(kNames[i]));
    return Value::bad();
  }
  At at(s, a.call->loc);
  Builder& b = s.b();
  auto c = [&](double v) { return b.scalar_like(v, x); };
  // [C] as [C, 1, ...]: broadcasts along axis 1 of x.
  std::vector<int64_t> per_channel(xs.size() - 1, 1);
  per_channel[0] = channels;
  auto channel = [&](NodeId v) { return b.reshape(v, per_channel); };
  NodeId running_mean = (*args)[1], running_var = (*args)[2];
  NodeId centered, var;
  if (!s.training()) {
    centered = b.sub(x, channel(running_mean));
    var = channel(running_var);
  } else {
    std::vector<int64_t> axes{0};
    for (size_t i = 2; i < xs.size(); ++i) axes.push_back(static_cast<int64_t>(i));
    NodeId mean = mean_over(s, x, axes);
    centered = b.sub(x, mean);
    var = mean_over(s, b.mul(centered, centered), axes);
    // One value per channel has no unbiased variance (PyTorch refuses it in
    // training); the update then uses the biased one, 0. (The count is a
    // node: a run-time size in a capacity compile.)
    NodeId count = s.count(x, axes);
    NodeId unbias = kNoNode;
    if (const Node& n = s.g()[count]; n.op != Op::Constant)
      unbias = b.where(b.binary(Op::Gt, count, c(1)), b.div(count, b.sub(count, c(1))), c(1));
    else if (n.attrs.value > 1)
      unbias = c(n.attrs.value / (n.attrs.value - 1));
    auto update = [&](NodeId buffer, NodeId stat, NodeId scale) {
      NodeId now = s.buffer_value(buffer);
      NodeId batch = b.reshape(b.unary(Op::StopGradient, stat), {channels});
      if (scale != kNoNode) batch = b.mul(batch, scale);
      s.update_buffer(buffer, b.add(b.mul(c(1 - *momentum), now), b.mul(c(*momentum), batch)));
    };
    update(running_mean, mean, kNoNode);
    update(running_var, var, unbias);
  }
  NodeId normalized = b.mul(centered, b.unary(Op::Rsqrt, b.add(var, c(*eps))));
  return Value::tensor(b.add(b.mul(normalized, channel((*args)[3])), channel((*args)[4])), a.call->loc);
}

}  // namespace

void add_norm_builtins(std::vector<BuiltinSpec>& table) {
  table.push_back({"layer_norm",
                   {{"x", K::Tensor}, {"weight", K::Tensor}, {"bias", K::Tensor}, {"eps", K::Float, false}},
                   lower_layer_norm,
                   nullptr});
  table.push_back({"batch_norm",
                   {{"x", K::Tensor},
                    {"running_mean", K::Tensor},
                    {"running_var", K::Tensor},
                    {"weight", K::Tensor},
                    {"bias", K::Tensor},
                    {"momentum", K::Float, false},
                    {"eps", K::Float, false}},
                   lower_batch_norm,
                   nullptr});
}

}  // namespace gradc
