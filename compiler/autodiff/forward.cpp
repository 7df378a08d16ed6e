// The forward-mode driver: a topological sweep carrying tangents.
#include "compiler/autodiff/forward.h"

#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId directional_derivative(Builder& b, NodeId e, NodeId x, NodeId v) {
  GRADC_ASSERT(is_float(b[e].dtype) && is_float(b[x].dtype), "directional_derivative: e and x must be float");
  GRADC_ASSERT(b[v].dtype == b[x].dtype && b[v].shape == b[x].shape, "directional_derivative: v must have x's type");
  if (x > e) return b.full_like(0.0, e);
  // tangent[n]: n's tangent, kNoNode where it is zero (n does not depend on
  // x, or only through ops that pass nothing). Ids are topological, and the
  // nodes the rules add are numbered after e, so the sweep sees none of them.
  std::vector<NodeId> tangent(e + 1, kNoNode);
  tangent[x] = v;
  for (NodeId n = x + 1; n <= e; ++n) {
    if (!is_float(b[n].dtype)) continue;
    std::vector<NodeId> ts;
    bool any = false;
    for (NodeId o : b[n].operands) {
      ts.push_back(tangent[o]);
      any |= tangent[o] != kNoNode;
    }
    if (any) tangent[n] = jvp(b, n, ts);
  }
  return tangent[e] != kNoNode ? tangent[e] : b.full_like(0.0, e);
}

}  // namespace gradc
