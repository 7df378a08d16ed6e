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
//
// A row of a buffer is what one index of the dynamic dim selects, wherever
// the dim is among its axes: all of [B, C, H, W]'s C*H*W elements at one b,
// or a convolution's im2col buffer [C*R*S, B*P]'s P columns at one b in each
// of its rows. A kernel's loop dim stops early when it walks those rows one
// by one (`unit` iterations a row) and its other dims stay within a row, or
// step from one block of all rows to the next (Rows::period).
#include "compiler/codegen/row_bounds.h"

#include <optional>
#include <tuple>

#include "compiler/ir/dynamic_axes.h"
#include "compiler/ir/padded_rows.h"

namespace gradc {
namespace {

// A buffer one axis of which holds a dynamic dim (alone, or merged with the
// axes after it by a reshape, B outermost): the element at offset o is in
// row floor((o mod period) / stride) of the dim.
struct Rows {
  int dim = -1;
  int64_t stride = 0;  // elements from one row to the next
  int64_t period = 0;  // stride * capacity: the axes before the dim's repeat all rows
};

// A kernel's loop dim `d` that runs [0, n * unit) of a dynamic dim's size n.
struct Bound {
  size_t d = 0;
  int64_t unit = 1;
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
    // Kernels inside a loop run once per step and keep every row; the
    // entry's results keep every row (the session checks all of them for NaN
    // with check_numerics). A buffer with several writers (a padded copy:
    // zeros, then the interior) is decided at each: `needed` only grows
    // from the last kernel to the first, so an earlier writer sees every
    // read after it.
    std::vector<bool> in_loop(p_.kernels.size(), false);
    for (size_t i = 0; i < p_.kernels.size(); ++i) {
      const Kernel& k = p_.kernels[i];
      if (k.kind == Kernel::Kind::Loop)
        for (int j = static_cast<int>(i); j < k.loop_end; ++j) in_loop[j] = true;
    }
    needed_.assign(p_.buffers.size(), false);
    for (size_t b = 0; b < p_.buffers.size(); ++b) needed_[b] = p_.buffers[b].kind == Buffer::Kind::Arg;
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
        case Kernel::Kind::ArgMax: {
          std::optional<Bound> bound = bound_rows(k);
          reads(k, bound ? std::vector<Bound>{*bound} : std::vector<Bound>{});
          break;
        }
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

  // The dim that axis `axis` of `node` holds (alone or merged, B outermost,
  // the axis exactly its capacity times `inner`), and that inner, or nullopt.
  std::optional<DynAxis> merged_at(NodeId node, size_t axis) {
    const std::vector<DynAxis>* facts = axes_.of(node);
    if (!facts || axis >= facts->size()) return std::nullopt;
    const DynAxis& f = (*facts)[axis];
    if (f.dim < 0 || size_buffer_[f.dim] < 0 ||
        m_.graph[node].shape[axis].size != m_.capacities[f.dim].second * f.inner)
      return std::nullopt;
    return f;
  }

  void find_rows() {
    rows_.assign(p_.buffers.size(), Rows{});
    for (size_t b = 0; b < p_.buffers.size(); ++b) {
      const Buffer& buf = p_.buffers[b];
      if (buf.kind == Buffer::Kind::View || buf.node == kNoNode) continue;
      const Node& n = m_.graph[buf.node];
      const std::vector<DynAxis>* facts = axes_.of(buf.node);
      // (Scratch such as a packed operand names its product's node.)
      if (!facts || facts->size() != n.shape.size() || buf.elems != numel(n.shape) || buf.dtype != n.dtype) continue;
      // One axis with a dynamic dim: with two, a row is not one set of elements.
      int axis = -1, found = 0;
      for (size_t a = 0; a < facts->size(); ++a)
        if ((*facts)[a].dim >= 0) axis = static_cast<int>(a), ++found;
      if (found != 1) continue;
      const DynAxis& f = (*facts)[axis];
      const int64_t capacity = m_.capacities[f.dim].second;
      if (size_buffer_[f.dim] < 0 || n.shape[axis].size % (capacity * f.inner) != 0) continue;
      int64_t after = 1;
      for (size_t a = static_cast<size_t>(axis) + 1; a < n.shape.size(); ++a) after *= n.shape[a].size;
      rows_[b] = Rows{f.dim, f.inner * after, f.inner * after * capacity};
    }
  }

