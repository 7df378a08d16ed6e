// The C++ embedded front end: write a gradc model in C++ with expression
// templates, and differentiate scalar expressions at C++ compile time.
//
//   using namespace gradc::embed;
//   ModelBuilder m("xor");
//   Dim B = m.dim("B", 4);
//   Tensor<2> x = m.input("x", shape(B, 2));
//   auto W1 = m.param("W1", shape(2, 8), init::xavier_uniform);
//   auto h = m.let("h", tanh(x % W1));          // % is the matrix product (@)
//   m.loss(mse(h, ...));
//   gradc::Model model = m.compile();           // same pipeline as a text model
//
// An expression's operation tree is its C++ type; a node holds its operands
// by value (leaves are a name pointer or a number) and allocates nothing. A
// statement (let, loss, metric, ...) flattens its expression into the
// ModelDef (gradc/embed_def.h), which Model::compile_def turns into the same
// syntax tree the text language parses into. Ranks are part of the types
// (Tensor<2>), so wrong arities and rank mismatches that are known statically
// do not compile; sizes, dtypes and broadcasting are checked by gradc, whose
// diagnostics point at the C++ line that wrote the expression.
//
// d(e, x) differentiates a scalar expression of Var<"x"> variables at C++
// compile time: the result is another expression type, to evaluate in C++
// (e.eval(x = 1.5)) or to use in a model. See docs/embedded.md.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gradc/embed_def.h"
#include "gradc/gradc.h"

