// scan (SPEC 2.7): the fn applied at each step is analyzed once, into a
// loop body of its own (a Region); the model's graph gets one scan node.
//
// While the body is analyzed the builder builds into the body's graph. Its
// arguments are the carry and one slice of each xs; a top-level value the
// fn reads (a param, an input, a named value) becomes one more argument, a
// capture, whose operand is that value (import_top), so the body never
// names a node of another graph.
#include <fmt/format.h>

#include <numeric>

#include "compiler/frontend/sema_impl.h"
#include "compiler/support/messages.h"

namespace gradc {

void Sema::rebind() { b_.rebind(bodies_.empty() ? model_.graph : bodies_.back()->rb.b().graph()); }

NodeId Sema::import_top(NodeId top) {
  NodeId v = top;
  const Graph* outer = &model_.graph;
  for (Body* body : bodies_) {
    const Node& n = (*outer)[v];
    Builder& bb = body->rb.b();
    if (n.op == Op::Constant) {
      v = bb.constant(n.attrs.value, n.dtype);  // a constant is copied, not captured
    } else if (auto it = body->captured.find(v); it != body->captured.end()) {
      v = it->second;
    } else {
      NodeId arg = body->rb.arg(n.dtype, n.shape, n.attrs.name.empty() ? "capture" : n.attrs.name);
      body->captured.emplace(v, arg);
      body->captures.push_back(v);
      v = arg;
    }
    outer = &bb.graph();
  }
  return v;
}

Value Sema::scan(CallArgs& a) {
  const Expr& call = *a.call;
  const Expr& fe = *a.exprs[0];
  if (fe.kind != ExprKind::Name) {
    error(fe.loc, diag::err_scan_fn_not_name("an expression"));
    return Value::bad();
  }
  auto decl = decls_.find(fe.name);
  if (decl == decls_.end() || decl->second.stmt->kind != StmtKind::Fn) {
    if (decl == decls_.end() && broken_.count(fe.name)) return Value::bad();
    error(fe.loc, diag::err_scan_not_fn(fe.name));
    if (decl != decls_.end()) note(decl->second.stmt->name_loc, diag::note_declared_here(fe.name));
    return Value::bad();
  }
  const Stmt& fn = *decl->second.stmt;

  auto init_node = float_tensor(a.values[1], "scan", "initial carry");
  if (!init_node) return Value::bad();
  const Node init = g()[*init_node];

  // xs: one tensor or a list of them.
  const Expr& xe = *a.exprs[2];
  std::vector<const Expr*> xexprs;
  if (xe.kind == ExprKind::List) xexprs.assign(xe.args.begin(), xe.args.end());
  else xexprs.push_back(&xe);
  if (xexprs.empty()) {
    error(xe.loc, diag::err_scan_xs_empty());
    return Value::bad();
  }
  std::vector<Value> xs;
  for (const Expr* e : xexprs) {
    xs.push_back(eval(*e));
    if (xs.back().poison()) return Value::bad();
    if (xs.back().kind != Value::Kind::Tensor || g()[xs.back().node].rank() == 0) {
      error(e->loc, diag::err_scan_xs_scalar(static_cast<int64_t>(xs.size()),
                                             xs.back().kind == Value::Kind::Tensor ? "a scalar" : "a number"));
      return Value::bad();
    }
  }
  const int64_t k = static_cast<int64_t>(xs.size());
  if (static_cast<int64_t>(fn.params.size()) != 1 + k) {
    error(fe.loc, diag::err_scan_arity(fn.name, static_cast<int64_t>(fn.params.size()),
                                       fn.params.size() == 1 ? "" : "s", 1 + k, k));
    note(fn.name_loc, diag::note_fn_declared(fn.name));
    return Value::bad();
  }

  // The axis: of the result (rank of the carry + 1) and of every xs. A
  // negative one counts from the end of the result, as torch.stack's does.
  int64_t axis = 0;
  if (a.given(3)) {
    auto v = const_int(*a.exprs[3], "scan's axis");
    if (!v) return Value::bad();
    axis = *v < 0 ? *v + init.rank() + 1 : *v;
    for (int64_t j = 0; j < k; ++j) {
      const Node& x = g()[xs[j].node];
      int64_t hi = std::min<int64_t>(init.rank(), x.rank() - 1);
      if (axis < 0 || axis > hi) {
        error(a.exprs[3]->loc, diag::err_scan_axis(*v, init.rank(), j + 1, shape_str(x.shape), -(init.rank() + 1), hi));
        return Value::bad();
      }
    }
  }
  bool reverse = false;
  if (a.given(4)) {
    auto v = const_float(*a.exprs[4], "reverse");
    if (!v) return Value::bad();
    if (*v != 0 && *v != 1) {
      error(a.exprs[4]->loc, diag::err_not_a_flag("reverse"));
      return Value::bad();
    }
    reverse = *v != 0;
  }
  int64_t checkpoint = 0;
  if (a.given(5)) {
    auto v = const_int(*a.exprs[5], "checkpoint");
    if (!v) return Value::bad();
    if (*v < 0) {
      error(a.exprs[5]->loc, diag::err_scan_checkpoint(*v));
      return Value::bad();
    }
    checkpoint = *v;
  }
  const int64_t T = g()[xs[0].node].shape[axis].size;
  for (int64_t j = 1; j < k; ++j) {
    const Node& x = g()[xs[j].node];
    if (x.shape[axis].size != T) {
      error(xs[j].loc, diag::err_scan_lengths(axis, T, shape_str(g()[xs[0].node].shape), j + 1, x.shape[axis].size,
                                              shape_str(x.shape)));
      note_operands({&xs[0], &xs[j]});
      return Value::bad();
    }
  }

  SourceLoc old = b_.at(call.loc);
  // Each xs with the scanned axis first.
  std::vector<NodeId> leading;
  for (const Value& x : xs) {
    NodeId n = x.node;
    if (axis != 0) {
      std::vector<int64_t> perm(g()[n].rank());
      std::iota(perm.begin(), perm.end(), 0);
      perm.erase(perm.begin() + axis);
      perm.insert(perm.begin(), axis);
      n = b_.transpose(n, perm);
    }
    leading.push_back(n);
  }

  // The body: fn applied to (carry, slices), analyzed in the body's graph.
  Body body;
  std::vector<Value> args;
  args.push_back(Value::tensor(body.rb.arg(init.dtype, init.shape, std::string(fn.params[0].name)), a.values[1].loc));
  for (int64_t j = 0; j < k; ++j) {
    const Node& x = g()[leading[j]];
    Shape slice(x.shape.begin() + 1, x.shape.end());
    args.push_back(Value::tensor(body.rb.arg(x.dtype, slice, std::string(fn.params[1 + j].name)), xs[j].loc));
  }
  bodies_.push_back(&body);
  rebind();
  Value r = call_fn_with(fn, std::move(args), fe.loc);
  NodeId next = kNoNode;
  if (!r.poison()) next = materialize(r, init.dtype);
  bodies_.pop_back();
  rebind();
  b_.at(old);
  if (r.poison()) return Value::bad();
  const Node& nn = body.rb.b().graph()[next];
  if (nn.dtype != init.dtype || nn.shape != init.shape) {
    error(fe.loc, diag::err_scan_carry_changes(fn.name, type_str(nn.dtype, nn.shape), type_str(init.dtype, init.shape)));
    note(fn.name_loc, diag::note_fn_declared(fn.name));
    return Value::bad();
  }
  body.rb.result(next);  // the new carry
  body.rb.result(next);  // and the step's output
  std::vector<NodeId> operands{*init_node};
  operands.insert(operands.end(), leading.begin(), leading.end());
  operands.insert(operands.end(), body.captures.begin(), body.captures.end());
  std::shared_ptr<const Region> region = body.rb.finish();
  regions_.push_back(region);
  old = b_.at(call.loc);
  NodeId loop = make_scan(b_, region, std::move(operands), ScanAttrs{1, k, T, reverse, checkpoint});
  NodeId out = scan_out(b_, loop, 1);
  if (axis != 0) {
    std::vector<int64_t> perm(g()[out].rank());
    std::iota(perm.begin(), perm.end(), 0);
    perm.erase(perm.begin());
    perm.insert(perm.begin() + axis, 0);
    out = b_.transpose(out, perm);
  }
  b_.at(old);
  return Value::tensor(out, call.loc);
}

}  // namespace gradc
