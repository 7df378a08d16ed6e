// Row bounds for the kernels of capacity compiles (see row_bounds.h).
//
// Kernels are visited from the last to the first, so that when a kernel is
// decided, every kernel that reads what it writes has been: `needed[b]`
// says whether one of them reads buffer b's padded rows (rows n.. of its
// dynamic dim) in a way that reaches a result. A kernel that writes only
// buffers whose padded rows nobody needs computes its rows [0, n) and
// leaves the rest; then it in turn needs only the first n rows of what it
// reads, where its index maps say so (rows_read), and the padded rows of
// everything else it reads.
#include "compiler/codegen/row_bounds.h"

#include <optional>

#include "compiler/ir/dynamic_axes.h"
#include "compiler/ir/padded_rows.h"

namespace gradc {
namespace {

// A buffer whose outermost axis is a dynamic dim alone at its capacity:
// that dim, and the elements of one of its rows.
struct Rows {
  int dim = -1;
  int64_t row = 0;
};

class RowBounds {
 public:
  RowBounds(const ModelIR& m, Program& p) : m_(m), p_(p), axes_(m.graph, m.capacities), padded_(m.capacities.size()) {}

  void run() {
    size_buffer_.assign(m_.capacities.size(), -1);
    for (size_t b = 0; b < p_.buffers.size(); ++b)
      for (size_t d = 0; d < m_.sizes.size(); ++d)
        if (p_.buffers[b].kind == Buffer::Kind::Arg && p_.buffers[b].node == m_.sizes[d])
          size_buffer_[d] = static_cast<int>(b);
    find_rows();
    // Every kernel's decision assumes it is the only writer of what it
    // writes, outside any loop; the entry's results keep every row (the
    // session checks all of them for NaN with check_numerics).
    std::vector<int> writers(p_.buffers.size(), 0);
    std::vector<bool> in_loop(p_.kernels.size(), false);
    for (size_t i = 0; i < p_.kernels.size(); ++i) {
      const Kernel& k = p_.kernels[i];
      if (k.kind == Kernel::Kind::Loop)
        for (int j = static_cast<int>(i); j < k.loop_end; ++j) in_loop[j] = true;
      for (int b : written(k)) ++writers[root_buffer(p_.buffers, b)];
    }
    needed_.assign(p_.buffers.size(), false);
    for (size_t b = 0; b < p_.buffers.size(); ++b)
      needed_[b] = writers[b] > 1 || p_.buffers[b].kind == Buffer::Kind::Arg;
    for (size_t i = p_.kernels.size(); i-- > 0;) {
      Kernel& k = p_.kernels[i];
      if (in_loop[i] || k.node == kNoNode) {
        for (int b : written(k)) needed_[root_buffer(p_.buffers, b)] = true;
        reads(k, {});
        continue;
      }
      switch (k.kind) {
        case Kernel::Kind::MatMul: product(k); break;
        case Kernel::Kind::Elementwise:
        case Kernel::Kind::Reduce:
        case Kernel::Kind::ArgMax: reads(k, bound_rows(k) ? std::vector<size_t>{0} : std::vector<size_t>{}); break;
        default: reads(k, {}); break;
      }
    }
  }

 private:
  PaddedRows& padded(int dim) {
    return padded_[dim] ? *padded_[dim] : padded_[dim].emplace(m_.graph, axes_, dim);
  }

  // The dynamic dim that axis `axis` of `node` holds alone at its capacity, or -1.
  int dim_at(NodeId node, size_t axis) {
    const std::vector<DynAxis>* facts = axes_.of(node);
    if (!facts || axis >= facts->size()) return -1;
    const DynAxis& f = (*facts)[axis];
    if (f.dim < 0 || f.inner != 1 || m_.graph[node].shape[axis].size != m_.capacities[f.dim].second ||
        size_buffer_[f.dim] < 0)
      return -1;
    return f.dim;
  }

  void find_rows() {
    rows_.assign(p_.buffers.size(), Rows{});
    for (size_t b = 0; b < p_.buffers.size(); ++b) {
      const Buffer& buf = p_.buffers[b];
      if (buf.kind == Buffer::Kind::View || buf.node == kNoNode) continue;
      const Node& n = m_.graph[buf.node];
      int dim = n.shape.empty() ? -1 : dim_at(buf.node, 0);
      // (Scratch such as a packed operand names its product's node.)
      if (dim < 0 || buf.elems != numel(n.shape) || buf.dtype != n.dtype) continue;
      rows_[b] = Rows{dim, buf.elems / m_.capacities[dim].second};
    }
  }

  static std::vector<int> written(const Kernel& k) {
    std::vector<int> out;
    if (k.out >= 0) out.push_back(k.out);
    for (const Kernel::Epilogue& e : k.epilogues) out.push_back(e.out);
    if (k.pack_b >= 0) out.push_back(k.pack_b);
    return out;
  }

