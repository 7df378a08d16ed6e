// Fusion decisions and kernel order (see fusion.h).
#include "compiler/codegen/fusion.h"

#include <algorithm>
#include <functional>

#include "compiler/codegen/loop_ir.h"

namespace gradc {
namespace {

// The most nodes of the expression a pool's reductions each evaluate
// (Fusion::pooled): a ReLU through its windows is 4 (where, gt, window, and
// the window of the bias add when it is not stored).
constexpr int kMaxPooledNodes = 8;

// Whether a node of this kind can evaluate an operand inline.
bool fusable_user(OpKind k) {
  switch (k) {
    case OpKind::Unary: case OpKind::Cast: case OpKind::Binary: case OpKind::Compare: case OpKind::Select:
    case OpKind::BroadcastTo: case OpKind::Transpose: case OpKind::Slice: case OpKind::Reduce:
    case OpKind::ArgMax: case OpKind::Concat: case OpKind::Pad: case OpKind::ScatterAdd:
    case OpKind::Window:
      return true;
    case OpKind::Leaf: case OpKind::MatMul: case OpKind::Reshape: case OpKind::OneHot:
    case OpKind::Gather: case OpKind::Random: case OpKind::Scan: case OpKind::ScanOut:
      return false;
  }
  return false;
}

bool swaps_last_two(const Node& t) {
  int r = t.rank();
  if (t.op != Op::Transpose || r < 2) return false;
  for (int i = 0; i < r - 2; ++i)
    if (t.attrs.ints[i] != i) return false;
  return t.attrs.ints[r - 2] == r - 1 && t.attrs.ints[r - 1] == r - 2;
}

// A reshape its user evaluates inline (see split_reshape).
bool split_view(const Graph& g, NodeId n) {
  const Node& node = g[n];
  return node.op == Op::Reshape && split_reshape(sizes(g[node.operands[0]].shape), sizes(node.shape)).has_value();
}

void mark_live(const Graph& g, const EntrySignature& sig, Fusion& f) {
  f.live.assign(g.size(), false);
  f.users.assign(g.size(), 0);
  for (const EntryValue& v : sig.produces) f.live[v.node] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (f.live[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) f.live[o] = true, ++f.users[o];
  for (const EntryValue& v : sig.produces) ++f.users[v.node];
}

// Which nodes get a buffer of their own.
void decide(const Graph& g, const EntrySignature& sig, Fusion& f) {
  f.mat.assign(g.size(), false);
  f.absorbed.assign(g.size(), false);
  auto mark_mat = [&](NodeId n) {
    if (g[n].op != Op::Constant) f.mat[n] = true;
  };
  std::vector<bool> root(g.size(), false);
  for (const EntryValue& v : sig.produces) root[v.node] = true;
  // A node with one user that can evaluate it inline is fused into that user.
  std::vector<NodeId> only_user(g.size(), kNoNode);
  for (NodeId n = 0; n < g.size(); ++n)
    if (f.live[n])
      for (NodeId o : g[n].operands) only_user[o] = n;
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!f.live[n]) continue;
    const Node& node = g[n];
    OpKind k = op_kind(node.op);
    if (node.op == Op::Constant) continue;
    if (k == OpKind::Leaf || k == OpKind::Reduce || k == OpKind::ArgMax || k == OpKind::MatMul ||
        k == OpKind::Concat || k == OpKind::Pad || node.op == Op::Fold || k == OpKind::ScatterAdd || k == OpKind::Scan ||
        k == OpKind::ScanOut || root[n]) {
      f.mat[n] = true;
      continue;
    }
    NodeId u = only_user[n];
    f.mat[n] = f.users[n] != 1 || !(fusable_user(op_kind(g[u].op)) || split_view(g, u));
  }
  // A pad whose one user is a pad (a convolution's padding, one axis at a
  // time) is that pad's: one buffer, zeroed once (lowering.cpp).
  for (NodeId n = 0; n < g.size(); ++n) {
    NodeId u = only_user[n];
    if (f.live[n] && op_kind(g[n].op) == OpKind::Pad && !root[n] && f.users[n] == 1 && u != kNoNode &&
        op_kind(g[u].op) == OpKind::Pad)
      f.mat[n] = false;
  }
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!f.live[n]) continue;
    const Node& node = g[n];
    if ((node.op == Op::Reshape && !split_view(g, n)) || node.op == Op::OneHot) mark_mat(node.operands[0]);
    // A lookup reads its ids from a buffer, and embedding its table at
    // run-time rows; embedding_grad evaluates its gradient operand inline.
    if (node.op == Op::Embedding) mark_mat(node.operands[1]);
    if (node.op == Op::Embedding || node.op == Op::EmbeddingGrad) mark_mat(node.operands[0]);
    // A loop reads its operands from buffers (its body's arguments).
    if (node.op == Op::Scan)
      for (NodeId o : node.operands) mark_mat(o);
    // A random op reads its seed and step words from buffers.
    if (node.op == Op::RandomUniform)
      for (NodeId o : node.operands) mark_mat(o);
    if (node.op == Op::MatMul)
      for (NodeId o : node.operands) {
        if (swaps_last_two(g[o]) && f.users[o] == 1 && !root[o]) {
          f.absorbed[o] = true;
          f.mat[o] = false;
          mark_mat(g[o].operands[0]);
        } else {
          mark_mat(o);
        }
      }
  }
}