namespace gradc::embed {

// The rank of a tensor whose rank is not known in its C++ type (fn parameters).
inline constexpr int kDynamic = -1;

using Loc = std::source_location;

// A string usable as a template argument: Var<"x">.
template <size_t N>
struct FixedString {
  char s[N]{};
  constexpr FixedString(const char (&v)[N]) {
    for (size_t i = 0; i < N; ++i) s[i] = v[i];
  }
  constexpr std::string_view view() const { return {s, N - 1}; }
};

namespace detail {

template <class>
inline constexpr bool always_false = false;

struct ExprTag {};

// Appends flattened expression nodes to a ModelDef.
struct Emitter {
  ModelDef& def;
  int add(DefExpr e) {
    def.exprs.push_back(std::move(e));
    return static_cast<int>(def.exprs.size()) - 1;
  }
  static DefExpr node(DefExpr::Kind kind, std::string text, const Loc& loc) {
    DefExpr e;
    e.kind = kind;
    e.text = std::move(text);
    e.loc = loc;
    return e;
  }
  // A negative literal is written as unary minus of a positive one, as the text language parses `-1`.
  int number(double v, bool is_int, const Loc& loc) {
    if (std::signbit(v)) {
      DefExpr neg = node(DefExpr::Kind::Unary, "-", loc);
      neg.args.push_back(number(-v, is_int, loc));
      return add(std::move(neg));
    }
    DefExpr e = node(DefExpr::Kind::Number, "", loc);
    e.number = v;
    e.is_int = is_int;
    e.int_value = is_int ? static_cast<int64_t>(v) : 0;
    return add(std::move(e));
  }
  int boolean(bool b, const Loc& loc) {
    DefExpr e = node(DefExpr::Kind::Bool, "", loc);
    e.bool_value = b;
    return add(std::move(e));
  }
  int name(std::string_view n, const Loc& loc) { return add(node(DefExpr::Kind::Name, std::string(n), loc)); }
};

// A node's own location, or its context's when it has none (leaves, nodes made by d()).
inline const Loc& pick(const Loc& own, const Loc& ctx) { return own.line() != 0 ? own : ctx; }

constexpr int broadcast_rank(int a, int b) { return a == kDynamic || b == kDynamic ? kDynamic : a > b ? a : b; }
constexpr bool rank_is(int r, int want) { return r == kDynamic || r == want; }
constexpr bool rank_at_least(int r, int want) { return r == kDynamic || r >= want; }
constexpr int minus(int r, int k) { return r == kDynamic ? kDynamic : r - k; }

}  // namespace detail

// Anything that is an expression node.
template <class T>
concept Expression = std::is_base_of_v<detail::ExprTag, T>;
// An operand: an expression or a C++ number (a literal of the language).
template <class T>
concept Operand = Expression<T> || std::is_arithmetic_v<T>;

// A C++ operand with the location of the code that wrote it.
template <class D>
struct At {
  const D& e;
  Loc loc;
  constexpr At(const D& e, Loc loc = Loc::current()) : e(e), loc(loc) {}
};

struct Lit;
template <class Op, class A, class B>
struct Binary;
template <class A>
struct Neg;
template <class A>
struct Transposed;
template <FixedString N>
struct Bind;
template <class... B>
struct Env;
template <class T>
constexpr auto as_expr(const T& v);

// Operator spellings of the text language (the `text` of DefExpr).
namespace op {
#define GRADC_EMBED_OP(NAME, SYM) \
  struct NAME {                   \
    static constexpr const char* sym = SYM; \
  };
GRADC_EMBED_OP(Add, "+")
GRADC_EMBED_OP(Sub, "-")
GRADC_EMBED_OP(Mul, "*")
GRADC_EMBED_OP(Div, "/")
GRADC_EMBED_OP(MatMul, "@")
GRADC_EMBED_OP(Pow, "^")
GRADC_EMBED_OP(Lt, "<")
GRADC_EMBED_OP(Le, "<=")
GRADC_EMBED_OP(Gt, ">")
GRADC_EMBED_OP(Ge, ">=")
GRADC_EMBED_OP(Eq, "==")
GRADC_EMBED_OP(Ne, "!=")
#undef GRADC_EMBED_OP
}  // namespace op

// ---- operators: + - * / % (matrix product), unary -, comparisons ----

template <class D>
struct Expr : detail::ExprTag {
  // x.T(): swaps the last two axes (the text language's `x.T`).
  constexpr Transposed<D> T(Loc loc = Loc::current()) const {
    static_assert(detail::rank_at_least(D::rank, 2), "gradc: .T() swaps the last two axes and needs rank >= 2");
    return {{}, static_cast<const D&>(*this), loc};
  }
  // The value of a scalar expression of Var<...> variables: e.eval(x = 1.5, y = 2).
  template <FixedString... N>
  constexpr double eval(const Bind<N>&... values) const {
    static_assert(D::rank == 0, "gradc: eval() evaluates scalar expressions");
    return static_cast<const D&>(*this).value_in(Env<Bind<N>...>{{values...}});
  }

#define GRADC_EMBED_BINARY(OPER, TAG)                                                               \
  template <Operand R>                                                                              \
  friend constexpr auto operator OPER(At<D> a, const R& b) {                                        \
    using B = std::remove_cvref_t<decltype(as_expr(b))>; return Binary<TAG, D, B>(a.e, as_expr(b), a.loc);                                       \
  }                                                                                                 \
  template <class L>                                                                                \
    requires std::is_arithmetic_v<L>                                                                \
  friend constexpr auto operator OPER(const L& a, At<D> b) {                                        \
    return Binary<TAG, Lit, D>(Lit(a), b.e, b.loc);                                                 \
  }
  GRADC_EMBED_BINARY(+, op::Add)
  GRADC_EMBED_BINARY(-, op::Sub)
  GRADC_EMBED_BINARY(*, op::Mul)
  GRADC_EMBED_BINARY(/, op::Div)
  GRADC_EMBED_BINARY(%, op::MatMul)
  GRADC_EMBED_BINARY(<, op::Lt)
  GRADC_EMBED_BINARY(<=, op::Le)
  GRADC_EMBED_BINARY(>, op::Gt)
  GRADC_EMBED_BINARY(>=, op::Ge)
  GRADC_EMBED_BINARY(==, op::Eq)
  GRADC_EMBED_BINARY(!=, op::Ne)
#undef GRADC_EMBED_BINARY
  friend constexpr Neg<D> operator-(At<D> a) { return Neg<D>(a.e, a.loc); }
};

// ---- leaves ----

// A number literal. Integers stay integers (`16`, an axis), like the text language's literals.
struct Lit : Expr<Lit> {
  static constexpr int rank = 0;
  double value = 0;
  bool is_int = false;
  constexpr Lit() = default;
  template <class T>
    requires std::is_arithmetic_v<T>
  constexpr Lit(T v) : value(static_cast<double>(v)), is_int(std::is_integral_v<T> && !std::is_same_v<T, bool>) {}
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.number(value, is_int, ctx); }
  template <class Env>
  constexpr double value_in(const Env&) const { return value; }
};

