// Masking for capacity compiles (see capacity.h).
#include "compiler/passes/capacity.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "compiler/ir/dynamic_axes.h"
#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

// where(valid, x, identity) along the given axes of x: valid is @valid.D
// reshaped and broadcast to the axis' layout (D at stride `inner`, repeated
// `outer` times when merged with other axes).
NodeId masked(Builder& b, const ModelIR& m, NodeId x, const std::vector<std::pair<int64_t, DynAxis>>& axes,
              double identity) {
  const Shape shape = b[x].shape;
  NodeId cond = kNoNode;
  for (const auto& [axis, f] : axes) {
    const auto& [name, capacity] = m.capacities[f.dim];
    NodeId v = b.leaf(Op::Input, "@valid." + name, DType::F32, {Dim{capacity, name, true}});
    int64_t size = shape[axis].size, inner = f.inner, outer = size / (capacity * inner);
    if (inner > 1) v = b.reshape(b.broadcast_to(b.reshape(v, {capacity, 1}), make_shape({capacity, inner})), {capacity * inner});
    if (outer > 1) v = b.reshape(b.broadcast_to(v, make_shape({outer, capacity * inner})), {size});
    std::vector<int64_t> at(shape.size(), 1);
    at[axis] = size;
    v = b.reshape(v, at);
    cond = cond == kNoNode ? v : b.mul(cond, v);
  }
  if (b[cond].dtype != b[x].dtype) cond = b.cast(cond, b[x].dtype);
  return b.where(cond, x, b.scalar_like(identity, x));
}

}  // namespace

std::optional<std::string> mask_padding(ModelIR& m, const std::vector<std::string>& wrt) {
  if (m.capacities.empty()) return std::nullopt;
  DynamicAxes before(m.graph, m.capacities);
  for (NodeId id : live_nodes(m, Roots::All))
    if (!before.of(id)) return before.why();

  // What each result's axes hold, for the session's trimming.
  std::vector<std::pair<std::string, std::vector<int>>> trim;
  auto record = [&](const std::string& result, NodeId node) {
    const std::vector<DynAxis>& facts = *before.of(node);
    std::vector<int> axes;
    bool any = false;
    for (size_t a = 0; a < facts.size(); ++a) {
      const DynAxis& f = facts[a];
      bool whole = f.dim >= 0 && f.inner == 1 && m.graph[node].shape[a].size == m.capacities[f.dim].second;
      axes.push_back(f.dim < 0 ? -1 : whole ? f.dim : -2);
      any = any || f.dim >= 0;
    }
    if (any && std::none_of(trim.begin(), trim.end(), [&](const auto& t) { return t.first == result; }))
      trim.emplace_back(result, std::move(axes));
  };
  for (const NamedNode& o : m.outputs) record("out." + o.name, o.node);
  for (const NamedNode& o : m.training.outputs) record("out." + o.name, o.node);
  for (const NamedNode& v : m.inputs) record("grad." + v.name, v.node);
  for (const NamedNode& v : m.values) record("grad." + v.name, v.node);
  for (const NamedNode& v : m.training.values) record("grad." + v.name, v.node);
  for (const auto& [result, axes] : trim) {
    bool asked = result.rfind("out.", 0) == 0 || std::find(wrt.begin(), wrt.end(), result.substr(5)) != wrt.end();
    if (asked && std::find(axes.begin(), axes.end(), -2) != axes.end())
      return fmt::format("'{}' has a dynamic dim merged with other axes, so it could not be cut to a call's size",
                         result.substr(result.find('.') + 1));
  }

  std::optional<DynamicAxes> after;
  const double inf = std::numeric_limits<double>::infinity();
  ModelIR out = rebuild(m, [&](Builder& b, const Node& n) -> NodeId {
    if (!after) after.emplace(b.graph(), m.capacities);
    switch (op_kind(n.op)) {
      case OpKind::Reduce:
      case OpKind::ArgMax: {
        auto axes = after->dynamic_among(n.operands[0], n.attrs.ints);
        if (axes.empty()) return kNoNode;
        double identity = n.op == Op::ReduceSum ? 0 : n.op == Op::ReduceMin ? inf : -inf;
        return b.make(n.op, {masked(b, m, n.operands[0], axes, identity)}, n.attrs);
      }
      case OpKind::MatMul: {
        // The contracted axis: the last of a, the one before the last of b.
        int64_t ka = b[n.operands[0]].rank() - 1, kb = b[n.operands[1]].rank() - 2;
        if (auto axes = after->dynamic_among(n.operands[0], {ka}); !axes.empty())
          return b.make(n.op, {masked(b, m, n.operands[0], axes, 0), n.operands[1]}, n.attrs);
        if (auto axes = after->dynamic_among(n.operands[1], {kb}); !axes.empty())
          return b.make(n.op, {n.operands[0], masked(b, m, n.operands[1], axes, 0)}, n.attrs);
        return kNoNode;
      }
      case OpKind::ScatterAdd: {
        // embedding_grad(ids, g): the rows of g (ids' axes, then the width).
        std::vector<int64_t> ids_axes;
        for (int a = 0; a < b[n.operands[0]].rank(); ++a) ids_axes.push_back(a);
        auto axes = after->dynamic_among(n.operands[0], ids_axes);
        if (axes.empty()) return kNoNode;
        return b.make(n.op, {n.operands[0], masked(b, m, n.operands[1], axes, 0)}, n.attrs);
      }
      default:
        return kNoNode;
    }
  });
  out.trim = std::move(trim);
  m = std::move(out);
  return std::nullopt;
}

}  // namespace gradc