// The source of a chain of index-only views (transposes, windows, slices),
// each read by the next alone; kNoNode when `v` is not such a chain.
NodeId view_source(const Graph& g, const Fusion& f, NodeId v) {
  for (bool first = true;; first = false) {
    const Node& node = g[v];
    bool view = node.op == Op::Transpose || node.op == Op::Window || node.op == Op::Slice;
    if (!view) return first || node.op == Op::Constant ? kNoNode : v;
    if (f.users[v] != 1) return kNoNode;
    v = node.operands[0];
  }
}

// Fusion::gathered: for each reshape to a matrix of a view whose every user
// is a register-tiled product reading it as B (directly or through an
// absorbed transpose), the reshape and the view get no buffer and the view's
// source gets one.
void gather_views(const Graph& g, const EntrySignature& sig, Fusion& f) {
  f.gathered.assign(g.size(), false);
  std::vector<std::vector<NodeId>> users(g.size());
  for (NodeId n = 0; n < g.size(); ++n)
    if (f.live[n])
      for (NodeId o : g[n].operands) users[o].push_back(n);
  for (const EntryValue& v : sig.produces) users[v.node].push_back(kNoNode);
  // Whether product p reads x as B, and is register-tiled and 2-D.
  auto reads_as_b = [&](NodeId p, NodeId x) {
    if (p == kNoNode || g[p].op != Op::MatMul || g[p].operands[1] != x || g[p].operands[0] == x) return false;
    const Node& node = g[p];
    if (node.rank() != 2) return false;
    return register_tiled(node.dtype, node.shape[0].size, node.shape[1].size,
                          g[node.operands[0]].shape.back().size);
  };
  for (NodeId r = 0; r < g.size(); ++r) {
    const Node& node = g[r];
    if (!f.live[r] || node.op != Op::Reshape || node.rank() != 2 || users[r].empty()) continue;
    NodeId v = node.operands[0];
    NodeId src = view_source(g, f, v);
    // (offsets are 32-bit vector lanes in the gather)
    if (src == kNoNode || numel(g[src].shape) >= (int64_t{1} << 31)) continue;
    // The matrix's rows must be whole leading axes of the view.
    int64_t lead = 1;
    for (const Dim& d : g[v].shape) {
      if (lead == node.shape[0].size) break;
      lead *= d.size;
    }
    if (lead != node.shape[0].size) continue;
    bool ok = true;
    for (NodeId u : users[r]) {
      if (u != kNoNode && f.absorbed[u]) {
        ok = ok && users[u].size() == 1 && reads_as_b(users[u][0], u);
      } else {
        ok = ok && reads_as_b(u, r);
      }
    }
    if (!ok) continue;
    f.gathered[r] = true;
    f.mat[r] = f.mat[v] = false;
    if (g[src].op != Op::Constant) f.mat[src] = true;
  }
}

// A comparison of buffers (a ReLU's mask `x > 0`, which both the forward
// `where` and the gradient's read) is recomputed by each user instead of
// being written to a buffer of its own: a compare costs less than the load
// of its result, its operands are read at the same element by the users
// anyway, and a product's epilogue then stores one output, not two.
void recompute_compares(const Graph& g, const EntrySignature& sig, Fusion& f) {
  std::vector<bool> root(g.size(), false), fusing(g.size(), true);
  for (const EntryValue& v : sig.produces) root[v.node] = true;
  for (NodeId n = 0; n < g.size(); ++n)
    if (f.live[n])
      for (NodeId o : g[n].operands) fusing[o] = fusing[o] && (fusable_user(op_kind(g[n].op)) || split_view(g, n));
  for (NodeId n = 0; n < g.size(); ++n) {
    const Node& node = g[n];
    if (!f.live[n] || !f.mat[n] || root[n] || !fusing[n] || op_kind(node.op) != OpKind::Compare) continue;
    bool loads = true;
    for (NodeId o : node.operands)
      loads = loads && (g[o].op == Op::Constant || (f.mat[o] && !f.gathered[o] && !f.absorbed[o]));
    if (loads) f.mat[n] = false;
  }
}