// The constants 0 and 1 as types, so that d() simplifies while it differentiates.
struct Zero : Expr<Zero> {
  static constexpr int rank = 0;
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.number(0, true, ctx); }
  template <class Env>
  constexpr double value_in(const Env&) const { return 0; }
};
struct One : Expr<One> {
  static constexpr int rank = 0;
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.number(1, true, ctx); }
  template <class Env>
  constexpr double value_in(const Env&) const { return 1; }
};

template <class T>
constexpr auto as_expr(const T& v) {
  if constexpr (Expression<T>)
    return v;
  else
    return Lit(v);
}
template <class T>
using ExprOf = decltype(as_expr(std::declval<T>()));

// A value of a variable, for eval(): `x = 1.5` with x a Var<"x">.
template <FixedString N>
struct Bind {
  double value;
};

// The values of the variables of an eval() call.
template <class... B>
struct Env {
  std::tuple<B...> binds;
  template <FixedString N>
  constexpr double get() const {
    double v = 0;
    int found = 0;
    std::apply([&](const auto&... b) { ((match<N>(b, v, found)), ...); }, binds);
    if (found != 1) throw std::invalid_argument("gradc: eval() needs exactly one value for every variable of the expression");
    return v;
  }

 private:
  template <FixedString N, FixedString M>
  static constexpr void match(const Bind<M>& b, double& v, int& found) {
    if constexpr (N.view() == M.view()) {
      v = b.value;
      ++found;
    }
  }
};

// A scalar variable for compile-time differentiation. In a model it is the
// name N: declare an input, param or named value N of shape [] to use it there.
template <FixedString N>
struct Var : Expr<Var<N>> {
  static constexpr int rank = 0;
  static constexpr std::string_view name = N.view();
  constexpr Bind<N> operator=(double v) const { return {v}; }
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.name(name, ctx); }
  template <class Env>
  constexpr double value_in(const Env& env) const { return env.template get<N>(); }
};

// An input, param, named value or fn parameter, by name. R is its rank
// (kDynamic when unknown). It refers to a name kept by its ModelBuilder.
template <int R = kDynamic>
struct Tensor : Expr<Tensor<R>> {
  static constexpr int rank = R;
  const char* name = nullptr;
  constexpr Tensor() = default;
  explicit constexpr Tensor(const char* n) : name(n) {}
  template <int R2>
    requires(R2 != R)
  constexpr Tensor(const Tensor<R2>& o) : name(o.name) {
    static_assert(R == kDynamic || R2 == kDynamic,
                  "gradc: rank mismatch: a Tensor<R> can hold only a tensor of rank R (or use Tensor<> for any rank)");
  }
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.name(name, ctx); }
  template <class Env>
  constexpr double value_in(const Env&) const {
    static_assert(detail::always_false<Env>, "gradc: eval() evaluates expressions of Var<...> variables only");
    return 0;
  }
};

// ---- interior nodes ----


