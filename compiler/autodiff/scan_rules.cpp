// Reverse and forward mode through scan: a loop differentiated as a loop.
#include "compiler/autodiff/scan_rules.h"

#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/ir/region.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// x with a leading axis of size 1.
NodeId unsqueeze0(Builder& b, NodeId x) {
  std::vector<int64_t> s{1};
  for (const Dim& d : b[x].shape) s.push_back(d.size);
  return b.reshape(x, s);
}

NodeId slice0(Builder& b, NodeId x, int64_t start, int64_t stop) {
  Attrs a;
  a.ints = {0, start, stop};
  return b.make(Op::Slice, {x}, a);
}

// A new argument of `rb` with the type of node n of graph g.
NodeId arg_like(RegionBuilder& rb, const Graph& g, NodeId n, const std::string& name) {
  return rb.arg(g[n].dtype, g[n].shape, name);
}

// The carries after every step, stacked [T, ...] like the outputs, for
// every carry of `scan`: an output of the scan itself when one of its
// outputs is that carry (what scan() of the language makes), else an
// output of a second scan, the same body with the carries as extra outputs.
std::vector<NodeId> carry_stacks(Builder& b, NodeId scan) {
  const Node s = b[scan];
  const Region& f = *s.attrs.region;
  ScanAttrs sa = ScanAttrs::of(s.attrs);
  const int64_t m = sa.carries, p = static_cast<int64_t>(f.results.size()) - m;
  std::vector<NodeId> out(m, kNoNode);
  bool all = true;
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < p && out[i] == kNoNode; ++j)
      if (f.results[m + j] == f.results[i]) out[i] = scan_out(b, scan, m + j);
    all = all && out[i] != kNoNode;
  }
  if (all) return out;
  RegionBuilder rb;
  std::vector<NodeId> args;
  for (NodeId a : f.args) args.push_back(arg_like(rb, f.body, a, "arg"));
  std::vector<NodeId> res = inline_region(rb.b(), f, args);
  for (NodeId r : res) rb.result(r);
  for (int64_t i = 0; i < m; ++i) rb.result(res[i]);
  NodeId again = make_scan(b, rb.finish(), s.operands, sa);
  for (int64_t i = 0; i < m; ++i) out[i] = scan_out(b, again, m + p + i);
  return out;
}

// Sum of the elements of a * w, as `dtype`.
NodeId dot(Builder& b, NodeId a, NodeId w, DType dtype) {
  NodeId d = b.sum_all(b.mul(a, w));
  return b[d].dtype == dtype ? d : b.cast(d, dtype);
}

}  // namespace

