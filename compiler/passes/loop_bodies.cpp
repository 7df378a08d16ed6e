// Loop bodies through the optimization pipeline (see loop_bodies.h).
#include "compiler/passes/loop_bodies.h"

#include <map>
#include <string>

#include "compiler/autodiff/batching.h"
#include "compiler/ir/region.h"
#include "compiler/passes/pipeline.h"
#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

// The body as a model: one input per argument (their names are unique:
// RegionBuilder::arg), one output per result, optimized, and back; sets
// `changed` when the passes changed its node count.
std::shared_ptr<const Region> optimized(const Region& r, bool& changed) {
  ModelIR body;
  body.name = "loop body";
  Builder b(body.graph);
  std::vector<NodeId> args;
  for (NodeId a : r.args) {
    const Node& n = r.body[a];
    b.at(n.loc);
    args.push_back(b.leaf(Op::Input, n.attrs.name, n.dtype, n.shape));
    body.inputs.push_back({n.attrs.name, args.back(), n.loc});
  }
  std::vector<NodeId> results = inline_region(b, r, args);
  for (size_t j = 0; j < results.size(); ++j) body.outputs.push_back({"result" + std::to_string(j), results[j], {}});
  ModelIR opt = optimize(body);
  if (live_node_count(opt) != live_node_count(body)) changed = true;
  auto out = std::make_shared<Region>();
  out->body = std::move(opt.graph);
  for (const NamedNode& in : opt.inputs) out->args.push_back(in.node);
  for (const NamedNode& o : opt.outputs) out->results.push_back(o.node);
  return out;
}

// What a body node depends on, in increasing order: nothing (constants),
// the captures only (the same at every step), the step's slices too, the
// carries (a different value at every step for a reason inside the loop).
enum class Dep : uint8_t { None, Invariant, PerStep, Carried };

// A scan about to be rebuilt: its body, its operands (ids in the graph being
// built) and its counts.
struct Loop {
  std::shared_ptr<const Region> body;
  std::vector<NodeId> operands;
  ScanAttrs attrs;
};

// Whether the part of node n that depends on at most `upto` has any op
// worth doing once rather than at every step: for invariant values anything
// but broadcasts and reshapes of leaves (a transposed weight is a copy per
// step otherwise); for per-step values a matrix product (the input
// projections of an RNN, one large product over all steps instead of T
// small ones; elementwise work would only move to a stack in memory).
bool worth_hoisting(const Graph& g, NodeId n, const std::vector<Dep>& dep, Dep upto) {
  std::vector<NodeId> stack{n};
  std::vector<bool> seen(g.size(), false);
  while (!stack.empty()) {
    NodeId x = stack.back();
    stack.pop_back();
    if (seen[x] || dep[x] > upto) continue;
    seen[x] = true;
    const Node& node = g[x];
    if (upto == Dep::PerStep ? node.op == Op::MatMul
                             : !node.operands.empty() && node.op != Op::BroadcastTo && node.op != Op::Reshape)
      return true;
    for (NodeId o : node.operands) stack.push_back(o);
  }
  return false;
}

