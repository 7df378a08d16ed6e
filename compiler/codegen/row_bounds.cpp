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

#include <map>
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

// A kernel's loop dim `d` that runs [0, n * unit) of a dynamic dim's size n,
// or with `periodic`, that in each block of capacity * unit of it (B inside
// the blocks of a time-major stack's T*B rows).
struct Bound {
  size_t d = 0;
  int64_t unit = 1;
  bool periodic = false;
};

// A graph and its analyses: the model's, or the body of a loop (a scan's
// Loop kernel, its steps Affine::step's extent).
struct Graphs {
  const Graph* g = nullptr;
  DynamicAxes* axes = nullptr;
  std::vector<PaddedRows*> padded;  // per dynamic dim; nullptr: not analyzed
  int64_t trip = 0;
};

class RowBounds {
 public:
  RowBounds(const ModelIR& m, Program& p)
      : m_(m), p_(p), axes_(m.graph, m.capacities, /*refuse_mixing=*/false), padded_(m.capacities.size()) {}

  void run() {
    size_buffer_.assign(m_.capacities.size(), -1);
    for (size_t b = 0; b < p_.buffers.size(); ++b)
      for (size_t d = 0; d < m_.sizes.size(); ++d)
        if (p_.buffers[b].kind == Buffer::Kind::Arg && p_.buffers[b].node == m_.sizes[d])
          size_buffer_[d] = static_cast<int>(b);
    main_.g = &m_.graph;
    main_.axes = &axes_;
    for (size_t d = 0; d < padded_.size(); ++d) main_.padded.push_back(&padded_[d].emplace(m_.graph, axes_, static_cast<int>(d)));
    find_bodies();
    find_rows();
    // The entry's results keep every row (the session checks all of them
    // for NaN with check_numerics). A buffer with several writers (a padded
    // copy: zeros, then the interior; a loop's carry) is decided at each:
    // `needed` only grows from the last kernel to the first.
    needed_.assign(p_.buffers.size(), false);
    for (size_t b = 0; b < p_.buffers.size(); ++b) needed_[b] = p_.buffers[b].kind == Buffer::Kind::Arg;
    visit(0, p_.kernels.size());
  }

 private:
  // The analyses of each top-level loop's body (a scan whose body the
  // dynamic-axis analysis followed); a nested loop's kernels keep every row.
  void find_bodies() {
    for (size_t i = 0; i < p_.kernels.size(); ++i) {
      const Kernel& k = p_.kernels[i];
      if (k.kind != Kernel::Kind::Loop || k.node == kNoNode || m_.graph[k.node].op != Op::Scan) continue;
      axes_.of(k.node);
      Graphs b;
      b.axes = axes_.body(k.node);
      if (!b.axes) continue;
      b.g = &m_.graph[k.node].attrs.region->body;
      b.trip = k.dims[0];
      for (PaddedRows* d : main_.padded) {
        d->of(k.node);
        b.padded.push_back(d->body(k.node));
      }
      bodies_[i] = std::move(b);
    }
  }

  const Graphs* body_of(int loop) const {
    auto it = bodies_.find(static_cast<size_t>(loop));
    return it == bodies_.end() ? nullptr : &it->second;
  }

  // Kernels [lo, hi) at one level, from the last: a loop's body is visited
  // until what it needs stops growing (its steps read what later steps
  // wrote), then decided once more with all of it.
  void visit(size_t lo, size_t hi) {
    std::vector<size_t> items;
    for (size_t i = lo; i < hi; i = p_.kernels[i].kind == Kernel::Kind::Loop ? p_.kernels[i].loop_end : i + 1)
      items.push_back(i);
    for (auto it = items.rbegin(); it != items.rend(); ++it) {
      Kernel& k = p_.kernels[*it];
      if (k.kind != Kernel::Kind::Loop) {
        decide(k);
        continue;
      }
      if (!body_of(static_cast<int>(*it))) {
        for (int j = static_cast<int>(*it) + 1; j < k.loop_end; ++j) keep_all(p_.kernels[j]);
        continue;
      }
      for (;;) {
        std::vector<bool> before = needed_;
        visit(*it + 1, static_cast<size_t>(k.loop_end));
        if (needed_ == before) break;
      }
    }
  }

