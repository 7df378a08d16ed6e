// Lowering the graph to kernels (see lowering.h).
#include "compiler/codegen/lowering.h"

#include <map>

#include <fmt/format.h>

#include <limits>

#include "compiler/ir/shape_rules.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/messages.h"

namespace gradc {
namespace {

using Sizes = std::vector<int64_t>;

// The most expressions a product's epilogues evaluate (see fuse_epilogue).
constexpr size_t kMaxEpilogueExprs = 4 * kMaxFusedNodes;

// A node's multi-index as affine functions of a kernel's loop indices:
// index[k] = c[k] + sum_d a[k][d] * i_d.
struct IdxMap {
  std::vector<Sizes> a;
  Sizes c;

  static IdxMap identity(size_t rank) {
    IdxMap m;
    m.a.assign(rank, Sizes(rank, 0));
    m.c.assign(rank, 0);
    for (size_t k = 0; k < rank; ++k) m.a[k][k] = 1;
    return m;
  }
  size_t loop_rank() const { return a.empty() ? 0 : a[0].size(); }
};

// The element index, in a row-major buffer of `shape`, of the map's position.
Affine flatten(const IdxMap& m, const Sizes& shape, size_t loop_rank) {
  Sizes st = row_major_strides(shape);
  Affine r;
  r.strides.assign(loop_rank, 0);
  for (size_t k = 0; k < shape.size(); ++k) {
    r.offset += st[k] * m.c[k];
    for (size_t d = 0; d < loop_rank; ++d) r.strides[d] += st[k] * m.a[k][d];
  }
  return r;
}

// NumPy broadcasting: the operand's index from the result's.
IdxMap broadcast_map(const IdxMap& m, const Sizes& out, const Sizes& in, size_t loop_rank) {
  IdxMap r;
  size_t lead = out.size() - in.size();
  for (size_t k = 0; k < in.size(); ++k) {
    if (in[k] == 1 && out[lead + k] != 1) {
      r.a.push_back(Sizes(loop_rank, 0));
      r.c.push_back(0);
    } else {
      r.a.push_back(m.a[lead + k]);
      r.c.push_back(m.c[lead + k]);
    }
  }
  return r;
}

class Lowering {
 public:
  Lowering(const Graph& g, const Fusion& f, Program& p) : g_(g), f_(f), p_(p) {}

  void run() {
    epilogued_.assign(g_.size(), false);
    assign_args();
    find_scan_outs();
    for (NodeId n : f_.order) emit_node(n);
    emit_root_copies();
  }

  // A loop body (g_ is a Region's graph): its argument leaves read the
  // buffers `bound`; its results stay in buffers of their own (result()).
  void run_body(const std::vector<std::pair<NodeId, int>>& bound) {
    epilogued_.assign(g_.size(), false);
    buf_.assign(g_.size(), -1);
    for (auto [leaf, b] : bound) buf_[leaf] = b;
    find_scan_outs();
    for (NodeId n : f_.order) emit_node(n);
  }

  // Copies node v into buffer `out` at out_map (row-major, maybe per step).
  void copy(NodeId v, int out, Affine out_map) {
    Kernel k = kernel(Kernel::Kind::Elementwise, v, shape(v));
    k.out = out;
    k.out_map = std::move(out_map);
    k.root = expr(k, v, IdxMap::identity(shape(v).size()), g_[v].op == Op::Constant);
    p_.kernels.push_back(std::move(k));
  }

 private:
  Sizes shape(NodeId n) const { return sizes(g_[n].shape); }

  int new_buffer(Buffer::Kind kind, NodeId n, std::string name) {
    Buffer b;
    b.kind = kind;
    b.dtype = g_[n].dtype;
    b.elems = numel(g_[n].shape);
    b.node = n;
    b.name = std::move(name);
    p_.buffers.push_back(b);
    return static_cast<int>(p_.buffers.size()) - 1;
  }

  // Arguments: the reads in order, then the produced values in order.
  void assign_args() {
    buf_.assign(g_.size(), -1);
    int arg = 0;
    for (const EntryValue& v : p_.sig.reads) {
      int b = new_buffer(Buffer::Kind::Arg, v.node, v.name);
      p_.buffers[b].arg = arg++;
      buf_[v.node] = b;
    }
    for (const EntryValue& v : p_.sig.produces) {
      int b = new_buffer(Buffer::Kind::Arg, v.node, v.name);
      p_.buffers[b].arg = arg++;
      root_bufs_.push_back(b);
      // The node is computed straight into its output, unless something else holds it.
      if (buf_[v.node] == -1 && g_[v.node].op != Op::Constant) buf_[v.node] = b;
      else copies_.push_back(static_cast<int>(root_bufs_.size()) - 1);
    }
  }

  // Working memory of a kernel that no node owns (packing buffers).
  int scratch(DType dtype, int64_t elems, std::string name) {
    Buffer b;
    b.kind = Buffer::Kind::Arena;
    b.dtype = dtype;
    b.elems = elems;
    b.name = std::move(name);
    p_.buffers.push_back(b);
    return static_cast<int>(p_.buffers.size()) - 1;
  }

  // A node's buffer. A reshape of a buffer is a view: it shares its operand's
  // (contiguous, row-major) buffer, unless it is produced (then it has an
  // output of its own). A reshape of a fused operand (a split, see
  // split_reshape) that needs a buffer gets one of its own.
  int buffer_of(NodeId n) {
    if (buf_[n] != -1) return buf_[n];
    const Node& node = g_[n];
    if (node.op == Op::Reshape && g_[node.operands[0]].op != Op::Constant && f_.mat[node.operands[0]])
      return buf_[n] = buffer_of(node.operands[0]);
    return buf_[n] = new_buffer(Buffer::Kind::Arena, n, fmt::format("%{}", n));
  }

