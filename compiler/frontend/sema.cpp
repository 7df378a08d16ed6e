// Semantic analysis: declarations, names and scopes, fn bodies, and the
// model's roles (outputs, metrics, loss, optimizer). Expressions and calls
// are in sema_expr.cpp, builtin functions in builtins.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <cmath>

#include "compiler/frontend/sema_impl.h"
#include "compiler/ir/verifier.h"
#include "compiler/support/messages.h"
#include "compiler/support/spelling.h"

namespace gradc {

std::string_view kind_name(StmtKind k) {
  switch (k) {
    case StmtKind::Dim: return "dim";
    case StmtKind::Input: return "input";
    case StmtKind::Param: return "param";
    case StmtKind::Buffer: return "buffer";
    case StmtKind::Fn: return "fn";
    case StmtKind::Let: return "value";
    case StmtKind::Metric: return "metric";
    default: return "name";
  }
}


std::vector<std::string> declared_dims(const Ast& ast) {
  std::vector<std::string> out;
  for (const Stmt& s : ast.stmts)
    if (s.kind == StmtKind::Dim) out.emplace_back(s.name);
  return out;
}

Sema::Sema(const Ast& ast, const SourceManager& sm, DiagEngine& diags, const SemaOptions& opts)
    : ast_(ast), sm_(sm), diags_(diags), opts_(opts), b_(model_.graph) {
  broken_.insert(ast.broken_names.begin(), ast.broken_names.end());
  for (const Expr& e : ast.exprs()) {
    if (e.kind != ExprKind::Call || (e.name != "grad" && e.name != "jvp" && e.name != "jacobian")) continue;
    const Expr* x = e.args.size() > 1 ? e.args[1] : nullptr;
    for (const KwArg& k : e.kwargs)
      if (k.name == "x") x = k.value;
    if (x && x->kind == ExprKind::Name) differentiated_.insert(x->name);
  }
}

Value Sema::named(Value v, std::string_view name) {
  if (v.kind != Value::Kind::Tensor || !differentiated_.count(name)) return v;
  const Node n = b_[v.node];  // a copy: the graph grows below
  if (op_kind(n.op) == OpKind::Leaf || !n.attrs.name.empty() || !is_float(n.dtype)) return v;
  Attrs a = n.attrs;
  a.name = std::string(name);
  SourceLoc old = b_.at(n.loc);
  v.node = b_.make(n.op, n.operands, std::move(a));
  b_.at(old);
  return v;
}

// ---- diagnostics ----

void Sema::error(SourceLoc loc, std::string msg) {
  // A fn body inlined at several calls would report the same error each time.
  last_error_suppressed_ = !reported_.emplace(loc.begin, msg).second;
  if (last_error_suppressed_) return;
  diags_.error(loc, std::move(msg));
  for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it)
    diags_.note(it->call_loc, diag::note_in_fn_call(it->fn->name));
}

void Sema::note(SourceLoc loc, std::string msg) {
  if (!last_error_suppressed_) diags_.note(loc, std::move(msg));
}

void Sema::remark(SourceLoc loc, std::string text) {
  // A fn body inlined at several calls makes the same choice each time.
  for (const Remark& r : model_.remarks)
    if (r.loc.begin == loc.begin && r.loc.file == loc.file && r.text == text) return;
  model_.remarks.push_back({loc, std::move(text)});
}

void Sema::note_operands(std::initializer_list<const Value*> vals) {
  for (const Value* v : vals)
    if (v->kind == Value::Kind::Tensor && !v->name.empty() && v->decl_loc.valid())
      note(v->decl_loc, diag::note_declared_with_shape(v->name, shape_str(g()[v->node].shape),
                                    g()[v->node].dtype == DType::F32 ? "" : fmt::format(" ({})", dtype_name(g()[v->node].dtype))));
}