// Fusion::pooled.
void pool_views(const Graph& g, const EntrySignature& sig, Fusion& f) {
  f.pooled.assign(g.size(), false);
  std::vector<bool> root(g.size(), false);
  for (const EntryValue& v : sig.produces) root[v.node] = true;
  std::vector<std::vector<NodeId>> users(g.size());
  for (NodeId n = 0; n < g.size(); ++n)
    if (f.live[n])
      for (NodeId o : g[n].operands) users[o].push_back(n);
  // Whether u reduces x's `axis` by a max, min or argmax, directly or through
  // views that only it reads.
  std::function<bool(NodeId, int64_t)> reduces = [&](NodeId u, int64_t axis) {
    const Node& node = g[u];
    if ((node.op == Op::ReduceMax || node.op == Op::ReduceMin) && node.attrs.ints == std::vector<int64_t>{axis})
      return true;
    if (node.op == Op::ArgMax) return node.attrs.ints[0] == axis;
    if (root[u] || f.users[u] != 1 || users[u].size() != 1 || f.mat[u] || f.absorbed[u]) return false;
    if (node.op == Op::Reshape && node.shape == g[node.operands[0]].shape) return reduces(users[u][0], axis);
    if (node.op != Op::Transpose) return false;
    for (size_t j = 0; j < node.attrs.ints.size(); ++j)
      if (node.attrs.ints[j] == axis) return reduces(users[u][0], static_cast<int64_t>(j));
    return false;
  };
  // The nodes a user evaluates inline for x (x's fused tree), up to `limit`.
  std::function<int(NodeId, int)> tree = [&](NodeId x, int limit) {
    if (g[x].op == Op::Constant || f.mat[x] || limit <= 0) return 0;
    int n = 1;
    for (NodeId o : g[x].operands) n += tree(o, limit - n);
    return n;
  };
  for (NodeId r = 0; r < g.size(); ++r) {
    const Node& node = g[r];
    if (!f.live[r] || node.op != Op::Reshape || root[r] || node.rank() < 2 || split_view(g, r)) continue;
    NodeId x = node.operands[0];
    std::optional<MergedAxis> m = merged_axis(sizes(g[x].shape), sizes(node.shape));
    if (!m || node.shape[static_cast<size_t>(m->axis)].size > kUnrolledArgMax || users[r].empty()) continue;
    switch (op_kind(g[x].op)) {
      case OpKind::Unary: case OpKind::Cast: case OpKind::Binary: case OpKind::Compare: case OpKind::Select:
      case OpKind::BroadcastTo: case OpKind::Transpose: case OpKind::Slice: case OpKind::Window:
        break;
      default:
        continue;
    }
    if (g[x].op == Op::Fold || root[x] || f.users[x] != 1) continue;
    bool ok = true;
    for (NodeId u : users[r]) ok = ok && reduces(u, m->axis);
    // Each reduction evaluates x's tree again: only a cheap one.
    f.mat[x] = false;
    if (!ok || tree(x, kMaxPooledNodes + 1) > kMaxPooledNodes) {
      f.mat[x] = true;
      continue;
    }
    f.pooled[r] = true;
    f.mat[r] = false;
  }
}

// A fused expression is as large and as deep as the tree of single-user nodes
// behind it, which no limit of the language bounds (a model of N statements
// `h = h * 2 + 1` is one expression 2N deep), and everything after fusion
// walks expressions recursively (lowering, the in-place and epilogue checks,
// the printer, the LLVM emitter) and hands LLVM one basic block per kernel,
// whose instruction scheduler takes time quadratic in the block's length. So
// no kernel evaluates more than kMaxFusedNodes nodes inline: when a node's
// tree would be larger, its largest fused operands are materialized until it
// fits (each operand's tree already fits, so this ends). The size bounds the
// depth too. Real models stay below the bound (the largest kernel of the
// examples, a gradient sum in all_builtins.grad, has a few hundred nodes), so
// their plans do not change.
void bound_size(const Graph& g, Fusion& f) {
  std::vector<int> size(g.size(), 1);  // nodes a user evaluates inline for it: 1 when materialized (a load)
  for (NodeId n = 0; n < g.size(); ++n) {
    // (A concatenation evaluates each operand in a kernel of its own.)
    if (!f.live[n] || f.absorbed[n] || g[n].op == Op::Constant || g[n].op == Op::Concat) continue;
    auto total = [&] {
      int s = 1;
      for (NodeId o : g[n].operands) s += size[o];
      return s;
    };
    int s = total();
    while (s > kMaxFusedNodes) {
      NodeId largest = kNoNode;
      for (NodeId o : g[n].operands)
        if (size[o] > 1 && (largest == kNoNode || size[o] > size[largest])) largest = o;
      if (largest == kNoNode) break;  // (only loads and constants left)
      f.mat[largest] = true;
      size[largest] = 1;
      s = total();
    }
    if (!f.mat[n]) size[n] = s;
  }
}