  // A kernel that computes every row: of what it writes, and of what it reads.
  void keep_all(Kernel& k) {
    clear(k);
    for (int b : written(k)) needed_[root_buffer(p_.buffers, b)] = true;
    reads(k, {});
  }

  static void clear(Kernel& k) {
    k.rows_size = -1, k.rows_zero = false, k.rows_fill = true, k.rows_capacity = 0, k.rows_dim = 0;
    k.cols_size = -1, k.cols_unit = 1, k.k_size = -1, k.k_unit = 1;
  }

  void decide(Kernel& k) {
    clear(k);
    const Graphs* in = k.node != kNoNode ? &main_ : body_of(k.body_loop);
    NodeId node = k.node != kNoNode ? k.node : k.body_node;
    if (!in || node == kNoNode) return keep_all(k);
    cur_ = in;
    switch (k.kind) {
      case Kernel::Kind::MatMul: product(k, node); break;
      case Kernel::Kind::ScatterAdd: {
        std::optional<Bound> bound = scatter(k, node);
        reads(k, bound ? std::vector<Bound>{*bound} : std::vector<Bound>{});
        break;
      }
      case Kernel::Kind::Elementwise:
      case Kernel::Kind::Reduce:
      case Kernel::Kind::ArgMax: {
        std::optional<Bound> bound = bound_rows(k, node);
        reads(k, bound ? std::vector<Bound>{*bound} : std::vector<Bound>{});
        break;
      }
      default: reads(k, {}); break;
    }
    cur_ = nullptr;
  }

  // What the padded rows of `node` (in the current graph) hold along `dim`.
  Padding padding(int dim, NodeId node) const {
    PaddedRows* p = cur_->padded[static_cast<size_t>(dim)];
    return p ? p->of(node) : Padding::Other;
  }
  const Node& node_of(NodeId id) const { return (*cur_->g)[id]; }

  // The dim that axis `axis` of `node` holds (alone or merged, B outermost,
  // the axis exactly its capacity times `inner`; with `blocks`, any number
  // of those), and that inner, or nullopt.
  std::optional<DynAxis> merged_at(NodeId node, size_t axis, bool blocks = false) const {
    const std::vector<DynAxis>* facts = cur_->axes->of(node);
    if (!facts || axis >= facts->size()) return std::nullopt;
    const DynAxis& f = (*facts)[axis];
    if (f.dim < 0 || size_buffer_[f.dim] < 0) return std::nullopt;
    const int64_t size = node_of(node).shape[axis].size, block = m_.capacities[f.dim].second * f.inner;
    if (blocks ? size % block != 0 : size != block) return std::nullopt;
    return f;
  }