std::string Sema::suggest(std::string_view name, bool functions) const {
  std::vector<std::string_view> cands;
  if (functions) {
    cands = builtin_names();
    for (const auto& [n, d] : decls_)
      if (d.stmt->kind == StmtKind::Fn) cands.push_back(n);
  } else {
    for (const auto& [n, d] : decls_)
      if (d.stmt->kind != StmtKind::Fn) cands.push_back(n);
    if (!scopes_.empty())
      for (const auto& [n, v] : scopes_.back().names) cands.push_back(n);
  }
  std::string_view best = closest_name(name, cands);
  return best.empty() ? "" : fmt::format("; did you mean '{}'?", best);
}

// ---- declarations ----

void Sema::declare_all() {
  const Stmt* loss = nullptr;
  const Stmt* opt = nullptr;
  for (size_t i = 0; i < ast_.stmts.size(); ++i) {
    const Stmt& s = ast_.stmts[i];
    switch (s.kind) {
      case StmtKind::Model:
        if (i != 0) error(s.loc, diag::err_model_not_first());
        else model_.name = s.name;
        continue;
      case StmtKind::Loss:
        if (loss) {
          error(s.loc, diag::err_second_loss());
          note(loss->loc, diag::note_first_loss());
        }
        loss = loss ? loss : &s;
        continue;
      case StmtKind::Optimizer:
        if (opt) {
          error(s.loc, diag::err_second_optimizer());
          note(opt->loc, diag::note_first_optimizer());
        }
        opt = opt ? opt : &s;
        continue;
      case StmtKind::Output: continue;
      default: break;
    }
    if (s.kind == StmtKind::Fn && find_builtin(s.name)) {
      error(s.name_loc, diag::err_redefine_builtin(s.name));
      broken_.insert(s.name);
      continue;
    }
    auto [it, fresh] = decls_.try_emplace(s.name, Decl{&s, i, Decl::State::Pending, Value{}});
    if (!fresh) {
      const Stmt& prev = *it->second.stmt;
      error(s.name_loc, diag::err_redefinition(s.name));
      std::string_view kind = kind_name(prev.kind);
      note(prev.name_loc, diag::note_first_defined_as(s.name,
                                      kind == "input" ? "an" : "a", kind));
    }
  }
  if (!loss && !ast_.broken_loss)
    diags_.error(ast_.start.valid() ? ast_.start : SourceLoc{ast_.file, 0, 0}, diag::err_no_loss());
}

namespace {

// A dynamic dim that no override fixes is checked at a stand-in size: a
// small prime that is no other dim's size and no integer of the file (a
// type's size, an expression's: reshape(x, [7, 4])), so that a shape that
// only fits one size (a broadcast against a literal [8, 4], another dim) is
// an error here rather than at the first call. (1 would broadcast against
// anything.)
std::map<std::string_view, int64_t> dynamic_stand_ins(const Ast& ast,
                                                      const std::vector<std::pair<std::string, int64_t>>& overrides) {
  std::set<int64_t> taken;
  for (const Stmt& s : ast.stmts) {
    if (s.kind == StmtKind::Dim && !s.dim_dynamic) taken.insert(s.dim_value);
    for (const DimRef& d : s.type.dims)
      if (d.name.empty()) taken.insert(d.value);
  }
  for (const auto& [k, v] : overrides) taken.insert(v);
  for (const Expr& e : ast.exprs())  // sizes written in expressions: reshape(x, [7, 4]), one_hot(y, 7)
    if (e.kind == ExprKind::Number && e.is_int) taken.insert(e.int_value);
  std::map<std::string_view, int64_t> out;
  int64_t next = 7;
  auto prime = [](int64_t n) {
    for (int64_t f = 2; f * f <= n; ++f)
      if (n % f == 0) return false;
    return true;
  };
  for (const Stmt& s : ast.stmts) {
    if (s.kind != StmtKind::Dim || !s.dim_dynamic) continue;
    if (std::any_of(overrides.begin(), overrides.end(), [&](const auto& o) { return o.first == s.name; })) continue;
    while (taken.count(next) || !prime(next)) ++next;
    out[s.name] = next;
    taken.insert(next);
  }
  return out;
}

}  // namespace

