// Loop bodies through the optimization pipeline (see loop_bodies.h).
#include "compiler/passes/loop_bodies.h"

#include <string>

#include "compiler/ir/region.h"
#include "compiler/passes/pipeline.h"
#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

// The body as a model: one input per argument (their names are unique:
// RegionBuilder::arg), one output per result, optimized, and back.
std::shared_ptr<const Region> optimized(const Region& r, bool* changed) {
  ModelIR body;
  body.name = "loop body";
  Builder b(body.graph);
  std::vector<NodeId> args;
  for (NodeId a : r.args) {
    const Node& n = r.body[a];
    b.at(n.loc);
    args.push_back(b.leaf(Op::Input, n.attrs.name, n.dtype, n.shape));
    body.inputs.push_back({n.attrs.name, args.back(), n.loc});
  }
  std::vector<NodeId> results = inline_region(b, r, args);
  for (size_t j = 0; j < results.size(); ++j) body.outputs.push_back({"result" + std::to_string(j), results[j], {}});
  ModelIR opt = optimize(body);
  *changed = live_node_count(opt) != live_node_count(body);
  auto out = std::make_shared<Region>();
  out->body = std::move(opt.graph);
  for (const NamedNode& in : opt.inputs) out->args.push_back(in.node);
  for (const NamedNode& o : opt.outputs) out->results.push_back(o.node);
  return out;
}

}  // namespace

bool has_loops(const ModelIR& m) {
  for (NodeId n : live_nodes(m, Roots::All))
    if (m.graph[n].op == Op::Scan) return true;
  return false;
}

ModelIR optimize_loop_bodies(const ModelIR& m, size_t* rewrites) {
  size_t changed_count = 0;
  ModelIR out = rebuild(m, [&](Builder& b, const Node& n) -> NodeId {
    if (n.op != Op::Scan) return kNoNode;
    bool changed = false;
    Attrs a = n.attrs;
    a.region = optimized(*n.attrs.region, &changed);
    changed_count += changed;
    SourceLoc old = b.at(n.loc);
    NodeId r = b.make(Op::Scan, n.operands, a);
    b.at(old);
    return r;
  });
  if (rewrites) *rewrites = changed_count;
  return out;
}

}  // namespace gradc
