// Planning an entry point: fusion decisions, kernels, and the memory plan.
#include "compiler/codegen/kernels.h"

#include <fmt/format.h>

#include <algorithm>
#include <limits>

#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

using Sizes = std::vector<int64_t>;

Sizes row_major(const Sizes& shape) {
  Sizes s(shape.size(), 1);
  for (int i = static_cast<int>(shape.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * shape[i + 1];
  return s;
}

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
  Sizes st = row_major(shape);
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

bool same_map(const Affine& a, const Affine& b) { return a.offset == b.offset && a.strides == b.strides; }

// Whether expression e of kernel k reads buffer b somewhere other than at `at`.
bool reads_elsewhere(const Kernel& k, int e, int b, const Affine* at) {
  const KExpr& x = k.exprs[e];
  if (x.kind == KExpr::Kind::Load && x.buffer == b) return !at || !same_map(x.map, *at);
  for (int a : x.args)
    if (reads_elsewhere(k, a, b, at)) return true;
  return false;
}

}  // namespace

bool can_update_in_place(const Program& p, int old_b, int new_b) {
  int writer = -1;
  for (int ki = 0; ki < static_cast<int>(p.kernels.size()); ++ki) {
    const Kernel& k = p.kernels[ki];
    bool writes = k.out == new_b;
    for (const Kernel::Epilogue& e : k.epilogues) writes = writes || e.out == new_b;
    if (writes && writer >= 0) return false;
    if (writes) writer = ki;
  }
  if (writer < 0) return false;
  for (size_t ki = static_cast<size_t>(writer) + 1; ki < p.kernels.size(); ++ki) {
    const Kernel& k = p.kernels[ki];
    if (k.kind == Kernel::Kind::CheckRange || k.a == old_b || k.b == old_b) return false;
    for (const KExpr& e : k.exprs)
      if (e.kind == KExpr::Kind::Load && e.buffer == old_b) return false;
  }
  const Kernel& w = p.kernels[writer];
  if (w.kind == Kernel::Kind::Elementwise) return !reads_elsewhere(w, w.root, old_b, &w.out_map);
  if (w.kind != Kernel::Kind::MatMul || w.out == new_b || w.a == old_b || w.b == old_b) return false;
  size_t j = 0;
  while (w.epilogues[j].out != new_b) ++j;
  for (size_t e = 0; e < w.epilogues.size(); ++e)
    if (reads_elsewhere(w, w.epilogues[e].root, old_b, e <= j ? &w.epilogues[j].map : nullptr)) return false;
  return true;
}

namespace {

class Planner {
 public:
  Planner(const ModelIR& m, EntryKind kind) : g_(m.graph) { p_.sig = entry_signature(m, kind); }

  Program run() {
    mark_live();
    decide();
    assign_args();
    order_nodes();
    for (NodeId n : order_) emit_node(n);
    emit_root_copies();
    plan_in_place();
    plan_internal_epilogues();
    plan_product_blocks();
    plan_memory();
    return std::move(p_);
  }

 private:
  Sizes shape(NodeId n) const { return sizes(g_[n].shape); }

  void mark_live() {
    live_.assign(g_.size(), false);
    users_.assign(g_.size(), 0);
    for (const EntryValue& v : p_.sig.produces) live_[v.node] = true;
    for (size_t i = g_.size(); i-- > 0;)
      if (live_[i])
        for (NodeId o : g_[static_cast<NodeId>(i)].operands) live_[o] = true, ++users_[o];
    for (const EntryValue& v : p_.sig.produces) ++users_[v.node];
  }

  static bool fusable_user(OpKind k) {
    switch (k) {
      case OpKind::Unary: case OpKind::Cast: case OpKind::Binary: case OpKind::Compare: case OpKind::Select:
      case OpKind::BroadcastTo: case OpKind::Transpose: case OpKind::Slice: case OpKind::Reduce:
      case OpKind::ArgMax: case OpKind::Concat: case OpKind::Pad:
        return true;
      default: return false;
    }
  }

  static bool swaps_last_two(const Node& t) {
    int r = t.rank();
    if (t.op != Op::Transpose || r < 2) return false;
    for (int i = 0; i < r - 2; ++i)
      if (t.attrs.ints[i] != i) return false;
    return t.attrs.ints[r - 2] == r - 1 && t.attrs.ints[r - 1] == r - 2;
  }

  // Which nodes get a buffer of their own.
  void decide() {
    mat_.assign(g_.size(), false);
    absorbed_.assign(g_.size(), false);
    epilogued_.assign(g_.size(), false);
    std::vector<bool> root(g_.size(), false);
    for (const EntryValue& v : p_.sig.produces) root[v.node] = true;
    // A node with one user that can evaluate it inline is fused into that user.
    std::vector<NodeId> only_user(g_.size(), kNoNode);
    for (NodeId n = 0; n < g_.size(); ++n)
      if (live_[n])
        for (NodeId o : g_[n].operands) only_user[o] = n;
    for (NodeId n = 0; n < g_.size(); ++n) {
      if (!live_[n]) continue;
      const Node& node = g_[n];
      OpKind k = op_kind(node.op);
      if (node.op == Op::Constant) continue;
      if (k == OpKind::Leaf || k == OpKind::Reduce || k == OpKind::ArgMax || k == OpKind::MatMul ||
          k == OpKind::Concat || k == OpKind::Pad || root[n]) {
        mat_[n] = true;
        continue;
      }
      mat_[n] = users_[n] != 1 || !fusable_user(op_kind(g_[only_user[n]].op));
    }
    for (NodeId n = 0; n < g_.size(); ++n) {
      if (!live_[n]) continue;
      const Node& node = g_[n];
      if (node.op == Op::Reshape || node.op == Op::OneHot) mark_mat(node.operands[0]);
      if (node.op == Op::MatMul)
        for (NodeId o : node.operands) {
          if (swaps_last_two(g_[o]) && users_[o] == 1 && !root[o]) {
            absorbed_[o] = true;
            mat_[o] = false;
            mark_mat(g_[o].operands[0]);
          } else {
            mark_mat(o);
          }
        }
    }
  }

  // Kernels run in node order, except that small values computed from leaves
  // alone (an optimizer's bias corrections from the step counter) run first,
  // so that the updates that read them can fuse into the products that make
  // the gradients.
  void order_nodes() {
    std::vector<bool> early(g_.size(), false);
    for (NodeId n = 0; n < g_.size(); ++n) {
      const Node& node = g_[n];
      OpKind k = op_kind(node.op);
      if (!live_[n] || k == OpKind::Leaf || node.op == Op::Constant || numel(node.shape) > 16) continue;
      early[n] = true;
      for (NodeId o : node.operands)
        if (!early[o] && g_[o].op != Op::Constant && op_kind(g_[o].op) != OpKind::Leaf) early[n] = false;
    }
    for (bool pass : {true, false})
      for (NodeId n = 0; n < g_.size(); ++n)
        if (live_[n] && early[n] == pass) order_.push_back(n);
    pos_.assign(g_.size(), 0);
    for (size_t i = 0; i < order_.size(); ++i) pos_[order_[i]] = static_cast<int>(i);
  }

  void mark_mat(NodeId n) {
    if (g_[n].op != Op::Constant) mat_[n] = true;
  }

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

  // A node's buffer. A reshape is a view: it shares its operand's (contiguous,
  // row-major) buffer, unless it is produced (then it has an output of its own).
  int buffer_of(NodeId n) {
    if (buf_[n] != -1) return buf_[n];
    const Node& node = g_[n];
    if (node.op == Op::Reshape && g_[node.operands[0]].op != Op::Constant)
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
    if (mat_[n] && !as_root) return load(k, n, map);
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
        in.c[node.attrs.ints[0]] += node.attrs.ints[1];
        return expr(k, o[0], in);
      }
      case OpKind::Reshape: {
        if (g_[o[0]].op == Op::Constant) return expr(k, o[0], map);
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
      default:
        internal_error(__FILE__, __LINE__, fmt::format("cannot fuse a '{}' node", op_name(node.op)));
    }
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
    return Affine{0, row_major(shape(n))};
  }

  void emit_node(NodeId n) {
    const Node& node = g_[n];
    OpKind kind = op_kind(node.op);
    if (node.op == Op::OneHot) emit_check(n);
    if (!mat_[n] || kind == OpKind::Leaf || epilogued_[n]) return;
    int out = buffer_of(n);
    const std::vector<NodeId>& o = node.operands;
    if (node.op == Op::Reshape && out == buffer_of(o[0])) return;  // a view, nothing to copy
    switch (kind) {
      case OpKind::Reduce:
      case OpKind::ArgMax: {
        Sizes in = shape(o[0]);
        bool argmax = kind == OpKind::ArgMax;
        Kernel k = kernel(argmax ? Kernel::Kind::ArgMax : Kernel::Kind::Reduce, n, in);
        k.out = out;
        Sizes kept = in;
        for (int64_t a : node.attrs.ints) kept[a] = 1;
        k.out_map = Affine{0, row_major(kept)};
        for (int64_t a : node.attrs.ints) k.out_map.strides[a] = 0;
        k.reduce_op = node.op;
        k.init = node.op == Op::ReduceSum   ? 0.0
                 : node.op == Op::ReduceMax ? -std::numeric_limits<double>::infinity()
                                            : std::numeric_limits<double>::infinity();
        if (argmax) k.axis = static_cast<int>(node.attrs.ints[0]);
        k.root = expr(k, o[0], IdxMap::identity(in.size()));
        p_.kernels.push_back(std::move(k));
        break;
      }
      case OpKind::MatMul: emit_matmul(n, out); break;
      case OpKind::Concat: {
        Sizes os = row_major(shape(n));
        int64_t axis = node.attrs.ints[0], start = 0;
        for (NodeId x : o) {
          emit_elementwise(n, x, out, Affine{start * os[axis], os});
          start += g_[x].shape[axis].size;
        }
        break;
      }
      case OpKind::Pad: {
        Sizes os = row_major(shape(n));
        Kernel fill = kernel(Kernel::Kind::Elementwise, n, shape(n));
        fill.out = out;
        fill.out_map = Affine{0, os};
        KExpr zero;
        zero.dtype = node.dtype;
        fill.root = add_expr(fill, zero);
        p_.kernels.push_back(std::move(fill));
        emit_elementwise(n, o[0], out, Affine{node.attrs.ints[1] * os[node.attrs.ints[0]], os});
        break;
      }
      default: emit_elementwise(n, n, out, row_major_map(n)); break;
    }
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
    Sizes crm = row_major(cs);
    k.out_map = Affine{0, crm};
    k.out_map.strides.push_back(0);  // k does not move C
    // An operand's strides over (batch..., m, n, k); `rows` and `cols` are the loop dims of its two axes.
    auto operand = [&](NodeId x, size_t rows, size_t cols, int& buffer) {
      bool transposed = absorbed_[x];
      NodeId src = transposed ? g_[x].operands[0] : x;
      buffer = buffer_of(src);
      Sizes xs = shape(src), st = row_major(xs);
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
    k.b_map = operand(node.operands[1], batch + 2, batch + 1, k.b);
    // Products big enough for the register-tiled kernel (and to split across threads).
    if (is_float(node.dtype) && M >= 4 && N >= 16 && M * N * K >= (int64_t{1} << 16)) {
      k.packed = true;
      // B is read in place when a tile's columns are contiguous, no tile is
      // ragged, and a panel of kPanelDepth rows spans at most 256 KiB (64
      // pages: wider rows cost more in TLB misses than packing, measured on
      // the wide MLP's 1024-column weights). Otherwise it is packed, with room
      // for the zero padding of the last panel with any tile up to the maximum.
      int64_t ldb = k.b_map.strides[batch + 2];
      bool in_place = k.b_map.strides[batch + 1] == 1 && N % kMaxTileCols == 0 &&
                      ldb * dtype_size(node.dtype) * kPanelDepth <= (int64_t{256} << 10);
      if (!in_place) k.pack_b = scratch(node.dtype, K * (N + kMaxTileCols - 1), fmt::format("pack.b.%{}", n));
    }
    fuse_epilogue(n, k);
    p_.kernels.push_back(std::move(k));
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
    if (!root && mat_[x]) return pos_[x] < pos_[n];
    bool ew = elementwise(op_kind(node.op));
    for (NodeId o : node.operands)
      if (!block_ok(o, n, identity && ew && g_[o].shape == node.shape, false, reads)) return false;
    return true;
  }

  // Elementwise consumers of a product, of its shape, computed in the
  // product's kernel block by block while the block is in cache: bias adds
  // and activations, and an optimizer's update of a weight from its gradient
  // (new moments, then the new weight from them).
  void fuse_epilogue(NodeId n, Kernel& k) {
    group_.assign(g_.size(), false);
    group_[n] = true;
    size_t rank = g_[n].shape.size();
    IdxMap map = IdxMap::identity(rank);
    for (Sizes& row : map.a) row.push_back(0);  // the k loop does not move the output
    for (NodeId u = n + 1; u < g_.size(); ++u) {
      if (!live_[u] || !mat_[u] || epilogued_[u] || g_[u].shape != g_[n].shape) continue;
      if (!elementwise(op_kind(g_[u].op))) continue;
      bool reads = false;
      if (!block_ok(u, n, true, true, reads) || !reads) continue;
      Kernel::Epilogue e;
      e.root = expr(k, u, map, /*as_root=*/true);
      e.out = buffer_of(u);
      e.map = Affine{0, row_major(shape(u))};
      e.map.strides.push_back(0);
      e.node = u;
      k.epilogues.push_back(e);
      epilogued_[u] = true;
      group_[u] = true;
    }
  }

  // Class ids read by one_hot must lie in [0, n); the JIT cannot throw, so it returns a status.
  void emit_check(NodeId n) {
    NodeId labels = g_[n].operands[0];
    Kernel k = kernel(Kernel::Kind::CheckRange, n, shape(labels));
    k.root = load(k, labels, IdxMap::identity(k.dims.size()));
    KExpr limit;
    limit.value = static_cast<double>(g_[n].attrs.ints[0]);
    k.init = limit.value;
    p_.check_locs.push_back(g_[n].loc);
    p_.check_messages.push_back(fmt::format("a class id read by one_hot is outside [0, {})", g_[n].attrs.ints[0]));
    k.check_id = static_cast<int>(p_.check_locs.size());
    p_.kernels.push_back(std::move(k));
  }

  // Produced values whose node lives elsewhere (a leaf, a constant, another output) are copied.
  void emit_root_copies() {
    for (int r : copies_) {
      const EntryValue& v = p_.sig.produces[r];
      Kernel k = kernel(Kernel::Kind::Elementwise, v.node, v.shape);
      k.out = root_bufs_[r];
      k.out_map = Affine{0, row_major(v.shape)};
      k.root = expr(k, v.node, IdxMap::identity(v.shape.size()), g_[v.node].op == Op::Constant);
      p_.kernels.push_back(std::move(k));
    }
  }

  // train_step: each new param and optimizer state is written over the old
  // one (the read of the same name) where can_update_in_place allows it, so
  // a step moves less memory (no second copy to write) and a session holds
  // its state once. Otherwise the value keeps its own output buffer (and the
  // session double-buffers it).
  void plan_in_place() {
    p_.in_place.assign(p_.sig.produces.size(), false);
    if (p_.sig.kind != EntryKind::TrainStep) return;
    for (size_t r = 0; r < p_.sig.produces.size(); ++r) {
      for (size_t i = 0; i < p_.sig.reads.size(); ++i) {
        if (p_.sig.reads[i].name != p_.sig.produces[r].name) continue;
        int old_b = static_cast<int>(i), new_b = root_bufs_[r];  // read i is buffer i (assign_args)
        if (!can_update_in_place(p_, old_b, new_b)) break;
        for (Kernel& k : p_.kernels) {
          if (k.out == new_b) k.out = old_b;
          for (Kernel::Epilogue& e : k.epilogues)
            if (e.out == new_b) e.out = old_b;
          for (KExpr& e : k.exprs)
            if (e.kind == KExpr::Kind::Load && e.buffer == new_b) e.buffer = old_b;
        }
        p_.in_place[r] = true;
        break;
      }
    }
  }

  // Whether a kernel other than kernel ki writes or reads buffer b.
  bool used_outside(int b, size_t ki) const {
    for (size_t kj = 0; kj < p_.kernels.size(); ++kj) {
      const Kernel& o = p_.kernels[kj];
      if (kj == ki) continue;
      if (o.out == b || o.a == b || o.b == b) return true;
      for (const Kernel::Epilogue& e : o.epilogues)
        if (e.out == b) return true;
      for (const KExpr& e : o.exprs)
        if (e.kind == KExpr::Kind::Load && e.buffer == b) return true;
    }
    return false;
  }

  // An epilogue value that only later epilogues of its kernel read (and no
  // other kernel) is internal: it never goes to memory.
  void plan_internal_epilogues() {
    for (size_t ki = 0; ki < p_.kernels.size(); ++ki) {
      Kernel& k = p_.kernels[ki];
      for (size_t i = 0; i < k.epilogues.size(); ++i) {
        int b = k.epilogues[i].out;
        if (p_.buffers[b].kind != Buffer::Kind::Arena || k.a == b || k.b == b || k.out == b) continue;
        bool elsewhere = used_outside(b, ki);
        // In its own kernel: no other epilogue writes it, and none up to it reads it.
        for (size_t j = 0; j < k.epilogues.size() && !elsewhere; ++j)
          if (j != i && k.epilogues[j].out == b) elsewhere = true;
        for (size_t j = 0; j <= i && !elsewhere; ++j)
          if (reads_elsewhere(k, k.epilogues[j].root, b, nullptr)) elsewhere = true;
        k.epilogues[i].internal = !elsewhere;
      }
    }
  }

  // Register-tiled products whose result only their own epilogues read (a
  // bias and activation, an optimizer update) keep C in per-thread blocks
  // (Kernel::c_blocks).
  void plan_product_blocks() {
    for (size_t ki = 0; ki < p_.kernels.size(); ++ki) {
      Kernel& k = p_.kernels[ki];
      if (!k.packed || k.epilogues.empty() || p_.buffers[k.out].kind != Buffer::Kind::Arena) continue;
      bool elsewhere = used_outside(k.out, ki);
      for (const Kernel::Epilogue& e : k.epilogues) elsewhere = elsewhere || e.out == k.out;
      if (elsewhere) continue;
      k.c_blocks = true;
      int64_t block = kBlockRows * kBlockCols * dtype_size(p_.buffers[k.out].dtype);
      p_.worker_bytes = std::max(p_.worker_bytes, block);
    }
  }

  // Arena buffers get offsets by liveness: first fit among buffers alive at the same time.
  void plan_memory() {
    auto touch = [&](int b, int k) {
      Buffer& buf = p_.buffers[b];
      if (buf.first == -1) buf.first = k;
      buf.last = std::max(buf.last, k);
    };
    for (int ki = 0; ki < static_cast<int>(p_.kernels.size()); ++ki) {
      const Kernel& k = p_.kernels[ki];
      if (k.out >= 0 && !k.c_blocks) touch(k.out, ki);
      for (const Kernel::Epilogue& e : k.epilogues)
        if (!e.internal) touch(e.out, ki);
      auto internal = [&](int b) {
        for (const Kernel::Epilogue& e : k.epilogues)
          if (e.internal && e.out == b) return true;
        return false;
      };
      if (k.a >= 0) touch(k.a, ki);
      if (k.b >= 0) touch(k.b, ki);
      if (k.pack_b >= 0) touch(k.pack_b, ki);
      for (const KExpr& e : k.exprs)
        if (e.kind == KExpr::Kind::Load && !(k.c_blocks && e.buffer == k.out) && !internal(e.buffer)) touch(e.buffer, ki);
    }
    std::vector<int> arena;
    for (int b = 0; b < static_cast<int>(p_.buffers.size()); ++b)
      if (p_.buffers[b].kind == Buffer::Kind::Arena && p_.buffers[b].first >= 0) arena.push_back(b);
    std::vector<int> placed;
    auto bytes = [&](int b) { return (p_.buffers[b].elems * static_cast<int64_t>(dtype_size(p_.buffers[b].dtype)) + 63) / 64 * 64; };
    for (int b : arena) {
      Buffer& buf = p_.buffers[b];
      std::vector<std::pair<int64_t, int64_t>> busy;
      for (int o : placed) {
        const Buffer& ob = p_.buffers[o];
        if (ob.first <= buf.last && buf.first <= ob.last) busy.emplace_back(ob.offset, ob.offset + bytes(o));
      }
      std::sort(busy.begin(), busy.end());
      int64_t at = 0;
      for (auto [lo, hi] : busy) {
        if (at + bytes(b) <= lo) break;
        at = std::max(at, hi);
      }
      buf.offset = at;
      placed.push_back(b);
      p_.arena_bytes = std::max(p_.arena_bytes, at + bytes(b));
    }
    for (int ki = 0; ki < static_cast<int>(p_.kernels.size()); ++ki) {
      int64_t live = 0;
      for (int b : arena)
        if (p_.buffers[b].first <= ki && ki <= p_.buffers[b].last) live += bytes(b);
      p_.peak_bytes = std::max(p_.peak_bytes, live);
    }
  }

  const Graph& g_;
  Program p_;
  std::vector<bool> live_, mat_, absorbed_, epilogued_, group_;
  std::vector<int> users_, buf_;
  std::vector<NodeId> order_;  // kernel order
  std::vector<int> pos_;       // a node's place in it
  std::vector<int> root_bufs_, copies_;
};

// ---- printing ----

std::string affine_str(const Affine& a) {
  std::string s;
  for (size_t d = 0; d < a.strides.size(); ++d) {
    if (a.strides[d] == 0) continue;
    if (!s.empty()) s += " + ";
    s += a.strides[d] == 1 ? fmt::format("i{}", d) : fmt::format("{}*i{}", a.strides[d], d);
  }
  if (a.offset != 0 || s.empty()) s += (s.empty() ? "" : " + ") + fmt::format("{}", a.offset);
  return s;
}

std::string expr_str(const Program& p, const Kernel& k, int e) {
  const KExpr& x = k.exprs[e];
  switch (x.kind) {
    case KExpr::Kind::Load: return fmt::format("b{}[{}]", x.buffer, affine_str(x.map));
    case KExpr::Kind::Const: return fmt::format("{}", x.value);
    case KExpr::Kind::Index: return fmt::format("({})", affine_str(x.map));
    case KExpr::Kind::Op: {
      std::string s = fmt::format("{}(", op_name(x.op));
      if (x.op == Op::Cast) s = fmt::format("cast<{}>(", dtype_name(x.dtype));
      for (size_t i = 0; i < x.args.size(); ++i) s += (i ? ", " : "") + expr_str(p, k, x.args[i]);
      return s + ")";
    }
  }
  return "?";
}

std::string loops_str(const Sizes& dims) {
  if (dims.empty()) return "once";
  std::string s = "for ";
  for (size_t d = 0; d < dims.size(); ++d) s += fmt::format("{}i{} < {}", d ? ", " : "", d, dims[d]);
  return s;
}

}  // namespace

Program plan_program(const ModelIR& m, EntryKind kind, bool profile) {
  Program p = Planner(m, kind).run();
  p.profile = profile;
  return p;
}

std::string kernel_summary(const Program& p, size_t ki) {
  const Kernel& k = p.kernels.at(ki);
  std::string dims;
  for (int64_t d : k.dims) dims += (dims.empty() ? "" : "x") + std::to_string(d);
  if (dims.empty()) dims = "1";
  switch (k.kind) {
    case Kernel::Kind::Elementwise: return "elementwise " + dims;
    case Kernel::Kind::Reduce:
      return fmt::format("reduce {} {}", k.reduce_op == Op::ReduceSum ? "sum" : k.reduce_op == Op::ReduceMax ? "max" : "min", dims);
    case Kernel::Kind::ArgMax: return "argmax " + dims;
    case Kernel::Kind::CheckRange: return "class-id check " + dims;
    case Kernel::Kind::MatMul: {
      std::string s = "matmul " + dims;
      if (!k.epilogues.empty()) s += fmt::format(", {} epilogue{}", k.epilogues.size(), k.epilogues.size() > 1 ? "s" : "");
      return s;
    }
  }
  return dims;
}

std::string print_program(const Program& p) {
  std::string s = fmt::format("entry {}: {} kernels, {} buffers, arena {} bytes, peak live {} bytes{}{}\n",
                              entry_name(p.sig.kind), p.kernels.size(), p.buffers.size(), p.arena_bytes, p.peak_bytes,
                              p.worker_bytes ? fmt::format(", {} bytes per thread", p.worker_bytes) : "",
                              p.profile ? ", timed per kernel" : "");
  for (size_t b = 0; b < p.buffers.size(); ++b) {
    const Buffer& buf = p.buffers[b];
    if (buf.first < 0 && buf.kind == Buffer::Kind::Arena) continue;
    std::string where = buf.kind == Buffer::Kind::Arg ? fmt::format("arg {} '{}'", buf.arg, buf.name)
                                                      : fmt::format("arena @{} ({})", buf.offset, buf.name);
    size_t reads = p.sig.reads.size();
    if (buf.kind == Buffer::Kind::Arg && static_cast<size_t>(buf.arg) >= reads && !p.in_place.empty() &&
        p.in_place[buf.arg - reads])
      for (size_t i = 0; i < reads; ++i)
        if (p.sig.reads[i].name == buf.name) where += fmt::format(" (not used: updated in place in b{})", i);
    s += fmt::format("  b{:<3} {} x {:<8} {}\n", b, dtype_name(buf.dtype), buf.elems, where);
  }
  for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
    const Kernel& k = p.kernels[ki];
    switch (k.kind) {
      case Kernel::Kind::Elementwise:
        s += fmt::format("  k{} {}: b{}[{}] = {}\n", ki, loops_str(k.dims), k.out, affine_str(k.out_map),
                         expr_str(p, k, k.root));
        break;
      case Kernel::Kind::Reduce:
        s += fmt::format("  k{} {}: b{}[{}] {}= {}\n", ki, loops_str(k.dims), k.out, affine_str(k.out_map),
                         k.reduce_op == Op::ReduceSum ? "+" : k.reduce_op == Op::ReduceMax ? "max" : "min",
                         expr_str(p, k, k.root));
        break;
      case Kernel::Kind::ArgMax:
        s += fmt::format("  k{} {}: b{}[{}] = argmax over i{} of {}\n", ki, loops_str(k.dims), k.out,
                         affine_str(k.out_map), k.axis, expr_str(p, k, k.root));
        break;
      case Kernel::Kind::MatMul:
        s += fmt::format("  k{} {}: b{}[{}] += b{}[{}] * b{}[{}]   (matmul, {})\n", ki, loops_str(k.dims), k.out,
                         affine_str(k.out_map), k.a, affine_str(k.a_map), k.b, affine_str(k.b_map),
                         !k.packed         ? std::string("tiled")
                         : fmt::format("register-tiled, {}, parallel blocks{}",
                                       k.pack_b >= 0 ? fmt::format("B packed into b{}", k.pack_b)
                                                     : std::string("operands read in place"),
                                       k.c_blocks ? ", C in per-thread blocks" : ""));
        for (const Kernel::Epilogue& e : k.epilogues)
          s += fmt::format("      then per block: b{}[{}] = {}   (epilogue{})\n", e.out, affine_str(e.map),
                           expr_str(p, k, e.root), e.internal ? ", in registers" : "");
        break;
      case Kernel::Kind::CheckRange:
        s += fmt::format("  k{} {}: check 0 <= {} < {} (else status {})\n", ki, loops_str(k.dims),
                         expr_str(p, k, k.root), k.init, k.check_id);
        break;
    }
  }
  return s;
}

}  // namespace gradc