void Sema::bind_dims() {
  // (A dim compiled at a capacity has that size and stays dynamic.)
  std::vector<std::pair<std::string, int64_t>> fixed = opts_.dim_values;
  fixed.insert(fixed.end(), opts_.capacities.begin(), opts_.capacities.end());
  std::map<std::string_view, int64_t> stand_ins = dynamic_stand_ins(ast_, fixed);
  for (auto& [name, d] : decls_) {
    if (d.stmt->kind != StmtKind::Dim) continue;
    int64_t v = d.stmt->dim_value;
    bool overridden = false;
    for (const auto& [k, ov] : opts_.dim_values)
      if (k == name) v = ov, overridden = true;
    if (auto it = stand_ins.find(name); it != stand_ins.end()) {
      v = it->second;
      dynamic_dims_.insert(name);
    }
    for (const auto& [k, c] : opts_.capacities)
      if (k == name && d.stmt->dim_dynamic && !overridden) {
        v = c;
        dynamic_dims_.insert(name);
        capacity_dims_.insert(name);
      }
    if (v < 1) {
      error(overridden ? d.stmt->name_loc : d.stmt->value_loc,
            overridden ? diag::err_dim_set_nonpositive(name, v)
                       : diag::err_dim_nonpositive(name, v));
      broken_.insert(name);
      d.state = Decl::State::Done;
      continue;
    }
    if (v > kMaxElements) {
      error(d.stmt->value_loc, diag::err_dim_too_large(name, v));
      broken_.insert(name);
      d.state = Decl::State::Done;
      continue;
    }
    dims_[name] = v;
    d.value = Value::num(static_cast<double>(v), true, d.stmt->name_loc);
    // Used as a number, a dim compiled at a capacity is its run-time size.
    if (capacity_dims_.count(name)) d.value.size_of_dim = name;
    d.state = Decl::State::Done;
  }
  for (const Stmt& s : ast_.stmts)
    if (s.kind == StmtKind::Dim && dims_.count(s.name)) {
      model_.dims.emplace_back(std::string(s.name), dims_[s.name]);
      if (dynamic_dims_.count(s.name)) model_.dynamic_dims.emplace_back(s.name);
      if (capacity_dims_.count(s.name)) {
        model_.capacities.emplace_back(std::string(s.name), dims_[s.name]);
        model_.sizes.push_back(b_.leaf(Op::Input, "@size." + std::string(s.name), DType::F32, {}));
      }
    }
}

std::optional<Shape> Sema::resolve_type(const TypeRef& t, DType& dtype) {
  dtype = t.dtype.empty() ? DType::F32 : *parse_dtype(t.dtype);
  Shape shape;
  bool ok = true;
  for (const DimRef& d : t.dims) {
    if (d.name.empty()) {
      if (d.value < 1) {
        error(d.loc, diag::err_dimension_nonpositive(d.value));
        ok = false;
      }
      shape.push_back({d.value, {}});
      continue;
    }
    if (auto it = dims_.find(d.name); it != dims_.end()) {
      used_dims_.insert(it->first);
      shape.push_back({it->second, std::string(d.name), dynamic_dims_.count(it->first) > 0});
      continue;
    }
    ok = false;
    if (broken_.count(d.name)) continue;
    auto decl = decls_.find(d.name);
    if (decl == decls_.end()) {
      std::string_view best;
      for (const auto& [name, v] : dims_)
        if (edit_distance(name, d.name) <= std::max<size_t>(1, d.name.size() / 3)) best = name;
      error(d.loc, best.empty() ? diag::err_unknown_dim(d.name, d.name)
                                : diag::err_unknown_dim_suggest(d.name, best));
    } else {
      error(d.loc, diag::err_not_a_dim(d.name, kind_name(decl->second.stmt->kind)));
      note(decl->second.stmt->name_loc, diag::note_declared_here(d.name));
    }
  }
  if (!ok) return std::nullopt;
  if (!element_count(shape)) {
    error(t.loc, diag::err_type_too_many_elements(shape_str(shape)));
    return std::nullopt;
  }
  return shape;
}