  static std::vector<int> written(const Kernel& k) {
    std::vector<int> out;
    if (k.out >= 0) out.push_back(k.out);
    for (const Kernel::Epilogue& e : k.epilogues) out.push_back(e.out);
    if (k.pack_b >= 0) out.push_back(k.pack_b);
    return out;
  }

  // Whether a kernel whose loop dim `bound.d` runs [0, n * unit) of dim
  // `dim`, the others whole, reaches through `map` only rows [0, n) of
  // buffer b: bound.d steps one row every `unit` iterations, and the other
  // dims either stay within a row or step whole periods (every row of the
  // axes before the dim's).
  bool rows_read(const Kernel& k, const Affine& map, int b, Bound bound, int dim) const {
    const Rows& r = rows_[b];
    const size_t d = bound.d;
    if (dim < 0 || r.dim != dim || map.strides.size() != k.dims.size() || map.step != 0 || map.offset < 0 ||
        bound.unit < 1 || map.strides[d] * bound.unit != r.stride ||
        k.dims[d] != m_.capacities[dim].second * bound.unit)
      return false;
    int64_t reach = map.offset % r.period + map.strides[d] * (bound.unit - 1);
    for (size_t j = 0; j < k.dims.size(); ++j) {
      if (j == d || map.strides[j] % r.period == 0) continue;
      if (map.strides[j] < 0) return false;
      reach += map.strides[j] * (k.dims[j] - 1);
    }
    return reach < r.stride;
  }

  // Marks the padded rows of what k reads as needed, but where a dim of
  // `bounded` reads only the first rows.
  void reads(const Kernel& k, const std::vector<Bound>& bounded) {
    auto read = [&](int buffer, const Affine& map, bool gather) {
      int b = root_buffer(p_.buffers, buffer);
      if (b < 0 || rows_[b].dim < 0) return;
      for (Bound bound : bounded)
        if (!gather && rows_read(k, map, b, bound, rows_[b].dim)) return;
      needed_[b] = true;
    };
    for (const KExpr& x : k.exprs)
      if (x.kind == KExpr::Kind::Load) read(x.buffer, x.map, !x.args.empty());
    if (k.kind == Kernel::Kind::MatMul) {
      read(k.a, k.a_map, false);
      read(k.b, k.b_map, false);
    }
  }

  // An elementwise kernel, reduction or argmax: a dim that walks the rows of
  // its output, when nothing needs the output's padded rows (any dim but
  // argmax's axis; a reduction's dim 0); or dim 0 of a sum over an
  // operand's rows that is exactly zero past n.
  std::optional<Bound> bound_rows(Kernel& k) {
    if (k.dims.empty() || k.out < 0 || k.out_map.strides.size() != k.dims.size()) return std::nullopt;
    std::optional<Bound> bound;
    int dim = -1;
    int out = root_buffer(p_.buffers, k.out);
    if (out == k.out && !needed_[out] && rows_[out].dim >= 0) {
      dim = rows_[out].dim;
      for (size_t d = 0; d < k.dims.size() && !bound; ++d) {
        const int64_t s = k.out_map.strides[d];
        if ((k.kind == Kernel::Kind::Reduce && d != 0) || (k.kind == Kernel::Kind::ArgMax && static_cast<int>(d) == k.axis) ||
            s <= 0 || rows_[out].stride % s != 0)
          continue;
        Bound b{d, rows_[out].stride / s};
        if (rows_read(k, k.out_map, out, b, dim)) bound = b;
      }
    }
    if (!bound && k.out_map.strides[0] == 0) {
      const Node& n = m_.graph[k.node];
      if (k.kind != Kernel::Kind::Reduce || k.reduce_op != Op::ReduceSum || n.op != Op::ReduceSum) return std::nullopt;
      NodeId x = n.operands[0];
      dim = dim_at(x, 0);
      if (dim < 0 || k.dims[0] != m_.capacities[dim].second || padded(dim).of(x) != Padding::Zero) return std::nullopt;
      bound = Bound{0, 1};
    }
    if (!bound) return std::nullopt;
    k.rows_size = size_buffer_[dim];
    k.rows_capacity = m_.capacities[dim].second;
    k.rows_dim = bound->d;
    return bound;
  }

