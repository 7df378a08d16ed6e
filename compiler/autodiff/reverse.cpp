// The reverse-mode driver: reverse topological sweep, summing adjoints.
#include "compiler/autodiff/reverse.h"

#include <unordered_map>

#include "compiler/autodiff/scan_rules.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

std::vector<NodeId> gradients(Builder& b, NodeId y, const std::vector<NodeId>& xs) {
  const Graph& g = b.graph();
  GRADC_ASSERT(g[y].shape.empty() && is_float(g[y].dtype), "gradients: y must be a float scalar");
  // needed[n]: n lies on a path from some x to y (ids are topological).
  std::vector<bool> needed(y + 1, false);
  NodeId lo = y;
  for (NodeId x : xs)
    if (x <= y) {
      needed[x] = true;
      lo = std::min(lo, x);
    }
  for (NodeId n = lo; n <= y; ++n)
    for (NodeId o : g[n].operands)
      if (needed[o] && is_float(g[n].dtype)) needed[n] = true;

  std::vector<NodeId> adj(y + 1, kNoNode);
  auto add_to = [&](NodeId& a, NodeId c) { a = a == kNoNode ? c : b.add(a, c); };
  // A scan is a tuple: the adjoints of its results (its scan_out users) are
  // gathered per result, and its rule runs once for all of them.
  std::unordered_map<NodeId, std::vector<NodeId>> scan_adj;
  if (needed[y]) adj[y] = b.scalar_like(1.0, y);
  for (NodeId n = y + 1; n-- > lo;) {
    if (!needed[n]) continue;
    if (g[n].op == Op::Scan) {
      auto it = scan_adj.find(n);
      if (it == scan_adj.end()) continue;
      std::vector<bool> want;
      for (NodeId o : g[n].operands) want.push_back(needed[o]);
      std::vector<NodeId> c = scan_vjp(b, n, it->second, want);
      for (size_t i = 0; i < c.size(); ++i)
        if (c[i] != kNoNode) add_to(adj[b.graph()[n].operands[i]], c[i]);
      continue;
    }
    if (adj[n] == kNoNode) continue;
    if (g[n].op == Op::ScanOut) {
      NodeId s = g[n].operands[0];
      auto& list = scan_adj[s];
      list.resize(g[s].attrs.region->results.size(), kNoNode);
      add_to(list[g[n].attrs.ints[0]], adj[n]);
      continue;
    }
    // Operands are read by index: the builder may grow the graph meanwhile.
    for (size_t i = 0; i < b.graph()[n].operands.size(); ++i) {
      NodeId o = b.graph()[n].operands[i];
      if (!needed[o]) continue;
      NodeId c = vjp(b, n, i, adj[n]);
      if (c == kNoNode) continue;
      add_to(adj[o], c);
    }
  }
  std::vector<NodeId> out;
  for (NodeId x : xs) out.push_back(x <= y && adj[x] != kNoNode ? adj[x] : b.full_like(0.0, x));
  return out;
}

}  // namespace gradc
