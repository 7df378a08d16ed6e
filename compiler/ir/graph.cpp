// Hash-consing of graph nodes, and small helpers on models.
#include "compiler/ir/graph.h"

#include <fmt/format.h>

#include <cstring>

#include "compiler/support/diagnostics.h"

namespace gradc {

namespace {
void mix(size_t& h, size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); }
}  // namespace

size_t Graph::hash_node(const Node& n) {
  size_t h = static_cast<size_t>(n.op) * 131 + static_cast<size_t>(n.dtype);
  for (const Dim& d : n.shape) mix(h, static_cast<size_t>(d.size));
  for (NodeId o : n.operands) mix(h, o);
  for (int64_t v : n.attrs.ints) mix(h, static_cast<size_t>(v));
  uint64_t bits;
  std::memcpy(&bits, &n.attrs.value, sizeof bits);
  mix(h, bits);
  mix(h, n.attrs.keepdims);
  mix(h, std::hash<std::string>{}(n.attrs.name));
  mix(h, std::hash<const Region*>{}(n.attrs.region.get()));
  return h;
}

bool Graph::equal_nodes(const Node& a, const Node& b) {
  return a.op == b.op && a.dtype == b.dtype && a.shape == b.shape && a.operands == b.operands && a.attrs == b.attrs;
}

NodeId Graph::add(Node n) {
  for (NodeId o : n.operands) GRADC_ASSERT(o < nodes_.size(), "operand of a new node does not exist");
  size_t h = hash_node(n);
  auto [lo, hi] = index_.equal_range(h);
  for (auto it = lo; it != hi; ++it)
    if (equal_nodes(nodes_[it->second], n)) return it->second;
  GRADC_ASSERT(nodes_.size() < kMaxNodes, "node limit reached");
  NodeId id = static_cast<NodeId>(nodes_.size());
  nodes_.push_back(std::move(n));
  index_.emplace(h, id);
  return id;
}

std::string init_str(const InitSpec& init) {
  using K = InitSpec::Kind;
  switch (init.kind) {
    case K::Zeros: return "zeros";
    case K::Ones: return "ones";
    case K::Constant: return fmt::format("constant({})", init.a);
    case K::Uniform: return fmt::format("uniform({}, {})", init.a, init.b);
    case K::Normal: return fmt::format("normal({}, {})", init.a, init.b);
    case K::XavierUniform: return "xavier_uniform";
    case K::XavierNormal: return "xavier_normal";
    case K::HeUniform: return "he_uniform";
    case K::HeNormal: return "he_normal";
  }
  return "?";
}

double OptimizerSpec::option(std::string_view key) const {
  for (const auto& [k, v] : options)
    if (k == key) return v;
  internal_error(__FILE__, __LINE__, fmt::format("optimizer {} has no option '{}'", name, key));
}

double OptimizerSpec::lr() const {
  for (const auto& [k, v] : options)
    if (k == "lr") return v;
  return 0;
}

std::vector<NodeId> live_nodes(const ModelIR& m, Roots roots) {
  const Graph& g = m.graph;
  std::vector<bool> live(g.size(), false);
  auto mark = [&](NodeId id) {
    if (id != kNoNode) live[id] = true;
  };
  mark(m.loss.node);
  for (const NamedNode& o : m.outputs) mark(o.node);
  for (const NamedNode& o : m.metrics) mark(o.node);
  for (const NamedNode& o : m.inputs) mark(o.node);
  for (NodeId n : m.sizes) mark(n);
  for (const ParamDecl& p : m.params) mark(p.node);
  for (const ParamDecl& p : m.buffers) mark(p.node);
  mark(m.training.loss.node);
  for (const NamedNode& o : m.training.outputs) mark(o.node);
  if (roots != Roots::Model)
    for (const NamedNode& gr : m.grads) mark(gr.node);
  if (roots == Roots::All && m.train.built()) {
    mark(m.train.lr);
    mark(m.train.step_in);
    mark(m.train.step_out);
    for (NodeId p : m.train.new_params) mark(p);
    for (const StateSlot& sl : m.train.slots) mark(sl.in), mark(sl.out);
  }
  if (roots == Roots::All)
    for (NodeId n : m.training.new_buffers) mark(n);
  // Operands precede users, so one backward sweep closes the set.
  for (size_t i = g.size(); i-- > 0;)
    if (live[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) live[o] = true;
  std::vector<NodeId> out;
  for (NodeId i = 0; i < g.size(); ++i)
    if (live[i]) out.push_back(i);
  return out;
}

}  // namespace gradc
