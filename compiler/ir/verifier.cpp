// Graph invariants, checked between passes.
#include "compiler/ir/verifier.h"

#include <fmt/format.h>

#include "compiler/ir/shape_rules.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

void verify_graph(const Graph& g) {
  for (NodeId id = 0; id < g.size(); ++id) {
    const Node& n = g[id];
    for (NodeId o : n.operands) GRADC_ASSERT(o < id, fmt::format("node %{} uses a later node %{}", id, o));
    if (op_kind(n.op) == OpKind::Leaf) {
      GRADC_ASSERT(n.operands.empty(), fmt::format("leaf %{} has operands", id));
      GRADC_ASSERT(n.op == Op::Constant || !n.attrs.name.empty(), fmt::format("leaf %{} has no name", id));
      GRADC_ASSERT(n.op != Op::Constant || n.shape.empty(), fmt::format("constant %{} is not a scalar", id));
      continue;
    }
    InferResult r = infer_type(g, n.op, n.operands, n.attrs);
    GRADC_ASSERT(r.error.empty(), fmt::format("node %{} ({}) is ill-typed: {}", id, op_name(n.op), r.error));
    GRADC_ASSERT(r.dtype == n.dtype && r.shape == n.shape,
                 fmt::format("node %{} ({}) has type {} but its rule infers {}", id, op_name(n.op),
                             type_str(n.dtype, n.shape), type_str(r.dtype, r.shape)));
  }
}

void verify_model(const ModelIR& m) {
  verify_graph(m.graph);
  auto check = [&](NodeId id, const std::string& what) {
    GRADC_ASSERT(id < m.graph.size(), fmt::format("{} refers to a missing node", what));
  };
  for (const NamedNode& v : m.inputs) {
    check(v.node, "input " + v.name);
    GRADC_ASSERT(m.graph[v.node].op == Op::Input, "input " + v.name + " is not an input node");
  }
  for (const ParamDecl& p : m.params) {
    check(p.node, "param " + p.name);
    GRADC_ASSERT(m.graph[p.node].op == Op::Param, "param " + p.name + " is not a param node");
  }
  for (const ParamDecl& p : m.buffers) {
    check(p.node, "buffer " + p.name);
    GRADC_ASSERT(m.graph[p.node].op == Op::Input, "buffer " + p.name + " is not an input node");
  }
  for (const NamedNode& v : m.outputs) check(v.node, "output " + v.name);
  for (const NamedNode& v : m.training.outputs) check(v.node, "training output " + v.name);
  for (NodeId n : m.training.new_buffers) check(n, "a new buffer value");
  for (const NamedNode& v : m.metrics) {
    check(v.node, "metric " + v.name);
    GRADC_ASSERT(m.graph[v.node].shape.empty(), "metric " + v.name + " is not a scalar");
  }
  if (m.loss.node == kNoNode && m.inputs.empty() && m.train.built()) return;  // an update model (build_update_model)
  if (m.loss.node == kNoNode && m.params.empty() && !m.train.built()) return;  // a loop body (loop_bodies.cpp)
  check(m.loss.node, "the loss");
  if (m.training.loss.node != kNoNode) check(m.training.loss.node, "the training loss");
  GRADC_ASSERT(m.graph[m.loss.node].shape.empty() && is_float(m.graph[m.loss.node].dtype), "the loss is not a float scalar");
}

}  // namespace gradc
