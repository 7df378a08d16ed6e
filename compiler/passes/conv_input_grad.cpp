// A convolution's input gradient as a convolution (see conv_input_grad.h).
#include "compiler/passes/conv_input_grad.h"

#include <map>
#include <optional>

#include "compiler/passes/rebuild.h"

namespace gradc {
namespace {

// The chain fold(transpose(reshape(matmul(transpose(reshape(W)), G)))) that
// differentiating conv gives for its input (groups = 1), with stride 1, and
// the crop of its result that the padding's slices take.
struct Match {
  NodeId w = kNoNode, g = kNoNode;  // W [Och, C, K..], G [Och, N*O..]
  int64_t n = 0, c = 0, och = 0;
  std::vector<int64_t> kernel, dilation, outs;  // per spatial axis; outs: the output positions O
  std::vector<int64_t> start, len;              // the crop of the padded input's gradient
};

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (int64_t x : v) p *= x;
  return p;
}

// The match of fold `f` (a node of the graph that `at` reads); nullopt when
// it is not that chain.
template <class At>
std::optional<Match> match_fold(const Node& f, const At& at) {
  if (f.op != Op::Fold) return std::nullopt;
  const size_t d = f.attrs.ints.size() / 4;
  Match m;
  for (size_t j = 0; j < d; ++j) {
    const int64_t* a = &f.attrs.ints[4 * j];  // [kernel, stride, dilation, size]
    if (a[1] != 1) return std::nullopt;
    m.kernel.push_back(a[0]);
    m.dilation.push_back(a[2]);
    m.start.push_back(0);
    m.len.push_back(a[3]);
  }
  const Node& t = at(f.operands[0]);  // [N, C, K.., O..] from [C, K.., N, O..]
  std::vector<int64_t> perm = {static_cast<int64_t>(d) + 1};
  for (size_t j = 0; j <= d; ++j) perm.push_back(static_cast<int64_t>(j));
  for (size_t j = 0; j < d; ++j) perm.push_back(static_cast<int64_t>(d + 2 + j));
  if (t.op != Op::Transpose || t.attrs.ints != perm) return std::nullopt;
  const Node& r = at(t.operands[0]);
  if (r.op != Op::Reshape) return std::nullopt;
  const Node& p = at(r.operands[0]);
  if (p.op != Op::MatMul || p.rank() != 2) return std::nullopt;
  const Node& wt = at(p.operands[0]);
  if (wt.op != Op::Transpose || wt.attrs.ints != std::vector<int64_t>{1, 0}) return std::nullopt;
  const Node& wr = at(wt.operands[0]);
  if (wr.op != Op::Reshape) return std::nullopt;
  m.w = wr.operands[0];
  m.g = p.operands[1];
  const Node& w = at(m.w);
  const Shape& rs = r.shape;  // [C, K.., N, O..]
  if (w.rank() != static_cast<int>(d) + 2 || rs.size() != 2 * d + 2) return std::nullopt;
  m.och = w.shape[0].size;
  m.c = w.shape[1].size;
  m.n = rs[d + 1].size;
  if (rs[0].size != m.c) return std::nullopt;
  for (size_t j = 0; j < d; ++j) {
    if (w.shape[2 + j].size != m.kernel[j] || rs[1 + j].size != m.kernel[j]) return std::nullopt;
    m.outs.push_back(rs[d + 2 + j].size);
  }
  const Node& g = at(m.g);
  if (g.rank() != 2 || g.shape[0].size != m.och || g.shape[1].size != m.n * product(m.outs)) return std::nullopt;
  return m;
}

// Padding of the output gradient along axis j: before and after.
std::pair<int64_t, int64_t> padding(const Match& m, size_t j) {
  int64_t reach = (m.kernel[j] - 1) * m.dilation[j];
  int64_t before = reach - m.start[j];
  return {before, m.len[j] + reach - m.outs[j] - before};
}

// dx [N, C, len..] as one product of the flipped kernel's rows and the
// windows of the padded output gradient.
NodeId input_gradient(Builder& b, const Match& m, NodeId w, NodeId g) {
  const size_t d = m.kernel.size();
  std::vector<int64_t> swap01 = {1, 0};  // [A, B, ..] -> [B, A, ..]
  for (size_t j = 0; j < d; ++j) swap01.push_back(static_cast<int64_t>(2 + j));
  std::vector<int64_t> image = {m.och, m.n};
  image.insert(image.end(), m.outs.begin(), m.outs.end());
  NodeId gp = b.transpose(b.reshape(g, image), swap01);  // [N, Och, O..]
  Attrs win;
  for (size_t j = 0; j < d; ++j) {
    auto [before, after] = padding(m, j);
    if (before > 0 || after > 0) {
      Attrs pad;
      pad.ints = {static_cast<int64_t>(2 + j), before, after};
      gp = b.make(Op::Pad, {gp}, pad);
    }
    win.ints.insert(win.ints.end(), {m.kernel[j], 1, m.dilation[j], b[gp].shape[2 + j].size});
  }
  NodeId u = b.make(Op::Window, {gp}, win);  // [N, Och, K.., len..]
  std::vector<int64_t> to_columns = {1};     // [Och, K.., N, len..]
  for (size_t j = 0; j < d; ++j) to_columns.push_back(static_cast<int64_t>(2 + j));
  to_columns.push_back(0);
  for (size_t j = 0; j < d; ++j) to_columns.push_back(static_cast<int64_t>(2 + d + j));
  NodeId cols = b.reshape(b.transpose(u, to_columns), {m.och * product(m.kernel), m.n * product(m.len)});
  NodeId flipped = w;
  for (size_t j = 0; j < d; ++j) {
    Attrs rev;
    rev.ints = {static_cast<int64_t>(2 + j), 0, m.kernel[j]};
    flipped = b.make(Op::Reverse, {flipped}, rev);
  }
  NodeId rows = b.reshape(b.transpose(flipped, swap01), {m.c, m.och * product(m.kernel)});
  NodeId prod = b.make(Op::MatMul, {rows, cols});  // [C, N*len..]
  std::vector<int64_t> split = {m.c, m.n};
  split.insert(split.end(), m.len.begin(), m.len.end());
  return b.transpose(b.reshape(prod, split), swap01);
}

}  // namespace