// Moves out of the loop the body's values that do not depend on the carries
// and that the rest of the body reads: invariant ones become new captures,
// computed once before the loop; per-step ones become new scanned tensors,
// computed for all T steps at once by batching their nodes over the steps
// (batching.h) before the loop. Returns whether anything moved.
bool hoist(Builder& b, Loop& loop) {
  const Region& f = *loop.body;
  const Graph& g = f.body;
  const ScanAttrs sa = loop.attrs;
  const int64_t m = sa.carries, k = sa.xs, count = static_cast<int64_t>(f.args.size());
  std::vector<bool> need(g.size(), false), result(g.size(), false);
  for (NodeId r : f.results) need[r] = result[r] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  std::vector<Dep> dep(g.size(), Dep::None), user(g.size(), Dep::None);
  for (int64_t i = 0; i < count; ++i)
    dep[f.args[i]] = i < m ? Dep::Carried : i < m + k ? Dep::PerStep : Dep::Invariant;
  for (NodeId n = 0; n < g.size(); ++n)
    for (NodeId o : g[n].operands) dep[n] = std::max(dep[n], dep[o]);
  for (NodeId n = 0; n < g.size(); ++n)
    if (need[n])
      for (NodeId o : g[n].operands) user[o] = std::max(user[o], dep[n]);
  std::vector<NodeId> invariant, per_step;
  for (NodeId n = 0; n < g.size(); ++n) {
    if (!need[n] || g[n].operands.empty()) continue;
    bool read_later = user[n] > dep[n] || result[n];
    if (dep[n] == Dep::Invariant && read_later && worth_hoisting(g, n, dep, Dep::Invariant)) invariant.push_back(n);
    // (checkpoint > 0 asks for memory over speed: per-step work stays in
    // the loop rather than in stacks over all steps)
    if (dep[n] == Dep::PerStep && read_later && sa.checkpoint == 0 && worth_hoisting(g, n, dep, Dep::PerStep))
      per_step.push_back(n);
  }
  if (invariant.empty() && per_step.empty()) return false;

  // Their values outside: captures are the scan's operands; a step's slices
  // are placeholders, which batching replaces by the whole scanned tensors.
  std::unordered_map<NodeId, NodeId> outside;
  std::vector<std::pair<NodeId, NodeId>> stacked;
  for (int64_t i = m; i < count; ++i) {
    if (i >= m + k) {
      outside.emplace(f.args[i], loop.operands[i]);
      continue;
    }
    const Node& a = g[f.args[i]];
    NodeId slice = b.leaf(Op::Input, "@slice#" + std::to_string(i), a.dtype, a.shape);
    outside.emplace(f.args[i], slice);
    stacked.emplace_back(slice, loop.operands[i]);
  }
  std::vector<NodeId> inv = copy_nodes(b, g, invariant, outside);
  std::vector<NodeId> steps;
  if (!per_step.empty()) {
    steps = batch_nodes(b, copy_nodes(b, g, per_step, outside), stacked, sa.length);
    if (steps.empty()) per_step.clear();  // (an op batching does not take: left in the loop)
  }
  if (invariant.empty() && per_step.empty()) return false;

  // The body reads them as arguments: per-step ones after the xs, invariant
  // ones after the captures.
  RegionBuilder rb;
  std::vector<NodeId> args;
  std::unordered_map<NodeId, NodeId> given;
  auto arg = [&](NodeId n) { return rb.arg(g[n].dtype, g[n].shape, g[n].op == Op::Input ? g[n].attrs.name : "hoisted"); };
  for (int64_t i = 0; i < m + k; ++i) args.push_back(arg(f.args[i]));
  for (NodeId n : per_step) given.emplace(n, arg(n));
  for (int64_t i = m + k; i < count; ++i) args.push_back(arg(f.args[i]));
  for (NodeId n : invariant) given.emplace(n, arg(n));
  for (NodeId r : inline_region(rb.b(), f, args, given)) rb.result(r);
  std::vector<NodeId> ops(loop.operands.begin(), loop.operands.begin() + m + k);
  ops.insert(ops.end(), steps.begin(), steps.end());
  ops.insert(ops.end(), loop.operands.begin() + m + k, loop.operands.end());
  ops.insert(ops.end(), inv.begin(), inv.end());
  loop.body = rb.finish();
  loop.operands = std::move(ops);
  loop.attrs.xs += static_cast<int64_t>(per_step.size());
  return true;
}

// A carry that only accumulates, new = old + D with D not reading it (the
// gradient of a weight the loop reads, summed over the steps in the
// backward loop), ends as init + the sum over t of D_t, which is one large
// product after the loop when D is a product: sum_t A_t @ B_t over stacks
// A [T, a, b] and B [T, b, c] is A' @ B' with A' the a x T*b matrix of the
// A_t side by side and B' the T*b x c matrix of the B_t stacked (when A_t is
// P_t^T, A' is (P stacked as T*b x a)^T, which the product reads through
// strides). Instead of a product, a transposed add into the accumulator and
// a copy at every step, the loop outputs A_t (or P_t) and B_t. A small D
// (a bias's gradient) is output as it is and summed after the loop.
struct Sunk {
  int64_t carry;           // its index
  bool product = false;    // D = [transpose](A @ B), else D itself is output
  bool a_transposed = false, d_transposed = false;
  NodeId a = kNoNode, b = kNoNode, d = kNoNode;  // body nodes output by the loop
  int64_t a_xs = -1;       // A_t^T (or A_t) is the scanned operand with this index: no output for it
};

