// The builtins of SPEC 2.4 as C++ functions for the embedded front end
// (gradc/embed.h). Each computes its result's rank from its operands' ranks
// where the language's rules fix it, static_asserts what is known to be
// wrong, and has a catch-all overload that turns a wrong argument list into
// one readable static_assert instead of a list of candidates.
#pragma once

#include "gradc/embed_expr.h"

namespace gradc::embed {

// ---- builtins (SPEC 2.4) ----
// Each has a catch-all overload that turns a wrong argument list into a
// readable static_assert instead of a list of candidates.

#define GRADC_EMBED_WRONG_ARGS(NAME, USAGE)                                            \
  template <class... A>                                                                \
  constexpr int NAME(const A&...) {                                                    \
    static_assert(detail::always_false<std::tuple<A...>>, "gradc: wrong arguments: " USAGE); \
    return 0;                                                                          \
  }

#define GRADC_EMBED_UNARY(NAME)                                                  \
  template <Operand X>                                                           \
  constexpr auto NAME(const X& x, Loc loc = Loc::current()) {                    \
    return detail::call<detail::rank_of<X>, #NAME>(loc, {}, x);                  \
  }                                                                              \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(x) takes one tensor")
GRADC_EMBED_UNARY(exp)
GRADC_EMBED_UNARY(log)
GRADC_EMBED_UNARY(log1p)
GRADC_EMBED_UNARY(sqrt)
GRADC_EMBED_UNARY(rsqrt)
GRADC_EMBED_UNARY(abs)
GRADC_EMBED_UNARY(sign)
GRADC_EMBED_UNARY(square)
GRADC_EMBED_UNARY(sin)
GRADC_EMBED_UNARY(cos)
GRADC_EMBED_UNARY(tanh)
GRADC_EMBED_UNARY(sigmoid)
GRADC_EMBED_UNARY(relu)
GRADC_EMBED_UNARY(silu)
GRADC_EMBED_UNARY(softplus)
GRADC_EMBED_UNARY(gelu)
GRADC_EMBED_UNARY(stop_gradient)
#undef GRADC_EMBED_UNARY

template <Operand X>
constexpr auto leaky_relu(const X& x, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "leaky_relu">(loc, {}, x);
}
template <Operand X>
constexpr auto leaky_relu(const X& x, Slope s, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "leaky_relu">(loc, {detail::kw_float("slope", s.value)}, x);
}
GRADC_EMBED_WRONG_ARGS(leaky_relu, "leaky_relu(x) or leaky_relu(x, slope(s))")
template <Operand X>
constexpr auto elu(const X& x, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "elu">(loc, {}, x);
}
template <Operand X>
constexpr auto elu(const X& x, Alpha a, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "elu">(loc, {detail::kw_float("alpha", a.value)}, x);
}
GRADC_EMBED_WRONG_ARGS(elu, "elu(x) or elu(x, alpha(a))")

#define GRADC_EMBED_BINARY_BUILTIN(NAME)                                                                \
  template <Operand A, Operand B>                                                                       \
  constexpr auto NAME(const A& a, const B& b, Loc loc = Loc::current()) {                               \
    return detail::call<detail::broadcast_rank(detail::rank_of<A>, detail::rank_of<B>), #NAME>(loc, {}, a, b); \
  }                                                                                                     \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(a, b) takes two tensors")
GRADC_EMBED_BINARY_BUILTIN(maximum)
GRADC_EMBED_BINARY_BUILTIN(minimum)
#undef GRADC_EMBED_BINARY_BUILTIN

template <Operand C, Operand A, Operand B>
constexpr auto where(const C& c, const A& a, const B& b, Loc loc = Loc::current()) {
  constexpr int r = detail::broadcast_rank(detail::rank_of<C>, detail::broadcast_rank(detail::rank_of<A>, detail::rank_of<B>));
  return detail::call<r, "where">(loc, {}, c, a, b);
}
GRADC_EMBED_WRONG_ARGS(where, "where(cond, a, b) takes three tensors")

// Reductions: f(x) over all axes, f(x, axis(k)), f(x, axis(k), keepdims<true>).
#define GRADC_EMBED_REDUCE(NAME)                                                                         \
  template <Operand X>                                                                                   \
  constexpr auto NAME(const X& x, Loc loc = Loc::current()) {                                            \
    return detail::call<0, #NAME>(loc, {}, x);                                                           \
  }                                                                                                      \
  template <Operand X>                                                                                   \
  constexpr auto NAME(const X& x, Axis a, Loc loc = Loc::current()) {                                    \
    static_assert(detail::rank_at_least(detail::rank_of<X>, 1), "gradc: " #NAME "(x, axis(k)) needs rank >= 1"); \
    return detail::call<detail::minus(detail::rank_of<X>, 1), #NAME>(loc, {detail::kw_int("axis", a.value)}, x); \
  }                                                                                                      \
  template <Operand X, bool K>                                                                           \
  constexpr auto NAME(const X& x, Axis a, KeepDims<K>, Loc loc = Loc::current()) {                       \
    static_assert(detail::rank_at_least(detail::rank_of<X>, 1), "gradc: " #NAME "(x, axis(k)) needs rank >= 1"); \
    return detail::call<detail::minus(detail::rank_of<X>, K ? 0 : 1), #NAME>(                          \
        loc, {detail::kw_int("axis", a.value), detail::kw_bool("keepdims", K)}, x);                      \
  }                                                                                                      \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(x), " #NAME "(x, axis(k)) or " #NAME "(x, axis(k), keepdims<true>)")
GRADC_EMBED_REDUCE(sum)
GRADC_EMBED_REDUCE(mean)
GRADC_EMBED_REDUCE(max)
GRADC_EMBED_REDUCE(min)
GRADC_EMBED_REDUCE(logsumexp)
#undef GRADC_EMBED_REDUCE

template <Operand X>
constexpr auto argmax(const X& x, Axis a, Loc loc = Loc::current()) {
  static_assert(detail::rank_at_least(detail::rank_of<X>, 1), "gradc: argmax(x, axis(k)) needs rank >= 1");
  return detail::call<detail::minus(detail::rank_of<X>, 1), "argmax">(loc, {detail::kw_int("axis", a.value)}, x);
}
template <Operand X, bool K>
constexpr auto argmax(const X& x, Axis a, KeepDims<K>, Loc loc = Loc::current()) {
  static_assert(detail::rank_at_least(detail::rank_of<X>, 1), "gradc: argmax(x, axis(k)) needs rank >= 1");
  return detail::call<detail::minus(detail::rank_of<X>, K ? 0 : 1), "argmax">(
      loc, {detail::kw_int("axis", a.value), detail::kw_bool("keepdims", K)}, x);
}
GRADC_EMBED_WRONG_ARGS(argmax, "argmax(x, axis(k)) or argmax(x, axis(k), keepdims<true>)")

template <Operand X, int N>
constexpr auto reshape(const X& x, const Shape<N>& s, Loc loc = Loc::current()) {
  return detail::call_raw<N, "reshape">(loc, {}, as_expr(x), s);
}
GRADC_EMBED_WRONG_ARGS(reshape, "reshape(x, shape(d, ...))")

template <Operand X>
constexpr auto transpose(const X& x, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "transpose">(loc, {}, x);
}
template <Operand X, int N>
constexpr auto transpose(const X& x, const Shape<N>& p, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(detail::rank_of<X>, N), "gradc: transpose(x, perm(...)) needs one axis per axis of x");
  return detail::call_raw<N, "transpose">(loc, {}, as_expr(x), p);
}
GRADC_EMBED_WRONG_ARGS(transpose, "transpose(x) or transpose(x, perm(...))")

template <class... A>
constexpr auto concat(const List<A...>& l, Axis a, Loc loc = Loc::current()) {
  constexpr int r = std::max({kDynamic, A::rank...});
  static_assert(((A::rank == r || A::rank == kDynamic) && ...), "gradc: concat needs tensors of one rank");
  return detail::call_raw<r, "concat">(loc, {detail::kw_int("axis", a.value)}, l);
}
GRADC_EMBED_WRONG_ARGS(concat, "concat(list(a, b, ...), axis(k))")

template <Operand X>
constexpr auto slice(const X& x, Axis a, Start s, Stop e, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "slice">(
      loc, {detail::kw_int("axis", a.value), detail::kw_int("start", s.value), detail::kw_int("stop", e.value)}, x);
}
template <Operand X>
constexpr auto slice(const X& x, Axis a, Start s, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "slice">(loc, {detail::kw_int("axis", a.value), detail::kw_int("start", s.value)}, x);
}
template <Operand X>
constexpr auto slice(const X& x, Axis a, Stop e, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "slice">(loc, {detail::kw_int("axis", a.value), detail::kw_int("stop", e.value)}, x);
}
GRADC_EMBED_WRONG_ARGS(slice, "slice(x, axis(k)[, start(a)][, stop(b)])")

template <Operand X, int N>
constexpr auto broadcast_to(const X& x, const Shape<N>& s, Loc loc = Loc::current()) {
  static_assert(detail::rank_of<X> == kDynamic || detail::rank_of<X> <= N,
                "gradc: broadcast_to cannot lower the rank of a tensor");
  return detail::call_raw<N, "broadcast_to">(loc, {}, as_expr(x), s);
}
GRADC_EMBED_WRONG_ARGS(broadcast_to, "broadcast_to(x, shape(d, ...))")

template <Operand X>
constexpr auto cast(const X& x, DType to, Loc loc = Loc::current()) {
  return detail::call_raw<detail::rank_of<X>, "cast">(loc, {}, as_expr(x), to);
}
GRADC_EMBED_WRONG_ARGS(cast, "cast(x, f32) or cast(x, f64)")

#define GRADC_EMBED_SOFTMAX(NAME)                                                                   \
  template <Operand X>                                                                              \
  constexpr auto NAME(const X& x, Loc loc = Loc::current()) {                                       \
    return detail::call<detail::rank_of<X>, #NAME>(loc, {}, x);                                     \
  }                                                                                                 \
  template <Operand X>                                                                              \
  constexpr auto NAME(const X& x, Axis a, Loc loc = Loc::current()) {                               \
    return detail::call<detail::rank_of<X>, #NAME>(loc, {detail::kw_int("axis", a.value)}, x);      \
  }                                                                                                 \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(x) or " #NAME "(x, axis(k))")
GRADC_EMBED_SOFTMAX(softmax)
GRADC_EMBED_SOFTMAX(log_softmax)
#undef GRADC_EMBED_SOFTMAX

template <Operand X, class N>
  requires std::is_same_v<N, Dim> || std::is_integral_v<N>
constexpr auto one_hot(const X& labels, const N& n, Loc loc = Loc::current()) {
  constexpr int r = detail::rank_of<X> == kDynamic ? kDynamic : detail::rank_of<X> + 1;
  return detail::call_raw<r, "one_hot">(loc, {}, as_expr(labels), SizeArg{Size(n)});
}
GRADC_EMBED_WRONG_ARGS(one_hot, "one_hot(labels, n)")

// ---- images (SPEC 2.7) ----

// An INT2 option of a convolution or pooling: an integer (2) or a pair ({2, 1}).
struct Int2 {
  static constexpr int rank = 0;
  int64_t first = 0, second = 0;
  int count = 0;  // 0: not given, 1: an integer, 2: a pair
  constexpr Int2() = default;
  constexpr Int2(int v) : first(v), second(v), count(1) {}
  constexpr Int2(int a, int b) : first(a), second(b), count(2) {}
  constexpr bool given() const { return count != 0; }
  int emit(detail::Emitter& em, const Loc& ctx) const {
    if (count == 1) return em.number(double(first), true, ctx);
    DefExpr e = detail::Emitter::node(DefExpr::Kind::List, "", ctx);
    e.args = {em.number(double(first), true, ctx), em.number(double(second), true, ctx)};
    return em.add(std::move(e));
  }
};
// conv2d(x, w, {.stride = 2, .padding = {1, 0}, .groups = 4}); PyTorch's defaults.
struct ConvOptions {
  Int2 stride = 1, padding = 0, dilation = 1;
  int groups = 1;
};
// max_pool2d(x, 2, {.stride = 1, .padding = 1}); the stride defaults to the kernel.
struct PoolOptions {
  Int2 stride, padding = 0;
};

#define GRADC_EMBED_CONV(NAME, RANK)                                                                    \
  template <Operand X, Operand W>                                                                       \
  constexpr auto NAME(const X& x, const W& w, ConvOptions o = {}, Loc loc = Loc::current()) {           \
    static_assert(detail::rank_of<X> == kDynamic || detail::rank_of<X> == RANK,                         \
                  "gradc: " #NAME " needs x of rank " #RANK);                                           \
    return detail::call_raw<RANK, #NAME>(loc, {}, as_expr(x), as_expr(w), o.stride, o.padding, o.dilation, \
                                         SizeArg{Size(o.groups)});                                      \
  }                                                                                                     \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(x, w) or " #NAME "(x, w, {.stride = s, .padding = p, ...})")
GRADC_EMBED_CONV(conv1d, 3)
GRADC_EMBED_CONV(conv2d, 4)
#undef GRADC_EMBED_CONV

#define GRADC_EMBED_POOL(NAME, RANK)                                                                    \
  template <Operand X>                                                                                  \
  constexpr auto NAME(const X& x, Int2 kernel, PoolOptions o = {}, Loc loc = Loc::current()) {          \
    static_assert(detail::rank_of<X> == kDynamic || detail::rank_of<X> == RANK,                         \
                  "gradc: " #NAME " needs x of rank " #RANK);                                           \
    return detail::call_raw<RANK, #NAME>(loc, {}, as_expr(x), kernel, o.stride.given() ? o.stride : kernel, \
                                         o.padding);                                                    \
  }                                                                                                     \
  template <Operand X>                                                                                  \
  constexpr auto NAME(const X& x, int kernel, PoolOptions o = {}, Loc loc = Loc::current()) {           \
    return NAME(x, Int2(kernel), o, loc);                                                               \
  }                                                                                                     \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(x, kernel) or " #NAME "(x, kernel, {.stride = s, .padding = p})")
GRADC_EMBED_POOL(max_pool1d, 3)
GRADC_EMBED_POOL(max_pool2d, 4)
GRADC_EMBED_POOL(avg_pool1d, 3)
GRADC_EMBED_POOL(avg_pool2d, 4)
#undef GRADC_EMBED_POOL

template <Operand X>
constexpr auto flatten(const X& x, Loc loc = Loc::current()) {
  return detail::call<2, "flatten">(loc, {}, x);
}
template <Operand X>
constexpr auto flatten(const X& x, Start s, Loc loc = Loc::current()) {
  return detail::call<kDynamic, "flatten">(loc, {detail::kw_int("start", s.value)}, x);
}
GRADC_EMBED_WRONG_ARGS(flatten, "flatten(x) or flatten(x, start(k))")

// embedding(ids, table): rows of a [V, D] table picked by i32 ids, of shape
// ids ++ [D]; an id outside [0, V) fails the call that runs the model.
template <Operand I, Operand T>
constexpr auto embedding(const I& ids, const T& table, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(detail::rank_of<T>, 2), "gradc: embedding(ids, table) needs a table of rank 2 [V, D]");
  constexpr int r = detail::rank_of<I> == kDynamic ? kDynamic : detail::rank_of<I> + 1;
  return detail::call<r, "embedding">(loc, {}, ids, table);
}
GRADC_EMBED_WRONG_ARGS(embedding, "embedding(ids, table) takes i32 ids and a [V, D] table")