  // ---- expressions ----

  int add_expr(Kernel& k, KExpr e) {
    k.exprs.push_back(std::move(e));
    return static_cast<int>(k.exprs.size()) - 1;
  }

  int load(Kernel& k, NodeId n, const IdxMap& map) {
    KExpr e;
    e.kind = KExpr::Kind::Load;
    e.dtype = g_[n].dtype;
    e.buffer = buffer_of(n);
    e.map = flatten(map, shape(n), map.loop_rank());
    return add_expr(k, e);
  }

  // The value of node n at the position `map`, fused where possible.
  int expr(Kernel& k, NodeId n, const IdxMap& map, bool as_root = false) {
    const Node& node = g_[n];
    size_t lr = map.loop_rank();
    if (node.op == Op::Constant) {
      KExpr e;
      e.kind = KExpr::Kind::Const;
      e.dtype = node.dtype;
      e.value = node.attrs.value;
      return add_expr(k, e);
    }
    if (f_.mat[n] && !as_root) return load(k, n, map);
    const std::vector<NodeId>& o = node.operands;
    switch (op_kind(node.op)) {
      case OpKind::Unary:
      case OpKind::Cast:
      case OpKind::Binary:
      case OpKind::Compare:
      case OpKind::Select: {
        KExpr e;
        e.kind = KExpr::Kind::Op;
        e.op = node.op;
        e.dtype = node.dtype;
        for (NodeId x : o) e.args.push_back(expr(k, x, broadcast_map(map, shape(n), shape(x), lr)));
        return add_expr(k, e);
      }
      case OpKind::BroadcastTo: return expr(k, o[0], broadcast_map(map, shape(n), shape(o[0]), lr));
      case OpKind::Transpose: {
        IdxMap in = map;
        for (size_t j = 0; j < node.attrs.ints.size(); ++j) {
          in.a[node.attrs.ints[j]] = map.a[j];
          in.c[node.attrs.ints[j]] = map.c[j];
        }
        return expr(k, o[0], in);
      }
      case OpKind::Slice: {
        IdxMap in = map;
        size_t axis = static_cast<size_t>(node.attrs.ints[0]);
        if (node.op == Op::Reverse) {  // index size - 1 - i along the axis
          in.c[axis] = node.attrs.ints[2] - 1 - map.c[axis];
          for (int64_t& a : in.a[axis]) a = -a;
        } else {
          in.c[axis] += node.attrs.ints[1];
        }
        return expr(k, o[0], in);
      }
      case OpKind::Reshape: {
        if (g_[o[0]].op == Op::Constant) return expr(k, o[0], map);
        if (f_.pooled[n]) return expr(k, o[0], window_digits(k, n, map));
        if (!f_.mat[o[0]]) {
          // A split of a fused operand: its index is affine in the reshape's.
          auto coef = split_reshape(shape(o[0]), shape(n));
          if (!coef) internal_error(__FILE__, __LINE__, "a fused reshape merges axes");
          IdxMap in;
          for (const Sizes& row : *coef) {
            Sizes a(lr, 0);
            int64_t c = 0;
            for (size_t j = 0; j < row.size(); ++j) {
              if (row[j] == 0) continue;
              c += row[j] * map.c[j];
              for (size_t q = 0; q < lr; ++q) a[q] += row[j] * map.a[j][q];
            }
            in.a.push_back(std::move(a));
            in.c.push_back(c);
          }
          return expr(k, o[0], in);
        }
        // The operand is a contiguous buffer: read it at the flat index.
        KExpr e;
        e.kind = KExpr::Kind::Load;
        e.dtype = node.dtype;
        e.buffer = buffer_of(o[0]);
        e.map = flatten(map, shape(n), lr);
        return add_expr(k, e);
      }
      case OpKind::OneHot: {
        // one_hot(labels)[..., c] = (labels[...] == c)
        IdxMap lab = map;
        lab.a.pop_back();
        lab.c.pop_back();
        KExpr idx;
        idx.kind = KExpr::Kind::Index;
        idx.dtype = DType::I32;
        idx.map = Affine{map.c.back(), map.a.back()};
        KExpr eq;
        eq.kind = KExpr::Kind::Op;
        eq.op = Op::Eq;
        eq.dtype = DType::F32;
        eq.args = {load(k, o[0], lab), add_expr(k, idx)};
        return add_expr(k, eq);
      }
      case OpKind::Window: {
        if (node.op == Op::Fold) break;  // materialized by fusion.cpp
        // x[n, c, o*stride + k*dilation ..] at window position (n, c, k.., o..)
        size_t d = node.attrs.ints.size() / 4;
        IdxMap in;
        for (size_t r : {0, 1}) in.a.push_back(map.a[r]), in.c.push_back(map.c[r]);
        for (size_t j = 0; j < d; ++j) {
          int64_t stride = node.attrs.ints[4 * j + 1], dilation = node.attrs.ints[4 * j + 2];
          Sizes row(lr);
          for (size_t q = 0; q < lr; ++q) row[q] = dilation * map.a[2 + j][q] + stride * map.a[2 + d + j][q];
          in.a.push_back(row);
          in.c.push_back(dilation * map.c[2 + j] + stride * map.c[2 + d + j]);
        }
        return expr(k, o[0], in);
      }
      case OpKind::Gather: {
        // embedding(ids, table)[..., d] = table[ids[...], d]: a load at a run-time row
        IdxMap ids = map;
        ids.a.pop_back();
        ids.c.pop_back();
        KExpr e;
        e.kind = KExpr::Kind::Load;
        e.dtype = node.dtype;
        e.buffer = buffer_of(o[1]);
        e.map = Affine{map.c.back(), map.a.back()};
        e.row_stride = g_[o[1]].shape[1].size;
        e.args = {expr(k, o[0], ids)};
        return add_expr(k, e);
      }
      case OpKind::Random: {
        // Philox at the element's row-major index; args: the seed's two words, the step.
        KExpr e;
        e.kind = KExpr::Kind::Op;
        e.op = node.op;
        e.dtype = node.dtype;
        e.value = static_cast<double>(node.attrs.ints[0]);
        e.map = flatten(map, shape(n), lr);
        for (int64_t word : {0, 1}) {
          KExpr w;
          w.kind = KExpr::Kind::Load;
          w.dtype = DType::I32;
          w.buffer = buffer_of(o[0]);
          w.map = Affine{word, Sizes(lr, 0)};
          e.args.push_back(add_expr(k, w));
        }
        e.args.push_back(expr(k, o[1], broadcast_map(map, shape(n), shape(o[1]), lr)));
        return add_expr(k, e);
      }
      // Materialized by fusion.cpp, so never evaluated inline.
      case OpKind::ScatterAdd:
      case OpKind::Scan:
      case OpKind::ScanOut:
      case OpKind::Leaf:
      case OpKind::Reduce:
      case OpKind::ArgMax:
      case OpKind::MatMul:
      case OpKind::Concat:
      case OpKind::Pad:
        break;
    }
    internal_error(__FILE__, __LINE__, fmt::format("cannot fuse a '{}' node", op_name(node.op)));
  }

