// The batching sweep and the batching rule of every op kind.
#include "compiler/autodiff/batching.h"

#include <algorithm>

#include "compiler/ir/region.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// A stacked value [P, s...] made ready to broadcast against the other
// operands of an op whose unbatched result has rank `rank`: size-1 axes go
// between P and s, so that broadcasting (which aligns trailing axes) pairs s
// with the same axes as before and P with nothing else.
NodeId align(Builder& b, NodeId x, int rank) {
  const Shape& s = b[x].shape;
  const int have = static_cast<int>(s.size()) - 1;
  if (have >= rank) return x;
  std::vector<int64_t> sizes{s[0].size};
  sizes.insert(sizes.end(), rank - have, 1);
  for (int i = 1; i <= have; ++i) sizes.push_back(s[i].size);
  return b.reshape(x, sizes);
}

// An unstacked value given its own copy per member: [P, x's shape...].
NodeId stack(Builder& b, NodeId x, int64_t P) {
  std::vector<int64_t> sizes{1};
  for (const Dim& d : b[x].shape) sizes.push_back(d.size);
  Shape s = b[x].shape;
  s.insert(s.begin(), Dim{P, {}});
  return b.broadcast_to(b.reshape(x, sizes), s);
}

std::vector<int64_t> shifted(std::vector<int64_t> axes) {
  for (int64_t& a : axes) ++a;
  return axes;
}

// Swaps the two leading axes ([P, T, ...] <-> [T, P, ...]).
NodeId swap01(Builder& b, NodeId x) {
  std::vector<int64_t> perm(b[x].rank());
  for (size_t i = 0; i < perm.size(); ++i) perm[i] = static_cast<int64_t>(i);
  std::swap(perm[0], perm[1]);
  return b.transpose(x, perm);
}

// A scan over stacked operands: the same loop with a batched body. Every
// carry and every output of the batched scan is stacked (a carry the
// members share is copied per member), so that scan_out's rule is uniform;
// stacked xs are scanned along their second axis ([T, P, ...]); captures
// stay as they are. kNoNode when the body cannot be batched.
NodeId batch_scan(Builder& b, const Node& n, std::vector<NodeId> ops, const std::vector<bool>& batched, int64_t P) {
  const Region& f = *n.attrs.region;
  const ScanAttrs sa = ScanAttrs::of(n.attrs);
  const int64_t m = sa.carries, k = sa.xs, count = static_cast<int64_t>(ops.size());
  const Graph& fg = f.body;
  RegionBuilder rb;
  Builder& bb = rb.b();
  // Arguments: a stacked one [P, ...] for every carry and every batched
  // operand, the body's own type for the others; the body is copied with
  // placeholders of the unstacked types and then batched over them.
  std::vector<NodeId> args, placeholders;
  std::vector<std::pair<NodeId, NodeId>> stacked;
  for (int64_t i = 0; i < count; ++i) {
    const Node& a = fg[f.args[i]];
    bool st = i < m || batched[i];
    Shape shape = a.shape;
    if (st) shape.insert(shape.begin(), Dim{P, {}});
    args.push_back(rb.arg(a.dtype, shape, "arg"));
    if (!st) {
      placeholders.push_back(args.back());
      continue;
    }
    placeholders.push_back(bb.leaf(Op::Input, "unbatched#" + std::to_string(i), a.dtype, a.shape));
    stacked.emplace_back(placeholders.back(), args.back());
  }
  std::vector<NodeId> body = inline_region(bb, f, placeholders);
  std::vector<NodeId> out = batch_nodes(bb, body, stacked, P, nullptr);
  if (out.empty()) return kNoNode;
  for (size_t j = 0; j < out.size(); ++j) {
    if (bb[out[j]].rank() == fg[f.results[j]].rank()) out[j] = stack(bb, out[j], P);
    rb.result(out[j]);
  }
  for (int64_t i = 0; i < count; ++i) {
    if (i < m && !batched[i]) ops[i] = stack(b, ops[i], P);
    else if (i >= m && i < m + k && batched[i]) ops[i] = swap01(b, ops[i]);
  }
  return make_scan(b, rb.finish(), std::move(ops), sa);
}

}  // namespace

