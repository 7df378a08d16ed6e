// Loop bodies: building, copying, and the scan nodes that run them.
#include "compiler/ir/region.h"

#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId RegionBuilder::arg(DType dtype, Shape shape, std::string name) {
  // Each argument is distinct even when two have the same name and type.
  name = name.substr(0, name.find('#')) + "#" + std::to_string(r_->args.size());
  NodeId n = b_.leaf(Op::Input, std::move(name), dtype, std::move(shape));
  r_->args.push_back(n);
  return n;
}

std::vector<NodeId> copy_nodes(Builder& b, const Graph& g, const std::vector<NodeId>& roots,
                               const std::unordered_map<NodeId, NodeId>& given) {
  std::vector<bool> need(g.size(), false);
  for (NodeId n : roots) need[n] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i] && !given.count(static_cast<NodeId>(i)))
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  std::vector<NodeId> map(g.size(), kNoNode);
  for (auto [from, to] : given) map[from] = to;
  SourceLoc old = b.loc();
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!need[n] || given.count(n)) continue;
    const Node& node = g[n];
    if (node.operands.empty()) {
      GRADC_ASSERT(node.op == Op::Constant, "copy_nodes: a leaf that is not given");
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
  for (NodeId n : roots) out.push_back(map[n]);
  return out;
}

std::vector<NodeId> inline_region(Builder& b, const Region& r, const std::vector<NodeId>& args,
                                  std::unordered_map<NodeId, NodeId> given) {
  GRADC_ASSERT(args.size() == r.args.size(), "inline_region: one node per argument");
  for (size_t i = 0; i < args.size(); ++i) given.emplace(r.args[i], args[i]);
  return copy_nodes(b, r.body, r.results, given);
}

std::vector<NodeId> inline_region(Builder& b, const Region& r, const std::vector<NodeId>& args) {
  return inline_region(b, r, args, {});
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