// dropout(x) or dropout(x, p): in grad and train_step each element is zeroed
// with probability p (0.5 by default) and the rest scaled by 1/(1 - p); the
// identity elsewhere. x's shape.
template <Operand X>
constexpr auto dropout(const X& x, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "dropout">(loc, {}, x);
}
template <Operand X>
constexpr auto dropout(const X& x, double p, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "dropout">(loc, {detail::kw_float("p", p)}, x);
}
GRADC_EMBED_WRONG_ARGS(dropout, "dropout(x) or dropout(x, p) with p in [0, 1]")

// Losses: scalars.
#define GRADC_EMBED_LOSS(NAME, SAME_RANK)                                                                   \
  template <Operand A, Operand B>                                                                           \
  constexpr auto NAME(const A& a, const B& b, Loc loc = Loc::current()) {                                   \
    static_assert(!SAME_RANK || detail::rank_of<A> == kDynamic || detail::rank_of<B> == kDynamic ||         \
                      detail::rank_of<A> == detail::rank_of<B>,                                             \
                  "gradc: " #NAME "(a, b) needs a and b of the same shape (and so of the same rank)");      \
    return detail::call<0, #NAME>(loc, {}, a, b);                                                           \
  }                                                                                                         \
  GRADC_EMBED_WRONG_ARGS(NAME, #NAME "(a, b) takes two tensors")
GRADC_EMBED_LOSS(mse, true)
GRADC_EMBED_LOSS(bce, true)
GRADC_EMBED_LOSS(bce_with_logits, true)
GRADC_EMBED_LOSS(cross_entropy, false)
#undef GRADC_EMBED_LOSS

// grad(e, x): the gradient of the scalar e with respect to the input, param
// or named value x (a Tensor that ModelBuilder returned); x's shape.
template <Operand E, int R>
constexpr auto grad(const E& e, const Tensor<R>& x, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(detail::rank_of<E>, 0), "gradc: grad(e, x) needs a scalar e (rank 0)");
  return detail::call<R, "grad">(loc, {}, e, x);
}
GRADC_EMBED_WRONG_ARGS(grad, "grad(e, x) takes a scalar expression and an input, param or named value (a Tensor)")

// jvp(e, x, v): the directional derivative of e with respect to the input,
// param or named value x along v (of x's shape), by forward accumulation;
// e's shape.
template <Operand E, int R, Operand V>
constexpr auto jvp(const E& e, const Tensor<R>& x, const V& v, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(detail::rank_of<V>, R), "gradc: jvp(e, x, v) needs a direction v of x's rank");
  return detail::call<detail::rank_of<E>, "jvp">(loc, {}, e, x, v);
}
GRADC_EMBED_WRONG_ARGS(jvp, "jvp(e, x, v) takes an expression, an input, param or named value (a Tensor) and a direction")