  // The operand's index of a pooled reshape r (Fusion::pooled) at `map`: the
  // merged axis's index is a mixed-radix number whose digits are the
  // operand's window axes. Its reductions loop over those axes (see
  // pooled_window), so each term of the index is one digit's (its
  // coefficient a multiple of the digit's weight, within the digit's range).
  IdxMap window_digits(const Kernel& k, NodeId r, const IdxMap& map) {
    const MergedAxis m = *merged_axis(shape(g_[r].operands[0]), shape(r));
    const size_t a = static_cast<size_t>(m.axis), q = m.radices.size(), lr = map.loop_rank();
    const Sizes weight = row_major_strides(m.radices);
    IdxMap in;
    for (size_t i = 0; i < a; ++i) in.a.push_back(map.a[i]), in.c.push_back(map.c[i]);
    std::vector<Sizes> digit(q, Sizes(lr, 0));
    Sizes top(q, 0);  // each digit's largest value
    for (size_t d = 0; d < lr; ++d) {
      int64_t c = map.a[a][d];
      if (c == 0) continue;
      size_t j = 0;
      while (j < q && (c < 0 || c % weight[j] != 0)) ++j;
      if (j == q) internal_error(__FILE__, __LINE__, "a pooled window's index is not its digits");
      digit[j][d] = c / weight[j];
      top[j] += c / weight[j] * (k.dims[d] - 1);
    }
    int64_t rest = map.c[a];
    for (size_t j = 0; j < q; ++j) {
      int64_t c = rest / weight[j];
      rest %= weight[j];
      top[j] += c;
      if (c < 0 || top[j] >= m.radices[j]) internal_error(__FILE__, __LINE__, "a pooled window's digit overflows");
      in.a.push_back(digit[j]);
      in.c.push_back(c);
    }
    for (size_t i = a + 1; i < map.a.size(); ++i) in.a.push_back(map.a[i]), in.c.push_back(map.c[i]);
    return in;
  }

  // For a reduction along `axis` of node x: the window axes of the pooled
  // reshape it reads through views (Fusion::pooled), which its kernel loops
  // over in place of the axis; nullopt when it reads none.
  std::optional<Sizes> pooled_window(NodeId x, int64_t axis) {
    while (!f_.mat[x] && g_[x].op != Op::Constant) {
      const Node& node = g_[x];
      if (node.op == Op::Reshape && f_.pooled[x]) {
        std::optional<MergedAxis> m = merged_axis(shape(node.operands[0]), shape(x));
        if (!m || m->axis != axis) return std::nullopt;
        return m->radices;
      }
      if (node.op == Op::Reshape && node.shape == g_[node.operands[0]].shape) {
        x = node.operands[0];
      } else if (node.op == Op::Transpose) {
        axis = node.attrs.ints[static_cast<size_t>(axis)];
        x = node.operands[0];
      } else {
        return std::nullopt;
      }
    }
    return std::nullopt;
  }

  Kernel kernel(Kernel::Kind kind, NodeId n, Sizes dims) {
    Kernel k;
    k.kind = kind;
    k.node = n;
    k.loc = g_[n].loc;
    k.dims = std::move(dims);
    return k;
  }

  // Writes node n (fully fused) into buffer `out` at `offset` + the given strides.
  void emit_elementwise(NodeId n, NodeId value, int out, Affine out_map) {
    Kernel k = kernel(Kernel::Kind::Elementwise, n, shape(value));
    k.out = out;
    k.out_map = std::move(out_map);
    k.root = expr(k, value, IdxMap::identity(k.dims.size()), value == n);
    p_.kernels.push_back(std::move(k));
  }

  Affine row_major_map(NodeId n) {
    return Affine{0, row_major_strides(shape(n))};
  }