// Rewrites the loop so that its accumulating carries stay unchanged in it
// (their sums are made after it, by finish_sunk); returns them.
std::vector<Sunk> sink(Loop& loop) {
  const Region& f = *loop.body;
  const Graph& g = f.body;
  const int64_t m = loop.attrs.carries, k = loop.attrs.xs;
  std::vector<int> users(g.size(), 0);
  std::vector<bool> need(g.size(), false);
  for (NodeId r : f.results) need[r] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) ++users[o], need[o] = true;
  for (NodeId r : f.results) ++users[r];
  auto reads = [&](NodeId n, NodeId leaf) {
    std::vector<NodeId> stack{n};
    std::vector<bool> seen(g.size(), false);
    while (!stack.empty()) {
      NodeId x = stack.back();
      stack.pop_back();
      if (x == leaf) return true;
      if (seen[x]) continue;
      seen[x] = true;
      for (NodeId o : g[x].operands) stack.push_back(o);
    }
    return false;
  };
  auto is_t2 = [&](NodeId n) { return g[n].op == Op::Transpose && g[n].rank() == 2; };
  auto xs_index = [&](NodeId n) {
    for (int64_t i = m; i < m + k; ++i)
      if (f.args[i] == n) return i;
    return int64_t{-1};
  };
  std::vector<Sunk> sunk;
  for (int64_t i = 0; i < m; ++i) {
    NodeId r = f.results[i], acc = f.args[i];
    const Node& add = g[r];
    if (add.op != Op::Add || users[acc] != 1 || !is_float(add.dtype)) continue;
    NodeId d = add.operands[0] == acc ? add.operands[1] : add.operands[1] == acc ? add.operands[0] : kNoNode;
    if (d == kNoNode || g[d].shape != add.shape || reads(d, acc)) continue;
    Sunk s{i};
    NodeId p = d;
    if (is_t2(p) && g[g[p].operands[0]].op == Op::MatMul) s.d_transposed = true, p = g[p].operands[0];
    if (g[p].op == Op::MatMul && g[g[p].operands[0]].rank() == 2 && g[g[p].operands[1]].rank() == 2) {
      s.product = true;
      s.a = g[p].operands[0];
      s.b = g[p].operands[1];
      if (is_t2(s.a)) s.a_transposed = true, s.a = g[s.a].operands[0];
      s.a_xs = xs_index(s.a);
    } else if (numel(g[d].shape) <= 4096) {
      s.d = d;
    } else {
      continue;
    }
    sunk.push_back(s);
  }
  if (sunk.empty()) return sunk;
  // The body again: sunk carries unchanged, their terms as extra outputs.
  std::vector<NodeId> results = f.results, extra;
  for (Sunk& s : sunk) {
    results[s.carry] = f.args[s.carry];
    if (!s.product) {
      extra.push_back(s.d);
      continue;
    }
    if (s.a_xs < 0) extra.push_back(s.a);
    extra.push_back(s.b);
  }
  RegionBuilder rb;
  std::unordered_map<NodeId, NodeId> given;
  for (NodeId a : f.args) given.emplace(a, rb.arg(g[a].dtype, g[a].shape, g[a].attrs.name));
  std::vector<NodeId> all = results;
  all.insert(all.end(), extra.begin(), extra.end());
  for (NodeId r : copy_nodes(rb.b(), g, all, given)) rb.result(r);
  loop.body = rb.finish();
  return sunk;
}

