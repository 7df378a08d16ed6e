// ModelBuilder: the statements of a model written in C++ (gradc/embed.h),
// recorded in order like the lines of a .grad file into a ModelDef, which
// Model::compile_def compiles through the text models' pipeline.
#pragma once

#include <array>
#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <utility>

#include "gradc/embed_expr.h"
#include "gradc/gradc.h"

namespace gradc::embed {

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
  // dim NAME: a dynamic dim, bound at each call from the inputs' shapes (SPEC 2.2)
  Dim dim(std::string_view name, Loc loc = Loc::current()) {
    stmt(DefStmt::Kind::Dim, name, loc).dim_dynamic = true;
    return {keep(name), 0};
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
    return initialized(DefStmt::Kind::Param, name, type, init, loc);
  }
  // buffer NAME : TYPE [~ INIT] (batch_norm's running statistics)
  template <int N>
  Tensor<N> buffer(std::string_view name, const Shape<N>& type, Loc loc = Loc::current()) {
    declare(stmt(DefStmt::Kind::Buffer, name, loc), type);
    return Tensor<N>(keep(name));
  }
  template <int N>
  Tensor<N> buffer(std::string_view name, const Shape<N>& type, const Init& init, Loc loc = Loc::current()) {
    return initialized(DefStmt::Kind::Buffer, name, type, init, loc);
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
  // A param or buffer with an initializer.
  template <int N>
  Tensor<N> initialized(DefStmt::Kind kind, std::string_view name, const Shape<N>& type, const Init& init, Loc loc) {
    DefStmt& s = stmt(kind, name, loc);
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

// scan(f, init, xs): f applied along the leading axis of xs (or along
// .axis), from the carry init; the carries after every step, stacked
// (SPEC 2.7). f is a fn of the model (m.fn(...)) taking the carry and one
// slice of each xs; xs is a tensor or list(a, b, ...). Options as in the
// language: scan(cell, h0, x, {.axis = 1, .reverse = true, .checkpoint = 4}).
struct ScanOptions {
  int64_t axis = 0;
  bool reverse = false;
  int64_t checkpoint = 0;
};

namespace detail {
// A fn named as an argument (scan's f).
struct FnRef {
  const char* name;
  int emit(Emitter& em, const Loc& ctx) const { return em.name(name, ctx); }
};
constexpr std::array<KwValue, 3> scan_kwargs(const ScanOptions& o) {
  return {kw_int("axis", o.axis), kw_bool("reverse", o.reverse), kw_int("checkpoint", o.checkpoint)};
}
template <class I>
constexpr int scan_rank = rank_of<I> == kDynamic ? kDynamic : rank_of<I> + 1;
}  // namespace detail

template <size_t N, Operand I, Operand X>
constexpr auto scan(const Fn<N>& f, const I& init, const X& xs, ScanOptions o = {}, Loc loc = Loc::current()) {
  static_assert(N == 2, "gradc: scan over one tensor needs a fn of two parameters (carry, slice)");
  return detail::call_raw<detail::scan_rank<I>, "scan">(loc, detail::scan_kwargs(o), detail::FnRef{f.name},
                                                        as_expr(init), as_expr(xs));
}
template <size_t N, Operand I, class... A>
constexpr auto scan(const Fn<N>& f, const I& init, const List<A...>& xs, ScanOptions o = {},
                    Loc loc = Loc::current()) {
  static_assert(N == 1 + sizeof...(A), "gradc: scan over k tensors needs a fn of 1 + k parameters (carry, slices)");
  return detail::call_raw<detail::scan_rank<I>, "scan">(loc, detail::scan_kwargs(o), detail::FnRef{f.name},
                                                        as_expr(init), xs);
}
template <class... A>
constexpr int scan(const A&...) {
  static_assert(detail::always_false<std::tuple<A...>>,
                "gradc: wrong arguments: scan(f, init, xs) or scan(f, init, list(a, b), {.axis = k}), f a fn of the model");
  return 0;
}

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