// a OP b.
template <class Op, class A, class B>
struct Binary : Expr<Binary<Op, A, B>> {
  static constexpr int rank = [] {
    if constexpr (std::is_same_v<Op, op::MatMul>) {
      if (A::rank == kDynamic || B::rank == kDynamic) return kDynamic;
      if (A::rank == 1 && B::rank == 1) return 0;
      if (A::rank == 1) return B::rank - 1;
      if (B::rank == 1) return A::rank - 1;
      return A::rank > B::rank ? A::rank : B::rank;
    } else {
      return detail::broadcast_rank(A::rank, B::rank);
    }
  }();
  A a;
  B b;
  Loc loc;
  constexpr Binary(const A& a, const B& b, const Loc& loc) : a(a), b(b), loc(loc) {
    if constexpr (std::is_same_v<Op, op::MatMul>)
      static_assert(A::rank != 0 && B::rank != 0,
                    "gradc: the matrix product (% or matmul) needs operands of rank >= 1; use * to scale");
  }
  int emit(detail::Emitter& em, const Loc& ctx) const {
    const Loc& at = detail::pick(loc, ctx);
    DefExpr e = detail::Emitter::node(DefExpr::Kind::Binary, Op::sym, at);
    e.args = {a.emit(em, at), b.emit(em, at)};
    return em.add(std::move(e));
  }
  template <class Env>
  constexpr double value_in(const Env& env) const {
    double x = a.value_in(env), y = b.value_in(env);
    if constexpr (std::is_same_v<Op, op::Add>) return x + y;
    else if constexpr (std::is_same_v<Op, op::Sub>) return x - y;
    else if constexpr (std::is_same_v<Op, op::Mul>) return x * y;
    else if constexpr (std::is_same_v<Op, op::Div>) return x / y;
    else if constexpr (std::is_same_v<Op, op::Pow>) return std::pow(x, y);
    else if constexpr (std::is_same_v<Op, op::Lt>) return x < y;
    else if constexpr (std::is_same_v<Op, op::Le>) return x <= y;
    else if constexpr (std::is_same_v<Op, op::Gt>) return x > y;
    else if constexpr (std::is_same_v<Op, op::Ge>) return x >= y;
    else if constexpr (std::is_same_v<Op, op::Eq>) return x == y;
    else if constexpr (std::is_same_v<Op, op::Ne>) return x != y;
    else {
      static_assert(detail::always_false<Op>, "gradc: eval() of a matrix product");
      return 0.0;
    }
  }
};

// -x.
template <class A>
struct Neg : Expr<Neg<A>> {
  static constexpr int rank = A::rank;
  A a;
  Loc loc;
  constexpr Neg(const A& a, const Loc& loc) : a(a), loc(loc) {}
  int emit(detail::Emitter& em, const Loc& ctx) const {
    const Loc& at = detail::pick(loc, ctx);
    DefExpr e = detail::Emitter::node(DefExpr::Kind::Unary, "-", at);
    e.args = {a.emit(em, at)};
    return em.add(std::move(e));
  }
  template <class Env>
  constexpr double value_in(const Env& env) const { return -a.value_in(env); }
};

// x.T: swaps the last two axes.
template <class A>
struct Transposed : Expr<Transposed<A>> {
  static constexpr int rank = A::rank;
  A a;
  Loc loc;
  int emit(detail::Emitter& em, const Loc& ctx) const {
    const Loc& at = detail::pick(loc, ctx);
    DefExpr e = detail::Emitter::node(DefExpr::Kind::Transpose, "", at);
    e.args = {a.emit(em, at)};
    return em.add(std::move(e));
  }
};

// A keyword argument's value: an integer, a float or a bool.
struct KwValue {
  const char* key = nullptr;  // nullptr: unused slot
  enum class Kind : uint8_t { Int, Float, Bool } kind = Kind::Int;
  double number = 0;
};