// Kernels run in node order, except that small values computed from leaves
// alone (an optimizer's bias corrections from the step counter) run first,
// so that the updates that read them can fuse into the products that make
// the gradients.
void order_nodes(const Graph& g, Fusion& f) {
  std::vector<bool> early(g.size(), false);
  for (NodeId n = 0; n < g.size(); ++n) {
    const Node& node = g[n];
    OpKind k = op_kind(node.op);
    if (!f.live[n] || k == OpKind::Leaf || node.op == Op::Constant || numel(node.shape) > 16) continue;
    early[n] = true;
    for (NodeId o : node.operands)
      if (!early[o] && g[o].op != Op::Constant && op_kind(g[o].op) != OpKind::Leaf) early[n] = false;
  }
  for (bool pass : {true, false})
    for (NodeId n = 0; n < g.size(); ++n)
      if (f.live[n] && early[n] == pass) f.order.push_back(n);
  auto place = [&] {
    f.pos.assign(g.size(), 0);
    for (size_t i = 0; i < f.order.size(); ++i) f.pos[f.order[i]] = static_cast<int>(i);
  };
  place();
  // An argmax (a max pool's gradient needs the place of each window's
  // maximum) runs right after the last kernel whose buffer its expression
  // reads, not where autodiff made it, in the backward part: its windows are
  // then still in cache from the max that read them (W5's first pool's argmax
  // read 3.2 MB from memory, 0.44 ms), and their buffer is freed sooner.
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!f.live[n] || !f.mat[n] || g[n].op != Op::ArgMax) continue;
    int ready = -1;
    std::vector<NodeId> todo(g[n].operands.begin(), g[n].operands.end());
    while (!todo.empty()) {
      NodeId x = todo.back();
      todo.pop_back();
      if (g[x].op == Op::Constant || op_kind(g[x].op) == OpKind::Leaf) continue;
      if (f.mat[x]) {
        ready = std::max(ready, f.pos[x]);
      } else {
        todo.insert(todo.end(), g[x].operands.begin(), g[x].operands.end());
      }
    }
    if (ready + 1 >= f.pos[n]) continue;
    f.order.erase(f.order.begin() + f.pos[n]);
    f.order.insert(f.order.begin() + ready + 1, n);
    place();
  }
}

}  // namespace

std::optional<std::vector<std::vector<int64_t>>> split_reshape(const std::vector<int64_t>& in,
                                                               const std::vector<int64_t>& out) {
  std::vector<std::vector<int64_t>> coef(in.size(), std::vector<int64_t>(out.size(), 0));
  size_t j = 0;
  for (size_t a = 0; a < in.size(); ++a) {
    if (in[a] == 1) continue;  // (index 0)
    // The result axes whose sizes multiply to in[a], units skipped.
    std::vector<size_t> digits;
    int64_t covered = 1;
    while (covered < in[a] && j < out.size()) {
      if (out[j] != 1) digits.push_back(j), covered *= out[j];
      ++j;
    }
    if (covered != in[a]) return std::nullopt;  // an axis merged with the next
    int64_t weight = 1;
    for (size_t t = digits.size(); t-- > 0;) coef[a][digits[t]] = weight, weight *= out[digits[t]];
  }
  for (; j < out.size(); ++j)
    if (out[j] != 1) return std::nullopt;
  return coef;
}

std::optional<MergedAxis> merged_axis(const std::vector<int64_t>& in, const std::vector<int64_t>& out) {
  if (out.empty() || in.size() < out.size() + 1) return std::nullopt;
  const size_t q = in.size() - out.size() + 1;  // the run's length
  for (size_t a = 0; a < out.size(); ++a) {
    if (a > 0 && in[a - 1] != out[a - 1]) break;  // the axes before must match
    bool same_after = true;
    for (size_t t = a + 1; t < out.size(); ++t) same_after = same_after && in[t + q - 1] == out[t];
    int64_t merged = 1;
    for (size_t t = a; t < a + q; ++t) merged *= in[t];
    if (same_after && merged == out[a])
      return MergedAxis{static_cast<int64_t>(a), std::vector<int64_t>(in.begin() + a, in.begin() + a + q)};
  }
  return std::nullopt;
}

Fusion decide_fusion(const Graph& g, const EntrySignature& sig) {
  Fusion f;
  mark_live(g, sig, f);
  decide(g, sig, f);
  gather_views(g, sig, f);
  pool_views(g, sig, f);
  recompute_compares(g, sig, f);
  bound_size(g, f);
  order_nodes(g, f);
  return f;
}

}  // namespace gradc