std::optional<InitSpec> Sema::resolve_init(const Stmt& s, const Shape& shape) {
  InitSpec init;
  if (!s.value) return init;
  const Expr& e = *s.value;
  using K = InitSpec::Kind;
  struct Known {
    std::string_view name;
    K kind;
    int args;
  };
  static constexpr Known kInits[] = {
      {"zeros", K::Zeros, 0},          {"ones", K::Ones, 0},
      {"constant", K::Constant, 1},    {"uniform", K::Uniform, 2},
      {"normal", K::Normal, 2},        {"xavier_uniform", K::XavierUniform, 0},
      {"xavier_normal", K::XavierNormal, 0}, {"he_uniform", K::HeUniform, 0},
      {"he_normal", K::HeNormal, 0},
  };
  if (e.kind != ExprKind::Name && e.kind != ExprKind::Call) {
    error(e.loc, diag::err_expected_initializer());
    return std::nullopt;
  }
  const Known* k = nullptr;
  for (const Known& c : kInits)
    if (c.name == e.name) k = &c;
  SourceLoc name_loc = e.kind == ExprKind::Call ? e.op_loc : e.loc;
  if (!k) {
    error(name_loc, diag::err_unknown_initializer(e.name));
    return std::nullopt;
  }
  init.kind = k->kind;
  if (!e.kwargs.empty()) {
    error(e.kwargs[0].name_loc, diag::err_initializer_positional(e.name));
    return std::nullopt;
  }
  if (static_cast<int>(e.args.size()) != k->args && !(k->args == 0 && e.kind == ExprKind::Name)) {
    error(e.loc, diag::err_initializer_arg_count(e.name, k->args, k->args == 1 ? "" : "s",
                             e.args.size()));
    return std::nullopt;
  }
  if (k->args > 0 && e.kind == ExprKind::Name) {
    error(e.loc, diag::err_initializer_needs_args(e.name, k->args, k->args == 1 ? "" : "s"));
    return std::nullopt;
  }
  double vals[2] = {0, 0};
  for (int i = 0; i < k->args; ++i) {
    auto v = const_float(*e.args[i], "an initializer argument");
    if (!v) return std::nullopt;
    vals[i] = *v;
  }
  init.a = vals[0];
  init.b = vals[1];
  if (init.kind == K::Uniform && !(init.a < init.b)) {
    error(e.loc, diag::err_uniform_bounds(init.a, init.b));
    return std::nullopt;
  }
  if (init.kind == K::Normal && !(init.b >= 0)) {
    error(e.args[1]->loc, diag::err_normal_std(init.b));
    return std::nullopt;
  }
  bool fan = init.kind == K::XavierUniform || init.kind == K::XavierNormal || init.kind == K::HeUniform ||
             init.kind == K::HeNormal;
  if (fan && shape.size() < 2) {
    error(name_loc, diag::err_fan_rank(e.name, s.name, shape_str(shape)));
    return std::nullopt;
  }
  return init;
}

void Sema::declare_leaf(const Stmt& s) {
  Decl& d = decls_.at(s.name);
  DType dtype;
  auto shape = resolve_type(s.type, dtype);
  if (!shape) {
    d.value = Value::bad();
    return;
  }
  bool is_param = s.kind == StmtKind::Param;
  bool is_buffer = s.kind == StmtKind::Buffer;
  if ((is_param || is_buffer) && !is_float(dtype)) {
    error(s.type.dtype_loc, is_param ? diag::err_param_i32(s.name) : diag::err_buffer_i32(s.name));
    d.value = Value::bad();
    return;
  }
  // A param's (or buffer's) size is its checkpoint's: it cannot change per call.
  if (is_param || is_buffer)
    for (const DimRef& dr : s.type.dims)
      if (!dr.name.empty() && dynamic_dims_.count(dr.name)) {
        error(dr.loc, diag::err_dynamic_dim_in_param(is_param ? "param" : "buffer", s.name, dr.name, dr.name));
        d.value = Value::bad();
        return;
      }
  // A buffer is an Input leaf of its own name: the entry points read it like
  // optimizer state, and train_step produces its new value by that name.
  SourceLoc old = b_.at(s.name_loc);
  NodeId node = b_.leaf(is_param ? Op::Param : Op::Input, std::string(s.name), dtype, *shape);
  b_.at(old);
  if (is_param || is_buffer) {
    auto init = resolve_init(s, *shape);
    (is_param ? model_.params : model_.buffers)
        .push_back({std::string(s.name), node, init.value_or(InitSpec{}), s.name_loc});
  } else {
    model_.inputs.push_back({std::string(s.name), node, s.name_loc});
  }
  d.value = Value::tensor(node, s.name_loc);
}