// A call of builtin N with positional arguments A... and keyword arguments;
// R is the rank of its result.
template <int R, FixedString N, class... A>
struct Call : Expr<Call<R, N, A...>> {
  static constexpr int rank = R;
  static constexpr std::string_view name = N.view();
  std::tuple<A...> args;
  std::array<KwValue, 3> kwargs{};
  Loc loc;
  constexpr Call(const Loc& loc, std::array<KwValue, 3> kw, const A&... a) : args(a...), kwargs(kw), loc(loc) {}
  int emit(detail::Emitter& em, const Loc& ctx) const {
    const Loc& at = detail::pick(loc, ctx);
    DefExpr e = detail::Emitter::node(DefExpr::Kind::Call, std::string(name), at);
    std::apply([&](const auto&... a) { (e.args.push_back(a.emit(em, at)), ...); }, args);
    for (const KwValue& k : kwargs) {
      if (!k.key) continue;
      int v = k.kind == KwValue::Kind::Bool ? em.boolean(k.number != 0, at)
                                            : em.number(k.number, k.kind == KwValue::Kind::Int, at);
      e.kwargs.emplace_back(k.key, v);
    }
    return em.add(std::move(e));
  }
  template <class Env>
  constexpr double value_in(const Env& env) const {
    static_assert(sizeof...(A) == 1, "gradc: eval() supports the one-argument builtins only");
    double x = std::get<0>(args).value_in(env);
    if constexpr (name == "exp") return std::exp(x);
    else if constexpr (name == "log") return std::log(x);
    else if constexpr (name == "log1p") return std::log1p(x);
    else if constexpr (name == "sqrt") return std::sqrt(x);
    else if constexpr (name == "rsqrt") return 1 / std::sqrt(x);
    else if constexpr (name == "square") return x * x;
    else if constexpr (name == "sin") return std::sin(x);
    else if constexpr (name == "cos") return std::cos(x);
    else if constexpr (name == "tanh") return std::tanh(x);
    else if constexpr (name == "sigmoid") return 1 / (1 + std::exp(-x));
    else if constexpr (name == "abs") return std::fabs(x);
    else if constexpr (name == "stop_gradient") return x;
    else {
      static_assert(detail::always_false<Env>, "gradc: eval() does not support this builtin");
      return 0.0;
    }
  }
};

// ---- non-tensor arguments: sizes, dims, dtypes, lists ----

// A `dim` of the model.
struct Dim {
  const char* name = nullptr;
  int64_t size = 0;
};

// One size of a shape: a dim or an integer.
struct Size {
  const char* dim = nullptr;
  int64_t value = 0;
  constexpr Size(const Dim& d) : dim(d.name), value(d.size) {}
  template <class T>
    requires std::is_integral_v<T>
  constexpr Size(T v) : value(static_cast<int64_t>(v)) {}
};

// A type [d, ...] or f64[d, ...] (declarations), or a size list (reshape, broadcast_to, transpose).
template <int N>
struct Shape {
  static constexpr int rank = N;
  const char* dtype = "";
  std::array<Size, static_cast<size_t>(N)> sizes;
  int emit(detail::Emitter& em, const Loc& ctx) const {
    DefExpr e = detail::Emitter::node(DefExpr::Kind::List, "", ctx);
    for (const Size& s : sizes) e.args.push_back(s.dim ? em.name(s.dim, ctx) : em.number(double(s.value), true, ctx));
    return em.add(std::move(e));
  }
};

// shape(B, 784): a float32 type, or a list of sizes.
template <class... S>
constexpr Shape<sizeof...(S)> shape(const S&... s) {
  return {"", {Size(s)...}};
}
// perm(0, 2, 1): a permutation for transpose.
template <class... S>
constexpr Shape<sizeof...(S)> perm(const S&... s) {
  return {"", {Size(s)...}};
}

// A dtype: f32(B, 2) is a type, and cast(x, f64) names one.
struct DType {
  const char* name;
  template <class... S>
  constexpr Shape<sizeof...(S)> operator()(const S&... s) const {
    return {name, {Size(s)...}};
  }
  int emit(detail::Emitter& em, const Loc& ctx) const { return em.name(name, ctx); }
};
inline constexpr DType f32{"f32"}, f64{"f64"}, i32{"i32"};

// A dim or integer as a positional argument (one_hot's n).
struct SizeArg {
  static constexpr int rank = 0;
  Size size;
  int emit(detail::Emitter& em, const Loc& ctx) const {
    return size.dim ? em.name(size.dim, ctx) : em.number(double(size.value), true, ctx);
  }
};

// list(a, b, c): a list of tensors (concat).
template <class... A>
struct List {
  std::tuple<A...> items;
  int emit(detail::Emitter& em, const Loc& ctx) const {
    DefExpr e = detail::Emitter::node(DefExpr::Kind::List, "", ctx);
    std::apply([&](const auto&... a) { (e.args.push_back(a.emit(em, ctx)), ...); }, items);
    return em.add(std::move(e));
  }
};
template <Operand... A>
constexpr List<ExprOf<A>...> list(const A&... a) {
  return {{as_expr(a)...}};
}

