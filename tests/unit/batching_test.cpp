// The batching transform (compiler/autodiff/batching.h): the roots of a model
// recomputed for P stacked copies of its params must equal, member by member,
// the model evaluated with each copy alone. The models cover every op kind,
// stacked operands on either side of a product, and a gradient graph (its
// pads and sums) as the batched computation.
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/autodiff/batching.h"
#include "compiler/exec/interpreter.h"
#include "compiler/ir/verifier.h"
#include "tests/unit/test_support.h"

namespace gradc {
namespace {

constexpr int64_t kMembers = 3;

// Deterministic values: floats in [-1, 1), class ids in [0, 3).
std::vector<double> values_for(const Node& n, uint32_t seed) {
  std::vector<double> v(static_cast<size_t>(numel(n.shape)));
  uint32_t s = seed * 2654435761u + 12345;
  for (double& x : v) {
    s = s * 1664525u + 1013904223u;
    x = n.dtype == DType::I32 ? double((s >> 16) % 3) : double(s >> 8) / double(1u << 24) * 2 - 1;
  }
  return v;
}

// Batches every root (loss, outputs, metrics) of `src` over its params and
// compares each member's slice with the model evaluated on that member alone.
void check_batched(const std::string& src) {
  auto a = test::analyze_source(src);
  INFO(src);
  REQUIRE(a->model);
  ModelIR& m = *a->model;
  Builder b(m.graph);
  std::vector<NodeId> roots{m.loss.node};
  for (const NamedNode& o : m.outputs) roots.push_back(o.node);
  for (const NamedNode& o : m.metrics) roots.push_back(o.node);
  std::vector<std::pair<NodeId, NodeId>> stacked;
  for (const ParamDecl& p : m.params) {
    Shape s = m.graph[p.node].shape;
    s.insert(s.begin(), Dim{kMembers, {}});
    stacked.emplace_back(p.node, b.leaf(Op::Input, "stacked." + p.name, m.graph[p.node].dtype, s));
  }
  std::vector<NodeId> batched = batch_nodes(b, roots, stacked, kMembers);
  REQUIRE_NOTHROW(verify_graph(m.graph));

  Interpreter all(m.graph);
  for (const NamedNode& in : m.inputs) all.bind_values(in.node, values_for(m.graph[in.node], in.node));
  for (size_t i = 0; i < stacked.size(); ++i)
    all.bind_values(stacked[i].second, values_for(m.graph[stacked[i].second], 1000 + uint32_t(i)));
  all.run(batched);

  for (int64_t member = 0; member < kMembers; ++member) {
    Interpreter one(m.graph);
    for (const NamedNode& in : m.inputs) one.bind_values(in.node, values_for(m.graph[in.node], in.node));
    for (size_t i = 0; i < stacked.size(); ++i) {
      const std::vector<double>& whole = all.values(stacked[i].second);
      size_t n = whole.size() / kMembers;
      one.bind_values(m.params[i].node, std::vector<double>(whole.begin() + member * n, whole.begin() + (member + 1) * n));
    }
    one.run(roots);
    for (size_t r = 0; r < roots.size(); ++r) {
      const std::vector<double>& want = one.values(roots[r]);
      const std::vector<double>& got = all.values(batched[r]);
      INFO("root " << r << " (" << op_name(m.graph[roots[r]].op) << "), member " << member);
      // A root that no param reaches is shared, not stacked.
      bool is_stacked = batched[r] != roots[r];
      REQUIRE(got.size() == (is_stacked ? kMembers : 1) * want.size());
      size_t offset = is_stacked ? size_t(member) * want.size() : 0;
      for (size_t k = 0; k < want.size(); ++k) CHECK(got[offset + k] == Approx(want[k]).margin(1e-6));
    }
  }
}

TEST_CASE("batching: an MLP with softmax cross-entropy, argmax and a metric", "[batching]") {
  check_batched(R"(
input x : [4, 3]
input label : i32[4]
param W1 : [3, 5]
param b1 : [5]
param W2 : [5, 3]
h = tanh(x @ W1 + b1)
logits = h @ W2
loss cross_entropy(logits, label) + mean(square(W1))
metric accuracy = mean(argmax(logits, axis=1) == label)
output logits
)");
}

TEST_CASE("batching: shape ops, where, casts and reductions with keepdims", "[batching]") {
  check_batched(R"(
input x : [2, 3]
param w : [3]
param s : []
t = transpose(x * w)
r = reshape(t, [6])
c = concat([r, reshape(x, [6]), r * s], axis=0)
d = slice(c, axis=0, start=2, stop=11)
e = broadcast_to(reshape(w, [1, 3]), [4, 3])
f = where(x > 0, x * s, maximum(x, w))
g = cast(sum(e, axis=0) * s, f64)
k = max(f, axis=1, keepdims=true) - logsumexp(f, axis=0)
loss sum(d) + mean(f) + sum(k)
output g, e, k
)");
}

TEST_CASE("batching: stacked operands on either side of batched products", "[batching]") {
  check_batched(R"(
input x : [2, 4, 3]
input y : [3, 4]
param A : [5, 4]
param W : [3, 5]
left = A @ x
right = x @ W
both = (y @ A.T) @ W.T
loss mean(left) + mean(right) + sum(both)
output left, right, both
)");
}

TEST_CASE("batching: a gradient graph (pads, sums to shape) computed per member", "[batching]") {
  check_batched(R"(
input x : [4, 3]
param W : [3, 6]
p = x @ W
q = slice(p, axis=1, start=1, stop=4)
gw = grad(sum(square(q)) + sum(one_hot(argmax(p, axis=1), 6) * p), W)
loss sum(gw * W)
output gw
)");
}

TEST_CASE("batching: convolution and pooling (window and its adjoint fold)", "[batching]") {
  check_batched(R"(
input x : [2, 2, 6, 5]
param K : [3, 2, 3, 3]
param c : [3]
y = relu(conv2d(x, K, padding=1, stride=[2, 1]) + reshape(c, [3, 1, 1]))
a = avg_pool2d(y, [1, 2], padding=[0, 1])
z = max_pool2d(y, 2) + slice(slice(a, axis=2, start=0, stop=1), axis=3, start=0, stop=2)
gk = grad(sum(square(y)), K)
loss mean(z) + sum(gk * K)
output y, gk
)");
}

TEST_CASE("batching: embedding of a stacked table, and its scatter-add gradient", "[batching]") {
  check_batched(R"(
input ids : i32[2, 3]
param table : [3, 4]
param W : [4, 2]
e = embedding(ids, table)
gt = grad(sum(square(e @ W)), table)
loss mean(e @ W) + sum(gt * table)
output e, gt
)");
}

}  // namespace
}  // namespace gradc