  void emit_node(NodeId n) {
    const Node& node = g_[n];
    OpKind kind = op_kind(node.op);
    if (node.op == Op::OneHot && !argmax_in_range(node.operands[0], node.attrs.ints[0]))
      emit_check(n, node.attrs.ints[0], diag::check_class_id_range(node.attrs.ints[0]));
    if (node.op == Op::Embedding || node.op == Op::EmbeddingGrad) {
      int64_t rows = node.op == Op::Embedding ? g_[node.operands[1]].shape[0].size : node.attrs.ints[0];
      emit_check(n, rows, diag::check_embedding_id_range(rows));
    }
    if (!f_.mat[n] || kind == OpKind::Leaf || epilogued_[n]) return;
    if (kind == OpKind::Scan) return emit_scan(n);
    if (kind == OpKind::ScanOut) return;  // written by its scan
    int out = buffer_of(n);
    const std::vector<NodeId>& o = node.operands;
    if (node.op == Op::Reshape && out == buffer_of(o[0])) return;  // a view, nothing to copy
    switch (kind) {
      case OpKind::Reduce:
      case OpKind::ArgMax: {
        Sizes in = shape(o[0]);
        bool argmax = kind == OpKind::ArgMax;
        Sizes kept = in;
        for (int64_t a : node.attrs.ints) kept[a] = 1;
        Sizes out_strides = row_major_strides(kept);
        for (int64_t a : node.attrs.ints) out_strides[a] = 0;
        // A pool's window read in place (Fusion::pooled): the loops run over
        // its axes instead of the merged one, at their weights.
        std::optional<Sizes> window;
        if (node.attrs.ints.size() == 1) window = pooled_window(o[0], node.attrs.ints[0]);
        IdxMap at = IdxMap::identity(in.size());
        Sizes dims = in;
        if (window) {
          const size_t a = static_cast<size_t>(node.attrs.ints[0]), q = window->size();
          dims.erase(dims.begin() + static_cast<long>(a));
          dims.insert(dims.begin() + static_cast<long>(a), window->begin(), window->end());
          out_strides.insert(out_strides.begin() + static_cast<long>(a), q - 1, 0);
          at = IdxMap{};
          const Sizes weight = row_major_strides(*window);
          for (size_t i = 0; i < in.size(); ++i) {
            Sizes row(dims.size(), 0);
            if (i < a) row[i] = 1;
            else if (i > a) row[i + q - 1] = 1;
            else for (size_t j = 0; j < q; ++j) row[a + j] = weight[j];
            at.a.push_back(row);
            at.c.push_back(0);
          }
        }
        Kernel k = kernel(argmax ? Kernel::Kind::ArgMax : Kernel::Kind::Reduce, n, dims);
        k.out = out;
        k.out_map = Affine{0, out_strides};
        k.reduce_op = node.op;
        k.init = node.op == Op::ReduceSum   ? 0.0
                 : node.op == Op::ReduceMax ? -std::numeric_limits<double>::infinity()
                                            : std::numeric_limits<double>::infinity();
        if (argmax) k.axis = static_cast<int>(node.attrs.ints[0]);
        if (window) {  // (a maximum's window too: emitted as the argmax's, see KernelEmitter::argmax)
          k.axis = static_cast<int>(node.attrs.ints[0]);
          k.axis_dims = static_cast<int>(window->size());
        }
        k.root = expr(k, o[0], at);
        p_.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::MatMul: emit_matmul(n, out); break;
      case OpKind::Concat: {
        Sizes os = row_major_strides(shape(n));
        int64_t axis = node.attrs.ints[0], start = 0;
        for (NodeId x : o) {
          emit_elementwise(n, x, out, Affine{start * os[axis], os});
          start += g_[x].shape[axis].size;
        }
        break;
      }
      case OpKind::Pad: {
        Sizes os = row_major_strides(shape(n));
        Kernel fill = kernel(Kernel::Kind::Elementwise, n, shape(n));
        fill.out = out;
        fill.out_map = Affine{0, os};
        KExpr zero;
        zero.dtype = node.dtype;
        fill.root = add_expr(fill, zero);
        p_.kernels.push_back(std::move(fill));
        // The pads it is made of (Fusion: a pad of a pad) add their offsets:
        // their operand is copied once, into the middle.
        NodeId src = o[0];
        int64_t offset = node.attrs.ints[1] * os[node.attrs.ints[0]];
        for (; op_kind(g_[src].op) == OpKind::Pad && !f_.mat[src]; src = g_[src].operands[0])
          offset += g_[src].attrs.ints[1] * os[g_[src].attrs.ints[0]];
        emit_elementwise(n, src, out, Affine{offset, os});
        break;
      }
      case OpKind::Window:
        if (node.op == Op::Fold) emit_fold(n, out);
        else emit_elementwise(n, n, out, row_major_map(n));
        break;
      case OpKind::ScatterAdd: emit_scatter_add(n, out); break;
      case OpKind::Leaf:  // (leaves have no kernel: returned above)
      case OpKind::Unary:
      case OpKind::Cast:
      case OpKind::Binary:
      case OpKind::Compare:
      case OpKind::Select:
      case OpKind::Reshape:
      case OpKind::Transpose:
      case OpKind::BroadcastTo:
      case OpKind::Slice:
      case OpKind::OneHot:
      case OpKind::Gather:
      case OpKind::Random:
        emit_elementwise(n, n, out, row_major_map(n));
        break;
      case OpKind::Scan:
      case OpKind::ScanOut: break;  // (returned above)
    }
  }

  // ---- loops ----

  void find_scan_outs() {
    scan_outs_.clear();
    for (NodeId n : f_.order)
      if (g_[n].op == Op::ScanOut) scan_outs_[g_[n].operands[0]].push_back(n);
  }

  // An operand's buffer; a constant gets one, filled before the loop.
  int operand_buffer(NodeId o, const std::string& name) {
    if (g_[o].op != Op::Constant) return buffer_of(o);
    int b = scratch(g_[o].dtype, numel(g_[o].shape), name);
    copy(o, b, row_major_map(o));
    return b;
  }

  // scan: a Loop kernel whose body is the region lowered in place. The
  // carries live in the buffers of the scan's final carries (scratch when
  // those are not used), set from `init` before the loop; each step reads
  // its slice of every xs through a view (Buffer::Kind::View: row t of the
  // scanned tensor), runs the body's kernels, which compute its outputs
  // straight into their rows of the stacks (views too), and last copies the
  // new carries over the old ones.
  void emit_scan(NodeId n) {
    const Node& node = g_[n];
    const Region& r = *node.attrs.region;
    const ScanAttrs sa = ScanAttrs::of(node.attrs);
    const int64_t m = sa.carries, k = sa.xs, ops = static_cast<int64_t>(node.operands.size());
    const size_t results = r.results.size();
    const Graph& bg = r.body;
    std::vector<int> res(results, -1);
    for (NodeId u : scan_outs_[n]) res[g_[u].attrs.ints[0]] = buffer_of(u);
    // (Scratch for a value of the body: named by its node there, for the
    // planner's row bounds; Buffer::loop says whose graph, set below.)
    std::vector<int> body_scratch;
    auto body_buffer = [&](NodeId b, const std::string& name) {
      int s = scratch(bg[b].dtype, numel(bg[b].shape), name);
      p_.buffers[s].node = b;
      body_scratch.push_back(s);
      return s;
    };
    for (int64_t i = 0; i < m; ++i) {
      if (res[i] < 0) res[i] = body_buffer(r.results[i], "carry");
      copy(node.operands[i], res[i], row_major_map(node.operands[i]));
    }
    const size_t li = p_.kernels.size();  // the Loop kernel's index
    // Row t of `parent`, as a buffer of node `like`'s type.
    auto view = [&](int parent, NodeId like, const std::string& name) {
      Buffer v;
      v.kind = Buffer::Kind::View;
      v.dtype = bg[like].dtype;
      v.elems = numel(bg[like].shape);
      v.parent = parent;
      v.step = v.elems;
      v.loop = static_cast<int>(li);
      v.name = name;
      p_.buffers.push_back(v);
      return static_cast<int>(p_.buffers.size()) - 1;
    };
    // Slices are views of the scanned tensors; the captures are read in place.
    std::vector<std::pair<NodeId, int>> bound;
    for (int64_t i = 0; i < ops; ++i) {
      if (i < m) bound.emplace_back(r.args[i], res[i]);
      else if (i < m + k) bound.emplace_back(r.args[i], view(operand_buffer(node.operands[i], "xs"), r.args[i], "x_t"));
      else bound.emplace_back(r.args[i], operand_buffer(node.operands[i], "capture"));
    }
    // An output the body computes goes straight into its row of the stack.
    std::vector<bool> direct(results, false);
    for (size_t j = m; j < results; ++j) {
      NodeId v = r.results[j];
      bool taken = false;
      for (auto [node_id, b] : bound) taken = taken || node_id == v;
      if (res[j] < 0 || bg[v].operands.empty() || taken) continue;
      bound.emplace_back(v, view(res[j], v, "y_t"));
      direct[j] = true;
    }
    Kernel loop = kernel(Kernel::Kind::Loop, n, {sa.length});
    loop.reverse = sa.reverse;
    p_.kernels.push_back(std::move(loop));
    EntrySignature sig;
    for (NodeId a : r.args) sig.reads.push_back({"", a, bg[a].dtype, sizes(bg[a].shape)});
    for (NodeId v : r.results) sig.produces.push_back({"", v, bg[v].dtype, sizes(bg[v].shape)});
    Fusion bf = decide_fusion(bg, sig);
    const size_t first_body_buffer = p_.buffers.size();
    Lowering body(bg, bf, p_);
    body.run_body(bound);
    for (size_t j = m; j < results; ++j)
      if (res[j] >= 0 && !direct[j]) {
        NodeId v = r.results[j];
        body.copy(v, res[j], Affine{0, row_major_strides(sizes(bg[v].shape)), numel(bg[v].shape)});
      }
    // New carries over old ones; through scratch when one is another's old value.
    bool crossed = false;
    for (int64_t i = 0; i < m; ++i)
      for (int64_t q = 0; q < m; ++q) crossed = crossed || (q != i && r.results[i] == r.args[q]);
    std::vector<int> via(m, -1);
    for (int64_t i = 0; i < m; ++i) {
      NodeId v = r.results[i];
      if (v == r.args[i]) continue;
      if (crossed) {
        via[i] = body_buffer(v, "carry_next");
        body.copy(v, via[i], row_major_map_of(bg, v));
      } else body.copy(v, res[i], row_major_map_of(bg, v));
    }
    for (int64_t i = 0; i < m; ++i)
      if (via[i] >= 0) {
        Kernel c = kernel(Kernel::Kind::Elementwise, n, sizes(bg[r.args[i]].shape));
        c.out = res[i];
        c.out_map = row_major_map_of(bg, r.args[i]);
        KExpr e;
        e.kind = KExpr::Kind::Load;
        e.dtype = bg[r.args[i]].dtype;
        e.buffer = via[i];
        e.map = c.out_map;
        c.root = add_expr(c, e);
        p_.kernels.push_back(std::move(c));
      }
    // The body's kernels and buffers name nodes of its own graph: none of
    // this one. The kernels keep theirs as body_node (those of a loop nested
    // in it have theirs already), and the buffers say whose graph names them.
    for (size_t ki = li + 1; ki < p_.kernels.size(); ++ki) {
      Kernel& k = p_.kernels[ki];
      if (k.node != kNoNode) k.body_node = k.node, k.body_loop = static_cast<int>(li);
      k.node = kNoNode;
      for (Kernel::Epilogue& e : k.epilogues) {
        if (e.node != kNoNode) e.body_node = e.node;
        e.node = kNoNode;
      }
    }
    for (size_t b = first_body_buffer; b < p_.buffers.size(); ++b)
      if (p_.buffers[b].loop < 0) p_.buffers[b].loop = static_cast<int>(li);
    for (int b : body_scratch) p_.buffers[b].loop = static_cast<int>(li);
    p_.kernels[li].loop_end = static_cast<int>(p_.kernels.size());
  }

  static Affine row_major_map_of(const Graph& g, NodeId n) { return Affine{0, row_major_strides(sizes(g[n].shape))}; }

  // fold: a sum over the windows' elements whose output index is where each
  // one was read from (window_steps), so that overlapping windows add up. A
  // reduction runs on one thread, in the windows' row-major order: the same
  // sums in the same order for any thread count.
  //
  // Windows that tile the input exactly (each axis's stride its kernel, no
  // dilation, nothing left over: a pool's usual windows) read every element
  // once. The fold is then a permutation, an elementwise kernel (parallel,
  // in tiles where it transposes), and each element is 0 + its one window
  // element, as the sum gives (a -0 becomes +0 there too).
  void emit_fold(NodeId n, int out) {
    NodeId g = g_[n].operands[0];
    const std::vector<int64_t>& at = g_[n].attrs.ints;
    Sizes ws = shape(g);  // [N, C, K.., O..]
    size_t d = at.size() / 4;
    bool tiles = true;
    for (size_t j = 0; j < d; ++j)
      tiles = tiles && at[4 * j + 2] == 1 && at[4 * j + 1] == at[4 * j] && ws[2 + d + j] * at[4 * j] == at[4 * j + 3];
    Kernel k = kernel(tiles ? Kernel::Kind::Elementwise : Kernel::Kind::Reduce, n, ws);
    k.out = out;
    k.out_map = Affine{0, window_steps(shape(n), at)};
    k.root = expr(k, g, IdxMap::identity(k.dims.size()));
    if (tiles) {
      KExpr zero;
      zero.kind = KExpr::Kind::Const;
      zero.dtype = g_[n].dtype;
      KExpr sum;
      sum.kind = KExpr::Kind::Op;
      sum.op = Op::Add;
      sum.dtype = g_[n].dtype;
      sum.args = {add_expr(k, zero), k.root};
      k.root = add_expr(k, sum);
    } else {
      k.reduce_op = Op::ReduceSum;
    }
    p_.kernels.push_back(std::move(k));
  }

  // C[batch, m, n] = sum_k A[batch, m, k] B[batch, k, n]; loops (batch..., m, n, k).
  void emit_matmul(NodeId n, int out) {
    const Node& node = g_[n];
    Sizes cs = shape(n);
    size_t batch = cs.size() - 2;
    int64_t M = cs[batch], N = cs[batch + 1], K = g_[node.operands[0]].shape.back().size;
    Sizes dims(cs.begin(), cs.begin() + static_cast<long>(batch));
    dims.insert(dims.end(), {M, N, K});
    Kernel k = kernel(Kernel::Kind::MatMul, n, dims);
    k.out = out;
    Sizes crm = row_major_strides(cs);
    k.out_map = Affine{0, crm};
    k.out_map.strides.push_back(0);  // k does not move C
    // An operand's strides over (batch..., m, n, k); `rows` and `cols` are the loop dims of its two axes.
    auto operand = [&](NodeId x, size_t rows, size_t cols, int& buffer) {
      bool transposed = f_.absorbed[x];
      NodeId src = transposed ? g_[x].operands[0] : x;
      buffer = buffer_of(src);
      Sizes xs = shape(src), st = row_major_strides(xs);
      size_t r = xs.size();
      Affine a{0, Sizes(dims.size(), 0)};
      // Batch axes broadcast from the right.
      size_t lead = batch - (r - 2);
      for (size_t j = 0; j + 2 < r; ++j)
        if (xs[j] != 1) a.strides[lead + j] = st[j];
      a.strides[rows] = transposed ? st[r - 1] : st[r - 2];
      a.strides[cols] = transposed ? st[r - 2] : st[r - 1];
      return a;
    };
    k.a_map = operand(node.operands[0], batch, batch + 2, k.a);
    NodeId bx = node.operands[1];
    if (NodeId view = f_.absorbed[bx] ? g_[bx].operands[0] : bx; f_.gathered[view])
      gather_b(k, view, f_.absorbed[bx]);
    else
      k.b_map = operand(bx, batch + 2, batch + 1, k.b);
    // Products big enough for the register-tiled kernel (and to split across threads).
    if (register_tiled(node.dtype, M, N, K)) {
      k.packed = true;
      // B is read in place when a tile's columns are contiguous, no tile is
      // ragged, and a panel of kPanelDepth rows spans at most 256 KiB, or
      // 512 KiB where at most two blocks of rows read each panel. Otherwise
      // it is packed, with room for the zero padding of the last panel with
      // any tile up to the maximum. (On 2026-11-29, before tensors and arenas
      // had 2 MiB pages, wider rows cost more in TLB misses than packing. On
      // 2026-12-06's Xeon, with them, the 256 x 1024 x 1024 forward product
      // with its 1024-column weight read in place ran at 1.01-1.03x
      // cblas_sgemm where packing it ran at 0.81-0.98x, since packing moved
      // 4 MB in and 4.4 MB out before the first tile; W4's forward products
      // took 0.93-0.95 of the time. Its 1024 x 1024 x 256 weight gradients,
      // whose eight blocks of rows each read every panel, took 1.02-1.04 in
      // place: those stay packed.)
      int64_t ldb = k.b_map.strides[batch + 2];
      const int64_t span = ldb * dtype_size(node.dtype) * kPanelDepth;
      bool in_place = !k.b_gather && k.b_map.strides[batch + 1] == 1 && N % kMaxTileCols == 0 &&
                      (span <= (int64_t{256} << 10) || (span <= (int64_t{512} << 10) && M <= 2 * kBlockRows));
      if (!in_place && M <= kOneBlockRows)
        k.pack_b_per_block = true;
      else if (!in_place)
        k.pack_b = scratch(node.dtype, packed_b_elems(K, N), fmt::format("pack.b.%{}", n));
      // Few blocks of C over a long k: k segments (Kernel::k_segments).
      int64_t blocks = ((M + kBlockRows - 1) / kBlockRows) * ((N + kBlockCols - 1) / kBlockCols);
      int64_t segments = std::min(kSegmentTasks / blocks, K / kSegmentDepth);
      if (batch == 0 && segments >= 2) {
        k.k_segments = segments;
        k.partials = scratch(node.dtype, segments * segment_stride(M, N), fmt::format("partials.%{}", n));
      }
    }
    fuse_epilogue(n, k);
    p_.kernels.push_back(std::move(k));
  }

  // B of product k is the matrix `r` (Fusion::gathered), a reshape of a
  // view of a buffer, or its transpose: the view's value at each element is
  // one load, whose map over the view's axes splits into the matrix's row
  // axes (the leading ones) and column axes: the digits of B's k and n.
  void gather_b(Kernel& k, NodeId r, bool transposed) {
    NodeId v = g_[r].operands[0];
    Sizes vs = shape(v);
    Kernel view = kernel(Kernel::Kind::Elementwise, v, vs);
    const KExpr& e = view.exprs[expr(view, v, IdxMap::identity(vs.size()))];
    if (e.kind != KExpr::Kind::Load || !e.args.empty() || e.map.step != 0)
      internal_error(__FILE__, __LINE__, "a gathered matrix is not a view of one buffer");
    size_t lead = 0;
    for (int64_t rows = 1; rows != g_[r].shape[0].size; ++lead) rows *= vs[lead];
    Kernel::Digits rows, cols;
    for (size_t j = 0; j < vs.size(); ++j) {
      if (vs[j] == 1) continue;  // (a digit that is always 0)
      Kernel::Digits& d = j < lead ? rows : cols;
      d.radix.push_back(vs[j]);
      d.stride.push_back(e.map.strides[j]);
    }
    rows.offset = e.map.offset;
    k.b = e.buffer;
    k.b_map = Affine{0, Sizes(k.dims.size(), 0)};
    k.b_gather = true;
    k.b_k = transposed ? cols : rows;
    k.b_n = transposed ? rows : cols;
  }

  static bool elementwise(OpKind k) {
    return k == OpKind::Unary || k == OpKind::Binary || k == OpKind::Compare || k == OpKind::Select ||
           k == OpKind::Cast;
  }

  // Whether the fused expression of x can be evaluated in product n's kernel,
  // element by element of n's output block: members of the epilogue group
  // (n and the epilogues before) are read only at the element being computed
  // (`identity`: the index path from the root is the identity), and every
  // other buffer it reads is ready before n's kernel runs. `reads` is set
  // when it reads a group member.
  bool block_ok(NodeId x, NodeId n, bool identity, bool root, bool& reads) {
    const Node& node = g_[x];
    if (!root && group_[x]) {
      reads = true;
      return identity;
    }
    if (node.op == Op::Constant || op_kind(node.op) == OpKind::Leaf) return true;
    if (!root && f_.mat[x]) return f_.pos[x] < f_.pos[n];
    bool ew = elementwise(op_kind(node.op));
    for (NodeId o : node.operands)
      if (!block_ok(o, n, identity && ew && g_[o].shape == node.shape, false, reads)) return false;
    return true;
  }

  // Whether the fused expression of x reads only, at one flat index, values
  // laid out alike: members of the epilogue group (directly, when of x's
  // shape, or through a reshape: a view), buffers ready before n's kernel
  // of x's shape, scalars and constants; through elementwise ops of x's
  // shape. Then x can be evaluated at the product's flat index.
  bool flat_ok(NodeId x, NodeId n, bool root, bool& reads) {
    const Node& node = g_[x];
    if (!root && group_[x]) {
      reads = true;
      return true;
    }
    if (node.op == Op::Constant || op_kind(node.op) == OpKind::Leaf) return true;
    // A view of a member (not a produced reshape, which is copied into an
    // output of its own after the kernels).
    if (node.op == Op::Reshape && group_[node.operands[0]] && buffer_of(x) == buffer_of(node.operands[0])) {
      reads = true;
      return true;
    }
    if (!root && f_.mat[x]) return f_.pos[x] < f_.pos[n];
    if (!elementwise(op_kind(node.op))) return false;
    for (NodeId o : node.operands) {
      const Shape& os = g_[o].shape;
      if (os != node.shape && numel(os) != 1) return false;
      if (!flat_ok(o, n, false, reads)) return false;
    }
    return true;
  }

  // Elementwise consumers of a product, of its shape, computed in the
  // product's kernel block by block while the block is in cache: bias adds
  // and activations, and an optimizer's update of a weight from its gradient
  // (new moments, then the new weight from them). The epilogues together
  // stay within kMaxEpilogueExprs expressions, so that a long chain of
  // consumers does not make one unbounded loop body (fusion.h's reason);
  // the rest get kernels of their own.
  void fuse_epilogue(NodeId n, Kernel& k) {
    group_.assign(g_.size(), false);
    group_[n] = true;
    size_t rank = g_[n].shape.size();
    IdxMap map = IdxMap::identity(rank);
    for (Sizes& row : map.a) row.push_back(0);  // the k loop does not move the output
    // Consumers of another shape with as many elements (the update of a
    // convolution's [O, C, KH, KW] weight from its [O, C*KH*KW] gradient,
    // read through a reshape) are evaluated at the flat index, see flat_ok.
    const int64_t cols = rank == 2 ? g_[n].shape[1].size : 0;
    for (NodeId u = n + 1; u < g_.size(); ++u) {
      if (!f_.live[u] || !f_.mat[u] || epilogued_[u]) continue;
      if (!elementwise(op_kind(g_[u].op))) continue;
      bool same = g_[u].shape == g_[n].shape;
      if (!same && (rank != 2 || g_[u].shape.empty() || numel(g_[u].shape) != numel(g_[n].shape))) continue;
      if (k.exprs.size() >= kMaxEpilogueExprs) break;
      bool reads = false;
      if (same ? !block_ok(u, n, true, true, reads) : !flat_ok(u, n, true, reads)) continue;
      if (!reads) continue;
      IdxMap at = map;
      if (!same) {
        // Every load in u's expression is of a contiguous buffer of u's
        // shape (or a scalar), so its flat index cols*m + n is all that
        // matters: put it on u's last axis.
        size_t r = g_[u].shape.size();
        at.a.assign(r, Sizes(3, 0));
        at.c.assign(r, 0);
        at.a[r - 1] = {cols, 1, 0};
      }
      Kernel::Epilogue e;
      e.root = expr(k, u, at, /*as_root=*/true);
      e.out = buffer_of(u);
      e.map = Affine{0, row_major_strides(shape(n))};
      e.map.strides.push_back(0);
      e.node = u;
      k.epilogues.push_back(e);
      epilogued_[u] = true;
      group_[u] = true;
    }
  }

  // embedding_grad(ids, g): the rows of g added into a zeroed [V, D] output
  // at rows ids, one after the other in the order of the ids, so that
  // repeated ids add up in the same order for any thread count.
  void emit_scatter_add(NodeId n, int out) {
    const Node& node = g_[n];
    NodeId ids = node.operands[0], grad = node.operands[1];
    Kernel k = kernel(Kernel::Kind::ScatterAdd, n, shape(grad));
    size_t rank = k.dims.size();
    k.out = out;
    k.out_map = Affine{0, Sizes(rank, 0)};
    k.out_map.strides.back() = 1;
    k.row_stride = k.dims.back();
    IdxMap all = IdxMap::identity(rank), row = all;
    row.a.pop_back();
    row.c.pop_back();
    k.row = expr(k, ids, row);
    k.root = expr(k, grad, all);
    p_.kernels.push_back(std::move(k));
  }

  // Ids that are an argmax over an axis of at most `limit` elements (the
  // gradient of a max, a max pool's window) are in range by construction:
  // their one_hot needs no run-time check.
  bool argmax_in_range(NodeId ids, int64_t limit) const {
    const Node& a = g_[ids];
    return a.op == Op::ArgMax && g_[a.operands[0]].shape[static_cast<size_t>(a.attrs.ints[0])].size <= limit;
  }

  // Ids read by one_hot and the lookups must lie in [0, limit); the JIT
  // cannot throw, so it returns a status, and the entry's caller reports
  // `message` at the node's model line.
  void emit_check(NodeId n, int64_t limit, std::string message) {
    NodeId ids = g_[n].operands[0];
    Kernel k = kernel(Kernel::Kind::CheckRange, n, shape(ids));
    k.root = load(k, ids, IdxMap::identity(k.dims.size()));
    k.init = static_cast<double>(limit);
    p_.check_locs.push_back(g_[n].loc);
    p_.check_messages.push_back(std::move(message));
    k.check_id = static_cast<int>(p_.check_locs.size());
    p_.kernels.push_back(std::move(k));
  }

  // Produced values whose node lives elsewhere (a leaf, a constant, another output) are copied.
  void emit_root_copies() {
    for (int r : copies_) {
      const EntryValue& v = p_.sig.produces[r];
      Kernel k = kernel(Kernel::Kind::Elementwise, v.node, v.shape);
      k.out = root_bufs_[r];
      k.out_map = Affine{0, row_major_strides(v.shape)};
      k.root = expr(k, v.node, IdxMap::identity(v.shape.size()), g_[v.node].op == Op::Constant);
      p_.kernels.push_back(std::move(k));
    }
  }

  const Graph& g_;
  const Fusion& f_;
  Program& p_;
  std::vector<bool> epilogued_, group_;
  std::vector<int> buf_;
  std::vector<int> root_bufs_, copies_;
  std::map<NodeId, std::vector<NodeId>> scan_outs_;  // a scan's scan_out nodes
};

}  // namespace

void lower_to_kernels(const Graph& g, const Fusion& f, Program& p) { Lowering(g, f, p).run(); }

}  // namespace gradc