// Keyword arguments.
struct Axis {
  int64_t value;
  constexpr explicit Axis(int64_t v) : value(v) {}
};
constexpr Axis axis(int64_t k) { return Axis(k); }
template <bool B>
struct KeepDims {};
// keepdims<true> keeps a reduced axis with size 1 (keepdims<false>: the default).
template <bool B>
inline constexpr KeepDims<B> keepdims{};
struct Start { int64_t value; };
struct Stop { int64_t value; };
constexpr Start start(int64_t v) { return {v}; }
constexpr Stop stop(int64_t v) { return {v}; }
struct Slope { double value; };
struct Alpha { double value; };
constexpr Slope slope(double v) { return {v}; }
constexpr Alpha alpha(double v) { return {v}; }

namespace detail {
constexpr KwValue kw_int(const char* k, int64_t v) { return {k, KwValue::Kind::Int, static_cast<double>(v)}; }
constexpr KwValue kw_float(const char* k, double v) { return {k, KwValue::Kind::Float, v}; }
constexpr KwValue kw_bool(const char* k, bool v) { return {k, KwValue::Kind::Bool, v ? 1.0 : 0.0}; }

template <int R, FixedString N, class... A>
constexpr auto call(const Loc& loc, std::array<KwValue, 3> kw, const A&... a) {
  return Call<R, N, ExprOf<A>...>(loc, kw, as_expr(a)...);
}
template <int R, FixedString N, class... A>
constexpr auto call_raw(const Loc& loc, std::array<KwValue, 3> kw, const A&... a) {
  return Call<R, N, A...>(loc, kw, a...);
}
template <class T>
constexpr int rank_of = ExprOf<T>::rank;
}  // namespace detail

// matmul(a, b): the matrix product, the text language's a @ b (also a % b).
template <Operand A, Operand B>
constexpr auto matmul(const A& a, const B& b, Loc loc = Loc::current()) {
  return Binary<op::MatMul, ExprOf<A>, ExprOf<B>>(as_expr(a), as_expr(b), loc);
}
// pow(a, b): a ^ b (C++'s ^ binds too loosely to stand for it).
template <Operand A, Operand B>
constexpr auto pow(const A& a, const B& b, Loc loc = Loc::current()) {
  return Binary<op::Pow, ExprOf<A>, ExprOf<B>>(as_expr(a), as_expr(b), loc);
}

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
#undef GRADC_EMBED_WRONG_ARGS

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

// ---- the model ----

// A parameter initializer (SPEC 2.2): init::xavier_uniform, init::normal(0, 0.1), ...
struct Init {
  const char* name = "zeros";
  int count = 0;  // arguments
  Lit args[2] = {};
};
namespace init {
inline constexpr Init zeros{"zeros"}, ones{"ones"}, xavier_uniform{"xavier_uniform"}, xavier_normal{"xavier_normal"},
    he_uniform{"he_uniform"}, he_normal{"he_normal"};
template <Operand V>
constexpr Init constant(V v) { return {"constant", 1, {Lit(v), Lit()}}; }
template <Operand A, Operand B>
constexpr Init uniform(A lo, B hi) { return {"uniform", 2, {Lit(lo), Lit(hi)}}; }
template <Operand A, Operand B>
constexpr Init normal(A mean, B std) { return {"normal", 2, {Lit(mean), Lit(std)}}; }
}  // namespace init

// An optimizer option: {"lr", 0.5}, {"centered", true}.
struct Option {
  const char* key;
  KwValue::Kind kind;
  double value;
  Option(const char* k, double v) : key(k), kind(KwValue::Kind::Float), value(v) {}
  Option(const char* k, int v) : key(k), kind(KwValue::Kind::Int), value(v) {}
  Option(const char* k, bool v) : key(k), kind(KwValue::Kind::Bool), value(v ? 1 : 0) {}
};

// A name for output(): any Tensor.
struct OutputName {
  const char* name;
  template <int R>
  OutputName(const Tensor<R>& t) : name(t.name) {}
};

template <size_t N>
struct Fn;
class ModelBuilder;

