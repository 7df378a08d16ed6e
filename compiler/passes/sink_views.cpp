// Elementwise ops moved above a product's layout view (see sink_views.h).
#include "compiler/passes/sink_views.h"

#include <optional>
#include <set>

#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

std::vector<int64_t> dim_sizes(const Shape& s) {
  std::vector<int64_t> v;
  for (const Dim& d : s) v.push_back(d.size);
  return v;
}

// Node `id` as reshape(transpose(reshape(base))), either reshape optional:
// the transpose reads `split` (base's dims each cut into a run of split's)
// and its result's dims merge, in runs, into the node's.
struct View {
  NodeId base = kNoNode;
  std::vector<int64_t> split, perm, result;
  std::vector<int> owner;                // per split dim: the base dim it is part of
  std::vector<std::vector<size_t>> runs; // per result dim: the transposed dims it merges
};

// Cuts `whole` into runs of consecutive `parts` (trailing parts of size 1
// join no run); false when they do not line up.
bool runs_of(const std::vector<int64_t>& whole, const std::vector<int64_t>& parts,
             std::vector<std::vector<size_t>>& runs) {
  runs.assign(whole.size(), {});
  size_t j = 0;
  for (size_t i = 0; i < whole.size(); ++i) {
    int64_t prod = 1;
    while (j < parts.size() && prod < whole[i]) {
      prod *= parts[j];
      runs[i].push_back(j++);
    }
    if (prod != whole[i]) return false;
  }
  for (; j < parts.size(); ++j)
    if (parts[j] != 1) return false;
  return true;
}

template <class At>
std::optional<View> match_view(NodeId id, const At& at) {
  View v;
  const Node* n = &at(id);
  v.result = dim_sizes(n->shape);
  bool merged = n->op == Op::Reshape;
  if (merged) n = &at(n->operands[0]);
  if (n->op != Op::Transpose) return std::nullopt;
  v.perm = n->attrs.ints;
  const Node* below = &at(n->operands[0]);
  v.split = dim_sizes(below->shape);
  // Only a transpose that moves elements (of axes above size 1) makes a
  // copy worth saving; moving ops above one that only moves units of size 1
  // would just reshape an optimizer's update of a [1, H] weight.
  bool moves = false;
  for (size_t i = 0, last = 0; i < v.perm.size(); ++i) {
    size_t s = static_cast<size_t>(v.perm[i]);
    if (v.split[s] == 1) continue;
    if (s < last) moves = true;
    last = s;
  }
  if (!moves) return std::nullopt;
  v.base = n->operands[0];
  if (below->op == Op::Reshape) v.base = below->operands[0];
  std::vector<std::vector<size_t>> cuts;
  if (!runs_of(dim_sizes(at(v.base).shape), v.split, cuts)) return std::nullopt;
  v.owner.assign(v.split.size(), -1);
  for (size_t i = 0; i < cuts.size(); ++i)
    for (size_t s : cuts[i]) v.owner[s] = static_cast<int>(i);
  std::vector<int64_t> transposed;
  for (int64_t p : v.perm) transposed.push_back(v.split[static_cast<size_t>(p)]);
  if (!merged) {
    v.runs.assign(v.result.size(), {});
    for (size_t d = 0; d < v.result.size(); ++d) v.runs[d] = {d};
  } else if (!runs_of(v.result, transposed, v.runs)) {
    return std::nullopt;
  }
  return v;
}

bool same_layout(const View& a, const View& b, const Shape& a_base, const Shape& b_base) {
  return a.split == b.split && a.perm == b.perm && a.result == b.result && dim_sizes(a_base) == dim_sizes(b_base);
}

// Ops whose value at an element depends on their operands at that element only.
bool position_free(Op op) {
  switch (op_kind(op)) {
    case OpKind::Unary: case OpKind::Cast: case OpKind::Binary: case OpKind::Compare: case OpKind::Select:
      return true;
    default:
      return false;
  }
}