  void product(Kernel& k) {
    const Node& n = m_.graph[k.node];
    size_t batch = k.dims.size() - 3;
    std::vector<Bound> bounded;
    // A contracted dim (B alone or outermost in k), with an operand that is zero past the size.
    NodeId a = n.operands[0], b = n.operands[1];
    std::optional<DynAxis> kf =
        a != kNoNode && !m_.graph[a].shape.empty() ? merged_at(a, m_.graph[a].shape.size() - 1) : std::nullopt;
    if (kf && axes_.of(b) && k.dims[batch + 2] == m_.capacities[kf->dim].second * kf->inner &&
        (padded(kf->dim).of(a) == Padding::Zero || padded(kf->dim).of(b) == Padding::Zero)) {
      k.k_size = size_buffer_[kf->dim];
      k.k_unit = kf->inner;
      bounded.push_back({batch + 2, kf->inner});
    }
    // What it stores: its own result (unless in blocks) and each stored epilogue.
    std::vector<std::tuple<int, NodeId, const Affine*>> stored;
    if (!k.c_blocks) stored.emplace_back(k.out, k.node, &k.out_map);
    for (const Kernel::Epilogue& e : k.epilogues)
      if (!e.internal) stored.emplace_back(e.out, e.node, &e.map);
    bool fill = false;
    for (const auto& [out, node, map] : stored) fill = fill || needed_[root_buffer(p_.buffers, out)];
    int dim = dim_at(k.node, n.shape.size() - 2);
    if (dim >= 0) {
      // A fill writes what every stored result holds past the size: the same for all of them.
      std::optional<Padding> held = fill ? padding_of(dim, stored) : std::nullopt;
      if (!stored.empty() && (!fill || held == Padding::Row0 || held == Padding::Zero)) {
        k.rows_size = size_buffer_[dim];
        k.rows_capacity = m_.capacities[dim].second;
        k.rows_fill = fill;
        k.rows_zero = held == Padding::Zero;
        bounded.push_back({batch, 1});
      }
    }
    // Columns (B outermost in them, as in a convolution's [O, B*P]): the
    // register-tiled form stops at the call's columns; nothing fills the rest.
    std::optional<DynAxis> cf = k.packed && n.shape.size() >= 2 ? merged_at(k.node, n.shape.size() - 1) : std::nullopt;
    if (cf && !fill && !stored.empty()) {
      Bound cols{batch + 1, cf->inner};
      bool exact = true;
      for (const auto& [out, node, map] : stored)
        exact = exact && root_buffer(p_.buffers, out) == out && rows_read(k, *map, out, cols, cf->dim);
      if (exact) {
        k.cols_size = size_buffer_[cf->dim];
        k.cols_unit = cf->inner;
        bounded.push_back(cols);
      }
    }
    reads(k, bounded);
  }

  // What the padded rows of all of `stored` hold, when they all hold the same
  // (and every one is a node of the graph).
  std::optional<Padding> padding_of(int dim, const std::vector<std::tuple<int, NodeId, const Affine*>>& stored) {
    std::optional<Padding> first;
    for (const auto& [out, node, map] : stored) {
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
