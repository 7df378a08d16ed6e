// Loop bodies: building, copying, and the scan nodes that run them.
#include "compiler/ir/region.h"

#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId RegionBuilder::arg(DType dtype, Shape shape, std::string name) {
  // Each argument is distinct even when two have the same name and type.
  name += "#" + std::to_string(r_->args.size());
  NodeId n = b_.leaf(Op::Input, std::move(name), dtype, std::move(shape));
  r_->args.push_back(n);
  return n;
}

std::vector<NodeId> inline_region(Builder& b, const Region& r, const std::vector<NodeId>& args) {
  GRADC_ASSERT(args.size() == r.args.size(), "inline_region: one node per argument");
  const Graph& g = r.body;
  std::vector<bool> need(g.size(), false);
  for (NodeId n : r.results) need[n] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  std::vector<NodeId> map(g.size(), kNoNode);
  for (size_t i = 0; i < args.size(); ++i) map[r.args[i]] = args[i];
  SourceLoc old = b.loc();
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!need[n] || map[n] != kNoNode) continue;
    const Node& node = g[n];
    if (node.operands.empty()) {
      GRADC_ASSERT(node.op == Op::Constant, "inline_region: a body leaf that is not an argument");
      Node copy = node;
      map[n] = b.graph().add(std::move(copy));
      continue;
    }
    std::vector<NodeId> ops;
    for (NodeId o : node.operands) ops.push_back(map[o]);
    b.at(node.loc);
    map[n] = b.make(node.op, std::move(ops), node.attrs);
  }
  b.at(old);
  std::vector<NodeId> out;
  for (NodeId n : r.results) out.push_back(map[n]);
  return out;
}

NodeId make_scan(Builder& b, std::shared_ptr<const Region> body, std::vector<NodeId> operands, const ScanAttrs& a) {
  Attrs at;
  at.ints = a.ints();
  at.region = std::move(body);
  return b.make(Op::Scan, std::move(operands), std::move(at));
}

NodeId scan_out(Builder& b, NodeId scan, int64_t i) {
  Attrs at;
  at.ints = {i};
  return b.make(Op::ScanOut, {scan}, std::move(at));
}

}  // namespace gradc