// A block-form fn's scope: its local named values (fn f(a) { t = ...; return ... }).
class FnScope {
 public:
  template <Expression E>
  Tensor<E::rank> let(std::string_view name, const E& value, Loc loc = Loc::current());

 private:
  friend class ModelBuilder;
  FnScope(ModelBuilder& m, size_t stmt) : m_(m), stmt_(stmt) {}
  ModelBuilder& m_;
  size_t stmt_;  // the fn statement's index in the definition
};

// Records a model's statements in order, like the lines of a .grad file.
// Tensors it returns refer to names it keeps: use them while it lives.
class ModelBuilder {
 public:
  // `name` is the model's name (a text model's `model NAME` or file stem).
  explicit ModelBuilder(std::string name, Loc loc = Loc::current()) {
    def_.name = std::move(name);
    def_.loc = loc;
  }
  ModelBuilder(const ModelBuilder&) = delete;
  ModelBuilder& operator=(const ModelBuilder&) = delete;

  // dim NAME = SIZE
  Dim dim(std::string_view name, int64_t size, Loc loc = Loc::current()) {
    DefStmt& s = stmt(DefStmt::Kind::Dim, name, loc);
    s.dim_value = size;
    return {keep(name), size};
  }
  // input NAME : TYPE
  template <int N>
  Tensor<N> input(std::string_view name, const Shape<N>& type, Loc loc = Loc::current()) {
    declare(stmt(DefStmt::Kind::Input, name, loc), type);
    return Tensor<N>(keep(name));
  }
  // param NAME : TYPE [~ INIT]
  template <int N>
  Tensor<N> param(std::string_view name, const Shape<N>& type, Loc loc = Loc::current()) {
    declare(stmt(DefStmt::Kind::Param, name, loc), type);
    return Tensor<N>(keep(name));
  }
  template <int N>
  Tensor<N> param(std::string_view name, const Shape<N>& type, const Init& init, Loc loc = Loc::current()) {
    DefStmt& s = stmt(DefStmt::Kind::Param, name, loc);
    declare(s, type);
    detail::Emitter em{def_};
    if (init.count == 0) {
      s.value = em.name(init.name, loc);
    } else {
      DefExpr c = detail::Emitter::node(DefExpr::Kind::Call, init.name, loc);
      for (int i = 0; i < init.count; ++i) c.args.push_back(init.args[i].emit(em, loc));
      s.value = em.add(std::move(c));
    }
    return Tensor<N>(keep(name));
  }
  // NAME = EXPR
  template <Expression E>
  Tensor<E::rank> let(std::string_view name, const E& value, Loc loc = Loc::current()) {
    int v = emit(value, loc);
    stmt(DefStmt::Kind::Let, name, loc).value = v;
    return Tensor<E::rank>(keep(name));
  }
  // loss EXPR
  template <Expression E>
  void loss(const E& value, Loc loc = Loc::current()) {
    static_assert(detail::rank_is(E::rank, 0), "gradc: the loss must be a scalar (rank 0)");
    int v = emit(value, loc);
    stmt(DefStmt::Kind::Loss, "", loc).value = v;
  }
  // metric NAME = EXPR
  template <Expression E>
  void metric(std::string_view name, const E& value, Loc loc = Loc::current()) {
    static_assert(detail::rank_is(E::rank, 0), "gradc: a metric must be a scalar (rank 0)");
    int v = emit(value, loc);
    stmt(DefStmt::Kind::Metric, name, loc).value = v;
  }
  // output NAME [, NAME ...]
  void output(OutputName name, Loc loc = Loc::current()) { output({name}, loc); }
  void output(std::initializer_list<OutputName> names, Loc loc = Loc::current()) {
    DefStmt& s = stmt(DefStmt::Kind::Output, "", loc);
    for (const OutputName& n : names) s.names.emplace_back(n.name);
  }
  // optimizer NAME(KEY = VALUE, ...)
  void optimizer(std::string_view name, std::initializer_list<Option> options = {}, Loc loc = Loc::current()) {
    detail::Emitter em{def_};
    DefExpr c = detail::Emitter::node(DefExpr::Kind::Call, std::string(name), loc);
    for (const Option& o : options)
      c.kwargs.emplace_back(o.key, o.kind == KwValue::Kind::Bool ? em.boolean(o.value != 0, loc)
                                                                 : em.number(o.value, o.kind == KwValue::Kind::Int, loc));
    int v = em.add(std::move(c));
    stmt(DefStmt::Kind::Optimizer, name, loc).value = v;
  }
  // fn NAME(p, ...) = EXPR, and the block form: body is called once with a
  // Tensor<> per parameter (and, first, an FnScope& for local names) and
  // returns the result expression. The returned Fn calls it.
  template <size_t N, class F>
  Fn<N> fn(std::string_view name, const char* const (&params)[N], F body, Loc loc = Loc::current());

