// The core of the C++ embedded front end (gradc/embed.h): expression nodes.
//
// An expression's operation tree is its C++ type: leaves (Tensor<R> names,
// Lit numbers, Var<"x"> variables), interior nodes (Binary, Neg, Transposed,
// Call) that hold their operands by value, the operators that build them
// (capturing the std::source_location of the C++ code through At<D>), and the
// non-tensor arguments of builtins (shapes, dims, dtypes, keyword arguments).
// emit() flattens a tree into a ModelDef; value_in() evaluates a scalar one.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <source_location>
#include <stdexcept>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gradc/embed_def.h"

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
// batch_norm's and layer_norm's options.
struct Momentum { double value; };
struct Eps { double value; };
constexpr Momentum momentum(double v) { return {v}; }
constexpr Eps eps(double v) { return {v}; }

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

}  // namespace gradc::embed
