// Semantic analysis of expressions: operators with literal and dtype rules,
// matrix products, builtin and fn calls (inlined, memoized), and the constant
// arguments of builtins. Declarations, names and the model's roles are in
// sema.cpp; the builtin table is in builtins.cpp.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "compiler/autodiff/optimizers.h"
#include "compiler/frontend/sema_impl.h"
#include "compiler/support/messages.h"

namespace gradc {

// ---- expressions ----

Value Sema::eval(const Expr& e) {
  if (depth_ >= kMaxEvalDepth) {
    error(e.loc, diag::err_too_deep_inlined(kMaxEvalDepth));
    return Value::bad();
  }
  ++depth_;
  Value v;
  switch (e.kind) {
    case ExprKind::Number: v = Value::num(e.number, e.is_int, e.loc); break;
    case ExprKind::Bool: v = Value::num(e.bool_value ? 1 : 0, true, e.loc); break;
    case ExprKind::Name: v = lookup(e); break;
    case ExprKind::Call: v = eval_call(e); break;
    case ExprKind::Binary: v = eval_binary(e); break;
    case ExprKind::Unary: {
      Value x = eval(*e.args[0]);
      if (x.kind == Value::Kind::Number) {
        if (!x.size_of_dim.empty()) refuse_capacity(x);
        v = Value::num(-x.number, x.is_int, e.loc);
      } else if (x.kind == Value::Kind::Tensor) {
        if (!is_float(g()[x.node].dtype)) {
          error(e.op_loc, diag::err_negate_i32(shape_str(g()[x.node].shape)));
          break;
        }
        v = build(Op::Neg, {x.node}, {}, e.op_loc);
      }
      break;
    }
    case ExprKind::Transpose: {
      Value x = eval(*e.args[0]);
      if (x.poison()) break;
      if (x.kind == Value::Kind::Number || g()[x.node].rank() < 2) {
        error(e.op_loc, diag::err_transpose_rank(x.kind == Value::Kind::Number ? std::string("a number")
                                                                  : "shape " + shape_str(g()[x.node].shape)));
        note_operands({&x});
        break;
      }
      SourceLoc old = b_.at(e.op_loc);
      v = Value::tensor(b_.transpose_last2(x.node), e.loc);
      b_.at(old);
      break;
    }
    case ExprKind::List:
      error(e.loc, diag::err_list_outside_call());
      break;
    case ExprKind::Error: break;
  }
  --depth_;
  v.loc = e.loc;
  if (e.kind != ExprKind::Name) v.name = {};
  return v;
}

NodeId Sema::materialize(const Value& v, DType dtype) {
  if (v.kind == Value::Kind::Tensor) return v.node;
  if (!v.size_of_dim.empty()) return size_of(v.size_of_dim, dtype);
  SourceLoc old = b_.at(v.loc);
  NodeId n = b_.constant(v.number, dtype);
  b_.at(old);
  return n;
}

Value Sema::build(Op op, std::vector<NodeId> operands, Attrs attrs, SourceLoc loc) {
  SourceLoc old = b_.at(loc);
  NodeId n = b_.try_make(op, std::move(operands), std::move(attrs));
  b_.at(old);
  if (n == kNoNode) {
    error(loc, b_.error());
    return Value::bad();
  }
  return Value::tensor(n, loc);
}

void Sema::mark_conv_weight(NodeId n) {
  if (!bodies_.empty()) return;  // (a body's ids are not the model's)
  for (ParamDecl& p : model_.params)
    if (p.node == n) p.conv_weight = true;
}

NodeId Sema::random_seed() {
  if (!bodies_.empty()) return import_top(at_top([&] { return random_seed(); }));
  if (seed_leaf_ == kNoNode) seed_leaf_ = b_.leaf(Op::Input, kRandomSeed, DType::I32, {{2, {}}});
  return seed_leaf_;
}

NodeId Sema::count(NodeId x, const std::vector<int64_t>& axes) {
  const Shape& shape = g()[x].shape;
  double constant = 1;
  std::vector<std::string> dynamic;  // the dims whose run-time size multiplies it
  const std::vector<DynAxis>* facts = nullptr;
  if (!model_.capacities.empty() && bodies_.empty()) {
    if (!dynamic_axes_) dynamic_axes_.emplace(g(), model_.capacities);
    facts = dynamic_axes_->of(x);  // (nullptr: refused; the capacity pass reports it)
  }
  for (int64_t a : axes) {
    const DynAxis* f = facts ? &(*facts)[a] : nullptr;
    if (f && f->dim >= 0) {
      const auto& [name, capacity] = model_.capacities[f->dim];
      constant *= static_cast<double>(shape[a].size / capacity);
      dynamic.push_back(name);
    } else {
      constant *= static_cast<double>(shape[a].size);
    }
  }
  NodeId r = b_.scalar_like(constant, x);
  for (const std::string& d : dynamic) r = b_.mul(r, size_of(d, g()[x].dtype));
  return r;
}

NodeId Sema::size_of(std::string_view dim, DType dtype) {
  if (!bodies_.empty()) return import_top(at_top([&] { return size_of(dim, dtype); }));
  return b_.cast(b_.leaf(Op::Input, "@size." + std::string(dim), DType::F32, {}), dtype);
}

NodeId Sema::step_number() {
  if (!bodies_.empty()) return import_top(at_top([&] { return step_number(); }));
  if (step_number_ == kNoNode)
    step_number_ = b_.add(b_.leaf(Op::Input, kStepCounter, DType::F64, {}), b_.constant(1, DType::F64));
  return step_number_;
}

Value Sema::elementwise(Op op, const Value& a, const Value& b, SourceLoc op_loc) {
  if (a.poison() || b.poison()) return Value::bad();
  bool compare = op_kind(op) == OpKind::Compare;
  if (a.kind == Value::Kind::Number && b.kind == Value::Kind::Number) {
    for (const Value* v : {&a, &b})
      if (!v->size_of_dim.empty()) refuse_capacity(*v);
    double x = a.number, y = b.number, r = 0;
    switch (op) {
      case Op::Add: r = x + y; break;
      case Op::Sub: r = x - y; break;
      case Op::Mul: r = x * y; break;
      case Op::Div: r = x / y; break;
      case Op::Pow: r = std::pow(x, y); break;
      case Op::Maximum: r = std::max(x, y); break;
      case Op::Minimum: r = std::min(x, y); break;
      case Op::Lt: r = x < y; break;
      case Op::Le: r = x <= y; break;
      case Op::Gt: r = x > y; break;
      case Op::Ge: r = x >= y; break;
      case Op::Eq: r = x == y; break;
      case Op::Ne: r = x != y; break;
      // not a binary operator: never reaches here
      case Op::Input: case Op::Param: case Op::Constant: case Op::Cast:
      case Op::Neg: case Op::Exp: case Op::Expm1: case Op::Log: case Op::Log1p: case Op::Sqrt: case Op::Rsqrt:
      case Op::Abs: case Op::Sign: case Op::Sin: case Op::Cos: case Op::Tanh: case Op::Sigmoid: case Op::Softplus:
      case Op::Erf: case Op::StopGradient:
      case Op::Where: case Op::ReduceSum: case Op::ReduceMax: case Op::ReduceMin: case Op::ArgMax: case Op::MatMul:
      case Op::Reshape: case Op::Transpose: case Op::BroadcastTo: case Op::Concat: case Op::Slice: case Op::Reverse: case Op::Pad:
      case Op::OneHot: break;
      case Op::Window: case Op::Fold: break;
      case Op::Embedding: case Op::EmbeddingGrad:
      case Op::RandomUniform:
      case Op::Scan: case Op::ScanOut: break;
    }
    bool is_int = compare || (a.is_int && b.is_int && op != Op::Div && op != Op::Pow);
    return Value::num(r, is_int, op_loc);
  }
  const Value& t = a.kind == Value::Kind::Tensor ? a : b;
  const Value& lit = a.kind == Value::Kind::Tensor ? b : a;
  DType dt = g()[t.node].dtype;
  if (lit.kind == Value::Kind::Number && dt == DType::I32) {
    if (!compare) {
      error(op_loc, diag::err_i32_arithmetic());
      note_operands({&t});
      return Value::bad();
    }
    if (lit.number != std::floor(lit.number)) {
      error(lit.loc, diag::err_i32_compare_fraction(lit.number));
      return Value::bad();
    }
  }
  NodeId x = materialize(a, dt), y = materialize(b, dt);
  Value r = build(op, {x, y}, {}, op_loc);
  if (r.poison()) note_operands({&a, &b});
  return r;
}

Value Sema::matmul(const Value& a, const Value& b, SourceLoc op_loc) {
  if (a.poison() || b.poison()) return Value::bad();
  if (a.kind != Value::Kind::Tensor || b.kind != Value::Kind::Tensor) {
    error(op_loc, diag::err_matmul_numbers());
    return Value::bad();
  }
  const Node& x = g()[a.node];
  const Node& y = g()[b.node];
  if (x.rank() == 0 || y.rank() == 0) {
    error(op_loc, diag::err_matmul_scalar(
                              shape_str(x.shape), shape_str(y.shape)));
    note_operands({&a, &b});
    return Value::bad();
  }
  if (x.dtype != y.dtype || !is_float(x.dtype)) {
    error(op_loc, diag::err_matmul_value_dtypes(dtype_name(x.dtype), dtype_name(y.dtype),
                              is_float(x.dtype) && is_float(y.dtype) ? " (use cast to convert one of them)"
                                                                     : " (matmul needs float tensors)"));
    note_operands({&a, &b});
    return Value::bad();
  }
  const Dim& k1 = x.shape.back();
  const Dim& k2 = y.rank() == 1 ? y.shape[0] : y.shape[y.rank() - 2];
  if (k1.size != k2.size) {
    error(op_loc, diag::err_matmul_value_inner(
                              shape_str(x.shape), shape_str(y.shape), k1.size, k2.size));
    note_operands({&a, &b});
    return Value::bad();
  }
  // Vectors become matrices ([k] -> [1, k] on the left, [k] -> [k, 1] on the
  // right) and the added axis is removed from the result, as in NumPy.
  SourceLoc old = b_.at(op_loc);
  NodeId l = a.node, r = b.node;
  bool lvec = x.rank() == 1, rvec = y.rank() == 1;
  if (lvec) l = b_.reshape(l, {1, x.shape[0].size});
  if (rvec) r = b_.reshape(r, {y.shape[0].size, 1});
  NodeId m = b_.try_make(Op::MatMul, {l, r});
  b_.at(old);
  if (m == kNoNode) {
    error(op_loc, diag::err_matmul_value_other(shape_str(x.shape), shape_str(y.shape),
                              b_.error()));
    note_operands({&a, &b});
    return Value::bad();
  }
  if (lvec || rvec) {
    Shape out = g()[m].shape;
    if (rvec) out.erase(out.end() - 1);
    if (lvec) out.erase(out.end() - (rvec ? 1 : 2));
    old = b_.at(op_loc);
    m = b_.reshape(m, sizes(out));
    b_.at(old);
  }
  return Value::tensor(m, op_loc);
}

Value Sema::eval_binary(const Expr& e) {
  Value a = eval(*e.args[0]);
  Value b = eval(*e.args[1]);
  switch (e.op) {
    case Tok::Plus: return elementwise(Op::Add, a, b, e.op_loc);
    case Tok::Minus: return elementwise(Op::Sub, a, b, e.op_loc);
    case Tok::Star: return elementwise(Op::Mul, a, b, e.op_loc);
    case Tok::Slash: return elementwise(Op::Div, a, b, e.op_loc);
    case Tok::Caret: return elementwise(Op::Pow, a, b, e.op_loc);
    case Tok::Lt: return elementwise(Op::Lt, a, b, e.op_loc);
    case Tok::Le: return elementwise(Op::Le, a, b, e.op_loc);
    case Tok::Gt: return elementwise(Op::Gt, a, b, e.op_loc);
    case Tok::Ge: return elementwise(Op::Ge, a, b, e.op_loc);
    case Tok::EqEq: return elementwise(Op::Eq, a, b, e.op_loc);
    case Tok::NotEq: return elementwise(Op::Ne, a, b, e.op_loc);
    case Tok::At: return matmul(a, b, e.op_loc);
    default: GRADC_ASSERT(false, "unknown binary operator");
  }
  return Value::bad();
}

// ---- calls ----

Value Sema::eval_call(const Expr& e) {
  if (auto it = decls_.find(e.name); it != decls_.end()) {
    const Stmt& s = *it->second.stmt;
    if (s.kind == StmtKind::Fn) return call_fn(s, e);
    error(e.op_loc, diag::err_not_a_function(e.name, kind_name(s.kind)));
    note(s.name_loc, diag::note_declared_here(e.name));
    return Value::bad();
  }
  if (const BuiltinSpec* spec = find_builtin(e.name)) return call_builtin(*spec, e);
  if (broken_.count(e.name)) return Value::bad();
  error(e.op_loc, diag::err_unknown_function(e.name, suggest(e.name, true)));
  return Value::bad();
}

Value Sema::call_fn(const Stmt& fn, const Expr& call) {
  for (const Scope& sc : scopes_)
    if (sc.fn == &fn) {
      error(call.op_loc, diag::err_recursive_call(fn.name));
      note(fn.name_loc, diag::note_fn_declared(fn.name));
      return Value::bad();
    }
  if (!call.kwargs.empty()) {
    error(call.kwargs[0].name_loc, diag::err_fn_positional(fn.name));
    return Value::bad();
  }
  if (call.args.size() != fn.params.size()) {
    error(call.loc, diag::err_fn_arg_count(fn.name, fn.params.size(),
                                fn.params.size() == 1 ? "" : "s", call.args.size()));
    note(fn.name_loc, diag::note_fn_declared(fn.name));
    return Value::bad();
  }
  std::vector<Value> args;
  bool bad = false;
  for (const Expr* a : call.args) {
    args.push_back(eval(*a));
    bad = bad || args.back().poison();
  }
  if (bad) return Value::bad();
  Value r = call_fn_with(fn, std::move(args), call.op_loc);
  r.loc = call.loc;
  return r;
}

Value Sema::call_fn_with(const Stmt& fn, std::vector<Value> args, SourceLoc call_loc) {
  for (const Scope& sc : scopes_)
    if (sc.fn == &fn) {
      error(call_loc, diag::err_recursive_call(fn.name));
      note(fn.name_loc, diag::note_fn_declared(fn.name));
      return Value::bad();
    }
  if (scopes_.size() >= kMaxFnNesting) {
    error(call_loc, diag::err_fn_nesting(kMaxFnNesting));
    return Value::bad();
  }
  Scope scope;
  scope.fn = &fn;
  scope.call_loc = call_loc;
  FnCallKey key{&b_.graph(), &fn, {}};
  auto& key_args = std::get<2>(key);
  for (size_t i = 0; i < args.size(); ++i) {
    Value v = args[i];
    v.name = fn.params[i].name;
    v.decl_loc = fn.params[i].name_loc;
    scope.names.emplace(fn.params[i].name, v);
    key_args.emplace_back(v.kind == Value::Kind::Tensor ? static_cast<double>(v.node) : v.number,
                          static_cast<int>(v.kind) * 2 + v.is_int);
  }
  // The graph is hash-consed, so a fn applied to the same arguments yields the
  // same nodes: reuse the result instead of inlining again (which would be
  // exponential for fns that call a fn twice).
  if (auto it = fn_cache_.find(key); it != fn_cache_.end()) return it->second;
  scopes_.push_back(std::move(scope));
  for (const Binding& local : fn.locals) {
    Value v = named(eval(*local.value), local.name);
    v.name = local.name;
    v.decl_loc = local.name_loc;
    scopes_.back().names.insert_or_assign(local.name, v);
  }
  Value r = eval(*fn.value);
  scopes_.pop_back();
  r.name = {};
  fn_cache_.emplace(std::move(key), r);
  return r;
}

Value Sema::call_builtin(const BuiltinSpec& spec, const Expr& call) {
  CallArgs args;
  args.call = &call;
  args.exprs.assign(spec.params.size(), nullptr);
  args.values.assign(spec.params.size(), Value::bad());
  std::string expected;
  for (const ParamSpec& p : spec.params) expected += (expected.empty() ? "" : ", ") + std::string(p.name);
  if (call.args.size() > spec.params.size()) {
    error(call.args[spec.params.size()]->loc,
          diag::err_builtin_too_many_args(spec.name, spec.params.size(),
                      spec.params.size() == 1 ? "" : "s", expected, call.args.size()));
    return Value::bad();
  }
  for (size_t i = 0; i < call.args.size(); ++i) args.exprs[i] = call.args[i];
  for (const KwArg& k : call.kwargs) {
    auto it = std::find_if(spec.params.begin(), spec.params.end(), [&](const ParamSpec& p) { return p.name == k.name; });
    if (it == spec.params.end()) {
      error(k.name_loc, diag::err_builtin_no_such_arg(spec.name, k.name, expected));
      return Value::bad();
    }
    size_t i = static_cast<size_t>(it - spec.params.begin());
    if (args.exprs[i]) {
      error(k.name_loc, diag::err_builtin_arg_twice(k.name, spec.name));
      return Value::bad();
    }
    args.exprs[i] = k.value;
  }
  for (size_t i = 0; i < spec.params.size(); ++i) {
    const ParamSpec& p = spec.params[i];
    if (!args.exprs[i]) {
      if (p.required) {
        error(call.loc, diag::err_builtin_missing_arg(spec.name, p.name, expected));
        return Value::bad();
      }
      continue;
    }
    const Expr& a = *args.exprs[i];
    if (p.kind == ArgKind::Tensor || p.kind == ArgKind::Name) {
      if (p.kind == ArgKind::Name && a.kind != ExprKind::Name) {
        error(a.loc, diag::err_builtin_arg_not_name(p.name, spec.name));
        return Value::bad();
      }
      args.values[i] = eval(a);
      if (args.values[i].poison()) return Value::bad();
    }
  }
  return spec.lower(*this, args);
}

// ---- constants in arguments ----

std::optional<int64_t> Sema::const_int(const Expr& e, std::string_view what) {
  if (e.kind == ExprKind::Number && e.is_int) return e.int_value;
  if (e.kind == ExprKind::Unary && e.args[0]->kind == ExprKind::Number && e.args[0]->is_int)
    return -e.args[0]->int_value;
  if (e.kind == ExprKind::Name) {
    if (auto it = dims_.find(e.name); it != dims_.end()) {
      used_dims_.insert(it->first);
      return it->second;
    }
    if (broken_.count(e.name)) return std::nullopt;
  }
  error(e.loc, diag::err_not_int_constant(what));
  return std::nullopt;
}

std::optional<double> Sema::const_float(const Expr& e, std::string_view what) {
  if (e.kind == ExprKind::Number || e.kind == ExprKind::Bool) return e.number;
  if (e.kind == ExprKind::Unary && e.args[0]->kind == ExprKind::Number) return -e.args[0]->number;
  error(e.loc, diag::err_not_number_constant(what));
  return std::nullopt;
}

std::optional<int> Sema::axis_of(const Expr& e, int rank, std::string_view fn) {
  auto v = const_int(e, "an axis");
  if (!v) return std::nullopt;
  auto a = normalize_axis(*v, rank);
  if (!a && rank == 0) {
    error(e.loc, diag::err_axis_of_scalar(*v, fn));
    return std::nullopt;
  }
  if (!a) {
    error(e.loc, diag::err_axis_out_of_range(*v, fn, rank,
                             -rank, rank - 1));
    return std::nullopt;
  }
  return a;
}

std::optional<NodeId> Sema::float_tensor(const Value& v, std::string_view fn, std::string_view what) {
  if (v.poison()) return std::nullopt;
  if (v.kind == Value::Kind::Number) return materialize(v, DType::F32);
  const Node& n = g()[v.node];
  if (!is_float(n.dtype)) {
    error(v.loc, diag::err_needs_float_arg(fn, what, type_str(n.dtype, n.shape),
                             " (use cast(x, f32))"));
    note_operands({&v});
    return std::nullopt;
  }
  return v.node;
}

}  // namespace gradc