// The base shape `c'` takes for an operand of shape `c` broadcast against the
// view's result: all ones for a scalar-like c, or the base's size along the
// one base dim that c's one varying dim is; nullopt for any other c.
std::optional<std::vector<int64_t>> base_broadcast(const View& v, const Shape& c, size_t base_rank) {
  const size_t rank = v.result.size();
  if (c.size() > rank) return std::nullopt;
  std::vector<size_t> varying;
  for (size_t j = 0; j < c.size(); ++j)
    if (c[j].size != 1) varying.push_back(rank - c.size() + j);
  std::vector<int64_t> shape(base_rank, 1);
  if (varying.empty()) return shape;
  if (varying.size() != 1) return std::nullopt;
  // The split dims of that result dim, in its order: one base dim's whole
  // run (its dims of size above 1), in the run's order.
  std::vector<size_t> dims;
  for (size_t t : v.runs[varying[0]]) {
    size_t s = static_cast<size_t>(v.perm[t]);
    if (v.split[s] > 1) dims.push_back(s);
  }
  if (dims.empty()) return std::nullopt;
  int owner = v.owner[dims[0]];
  std::vector<size_t> run;
  for (size_t s = 0; s < v.split.size(); ++s)
    if (v.owner[s] == owner && v.split[s] > 1) run.push_back(s);
  if (owner < 0 || dims != run) return std::nullopt;
  int64_t size = 1;
  for (size_t s : run) size *= v.split[s];
  shape[static_cast<size_t>(owner)] = size;
  return shape;
}

// The rewrite of elementwise node `n` (operands in `at`'s graph): its
// operands' views and the base shapes of the others, or nullopt.
struct Plan {
  View view;
  std::vector<std::optional<std::vector<int64_t>>> broadcast;  // per operand; nullopt: a view's base
  std::vector<NodeId> bases;                                   // per operand: the view's base, or kNoNode
};

template <class At, class Movable>
std::optional<Plan> plan(const Node& n, const At& at, const Movable& movable) {
  if (!position_free(n.op) || n.operands.empty()) return std::nullopt;
  Plan p;
  std::optional<View> first;
  for (NodeId o : n.operands) {
    std::optional<View> v = match_view(o, at);
    if (v && movable(v->base) && v->result == dim_sizes(n.shape) &&
        (!first || same_layout(*first, *v, at(first->base).shape, at(v->base).shape))) {
      if (!first) first = v;
      p.bases.push_back(v->base);
    } else {
      p.bases.push_back(kNoNode);
    }
  }
  if (!first) return std::nullopt;
  p.view = *first;
  const size_t base_rank = at(first->base).shape.size();
  for (size_t i = 0; i < n.operands.size(); ++i) {
    if (p.bases[i] != kNoNode) {
      p.broadcast.emplace_back(std::nullopt);
      continue;
    }
    std::optional<std::vector<int64_t>> shape = base_broadcast(p.view, at(n.operands[i]).shape, base_rank);
    if (!shape) return std::nullopt;
    p.broadcast.push_back(shape);
  }
  return p;
}

}  // namespace

bool has_product_views(const ModelIR& m) {
  const Graph& g = m.graph;
  auto at = [&](NodeId i) -> const Node& { return g[i]; };
  auto product = [&](NodeId i) { return g[i].op == Op::MatMul; };
  for (NodeId id : live_nodes(m, Roots::All))
    if (plan(g[id], at, product)) return true;
  return false;
}

ModelIR sink_elementwise_into_views(const ModelIR& m, size_t* rewrites) {
  std::set<NodeId> moved;  // in the new graph: the ops this pass moved above their views
  return rebuild_indexed(
      m,
      [&](Builder& b, const Node& n, NodeId) -> NodeId {
        auto at = [&](NodeId i) -> const Node& { return b[i]; };
        auto movable = [&](NodeId i) { return b[i].op == Op::MatMul || moved.count(i) > 0; };
        std::optional<Plan> p = plan(n, at, movable);
        if (!p) return kNoNode;
        std::vector<NodeId> operands;
        for (size_t i = 0; i < n.operands.size(); ++i) {
          if (p->bases[i] != kNoNode) {
            operands.push_back(p->bases[i]);
            continue;
          }
          NodeId c = n.operands[i];
          const std::vector<int64_t>& shape = *p->broadcast[i];
          bool all_ones = true;
          for (int64_t s : shape) all_ones = all_ones && s == 1;
          if (all_ones) operands.push_back(b[c].shape.empty() ? c : b.reshape(c, {}));
          else operands.push_back(b.reshape(c, shape));
        }
        NodeId e = b.make(n.op, operands, n.attrs);
        moved.insert(e);
        const View& v = p->view;
        NodeId x = e;
        if (dim_sizes(b[x].shape) != v.split) x = b.reshape(x, v.split);
        x = b.transpose(x, v.perm);
        if (dim_sizes(b[x].shape) != v.result) x = b.reshape(x, v.result);
        return x;
      },
      rewrites);
}

}  // namespace gradc