  // The definition recorded so far.
  const ModelDef& def() const { return def_; }
  // Compiles it: Model::compile_def(def(), opts).
  gradc::Model compile(const CompileOptions& opts = {}) const { return gradc::Model::compile_def(def_, opts); }

 private:
  friend class FnScope;
  const char* keep(std::string_view s) { return names_.emplace_back(s).c_str(); }
  DefStmt& stmt(DefStmt::Kind kind, std::string_view name, const Loc& loc) {
    DefStmt& s = def_.stmts.emplace_back();
    s.kind = kind;
    s.name = std::string(name);
    s.loc = loc;
    return s;
  }
  template <int N>
  static void declare(DefStmt& s, const Shape<N>& type) {
    s.dtype = type.dtype;
    for (const Size& z : type.sizes) s.dims.push_back({z.dim ? z.dim : "", z.value});
  }
  template <class E>
  int emit(const E& e, const Loc& loc) {
    detail::Emitter em{def_};
    return e.emit(em, loc);
  }
  ModelDef def_;
  std::deque<std::string> names_;
};

template <Expression E>
Tensor<E::rank> FnScope::let(std::string_view name, const E& value, Loc loc) {
  int v = m_.emit(value, loc);
  m_.def_.stmts[stmt_].locals.emplace_back(std::string(name), v);
  return Tensor<E::rank>(m_.keep(name));
}

// A call of a fn: its rank is not known statically (fns are shape-polymorphic).
template <class... A>
struct FnCall : Expr<FnCall<A...>> {
  static constexpr int rank = kDynamic;
  const char* name;
  std::tuple<A...> args;
  int emit(detail::Emitter& em, const Loc& ctx) const {
    DefExpr e = detail::Emitter::node(DefExpr::Kind::Call, name, ctx);
    std::apply([&](const auto&... a) { (e.args.push_back(a.emit(em, ctx)), ...); }, args);
    return em.add(std::move(e));
  }
};

template <size_t N>
struct Fn {
  const char* name;
  template <Operand... A>
  constexpr auto operator()(const A&... a) const {
    static_assert(sizeof...(A) == N, "gradc: a fn takes as many arguments as it has parameters");
    return FnCall<ExprOf<A>...>{{}, name, {as_expr(a)...}};
  }
};

template <size_t N, class F>
Fn<N> ModelBuilder::fn(std::string_view name, const char* const (&params)[N], F body, Loc loc) {
  size_t index = def_.stmts.size();
  stmt(DefStmt::Kind::Fn, name, loc);
  std::array<Tensor<>, N> args;
  for (size_t i = 0; i < N; ++i) {
    def_.stmts[index].names.emplace_back(params[i]);
    args[i] = Tensor<>(keep(params[i]));
  }
  int v = std::apply(
      [&](const auto&... a) {
        if constexpr (std::is_invocable_v<F&, FnScope&, decltype(a)...>) {
          FnScope scope(*this, index);
          return emit(body(scope, a...), loc);
        } else {
          static_assert(std::is_invocable_v<F&, decltype(a)...>,
                        "gradc: a fn body takes one Tensor<> per parameter (after an FnScope& in the block form)");
          return emit(body(a...), loc);
        }
      },
      args);
  def_.stmts[index].value = v;
  return Fn<N>{keep(name)};
}

}  // namespace gradc::embed
