// d(e, x): symbolic differentiation of scalar expressions at C++ compile
// time, for the embedded front end (gradc/embed.h). The chain rule is applied
// by overload resolution: the derivative of a node type is a new node type,
// with the 0s and 1s of differentiation folded away as the types Zero and One.
// Each rule states its maths in a comment.
#pragma once

#include "gradc/embed_builtins.h"

namespace gradc::embed {

// ---- compile-time differentiation of scalar expressions ----

namespace detail {
template <class T>
inline constexpr bool is_zero = std::is_same_v<T, Zero>;
template <class T>
inline constexpr bool is_one = std::is_same_v<T, One>;

// Constructors that fold the 0 and 1 that differentiation produces.
template <class A, class B>
constexpr auto add(const A& a, const B& b, const Loc& l) {
  if constexpr (is_zero<A>) return b;
  else if constexpr (is_zero<B>) return a;
  else return Binary<op::Add, A, B>(a, b, l);
}
template <class A>
constexpr auto neg(const A& a, const Loc& l) {
  if constexpr (is_zero<A>) return a;
  else return Neg<A>(a, l);
}
template <class A, class B>
constexpr auto sub(const A& a, const B& b, const Loc& l) {
  if constexpr (is_zero<B>) return a;
  else if constexpr (is_zero<A>) return neg(b, l);
  else return Binary<op::Sub, A, B>(a, b, l);
}
template <class A, class B>
constexpr auto mul(const A& a, const B& b, const Loc& l) {
  if constexpr (is_zero<A> || is_zero<B>) return Zero{};
  else if constexpr (is_one<A>) return b;
  else if constexpr (is_one<B>) return a;
  else return Binary<op::Mul, A, B>(a, b, l);
}
template <class A, class B>
constexpr auto div(const A& a, const B& b, const Loc& l) {
  if constexpr (is_zero<A>) return Zero{};
  else if constexpr (is_one<B>) return a;
  else return Binary<op::Div, A, B>(a, b, l);
}
template <FixedString N, class A>
constexpr auto fn(const A& a, const Loc& l) {
  return Call<0, N, A>(l, {}, a);
}
}  // namespace detail

// d(e, x): the derivative of the scalar expression e with respect to the
// variable x, as an expression type (the chain rule applied by the compiler).
template <FixedString V>
constexpr Zero d(const Lit&, Var<V>) { return {}; }
template <FixedString V>
constexpr Zero d(const Zero&, Var<V>) { return {}; }
template <FixedString V>
constexpr Zero d(const One&, Var<V>) { return {}; }
template <FixedString M, FixedString V>
constexpr auto d(const Var<M>&, Var<V>) {
  if constexpr (M.view() == V.view()) return One{};
  else return Zero{};
}
template <class A, FixedString V>
constexpr auto d(const Neg<A>& e, Var<V> v) {  // d(-a) = -da
  return detail::neg(d(e.a, v), e.loc);
}
template <class Op, class A, class B, FixedString V>
constexpr auto d(const Binary<Op, A, B>& e, Var<V> v) {
  using namespace detail;
  const Loc& l = e.loc;
  if constexpr (std::is_same_v<Op, op::Add>) {  // d(a + b) = da + db
    return add(d(e.a, v), d(e.b, v), l);
  } else if constexpr (std::is_same_v<Op, op::Sub>) {  // d(a - b) = da - db
    return sub(d(e.a, v), d(e.b, v), l);
  } else if constexpr (std::is_same_v<Op, op::Mul>) {  // d(a * b) = da * b + a * db
    return add(mul(d(e.a, v), e.b, l), mul(e.a, d(e.b, v), l), l);
  } else if constexpr (std::is_same_v<Op, op::Div>) {  // d(a / b) = da / b - a * db / (b * b)
    return sub(div(d(e.a, v), e.b, l), div(mul(e.a, d(e.b, v), l), mul(e.b, e.b, l), l), l);
  } else if constexpr (std::is_same_v<Op, op::Pow> && std::is_same_v<B, Lit>) {
    // d(a ^ c) = c * a ^ (c - 1) * da, for a constant c
    Lit c1 = e.b;
    c1.value -= 1;
    return mul(mul(e.b, Binary<op::Pow, A, Lit>(e.a, c1, l), l), d(e.a, v), l);
  } else if constexpr (std::is_same_v<Op, op::Pow>) {
    // d(a ^ b) = a ^ b * (db * log(a) + b * da / a)
    return mul(e, add(mul(d(e.b, v), fn<"log">(e.a, l), l), div(mul(e.b, d(e.a, v), l), e.a, l), l), l);
  } else {
    static_assert(always_false<Op>,
                  "gradc: d() differentiates + - * / and pow; comparisons and matrix products have no such rule here");
    return Zero{};
  }
}
template <int R, FixedString N, class A, FixedString V>
constexpr auto d(const Call<R, N, A>& e, Var<V> v) {
  using namespace detail;
  using Self = Call<R, N, A>;
  static_assert(R == 0, "gradc: d() differentiates scalar expressions");
  const Loc& l = e.loc;
  const A& a = std::get<0>(e.args);
  auto da = d(a, v);
  constexpr std::string_view n = N.view();
  if constexpr (n == "exp") return mul(e, da, l);                                   // d exp(a) = exp(a) da
  else if constexpr (n == "log") return div(da, a, l);                              // d log(a) = da / a
  else if constexpr (n == "log1p") return div(da, Binary<op::Add, Lit, A>(Lit(1), a, l), l);  // da / (1 + a)
  else if constexpr (n == "sqrt") return div(da, Binary<op::Mul, Lit, Self>(Lit(2), e, l), l);  // da / (2 sqrt(a))
  else if constexpr (n == "rsqrt") return mul(Binary<op::Div, Self, A>(e, a, l), neg(mul(Lit(0.5), da, l), l), l);  // -0.5 rsqrt(a) / a da
  else if constexpr (n == "square") return mul(Binary<op::Mul, Lit, A>(Lit(2), a, l), da, l);  // 2 a da
  else if constexpr (n == "sin") return mul(fn<"cos">(a, l), da, l);                // cos(a) da
  else if constexpr (n == "cos") return mul(neg(fn<"sin">(a, l), l), da, l);        // -sin(a) da
  else if constexpr (n == "tanh") return mul(Binary<op::Sub, Lit, Binary<op::Mul, Self, Self>>(Lit(1), {e, e, l}, l), da, l);  // (1 - tanh^2) da
  else if constexpr (n == "sigmoid") return mul(mul(e, Binary<op::Sub, Lit, Self>(Lit(1), e, l), l), da, l);  // s (1 - s) da
  else if constexpr (n == "stop_gradient") return Zero{};                          // no gradient by definition
  else {
    static_assert(always_false<A>, "gradc: d() has no rule for this builtin (see docs/embedded.md for the list)");
    return Zero{};
  }
}
template <class E, FixedString V>
  requires Expression<E>
constexpr auto d(const E&, Var<V>) {
  static_assert(detail::always_false<E>, "gradc: d() differentiates scalar expressions of Var<...>, numbers, + - * /, pow and unary builtins");
  return Zero{};
}

}  // namespace gradc::embed