// The sunk carries' final values, from the rewritten scan's outputs:
// out[carry] = init + the sum over the steps of its term.
std::map<int64_t, NodeId> finish_sunk(Builder& b, NodeId scan, const Loop& loop, const std::vector<Sunk>& sunk,
                                      int64_t first_extra) {
  std::map<int64_t, NodeId> out;
  const int64_t T = loop.attrs.length;
  int64_t next = first_extra;
  for (const Sunk& s : sunk) {
    NodeId init = loop.operands[s.carry], sum;
    if (!s.product) {
      sum = b.reduce(Op::ReduceSum, scan_out(b, scan, next++), {0}, false);
    } else {
      NodeId as = s.a_xs >= 0 ? loop.operands[s.a_xs] : scan_out(b, scan, next++);
      NodeId bs = scan_out(b, scan, next++);
      const Shape& ash = b[as].shape;  // [T, b, a] when transposed, else [T, a, b]
      NodeId a2 = s.a_transposed ? b.transpose_last2(b.reshape(as, {T * ash[1].size, ash[2].size}))
                                 : b.reshape(b.transpose(as, {1, 0, 2}), {ash[1].size, T * ash[2].size});
      NodeId b2 = b.reshape(bs, {b[a2].shape[1].size, b[bs].shape[2].size});
      sum = b.make(Op::MatMul, {a2, b2});
      if (s.d_transposed) sum = b.transpose_last2(sum);
    }
    out[s.carry] = b.add(init, sum);
  }
  return out;
}

// Drops the scanned tensors and captures the body no longer reads (after
// hoisting, an RNN's input slices): no per-step copy for them.
void prune(Loop& loop) {
  const Region& f = *loop.body;
  const Graph& g = f.body;
  std::vector<bool> need(g.size(), false);
  for (NodeId r : f.results) need[r] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  const int64_t m = loop.attrs.carries, count = static_cast<int64_t>(f.args.size());
  bool any = false;
  for (int64_t i = m; i < count; ++i) any = any || !need[f.args[i]];
  if (!any) return;
  RegionBuilder rb;
  std::vector<NodeId> args, ops;
  int64_t xs = 0;
  for (int64_t i = 0; i < count; ++i) {
    if (i >= m && !need[f.args[i]]) {
      args.push_back(kNoNode);
      continue;
    }
    const Node& a = g[f.args[i]];
    args.push_back(rb.arg(a.dtype, a.shape, a.attrs.name));
    ops.push_back(loop.operands[i]);
    xs += i >= m && i < m + loop.attrs.xs;
  }
  for (NodeId r : inline_region(rb.b(), f, args)) rb.result(r);
  loop.body = rb.finish();
  loop.operands = std::move(ops);
  loop.attrs.xs = xs;
}

}  // namespace

bool has_loops(const ModelIR& m) {
  for (NodeId n : live_nodes(m, Roots::All))
    if (m.graph[n].op == Op::Scan) return true;
  return false;
}

ModelIR optimize_loop_bodies(const ModelIR& m, size_t* rewrites) {
  size_t changed_count = 0;
  // (new scan, carry) -> the carry's final value, for sunk accumulations
  std::map<std::pair<NodeId, int64_t>, NodeId> finals;
  ModelIR out = rebuild(m, [&](Builder& b, const Node& n) -> NodeId {
    if (n.op == Op::ScanOut) {
      auto it = finals.find({n.operands[0], n.attrs.ints[0]});
      return it == finals.end() ? kNoNode : it->second;
    }
    if (n.op != Op::Scan) return kNoNode;
    bool changed = false;
    SourceLoc old = b.at(n.loc);
    Loop loop{optimized(*n.attrs.region, changed), n.operands, ScanAttrs::of(n.attrs)};
    if (hoist(b, loop)) {
      changed = true;
      loop.body = optimized(*loop.body, changed);
    }
    const int64_t first_extra = static_cast<int64_t>(loop.body->results.size());
    std::vector<Sunk> sunk = loop.attrs.checkpoint == 0 ? sink(loop) : std::vector<Sunk>{};
    if (!sunk.empty()) {
      changed = true;
      loop.body = optimized(*loop.body, changed);
    }
    size_t before = loop.operands.size();
    Loop unpruned = loop;  // (finish_sunk reads scanned operands by their index before pruning)
    prune(loop);
    changed = changed || loop.operands.size() != before;
    changed_count += changed;
    Attrs a;
    a.ints = loop.attrs.ints();
    a.region = loop.body;
    NodeId r = b.make(Op::Scan, loop.operands, a);
    for (auto [carry, v] : finish_sunk(b, r, unpruned, sunk, first_extra)) finals[{r, carry}] = v;
    b.at(old);
    return r;
  });
  if (rewrites) *rewrites = changed_count;
  return out;
}

}  // namespace gradc
