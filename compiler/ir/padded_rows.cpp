// What the padded rows of a capacity compile's values hold (see padded_rows.h).
#include "compiler/ir/padded_rows.h"

#include <algorithm>

namespace gradc {

const char* padding_name(Padding p) {
  switch (p) {
    case Padding::None: return "none";
    case Padding::Row0: return "row 0";
    case Padding::Zero: return "zero";
    case Padding::Mask: return "mask";
    case Padding::Other: return "other";
  }
  return "?";
}

PaddedRows::PaddedRows(const Graph& g, DynamicAxes& axes, int dim)
    : g_(&g), axes_(&axes), dim_(dim), valid_("@valid." + axes.dims()[static_cast<size_t>(dim)].first) {}

Padding PaddedRows::of(NodeId id) {
  // In id order, which is topological: no recursion, however deep the graph.
  while (memo_.size() <= id) memo_.push_back(infer(static_cast<NodeId>(memo_.size())));
  return memo_[id];
}

bool PaddedRows::zero_constant(NodeId id) const {
  const Node* n = &(*g_)[id];
  while (n->op == Op::Reshape || n->op == Op::BroadcastTo || n->op == Op::Cast) n = &(*g_)[n->operands[0]];
  return n->op == Op::Constant && n->attrs.value == 0;
}

void PaddedRows::scan(NodeId id, const Node& n) {
  using P = Padding;
  axes_->of(id);  // (which analyzes its body)
  DynamicAxes* body_axes = axes_->body(id);
  if (!body_axes) return;
  const Region& r = *n.attrs.region;
  const ScanAttrs sa = ScanAttrs::of(n.attrs);
  std::vector<P> args;
  for (size_t i = 0; i < n.operands.size(); ++i) {
    P p = memo_[n.operands[i]];
    // (A slice of the mask is not the mask.)
    bool sliced = static_cast<int64_t>(i) >= sa.carries && static_cast<int64_t>(i) < sa.carries + sa.xs;
    args.push_back(sliced && p == P::Mask ? P::Other : p);
  }
  // A carry holds what its initial value holds when the body's new value
  // holds the same, else Other. An initial value without the dim that is
  // one number everywhere (zeros of [B, H] made at the capacity's size) is
  // copies of its row 0, and zeros too when the number is 0: it is tried as
  // each in turn (a recurrent state, a cotangent carried back). Each carry
  // changes at most three times.
  auto splat = [&](NodeId id) {
    const Node* c = &(*g_)[id];
    while (c->op == Op::Reshape || c->op == Op::BroadcastTo || c->op == Op::Cast) c = &(*g_)[c->operands[0]];
    return c->op == Op::Constant;
  };
  std::vector<std::vector<P>> then(static_cast<size_t>(sa.carries));
  auto holds_dim = [&](NodeId arg) {
    const std::vector<DynAxis>* f = body_axes->of(arg);
    return f && std::any_of(f->begin(), f->end(), [&](const DynAxis& a) { return a.dim == dim_; });
  };
  for (int64_t i = 0; i < sa.carries; ++i)
    if (args[i] == P::None && splat(n.operands[i]) && holds_dim(r.args[i])) {
      args[i] = P::Row0;
      if (zero_constant(n.operands[i])) then[i] = {P::Zero};
    }
  for (;;) {
    auto body = std::make_unique<PaddedRows>(r.body, *body_axes, dim_);
    for (size_t i = 0; i < args.size(); ++i) body->seed(r.args[i], args[i]);
    bool agree = true;
    for (int64_t i = 0; i < sa.carries; ++i) {
      if (body->of(r.results[i]) == args[i] || args[i] == P::Other) continue;
      std::vector<P>& rest = then[static_cast<size_t>(i)];
      args[i] = rest.empty() ? P::Other : rest.front();
      if (!rest.empty()) rest.erase(rest.begin());
      agree = false;
    }
    if (!agree) continue;
    std::vector<P> results;
    for (size_t i = 0; i < r.results.size(); ++i)
      results.push_back(static_cast<int64_t>(i) < sa.carries ? args[i] : body->of(r.results[i]));
    scans_[id] = std::move(results);
    bodies_[id] = std::move(body);
    return;
  }
}

Padding PaddedRows::infer(NodeId id) {
  using P = Padding;
  const Node& n = (*g_)[id];
  if (n.op == Op::Scan) {
    scan(id, n);
    return P::Other;  // (its results are its ScanOuts)
  }
  if (auto s = seeds_.find(id); s != seeds_.end()) return s->second;
  const std::vector<DynAxis>* facts = axes_->of(id);
  if (!facts) return P::Other;
  if (std::none_of(facts->begin(), facts->end(), [&](const DynAxis& f) { return f.dim == dim_; })) return P::None;
  if (n.op == Op::ScanOut) {
    auto s = scans_.find(n.operands[0]);
    return s == scans_.end() ? P::Other : s->second[static_cast<size_t>(n.attrs.ints[0])];
  }
  const OpKind kind = op_kind(n.op);
  if (kind == OpKind::Leaf) return n.op == Op::Input ? (n.attrs.name == valid_ ? P::Mask : P::Row0) : P::Other;
  std::vector<P> in;
  for (NodeId o : n.operands) in.push_back(memo_[o]);
  auto is = [&](size_t i, std::initializer_list<P> ps) { return std::find(ps.begin(), ps.end(), in[i]) != ps.end(); };
  auto all = [&](std::initializer_list<P> ps) {
    for (size_t i = 0; i < in.size(); ++i)
      if (!is(i, ps)) return false;
    return true;
  };
  auto any = [&](P p) { return std::find(in.begin(), in.end(), p) != in.end(); };
  auto zeroish = [&](size_t i) { return in[i] == P::Zero || zero_constant(n.operands[i]); };

  // The mask, moved about.
  if ((kind == OpKind::Reshape || kind == OpKind::Transpose || kind == OpKind::BroadcastTo || kind == OpKind::Cast) &&
      in[0] == P::Mask)
    return P::Mask;
  if (n.op == Op::Mul && all({P::Mask})) return P::Mask;

  // Zeros: where the mask selects a zero, and what keeps a zero a zero.
  switch (n.op) {
    case Op::Where:
      if (in[0] == P::Mask) return zeroish(2) ? P::Zero : P::Other;
      if (is(0, {P::Row0, P::None}) && zeroish(1) && zeroish(2) && (in[1] == P::Zero || in[2] == P::Zero))
        return P::Zero;
      break;
    case Op::Mul:
      if (any(P::Zero) && all({P::Zero, P::Row0, P::None})) return P::Zero;
      break;
    case Op::Div:
      if (in[0] == P::Zero && is(1, {P::Row0, P::None})) return P::Zero;
      break;
    case Op::Add:
    case Op::Sub:
      if (zeroish(0) && zeroish(1) && any(P::Zero)) return P::Zero;
      break;
    case Op::MatMul:
      // The operand that holds B is zero there (not contracted: the result holds B).
      if (any(P::Zero) && all({P::Zero, P::None})) return P::Zero;
      break;
    case Op::Neg:
    case Op::StopGradient:
    case Op::Cast:
    case Op::Reshape:
    case Op::Transpose:
    case Op::BroadcastTo:
    case Op::ReduceSum:
    case Op::ReduceMax:
    case Op::ReduceMin:
    case Op::Slice:
    case Op::Pad:
    case Op::Concat:
    case Op::Window:  // (a convolution's windows, and their adjoint, row by row)
    case Op::Fold:
      if (all({P::Zero, P::None}) && any(P::Zero) && (n.op != Op::Concat || all({P::Zero}))) return P::Zero;
      break;
    default:
      break;
  }

  // Copies of row 0: an op that works row by row along B, on operands that
  // are copies of their row 0 or do not hold B. (Not a random op, whose
  // stream depends on the element's index; not a loop, whose body this
  // analysis does not enter.)
  switch (kind) {
    case OpKind::Unary:
    case OpKind::Cast:
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Select:
    case OpKind::Reduce:
    case OpKind::ArgMax:
    case OpKind::MatMul:
    case OpKind::Reshape:
    case OpKind::Transpose:
    case OpKind::BroadcastTo:
    case OpKind::Concat:
    case OpKind::Slice:
    case OpKind::Pad:
    case OpKind::OneHot:
    case OpKind::Window:
    case OpKind::Gather:
      if (all({P::Row0, P::None})) return P::Row0;
      return P::Other;
    case OpKind::Leaf:
    case OpKind::ScatterAdd:
    case OpKind::Random:
    case OpKind::Scan:
    case OpKind::ScanOut:
      return P::Other;
  }
  return P::Other;
}

}  // namespace gradc