// ---- names ----

Value Sema::eval_decl(Decl& d, SourceLoc use) {
  const Stmt& s = *d.stmt;
  if (d.state == Decl::State::Busy) {
    error(use, diag::err_depends_on_itself(s.name));
    note(s.name_loc, diag::note_defined_here(s.name));
    return Value::bad();
  }
  if (d.state == Decl::State::Pending && !bodies_.empty()) return at_top([&] { return eval_decl(d, use); });
  if (d.state == Decl::State::Pending) {
    d.state = Decl::State::Busy;
    // A named value is analyzed in top-level context even when a fn body
    // reaches it first.
    std::vector<Scope> saved;
    std::swap(saved, scopes_);
    size_t saved_stmt = current_stmt_;
    current_stmt_ = d.index;
    switch (s.kind) {
      case StmtKind::Input:
      case StmtKind::Param:
      case StmtKind::Buffer: declare_leaf(s); break;
      case StmtKind::Let: {
        d.value = named(eval(*s.value), s.name);
        if (d.value.kind == Value::Kind::Tensor) model_.values.push_back({std::string(s.name), d.value.node, s.name_loc});
        break;
      }
      default: break;
    }
    current_stmt_ = saved_stmt;
    std::swap(saved, scopes_);
    d.state = Decl::State::Done;
  }
  Value v = d.value;
  v.name = s.name;
  v.decl_loc = s.name_loc;
  return v;
}

Value Sema::lookup(const Expr& e) {
  if (!scopes_.empty()) {
    auto& names = scopes_.back().names;
    if (auto it = names.find(e.name); it != names.end()) {
      Value v = it->second;
      v.loc = e.loc;
      return v;
    }
    // A local used before its assignment was reported when the fn was checked.
    for (const Binding& l : scopes_.back().fn->locals)
      if (l.name == e.name) return Value::bad();
  }
  auto it = decls_.find(e.name);
  if (it == decls_.end()) {
    if (broken_.count(e.name)) return Value::bad();
    if (find_builtin(e.name))
      error(e.loc, diag::err_builtin_as_value(e.name, e.name));
    else
      error(e.loc, diag::err_unknown_name(e.name, suggest(e.name, false)));
    return Value::bad();
  }
  Decl& d = it->second;
  const Stmt& s = *d.stmt;
  if (s.kind == StmtKind::Dim) used_dims_.insert(s.name);
  if (s.kind == StmtKind::Fn) {
    error(e.loc, diag::err_fn_as_value(e.name, e.name));
    return Value::bad();
  }
  if (s.kind == StmtKind::Metric) {
    error(e.loc, diag::err_metric_as_value(e.name));
    note(s.name_loc, diag::note_metric_declared(e.name));
    return Value::bad();
  }
  if (scopes_.empty() && d.index >= current_stmt_ && s.kind != StmtKind::Dim) {
    if (d.index == current_stmt_)
      error(e.loc, diag::err_used_in_own_definition(e.name));
    else {
      error(e.loc, diag::err_used_before_declaration(e.name));
      note(s.name_loc, diag::note_declared_is_here(e.name));
    }
    return Value::bad();
  }
  Value v = eval_decl(d, e.loc);
  v.loc = e.loc;
  if (v.kind == Value::Kind::Tensor && !bodies_.empty()) v.node = import_top(v.node);
  return v;
}

// ---- fn bodies, checked once where they are written ----

