// The generic mutator: live nodes in, rewritten and re-interned nodes out.
#include "compiler/passes/rebuild.h"

#include "compiler/ir/printer.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

ModelIR rebuild(const ModelIR& m, const RewriteFn& rewrite, size_t* rewrites) {
  if (!rewrite) return rebuild_indexed(m, nullptr, rewrites);
  return rebuild_indexed(m, [&](Builder& b, const Node& n, NodeId) { return rewrite(b, n); }, rewrites);
}

ModelIR rebuild_indexed(const ModelIR& m, const IndexedRewriteFn& rewrite, size_t* rewrites) {
  if (rewrites) *rewrites = 0;
  ModelIR out;
  out.name = m.name;
  out.dims = m.dims;
  out.dynamic_dims = m.dynamic_dims;
  out.capacities = m.capacities;
  out.trim = m.trim;
  out.optimizer = m.optimizer;
  out.remarks = m.remarks;
  Builder b(out.graph);
  std::vector<NodeId> map(m.graph.size(), kNoNode);
  for (NodeId id : live_nodes(m, Roots::All)) {
    Node n = m.graph[id];
    for (NodeId& o : n.operands) {
      GRADC_ASSERT(map[o] != kNoNode, "rebuild: operand was not copied");
      o = map[o];
    }
    b.at(n.loc);
    NodeId r = rewrite ? rewrite(b, n, id) : kNoNode;
    if (r != kNoNode && rewrites) ++*rewrites;
    if (r == kNoNode) {
      if (op_kind(n.op) == OpKind::Leaf) {
        r = n.op == Op::Constant ? b.constant(n.attrs.value, n.dtype) : b.leaf(n.op, n.attrs.name, n.dtype, n.shape);
      } else {
        r = b.make(n.op, n.operands, n.attrs);
      }
    }
    GRADC_ASSERT(out.graph[r].dtype == n.dtype && out.graph[r].shape == n.shape,
                 "a rewrite changed the type of a node");
    map[id] = r;
  }
  auto remap = [&](const std::vector<NamedNode>& from) {
    std::vector<NamedNode> to = from;
    for (NamedNode& v : to) v.node = map[v.node];
    return to;
  };
  for (NodeId n : m.sizes) out.sizes.push_back(map[n]);
  out.inputs = remap(m.inputs);
  out.outputs = remap(m.outputs);
  out.metrics = remap(m.metrics);
  out.grads = remap(m.grads);
  for (const NamedNode& v : m.values)
    if (map[v.node] != kNoNode) out.values.push_back({v.name, map[v.node], v.loc});
  out.params = m.params;
  for (ParamDecl& p : out.params) p.node = map[p.node];
  out.loss = m.loss;
  out.loss.node = m.loss.node == kNoNode ? kNoNode : map[m.loss.node];  // an update model has no loss
  out.buffers = m.buffers;
  for (ParamDecl& p : out.buffers) p.node = map[p.node];
  out.training.loss = m.training.loss;
  if (m.training.loss.node != kNoNode) out.training.loss.node = map[m.training.loss.node];
  out.training.outputs = remap(m.training.outputs);
  for (const NamedNode& v : m.training.values)
    if (map[v.node] != kNoNode) out.training.values.push_back({v.name, map[v.node], v.loc});
  for (NodeId n : m.training.new_buffers) out.training.new_buffers.push_back(map[n]);
  if (m.train.built()) {
    out.train = m.train;
    out.train.lr = map[m.train.lr];
    out.train.step_in = map[m.train.step_in];
    out.train.step_out = map[m.train.step_out];
    for (NodeId& p : out.train.new_params) p = map[p];
    for (StateSlot& sl : out.train.slots) sl.in = map[sl.in], sl.out = map[sl.out];
  }
  return out;
}

size_t live_node_count(const ModelIR& m) { return live_nodes(m, Roots::All).size(); }

}  // namespace gradc