std::vector<NodeId> scan_vjp(Builder& b, NodeId scan, const std::vector<NodeId>& adjoints,
                             const std::vector<bool>& needed) {
  const Node s = b[scan];  // a copy: the graph grows below
  const Region& f = *s.attrs.region;
  const ScanAttrs sa = ScanAttrs::of(s.attrs);
  const int64_t m = sa.carries, k = sa.xs, T = sa.length;
  const int64_t ops = static_cast<int64_t>(s.operands.size()), p = static_cast<int64_t>(f.results.size()) - m;
  GRADC_ASSERT(static_cast<int64_t>(adjoints.size()) == m + p && static_cast<int64_t>(needed.size()) == ops,
               "scan_vjp: one adjoint per result, one flag per operand");
  SourceLoc old = b.at(s.loc);
  auto wants = [&](int64_t i) { return needed[i] && is_float(b[s.operands[i]].dtype); };

  // The carry before each step, in step order of xs's indexing: the initial
  // carry at the first step visited, the previous step's carry elsewhere.
  std::vector<NodeId> stacks = carry_stacks(b, scan), before(m);
  Attrs axis0;  // (concatenated along axis 0)
  axis0.ints = {0};
  for (int64_t i = 0; i < m; ++i) {
    NodeId init = unsqueeze0(b, s.operands[i]);
    if (T == 1) before[i] = init;
    else if (!sa.reverse) before[i] = b.make(Op::Concat, {init, slice0(b, stacks[i], 0, T - 1)}, axis0);
    else before[i] = b.make(Op::Concat, {slice0(b, stacks[i], 1, T), init}, axis0);
  }

  // The backward body: carries (d carry.., d capture..), xs (carry before,
  // x.., d output..), captures (the forward's captures).
  std::vector<int64_t> dcap, dxs, dys;  // operand indices of captures and xs wanting one; outputs with an adjoint
  for (int64_t i = m + k; i < ops; ++i)
    if (wants(i)) dcap.push_back(i);
  for (int64_t i = m; i < m + k; ++i)
    if (wants(i)) dxs.push_back(i);
  for (int64_t j = 0; j < p; ++j)
    if (adjoints[m + j] != kNoNode && is_float(b[adjoints[m + j]].dtype)) dys.push_back(j);

  RegionBuilder rb;
  Builder& bb = rb.b();
  bb.at(s.loc);
  const Graph& fg = f.body;
  std::vector<NodeId> dc, acc, cprev, x, gy, w;
  for (int64_t i = 0; i < m; ++i) dc.push_back(arg_like(rb, fg, f.args[i], "d_carry"));
  for (int64_t i : dcap) acc.push_back(arg_like(rb, fg, f.args[i], "d_capture"));
  for (int64_t i = 0; i < m; ++i) cprev.push_back(arg_like(rb, fg, f.args[i], "carry"));
  for (int64_t i = m; i < m + k; ++i) x.push_back(arg_like(rb, fg, f.args[i], "x"));
  for (int64_t j : dys) gy.push_back(arg_like(rb, fg, f.results[m + j], "d_output"));
  for (int64_t i = m + k; i < ops; ++i) w.push_back(arg_like(rb, fg, f.args[i], "capture"));

  std::vector<NodeId> fargs = cprev;
  fargs.insert(fargs.end(), x.begin(), x.end());
  fargs.insert(fargs.end(), w.begin(), w.end());
  std::vector<NodeId> fwd = inline_region(bb, f, fargs);
  // The step's share of the loss, linear in the adjoints: its gradient with
  // respect to the step's arguments is the body's vector-Jacobian product.
  NodeId total = kNoNode;
  auto plus = [&](NodeId term) {
    if (total == kNoNode) total = term;
    else total = bb.add(total, bb[term].dtype == bb[total].dtype ? term : bb.cast(term, bb[total].dtype));
  };
  for (int64_t i = 0; i < m; ++i)
    if (is_float(fg[f.results[i]].dtype)) plus(dot(bb, fwd[i], dc[i], fg[f.results[i]].dtype));
  for (size_t j = 0; j < dys.size(); ++j) plus(dot(bb, fwd[m + dys[j]], gy[j], fg[f.results[m + dys[j]]].dtype));
  std::vector<NodeId> wrt;
  for (int64_t i = 0; i < m; ++i) wrt.push_back(cprev[i]);
  for (int64_t i : dxs) wrt.push_back(x[i - m]);
  for (int64_t i : dcap) wrt.push_back(w[i - m - k]);
  std::vector<NodeId> grads;
  if (total != kNoNode) grads = gradients(bb, total, wrt);
  else
    for (NodeId v : wrt) grads.push_back(bb.full_like(0.0, v));
  for (int64_t i = 0; i < m; ++i) rb.result(grads[i]);
  for (size_t j = 0; j < dcap.size(); ++j) rb.result(bb.add(acc[j], grads[m + dxs.size() + j]));
  for (size_t j = 0; j < dxs.size(); ++j) rb.result(grads[m + j]);

  std::vector<NodeId> operands;
  for (int64_t i = 0; i < m; ++i)
    operands.push_back(adjoints[i] != kNoNode ? adjoints[i] : b.full_like(0.0, s.operands[i]));
  for (int64_t i : dcap) operands.push_back(b.full_like(0.0, s.operands[i]));
  for (int64_t i = 0; i < m; ++i) operands.push_back(before[i]);
  for (int64_t i = m; i < m + k; ++i) operands.push_back(s.operands[i]);
  for (int64_t j : dys) operands.push_back(adjoints[m + j]);
  for (int64_t i = m + k; i < ops; ++i) operands.push_back(s.operands[i]);
  ScanAttrs ba{m + static_cast<int64_t>(dcap.size()), m + k + static_cast<int64_t>(dys.size()), T, !sa.reverse,
               sa.checkpoint};
  NodeId back = make_scan(b, rb.finish(), std::move(operands), ba);

  std::vector<NodeId> out(ops, kNoNode);
  for (int64_t i = 0; i < m; ++i)
    if (wants(i)) out[i] = scan_out(b, back, i);
  for (size_t j = 0; j < dcap.size(); ++j) out[dcap[j]] = scan_out(b, back, m + static_cast<int64_t>(j));
  for (size_t j = 0; j < dxs.size(); ++j) out[dxs[j]] = scan_out(b, back, ba.carries + static_cast<int64_t>(j));
  b.at(old);
  return out;
}