void Sema::check_fn_body(const Stmt& fn) {
  std::map<std::string_view, SourceLoc> visible;
  for (const Binding& p : fn.params) {
    if (auto [it, fresh] = visible.emplace(p.name, p.name_loc); !fresh) {
      error(p.name_loc, diag::err_duplicate_param(fn.name, p.name));
      note(it->second, diag::note_first_is_here());
    }
  }
  std::set<std::string_view> later;  // locals not yet defined at this point of the block
  for (const Binding& l : fn.locals) later.insert(l.name);
  // Walks an expression iteratively, reporting names that cannot resolve.
  auto check_expr = [&](const Expr* root) {
    std::vector<const Expr*> stack{root};
    while (!stack.empty()) {
      const Expr* e = stack.back();
      stack.pop_back();
      if (e->kind == ExprKind::Name && !visible.count(e->name)) {
        if (later.count(e->name)) {
          error(e->loc, diag::err_used_before_assignment(e->name, fn.name));
        } else if (!decls_.count(e->name) && !broken_.count(e->name) && !find_builtin(e->name) &&
                   !parse_dtype(e->name)) {  // (a dtype names itself: cast(x, f64))
          error(e->loc, diag::err_unknown_name(e->name, suggest(e->name, false)));
        }
      }
      if (e->kind == ExprKind::Call)
        if (auto d = decls_.find(e->name); d != decls_.end() && d->second.stmt->kind == StmtKind::Fn)
          fn_calls_[&fn].push_back(e);
      if (e->kind == ExprKind::Call && !decls_.count(e->name) && !find_builtin(e->name) &&
          !broken_.count(e->name))
        error(e->op_loc, diag::err_unknown_function(e->name, suggest(e->name, true)));
      for (const Expr* a : e->args) stack.push_back(a);
      for (const KwArg& k : e->kwargs) stack.push_back(k.value);
    }
  };
  for (const Binding& l : fn.locals) {
    check_expr(l.value);
    later.erase(l.name);
    if (auto [it, fresh] = visible.emplace(l.name, l.name_loc); !fresh) {
      error(l.name_loc, diag::err_local_redefined(l.name, fn.name));
      note(it->second, diag::note_first_defined_here());
    }
  }
  check_expr(fn.value);
}

// Recursion is an error even in a fn that is never called: a depth-first
// search over the fn call graph reports the call that closes each cycle.
void Sema::check_recursion() {
  std::map<const Stmt*, int> state;  // 0 new, 1 on the stack, 2 done
  std::function<void(const Stmt*)> visit = [&](const Stmt* f) {
    state[f] = 1;
    for (const Expr* call : fn_calls_[f]) {
      const Stmt* g = decls_.at(call->name).stmt;
      if (state[g] == 1) {
        error(call->op_loc, diag::err_recursive_call(g->name));
        note(g->name_loc, diag::note_fn_declared(g->name));
      } else if (state[g] == 0 && scopes_.size() < kMaxFnNesting) {
        visit(g);
      }
    }
    state[f] = 2;
  };
  for (const Stmt& s : ast_.stmts)
    if (s.kind == StmtKind::Fn && state[&s] == 0 && decls_.count(s.name) && decls_.at(s.name).stmt == &s) visit(&s);
}

// ---- the model's roles ----