  void find_rows() {
    rows_.assign(p_.buffers.size(), Rows{});
    for (size_t b = 0; b < p_.buffers.size(); ++b) {
      const Buffer& buf = p_.buffers[b];
      if (buf.kind == Buffer::Kind::View || buf.node == kNoNode) continue;
      const Graphs* in = buf.loop < 0 ? &main_ : body_of(buf.loop);
      if (!in) continue;
      const Node& n = (*in->g)[buf.node];
      const std::vector<DynAxis>* facts = in->axes->of(buf.node);
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

  // The buffer that holds `buffer`'s elements and the map that reaches them
  // there: a view of row t of a loop's stacked tensor is its parent, each
  // step `step` further on. Nullopt for a view of a view.
  std::optional<std::pair<int, Affine>> through(int buffer, const Affine& map) const {
    if (buffer < 0) return std::nullopt;
    const Buffer& buf = p_.buffers[buffer];
    if (buf.kind != Buffer::Kind::View) return std::pair{buffer, map};
    if (buf.parent < 0 || p_.buffers[buf.parent].kind == Buffer::Kind::View) return std::nullopt;
    Affine a = map;
    a.step += buf.step;
    return std::pair{buf.parent, a};
  }

  static std::vector<int> written(const Kernel& k) {
    std::vector<int> out;
    if (k.out >= 0) out.push_back(k.out);
    for (const Kernel::Epilogue& e : k.epilogues) out.push_back(e.out);
    if (k.pack_b >= 0) out.push_back(k.pack_b);
    if (k.k_segments > 1) out.push_back(k.partials);
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
    if (dim < 0 || r.dim != dim || map.strides.size() != k.dims.size() || map.offset < 0 || bound.unit < 1 ||
        map.strides[d] * bound.unit != r.stride)
      return false;
    const int64_t block = m_.capacities[dim].second * bound.unit;
    if ((bound.periodic ? k.dims[d] % block : k.dims[d] - block) != 0) return false;
    // (A block further along d is a period further on: its stride times
    // capacity * unit is the row's stride times the capacity.)
    int64_t reach = map.offset % r.period + map.strides[d] * (bound.unit - 1);
    // (The loop's step t, in a loop body, is one more dim.)
    if (map.step % r.period != 0) {
      if (map.step < 0 || !cur_ || cur_->trip < 1) return false;
      reach += map.step * (cur_->trip - 1);
    }
    for (size_t j = 0; j < k.dims.size(); ++j) {
      if (j == d || map.strides[j] % r.period == 0) continue;
      if (map.strides[j] < 0) return false;
      reach += map.strides[j] * (k.dims[j] - 1);
    }
    return reach < r.stride;
  }

  // Whether product k, gathering B from buffer b (Kernel::b_gather), reaches
  // only rows [0, n) of b: a bounded dim (n, or k) whose first digit steps
  // one row of b per `unit` iterations, every other digit of B's index
  // staying within a row (a convolution's windows of its padded input, with
  // the images outermost in the columns of the forward product and in k of
  // the weight gradient). The last register tile of a column bound reads a
  // few columns past n * unit; their results are past the bound too.
  bool gathered_rows_read(const Kernel& k, int b, Bound bound) const {
    const Rows& r = rows_[b];
    const size_t batch = k.dims.size() - 3;
    if (bound.periodic || (bound.d != batch + 1 && bound.d != batch + 2)) return false;
    const Kernel::Digits& walk = bound.d == batch + 1 ? k.b_n : k.b_k;
    const Kernel::Digits& other = bound.d == batch + 1 ? k.b_k : k.b_n;
    if (walk.radix.empty() || walk.stride[0] != r.stride || walk.radix[0] != m_.capacities[r.dim].second)
      return false;
    int64_t unit = 1, reach = walk.offset + other.offset;
    for (size_t j = 1; j < walk.radix.size(); ++j) unit *= walk.radix[j];
    if (unit != bound.unit || reach < 0) return false;
    auto add = [&](const Kernel::Digits& d, size_t from) {
      for (size_t j = from; j < d.radix.size(); ++j) {
        if (d.stride[j] < 0) return false;
        reach += d.stride[j] * (d.radix[j] - 1);
      }
      return true;
    };
    return add(walk, 1) && add(other, 0) && reach < r.stride;
  }

  // Marks the padded rows of what k reads as needed, but where a dim of
  // `bounded` reads only the first rows.
  void reads(const Kernel& k, const std::vector<Bound>& bounded) {
    auto read = [&](int buffer, const Affine& map, bool gather) {
      auto at = through(buffer, map);
      int b = at ? at->first : root_buffer(p_.buffers, buffer);
      if (b < 0 || rows_[b].dim < 0) return;
      for (Bound bound : bounded)
        if (at && !gather && rows_read(k, at->second, b, bound, rows_[b].dim)) return;
      needed_[b] = true;
    };
    for (const KExpr& x : k.exprs)
      if (x.kind == KExpr::Kind::Load) read(x.buffer, x.map, !x.args.empty());
    if (k.kind == Kernel::Kind::MatMul) {
      read(k.a, k.a_map, false);
      if (!k.b_gather) return read(k.b, k.b_map, false);
      int b = root_buffer(p_.buffers, k.b);
      if (b < 0 || rows_[b].dim < 0) return;
      for (Bound bound : bounded)
        if (k.b == b && gathered_rows_read(k, b, bound)) return;
      needed_[b] = true;
    }
  }

  // An elementwise kernel, reduction or argmax: a dim that walks the rows of
  // its output, when nothing needs the output's padded rows (any dim but
  // argmax's axis; a reduction's dim 0); or dim 0 of a sum over an
  // operand's rows that is exactly zero past n.
  std::optional<Bound> bound_rows(Kernel& k, NodeId node) {
    if (k.dims.empty() || k.out < 0 || k.out_map.strides.size() != k.dims.size()) return std::nullopt;
    std::optional<Bound> bound;
    int dim = -1;
    auto out = through(k.out, k.out_map);
    if (out && !needed_[out->first] && rows_[out->first].dim >= 0) {
      const Rows& r = rows_[out->first];
      dim = r.dim;
      // A dim that walks all the rows once, else one that walks them in
      // blocks (B inside another axis: a time-major sequence's T*B rows).
      for (bool periodic : {false, true})
        for (size_t d = 0; d < k.dims.size() && !bound; ++d) {
          const int64_t s = out->second.strides[d];
          if ((k.kind == Kernel::Kind::Reduce && d != 0) ||
              (k.kind == Kernel::Kind::ArgMax && static_cast<int>(d) >= k.axis &&
               static_cast<int>(d) < k.axis + k.axis_dims) ||
              s <= 0 || r.stride % s != 0)
            continue;
          Bound b{d, r.stride / s, periodic};
          if ((!periodic || k.dims[d] != m_.capacities[dim].second * b.unit) && rows_read(k, out->second, out->first, b, dim))
            bound = b;
        }
    }
    // In blocks, the kernel runs every row (no emitter stops a dim in
    // blocks), but each row of its output reads only that row of what it
    // reads: what it computes past n in a block comes from rows nobody
    // needs and goes to rows nobody reads.
    if (bound && bound->periodic) return bound;
    if (!bound && k.out_map.strides[0] == 0) {
      const Node& n = node_of(node);
      if (k.kind != Kernel::Kind::Reduce || k.reduce_op != Op::ReduceSum || n.op != Op::ReduceSum) return std::nullopt;
      NodeId x = n.operands[0];
      std::optional<DynAxis> f = node_of(x).shape.empty() ? std::nullopt : merged_at(x, 0);
      if (!f || k.dims[0] != m_.capacities[f->dim].second * f->inner || padding(f->dim, x) != Padding::Zero)
        return std::nullopt;
      dim = f->dim;
      bound = Bound{0, f->inner};
    }
    if (!bound) return std::nullopt;
    k.rows_size = size_buffer_[dim];
    k.rows_capacity = m_.capacities[dim].second;
    k.rows_dim = bound->d;
    return bound;
  }

  // An embedding's gradient adds rows of g into its table: the rows of g's
  // dynamic dim past n add nothing when g is zero there (a cotangent), so
  // the kernel's dim along it (its dims are g's axes) stops at n.
  std::optional<Bound> scatter(Kernel& k, NodeId node) {
    const Node& n = node_of(node);
    if (n.op != Op::EmbeddingGrad || n.operands.size() != 2) return std::nullopt;
    NodeId g = n.operands[1];
    if (node_of(g).shape.size() != k.dims.size()) return std::nullopt;
    for (size_t a = 0; a + 1 < k.dims.size(); ++a) {
      std::optional<DynAxis> f = merged_at(g, a);
      if (!f) continue;
      if (k.dims[a] != m_.capacities[f->dim].second * f->inner || padding(f->dim, g) != Padding::Zero) return std::nullopt;
      k.rows_size = size_buffer_[f->dim];
      k.rows_capacity = m_.capacities[f->dim].second;
      k.rows_dim = a;
      return Bound{a, f->inner};
    }
    return std::nullopt;
  }

  void product(Kernel& k, NodeId node) {
    const Node& n = node_of(node);
    size_t batch = k.dims.size() - 3;
    std::vector<Bound> bounded;
    // A contracted dim (B alone or outermost in k), with an operand that is zero past the size.
    NodeId a = n.operands[0], b = n.operands[1];
    // (Or B inside k's blocks: a time-major [T*B, H] stack's rows, in a
    // recurrent layer's weight gradient.)
    std::optional<DynAxis> kf = a != kNoNode && !node_of(a).shape.empty()
                                    ? merged_at(a, node_of(a).shape.size() - 1, /*blocks=*/true)
                                    : std::nullopt;
    if (kf && cur_->axes->of(b) && k.dims[batch + 2] == node_of(a).shape.back().size &&
        (padding(kf->dim, a) == Padding::Zero || padding(kf->dim, b) == Padding::Zero)) {
      const int64_t block = m_.capacities[kf->dim].second * kf->inner;
      k.k_size = size_buffer_[kf->dim];
      k.k_segments = 1;  // (its partials buffer is then never used, and takes no memory)
      k.k_unit = kf->inner;
      k.k_period = k.dims[batch + 2] == block ? 0 : block;
      bounded.push_back({batch + 2, kf->inner, k.k_period != 0});
    }
    // What it stores: its own result (unless in blocks) and each stored epilogue.
    std::vector<std::tuple<int, NodeId, const Affine*>> stored;
    const bool in_body = k.node == kNoNode;
    if (!k.c_blocks) stored.emplace_back(k.out, node, &k.out_map);
    for (const Kernel::Epilogue& e : k.epilogues)
      if (!e.internal) stored.emplace_back(e.out, in_body ? e.body_node : e.node, &e.map);
    bool fill = false;
    for (const auto& [out, stored_node, map] : stored) {
      auto at = through(out, *map);
      fill = fill || !at || needed_[at->first];
    }
    // Rows (B alone, or outermost in them: a [B*T, V] classifier over a
    // batch-first sequence, each row of B its T rows). With B inside blocks
    // of the rows (a time-major [T*B, V] one), every row is computed, each
    // from its own row of A: A's rows past n in each block are not needed.
    std::optional<DynAxis> rf =
        n.shape.size() >= 2 ? merged_at(node, n.shape.size() - 2, /*blocks=*/true) : std::nullopt;
    if (rf && k.dims[batch] != m_.capacities[rf->dim].second * rf->inner) {
      if (!fill && !stored.empty()) bounded.push_back({batch, rf->inner, /*periodic=*/true});
    } else if (rf) {
      const int dim = rf->dim;
      // A fill writes what every stored result holds past the size: the same
      // for all of them (and only into buffers of their own, not views; rows
      // of B alone, whose row 0 it copies).
      // (Other where they differ; None when nothing is filled.)
      const Padding held = fill ? padding_of(dim, stored).value_or(Padding::Other) : Padding::None;
      bool own = rf->inner == 1;
      for (const auto& [out, stored_node, map] : stored) own = own && p_.buffers[out].kind != Buffer::Kind::View;
      if (!stored.empty() && (!fill || (own && (held == Padding::Row0 || held == Padding::Zero)))) {
        k.rows_size = size_buffer_[dim];
        k.rows_capacity = m_.capacities[dim].second;
        k.rows_fill = fill;
        k.rows_zero = held == Padding::Zero;
        bounded.push_back({batch, rf->inner});
      }
    }
    // Columns (B outermost in them, as in a convolution's [O, B*P]): the
    // register-tiled form stops at the call's columns; nothing fills the rest.
    std::optional<DynAxis> cf = k.packed && n.shape.size() >= 2 ? merged_at(node, n.shape.size() - 1) : std::nullopt;
    if (cf && !fill && !stored.empty()) {
      Bound cols{batch + 1, cf->inner};
      bool exact = true;
      for (const auto& [out, stored_node, map] : stored) {
        auto at = through(out, *map);
        exact = exact && at && rows_read(k, at->second, at->first, cols, cf->dim);
      }
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
      Padding s = padding(dim, node);
      if (first && s != *first) return std::nullopt;
      first = s;
    }
    return first;
  }

  const ModelIR& m_;
  Program& p_;
  DynamicAxes axes_;
  std::vector<std::optional<PaddedRows>> padded_;
  Graphs main_;
  std::map<size_t, Graphs> bodies_;  // by Loop kernel
  const Graphs* cur_ = nullptr;       // the graph of the kernel being decided
  std::vector<int> size_buffer_;      // the argument that holds each dim's size
  std::vector<Rows> rows_;
  std::vector<bool> needed_;
};

}  // namespace

void plan_row_bounds(const ModelIR& m, Program& p) {
  if (m.capacities.empty() || m.sizes.size() != m.capacities.size()) return;
  RowBounds(m, p).run();
}

}  // namespace gradc