// jacobian(e, x): every derivative of e with respect to the input, param or
// named value x, of shape e ++ x, by forward or reverse accumulation
// (whichever needs fewer evaluations); for small shapes.
template <Operand E, int R>
constexpr auto jacobian(const E& e, const Tensor<R>& x, Loc loc = Loc::current()) {
  constexpr int re = detail::rank_of<E>;
  return detail::call<(re == kDynamic || R == kDynamic ? kDynamic : re + R), "jacobian">(loc, {}, e, x);
}
GRADC_EMBED_WRONG_ARGS(jacobian, "jacobian(e, x) takes an expression and an input, param or named value (a Tensor)")

// ---- normalization (SPEC 2.7) ----
// layer_norm(x, weight, bias[, eps(e)]): normalizes x over its trailing axes
// that weight (and bias, of weight's shape) cover; x's shape.
template <Operand X, Operand W, Operand B>
constexpr auto layer_norm(const X& x, const W& w, const B& b, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "layer_norm">(loc, {}, x, w, b);
}
template <Operand X, Operand W, Operand B>
constexpr auto layer_norm(const X& x, const W& w, const B& b, Eps e, Loc loc = Loc::current()) {
  return detail::call<detail::rank_of<X>, "layer_norm">(loc, {detail::kw_float("eps", e.value)}, x, w, b);
}
GRADC_EMBED_WRONG_ARGS(layer_norm, "layer_norm(x, weight, bias[, eps(e)])")
// batch_norm(x, running_mean, running_var, weight, bias[, momentum(m)][, eps(e)]):
// x [N, C, ...], the others [C]; running_mean and running_var are buffers
// (ModelBuilder::buffer); x's shape.
template <Operand X, int R, Operand W, Operand B>
constexpr auto batch_norm(const X& x, const Tensor<R>& running_mean, const Tensor<R>& running_var, const W& w,
                          const B& b, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(R, 1), "gradc: batch_norm's running statistics are buffers of shape [C]");
  return detail::call<detail::rank_of<X>, "batch_norm">(loc, {}, x, running_mean, running_var, w, b);
}
template <Operand X, int R, Operand W, Operand B>
constexpr auto batch_norm(const X& x, const Tensor<R>& running_mean, const Tensor<R>& running_var, const W& w,
                          const B& b, Momentum m, Eps e = {1e-5}, Loc loc = Loc::current()) {
  static_assert(detail::rank_is(R, 1), "gradc: batch_norm's running statistics are buffers of shape [C]");
  return detail::call<detail::rank_of<X>, "batch_norm">(
      loc, {detail::kw_float("momentum", m.value), detail::kw_float("eps", e.value)}, x, running_mean, running_var, w, b);
}
GRADC_EMBED_WRONG_ARGS(batch_norm,
                       "batch_norm(x, running_mean, running_var, weight, bias[, momentum(m)[, eps(e)]]) with "
                       "running_mean and running_var buffers")
#undef GRADC_EMBED_WRONG_ARGS

}  // namespace gradc::embed