std::optional<ModelIR> Sema::run() {
  model_.name = opts_.default_name;
  declare_all();
  bind_dims();
  const Stmt* opt = nullptr;
  for (size_t i = 0; i < ast_.stmts.size(); ++i) {
    const Stmt& s = ast_.stmts[i];
    current_stmt_ = i;
    switch (s.kind) {
      case StmtKind::Input:
      case StmtKind::Param:
      case StmtKind::Buffer:
      case StmtKind::Let: {
        auto it = decls_.find(s.name);
        if (it != decls_.end() && it->second.stmt == &s) eval_decl(it->second, s.name_loc);
        break;
      }
      case StmtKind::Fn:
        if (auto it = decls_.find(s.name); it != decls_.end() && it->second.stmt == &s) check_fn_body(s);
        break;
      case StmtKind::Output:
        for (const Binding& o : s.outputs) {
          auto dup = std::find_if(model_.outputs.begin(), model_.outputs.end(),
                                  [&](const NamedNode& n) { return n.name == o.name; });
          if (dup != model_.outputs.end()) {
            error(o.name_loc, diag::err_output_twice(o.name));
            note(dup->loc, diag::note_first_listed_here());
            continue;
          }
          auto d = decls_.find(o.name);
          if (d != decls_.end() && d->second.stmt->kind != StmtKind::Let && d->second.stmt->kind != StmtKind::Input &&
              d->second.stmt->kind != StmtKind::Param && d->second.stmt->kind != StmtKind::Buffer) {
            error(o.name_loc, diag::err_output_kind(o.name,
                                          kind_name(d->second.stmt->kind)));
            continue;
          }
          Expr ref;
          ref.kind = ExprKind::Name;
          ref.name = o.name;
          ref.loc = o.name_loc;
          Value v = lookup(ref);
          if (v.poison()) continue;
          model_.outputs.push_back({std::string(o.name), materialize(v, DType::F32), o.name_loc});
        }
        break;
      case StmtKind::Metric: {
        Value v = eval(*s.value);
        if (v.poison()) break;
        NodeId n = materialize(v, DType::F32);
        const Node& node = g()[n];
        if (!node.shape.empty() || !is_float(node.dtype)) {
          error(s.value->loc, diag::err_metric_not_scalar(s.name,
                                          type_str(node.dtype, node.shape),
                                          node.shape.empty() ? " (use cast(x, f32))" : " (reduce it, e.g. with mean(...))"));
          break;
        }
        model_.metrics.push_back({std::string(s.name), n, s.name_loc});
        break;
      }
      case StmtKind::Loss: {
        if (model_.loss.node != kNoNode) break;
        Value v = eval(*s.value);
        if (v.poison()) break;
        NodeId n = materialize(v, DType::F32);
        const Node& node = g()[n];
        if (!node.shape.empty() || !is_float(node.dtype)) {
          error(s.value->loc, diag::err_loss_not_scalar(type_str(node.dtype, node.shape),
                                          node.shape.empty() ? "" : " (reduce it, e.g. with mean(...) or sum(...))"));
          break;
        }
        model_.loss = {"loss", n, s.loc};
        break;
      }
      case StmtKind::Optimizer:
        if (!opt) {
          opt = &s;
          resolve_optimizer(&s);
        }
        break;
      default: break;
    }
  }
  if (!opt) resolve_optimizer(nullptr);
  check_recursion();
  if (diags_.error_count() > 0) return std::nullopt;
  model_.training.loss = model_.loss;
  model_.training.outputs = model_.outputs;
  model_.training.values = model_.values;
  if (mode_asked_) analyze_training_mode();
  // A call binds a dynamic dim from the inputs that use it: one must.
  for (const Stmt& s : ast_.stmts) {
    if (s.kind != StmtKind::Dim || !dynamic_dims_.count(s.name)) continue;
    bool bound = std::any_of(ast_.stmts.begin(), ast_.stmts.end(), [&](const Stmt& in) {
      return in.kind == StmtKind::Input &&
             std::any_of(in.type.dims.begin(), in.type.dims.end(), [&](const DimRef& d) { return d.name == s.name; });
    });
    if (!bound) error(s.name_loc, diag::err_dynamic_dim_unbound(s.name, s.name));
  }
  if (diags_.error_count() > 0) return std::nullopt;
  model_.training.new_buffers.clear();
  for (const ParamDecl& buf : model_.buffers) {
    auto it = buffer_updates_.find(buf.node);
    model_.training.new_buffers.push_back(it == buffer_updates_.end() ? buf.node : it->second);
  }
  warn_unused();
  verify_model(model_);
  return std::move(model_);
}