NodeId batch_rule(Builder& b, NodeId node, const std::vector<NodeId>& operands, const std::vector<bool>& batched,
                  int64_t P) {
  const Node n = b[node];  // a copy: the graph grows below
  SourceLoc old = b.at(n.loc);
  const int rank = n.rank();
  Attrs attrs = n.attrs;
  std::vector<NodeId> ops = operands;
  NodeId r = kNoNode;
  switch (op_kind(n.op)) {
    case OpKind::Leaf: GRADC_ASSERT(false, "batch_rule: a leaf has no operands to batch"); break;
    // Elementwise ops broadcast: a stacked operand only needs its axes lined up.
    case OpKind::Unary:
    case OpKind::Cast:
    case OpKind::Binary:
    case OpKind::Compare:
    case OpKind::Select:
      for (size_t i = 0; i < ops.size(); ++i)
        if (batched[i]) ops[i] = align(b, ops[i], rank);
      r = b.make(n.op, ops, attrs);
      break;
    // Reductions and argmax: the same axes, one further right.
    case OpKind::Reduce:
    case OpKind::ArgMax:
      attrs.ints = shifted(attrs.ints);
      r = b.make(n.op, ops, attrs);
      break;
    // Matrix products broadcast their batch axes: a stacked [P, m, k] times an
    // unstacked [k, n] is one batched product [P, m, n].
    case OpKind::MatMul:
      for (size_t i = 0; i < ops.size(); ++i)
        if (batched[i]) ops[i] = align(b, ops[i], rank);
      r = b.make(n.op, ops, attrs);
      break;
    case OpKind::Reshape:
    case OpKind::BroadcastTo:
      if (op_kind(n.op) == OpKind::BroadcastTo) ops[0] = align(b, ops[0], rank);
      attrs.ints.insert(attrs.ints.begin(), P);
      r = b.make(n.op, ops, attrs);
      break;
    case OpKind::Transpose:
      attrs.ints = shifted(attrs.ints);
      attrs.ints.insert(attrs.ints.begin(), 0);
      r = b.make(n.op, ops, attrs);
      break;
    // Concat: every piece stacked (an unstacked one is repeated per member).
    case OpKind::Concat:
      for (size_t i = 0; i < ops.size(); ++i)
        if (!batched[i]) ops[i] = stack(b, ops[i], P);
      attrs.ints[0] += 1;
      r = b.make(n.op, ops, attrs);
      break;
    // Slice and pad: [axis, ...] with the axis one further right.
    case OpKind::Slice:
    case OpKind::Pad:
      attrs.ints[0] += 1;
      r = b.make(n.op, ops, attrs);
      break;
    // one_hot appends its class axis after the operand's: P stays in front.
    case OpKind::OneHot: r = b.make(n.op, ops, attrs); break;
    // embedding of a stacked table (or of stacked ids): rows picked by a
    // product with one_hot(ids), [P, N, V] @ [P, V, D], which stays exact
    // (each output is one row element times 1 plus zeros) and checks the ids
    // as one_hot does. embedding_grad, its adjoint, is one_hot(ids)^T @ g.
    case OpKind::Gather:
    case OpKind::ScatterAdd: {
      const bool gather = op_kind(n.op) == OpKind::Gather;
      NodeId ids = ops[0], x = ops[1];
      const int64_t V = gather ? b[n.operands[1]].shape[0].size : n.attrs.ints[0];
      const int64_t D = n.shape.back().size;
      // ids as [N] or [P, N]; x as [P?, N, D] (gather: [P?, V, D])
      const int64_t N = numel(b[n.operands[0]].shape);
      ids = b.reshape(ids, batched[0] ? std::vector<int64_t>{P, N} : std::vector<int64_t>{N});
      if (!gather) x = b.reshape(x, batched[1] ? std::vector<int64_t>{P, N, D} : std::vector<int64_t>{N, D});
      Attrs classes;
      classes.ints = {V};
      NodeId hot = b.cast(b.make(Op::OneHot, {ids}, classes), n.dtype);  // [P?, N, V]
      NodeId picked = gather ? b.make(Op::MatMul, {hot, x}) : b.make(Op::MatMul, {b.transpose_last2(hot), x});
      std::vector<int64_t> out = sizes(n.shape);
      out.insert(out.begin(), P);
      r = b.reshape(picked, out);
      break;
    }
    // Random bits are keyed by the step, never by a member's values.
    case OpKind::Random: r = kNoNode; break;
    // A loop: its body batched (batch_scan); its results all stacked, the
    // outputs' [T, P, ...] turned into [P, T, ...].
    case OpKind::Scan: r = batch_scan(b, n, ops, batched, P); break;
    case OpKind::ScanOut: {
      const int64_t i = attrs.ints[0];
      r = scan_out(b, ops[0], i);
      if (i >= ScanAttrs::of(b[n.operands[0]].attrs).carries) r = swap01(b, r);
      break;
    }
    // window and fold see [N, C, spatial...]: the members become more of N.
    case OpKind::Window: {
      std::vector<int64_t> merged = sizes(b[ops[0]].shape);
      merged[1] *= merged[0];
      merged.erase(merged.begin());
      std::vector<int64_t> out = sizes(n.shape);
      out.insert(out.begin(), P);
      r = b.reshape(b.make(n.op, {b.reshape(ops[0], merged)}, attrs), out);
      break;
    }
  }
  b.at(old);
  GRADC_ASSERT(r == kNoNode || n.op == Op::Scan || (b[r].rank() == rank + 1 && b[r].shape[0].size == P),
               "batch_rule: the result must lead with P");
  return r;
}

