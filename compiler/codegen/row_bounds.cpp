// Row bounds for the products of capacity compiles (see row_bounds.h).
#include "compiler/codegen/row_bounds.h"

#include <optional>

#include "compiler/ir/dynamic_axes.h"
#include "compiler/ir/padded_rows.h"

namespace gradc {

void plan_row_bounds(const ModelIR& m, Program& p) {
  if (m.capacities.empty() || m.sizes.size() != m.capacities.size()) return;
  DynamicAxes axes(m.graph, m.capacities);
  std::vector<std::optional<PaddedRows>> padded(m.capacities.size());
  // The argument that holds each dim's size.
  std::vector<int> size_buffer(m.capacities.size(), -1);
  for (size_t b = 0; b < p.buffers.size(); ++b)
    for (size_t d = 0; d < m.sizes.size(); ++d)
      if (p.buffers[b].kind == Buffer::Kind::Arg && p.buffers[b].node == m.sizes[d])
        size_buffer[d] = static_cast<int>(b);
  for (Kernel& k : p.kernels) {
    // (A loop body's kernels name no node of this graph.)
    if (k.kind != Kernel::Kind::MatMul || k.node == kNoNode) continue;
    const Node& n = m.graph[k.node];
    // A contracted dim, with an operand that is zero past the size.
    NodeId a = n.operands[0], b = n.operands[1];
    const std::vector<DynAxis>* a_facts = axes.of(a);
    if (a_facts && axes.of(b)) {
      const DynAxis& f = a_facts->back();
      if (f.dim >= 0 && f.inner == 1 && m.graph[a].shape.back().size == m.capacities[f.dim].second &&
          size_buffer[f.dim] >= 0) {
        PaddedRows& pr = padded[f.dim] ? *padded[f.dim] : padded[f.dim].emplace(m.graph, axes, f.dim);
        if (pr.of(a) == Padding::Zero || pr.of(b) == Padding::Zero) k.k_size = size_buffer[f.dim];
      }
    }
    const std::vector<DynAxis>* facts = axes.of(k.node);
    if (!facts) continue;
    size_t rows = n.shape.size() - 2;
    const DynAxis& f = (*facts)[rows];
    if (f.dim < 0 || f.inner != 1 || n.shape[rows].size != m.capacities[f.dim].second || size_buffer[f.dim] < 0)
      continue;
    PaddedRows& pr = padded[f.dim] ? *padded[f.dim] : padded[f.dim].emplace(m.graph, axes, f.dim);
    std::vector<Padding> stored;
    if (!k.c_blocks) stored.push_back(pr.of(k.node));
    bool known = true;
    for (const Kernel::Epilogue& e : k.epilogues) {
      if (e.internal) continue;
      known = known && e.node != kNoNode;
      if (known) stored.push_back(pr.of(e.node));
    }
    if (!known || stored.empty()) continue;
    Padding first = stored.front();
    bool same = true;
    for (Padding s : stored) same = same && s == first;
    if (!same || (first != Padding::Row0 && first != Padding::Zero)) continue;
    k.rows_size = size_buffer[f.dim];
    k.rows_zero = first == Padding::Zero;
  }
}

}  // namespace gradc