bool has_stride1_fold(const ModelIR& m) {
  for (NodeId id : live_nodes(m, Roots::All)) {
    const Node& n = m.graph[id];
    if (n.op != Op::Fold) continue;
    bool ones = true;
    for (size_t j = 1; j < n.attrs.ints.size(); j += 4) ones = ones && n.attrs.ints[j] == 1;
    if (ones) return true;
  }
  return false;
}

ModelIR rewrite_conv_input_grads(const ModelIR& m, size_t* rewrites) {
  const Graph& g = m.graph;
  std::vector<NodeId> live = live_nodes(m, Roots::All);
  std::vector<std::vector<NodeId>> users(g.size());
  for (NodeId id : live)
    for (NodeId o : g[id].operands) users[o].push_back(id);
  // The chains' last nodes: the fold, or the last slice of its crop (a
  // slice along a spatial axis, the only user of the node before it).
  std::map<NodeId, Match> ends;
  auto at = [&](NodeId i) -> const Node& { return g[i]; };
  for (NodeId f : live) {
    std::optional<Match> mt = match_fold(g[f], at);
    if (!mt) continue;
    NodeId end = f;
    while (users[end].size() == 1) {
      const Node& s = g[users[end][0]];
      int64_t axis = s.op == Op::Slice ? s.attrs.ints[0] - 2 : -1;
      if (axis < 0 || axis >= static_cast<int64_t>(mt->kernel.size())) break;
      mt->start[axis] += s.attrs.ints[1];
      mt->len[axis] = s.attrs.ints[2] - s.attrs.ints[1];
      end = users[end][0];
    }
    bool ok = true;
    for (size_t j = 0; j < mt->kernel.size(); ++j) {
      auto [before, after] = padding(*mt, j);
      ok = ok && before >= 0 && after >= 0;
    }
    if (ok) ends.emplace(end, *mt);
  }
  return rebuild_indexed(
      m,
      [&](Builder& b, const Node& n, NodeId old) -> NodeId {
        auto it = ends.find(old);
        if (it == ends.end()) return kNoNode;
        // The chain as copied: down the slices to the fold, whose operands
        // lead to the new ids of W and G.
        const Node* f = &n;
        while (f->op == Op::Slice) f = &b[f->operands[0]];
        std::optional<Match> copied = match_fold(*f, [&](NodeId i) -> const Node& { return b[i]; });
        if (!copied) return kNoNode;
        return input_gradient(b, it->second, copied->w, copied->g);
      },
      rewrites);
}

}  // namespace gradc