std::vector<NodeId> batch_nodes(Builder& b, const std::vector<NodeId>& roots,
                                const std::vector<std::pair<NodeId, NodeId>>& stacked, int64_t P, NodeId* unsupported) {
  if (roots.empty()) return {};
  const NodeId last = *std::max_element(roots.begin(), roots.end());
  // mapped[n]: n's value for all members, stacked where is_batched[n]. Ids
  // are topological, and the nodes the rules add come after `last`.
  std::vector<NodeId> mapped(last + 1);
  std::vector<bool> is_batched(last + 1, false);
  for (NodeId n = 0; n <= last; ++n) mapped[n] = n;
  for (const auto& [leaf, value] : stacked) {
    GRADC_ASSERT(b[value].rank() == b[leaf].rank() + 1 && b[value].shape[0].size == P &&
                     b[value].dtype == b[leaf].dtype,
                 "batch_nodes: a stacked value must be [P, leaf's shape]");
    if (leaf > last) continue;
    mapped[leaf] = value;
    is_batched[leaf] = true;
  }
  for (NodeId n = 0; n <= last; ++n) {
    if (is_batched[n] || b[n].operands.empty()) continue;
    std::vector<NodeId> ops;
    std::vector<bool> which;
    bool any = false;
    for (NodeId o : b[n].operands) {
      ops.push_back(mapped[o]);
      which.push_back(is_batched[o]);
      any |= is_batched[o];
    }
    if (!any) continue;
    mapped[n] = batch_rule(b, n, ops, which, P);
    if (mapped[n] == kNoNode) {
      if (unsupported) *unsupported = n;
      return {};
    }
    is_batched[n] = true;
  }
  std::vector<NodeId> out;
  for (NodeId r : roots) out.push_back(mapped[r]);
  return out;
}

}  // namespace gradc