  // Whether a kernel whose loop dim `d` runs [0, n) of dim `dim`, the
  // others whole, reads through `map` only rows [0, n) of buffer b: d walks
  // b's rows one by one and the other dims stay within a row.
  bool rows_read(const Kernel& k, const Affine& map, int b, size_t d, int dim) const {
    const Rows& r = rows_[b];
    if (dim < 0 || r.dim != dim || map.strides.size() != k.dims.size() || map.step != 0 || map.strides[d] != r.row ||
        k.dims[d] != m_.capacities[dim].second || map.offset < 0)
      return false;
    int64_t reach = map.offset;
    for (size_t j = 0; j < k.dims.size(); ++j) {
      if (j == d) continue;
      if (map.strides[j] < 0) return false;
      reach += map.strides[j] * (k.dims[j] - 1);
    }
    return reach < r.row;
  }

  // Marks the padded rows of what k reads as needed, but where a dim of
  // `bounded` (each running [0, n) of its dynamic dim) reads only the first rows.
  void reads(const Kernel& k, const std::vector<size_t>& bounded) {
    auto read = [&](int buffer, const Affine& map, bool gather) {
      int b = root_buffer(p_.buffers, buffer);
      if (b < 0 || rows_[b].dim < 0) return;
      for (size_t d : bounded)
        if (!gather && rows_read(k, map, b, d, rows_[b].dim)) return;
      needed_[b] = true;
    };
    for (const KExpr& x : k.exprs)
      if (x.kind == KExpr::Kind::Load) read(x.buffer, x.map, !x.args.empty());
    if (k.kind == Kernel::Kind::MatMul) {
      read(k.a, k.a_map, false);
      read(k.b, k.b_map, false);
    }
  }

  // An elementwise kernel, reduction or argmax: dim 0 runs [0, n) when it
  // walks the rows of its output and nothing needs the output's padded rows,
  // or when it walks the rows of a sum's operand that is exactly zero past n.
  bool bound_rows(Kernel& k) {
    if (k.dims.empty() || k.out < 0) return false;
    int dim = -1;
    const Node& n = m_.graph[k.node];
    if (k.out_map.strides.size() != k.dims.size()) return false;
    if (k.out_map.strides[0] != 0) {
      int out = root_buffer(p_.buffers, k.out);
      if (out != k.out || needed_[out] || !rows_read(k, k.out_map, out, 0, rows_[out].dim)) return false;
      dim = rows_[out].dim;
    } else {
      if (k.kind != Kernel::Kind::Reduce || k.reduce_op != Op::ReduceSum || n.op != Op::ReduceSum) return false;
      NodeId x = n.operands[0];
      dim = dim_at(x, 0);
      if (dim < 0 || k.dims[0] != m_.capacities[dim].second || padded(dim).of(x) != Padding::Zero) return false;
    }
    k.rows_size = size_buffer_[dim];
    k.rows_capacity = m_.capacities[dim].second;
    return true;
  }

  void product(Kernel& k) {
    const Node& n = m_.graph[k.node];
    size_t batch = k.dims.size() - 3;
    std::vector<size_t> bounded;
    // A contracted dim, with an operand that is zero past the size.
    NodeId a = n.operands[0], b = n.operands[1];
    int kdim = a != kNoNode && !m_.graph[a].shape.empty() ? dim_at(a, m_.graph[a].shape.size() - 1) : -1;
    if (kdim >= 0 && axes_.of(b) &&
        (padded(kdim).of(a) == Padding::Zero || padded(kdim).of(b) == Padding::Zero)) {
      k.k_size = size_buffer_[kdim];
      bounded.push_back(batch + 2);
    }
    int dim = dim_at(k.node, n.shape.size() - 2);
    if (dim >= 0) {
      // What it stores: its own result (unless in blocks) and each stored epilogue.
      std::vector<std::pair<int, NodeId>> stored;
      if (!k.c_blocks) stored.emplace_back(k.out, k.node);
      for (const Kernel::Epilogue& e : k.epilogues)
        if (!e.internal) stored.emplace_back(e.out, e.node);
      bool fill = false;
      for (const auto& [out, node] : stored) fill = fill || needed_[root_buffer(p_.buffers, out)];
      // A fill writes what every stored result holds past the size: the same for all of them.
      std::optional<Padding> held = fill ? padding_of(dim, stored) : std::nullopt;
      if (!stored.empty() && (!fill || held == Padding::Row0 || held == Padding::Zero)) {
        k.rows_size = size_buffer_[dim];
        k.rows_capacity = m_.capacities[dim].second;
        k.rows_fill = fill;
        k.rows_zero = held == Padding::Zero;
        bounded.push_back(batch);
      }
    }
    reads(k, bounded);
  }

  // What the padded rows of all of `stored` hold, when they all hold the same
  // (and every one is a node of the graph).
  std::optional<Padding> padding_of(int dim, const std::vector<std::pair<int, NodeId>>& stored) {
    std::optional<Padding> first;
    for (const auto& [out, node] : stored) {
      if (node == kNoNode) return std::nullopt;
      Padding s = padded(dim).of(node);
      if (first && s != *first) return std::nullopt;
      first = s;
    }
    return first;
  }

  const ModelIR& m_;
  Program& p_;
  DynamicAxes axes_;
  std::vector<std::optional<PaddedRows>> padded_;
  std::vector<int> size_buffer_;  // the argument that holds each dim's size
  std::vector<Rows> rows_;
  std::vector<bool> needed_;
};

}  // namespace

void plan_row_bounds(const ModelIR& m, Program& p) {
  if (m.capacities.empty() || m.sizes.size() != m.capacities.size()) return;
  RowBounds(m, p).run();
}

}  // namespace gradc