NodeId scan_tangent(Builder& b, NodeId scan, const std::vector<NodeId>& tangents) {
  const Node s = b[scan];
  const Region& f = *s.attrs.region;
  const ScanAttrs sa = ScanAttrs::of(s.attrs);
  const int64_t m = sa.carries, k = sa.xs, ops = static_cast<int64_t>(s.operands.size());
  const int64_t p = static_cast<int64_t>(f.results.size()) - m;
  bool any = false;
  for (NodeId t : tangents) any = any || t != kNoNode;
  if (!any) return kNoNode;
  SourceLoc old = b.at(s.loc);
  const Graph& fg = f.body;
  RegionBuilder rb;
  Builder& bb = rb.b();
  bb.at(s.loc);
  // Arguments: carries (c.., dc..), xs (x.., dx of those with a tangent..),
  // captures (w.., dw of those with a tangent..).
  std::vector<NodeId> fargs(ops), targ(ops, kNoNode);
  std::vector<int64_t> tx, tw;
  for (int64_t i = 0; i < m; ++i) fargs[i] = arg_like(rb, fg, f.args[i], "carry");
  for (int64_t i = 0; i < m; ++i) targ[i] = arg_like(rb, fg, f.args[i], "t_carry");
  for (int64_t i = m; i < m + k; ++i) fargs[i] = arg_like(rb, fg, f.args[i], "x");
  for (int64_t i = m; i < m + k; ++i)
    if (tangents[i] != kNoNode) tx.push_back(i), targ[i] = arg_like(rb, fg, f.args[i], "t_x");
  for (int64_t i = m + k; i < ops; ++i) fargs[i] = arg_like(rb, fg, f.args[i], "capture");
  for (int64_t i = m + k; i < ops; ++i)
    if (tangents[i] != kNoNode) tw.push_back(i), targ[i] = arg_like(rb, fg, f.args[i], "t_capture");
  std::vector<NodeId> fwd = inline_region(bb, f, fargs);
  auto tangent_of = [&](NodeId r) {
    NodeId t = kNoNode;
    for (int64_t i = 0; i < ops; ++i) {
      if (targ[i] == kNoNode || !is_float(bb[r].dtype) || !is_float(bb[fargs[i]].dtype)) continue;
      NodeId d = directional_derivative(bb, r, fargs[i], targ[i]);
      t = t == kNoNode ? d : bb.add(t, d);
    }
    return t == kNoNode ? bb.full_like(0.0, r) : t;
  };
  for (int64_t i = 0; i < m; ++i) rb.result(fwd[i]);
  for (int64_t i = 0; i < m; ++i) rb.result(tangent_of(fwd[i]));
  for (int64_t j = 0; j < p; ++j) rb.result(fwd[m + j]);
  for (int64_t j = 0; j < p; ++j) rb.result(tangent_of(fwd[m + j]));

  std::vector<NodeId> operands(s.operands.begin(), s.operands.begin() + m);
  for (int64_t i = 0; i < m; ++i) operands.push_back(tangents[i] != kNoNode ? tangents[i] : b.full_like(0.0, s.operands[i]));
  for (int64_t i = m; i < m + k; ++i) operands.push_back(s.operands[i]);
  for (int64_t i : tx) operands.push_back(tangents[i]);
  for (int64_t i = m + k; i < ops; ++i) operands.push_back(s.operands[i]);
  for (int64_t i : tw) operands.push_back(tangents[i]);
  ScanAttrs ta{2 * m, k + static_cast<int64_t>(tx.size()), sa.length, sa.reverse, sa.checkpoint};
  NodeId r = make_scan(b, rb.finish(), std::move(operands), ta);
  b.at(old);
  return r;
}

int64_t scan_tangent_index(const Graph& g, NodeId scan, int64_t i) {
  const Node& s = g[scan];
  const int64_t m = ScanAttrs::of(s.attrs).carries;
  const int64_t p = static_cast<int64_t>(s.attrs.region->results.size()) - m;
  return i < m ? m + i : 2 * m + p + (i - m);
}

}  // namespace gradc