// The second analysis of the model's roots, in training mode (SPEC 2.7),
// for models where some builtin asked for the mode. Named values and fn
// calls are analyzed again (their cached values belong to evaluation mode);
// leaves are shared. The evaluation analysis has checked every statement,
// so this one reports only what is new in training mode (an equal message
// at an equal place is reported once, Sema::error).
void Sema::analyze_training_mode() {
  training_ = true;
  fn_cache_.clear();
  for (auto& [name, d] : decls_)
    if (d.stmt->kind == StmtKind::Let) d.state = Decl::State::Pending, d.value = Value{};
  std::vector<NamedNode> eval_values;
  std::swap(eval_values, model_.values);
  TrainingRoots& t = model_.training;
  t.outputs.clear();
  for (size_t i = 0; i < ast_.stmts.size(); ++i) {
    const Stmt& s = ast_.stmts[i];
    current_stmt_ = i;
    if (s.kind == StmtKind::Let) {
      auto it = decls_.find(s.name);
      if (it != decls_.end() && it->second.stmt == &s) eval_decl(it->second, s.name_loc);
    } else if (s.kind == StmtKind::Loss && s.loc.begin == model_.loss.loc.begin) {
      Value v = eval(*s.value);
      if (!v.poison()) t.loss.node = materialize(v, DType::F32);
    }
  }
  current_stmt_ = ast_.stmts.size();  // every name is visible to the outputs now
  for (const NamedNode& o : model_.outputs) {
    Expr ref;
    ref.kind = ExprKind::Name;
    ref.name = o.name;
    ref.loc = o.loc;
    Value v = lookup(ref);
    if (!v.poison()) t.outputs.push_back({o.name, materialize(v, DType::F32), o.loc});
  }
  std::swap(eval_values, model_.values);
  t.values = std::move(eval_values);
  training_ = false;
}

const ParamDecl* Sema::buffer_of(NodeId node) const {
  if (!bodies_.empty()) return nullptr;  // (a body's ids are not the model's)
  for (const ParamDecl& buf : model_.buffers)
    if (buf.node == node) return &buf;
  return nullptr;
}

NodeId Sema::buffer_value(NodeId buffer) const {
  auto it = buffer_updates_.find(buffer);
  return it == buffer_updates_.end() ? buffer : it->second;
}

void Sema::update_buffer(NodeId buffer, NodeId value) {
  if (training_) buffer_updates_[buffer] = value;
}

// Declared but unused: a typo or a leftover. An input nothing reads still
// has to be given; an unused param is saved and updated by weight decay but
// never learns. Warnings only, in declaration order.
void Sema::warn_unused() {
  // What the loss, outputs and metrics read (live_nodes() keeps every input
  // and param, as the entry points take them all).
  const Graph& graph = model_.graph;
  std::vector<bool> read(graph.size(), false);
  if (model_.loss.node != kNoNode) read[model_.loss.node] = true;
  for (const NamedNode& o : model_.outputs) read[o.node] = true;
  for (const NamedNode& o : model_.metrics) read[o.node] = true;
  read[model_.training.loss.node] = true;
  for (const NamedNode& o : model_.training.outputs) read[o.node] = true;
  for (size_t i = graph.size(); i-- > 0;)  // operands precede users
    if (read[i])
      for (NodeId o : graph[static_cast<NodeId>(i)].operands) read[o] = true;
  auto reached = [&](NodeId n) { return n != kNoNode && read[n]; };
  for (const Stmt& s : ast_.stmts) {
    if (s.kind == StmtKind::Dim && !used_dims_.count(s.name)) diags_.warning(s.name_loc, diag::warn_unused_dim(s.name));
    if (s.kind == StmtKind::Input)
      for (const NamedNode& in : model_.inputs)
        if (in.name == s.name && !reached(in.node)) diags_.warning(s.name_loc, diag::warn_unused_input(s.name));
    if (s.kind == StmtKind::Param)
      for (const ParamDecl& p : model_.params)
        if (p.name == s.name && !reached(p.node)) diags_.warning(s.name_loc, diag::warn_unused_param(s.name));
  }
}

std::optional<ModelIR> analyze(const Ast& ast, const SourceManager& sm, DiagEngine& diags, const SemaOptions& opts) {
  return Sema(ast, sm, diags, opts).run();
}

}  // namespace gradc
