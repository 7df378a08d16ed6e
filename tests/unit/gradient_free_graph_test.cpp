// The train_step of a gradient-free optimizer (genetic, es) builds no
// backward pass: no node of it is a node of the gradient graph that the
// forward pass does not also compute. The same check on sgd finds the
// backward nodes (so the test can fail). And the population's losses come
// from one batched forward: every matrix product of the step is batched.
#include <catch2/catch.hpp>

#include "compiler/autodiff/model_gradients.h"
#include "compiler/autodiff/optimizers.h"
#include "compiler/ir/printer.h"
#include "tests/unit/test_support.h"

namespace gradc {
namespace {

std::vector<bool> reachable(const Graph& g, const std::vector<NodeId>& roots) {
  std::vector<bool> seen(g.size(), false);
  std::vector<NodeId> stack;
  for (NodeId r : roots)
    if (r != kNoNode) stack.push_back(r);
  while (!stack.empty()) {
    NodeId n = stack.back();
    stack.pop_back();
    if (seen[n]) continue;
    seen[n] = true;
    for (NodeId o : g[n].operands) stack.push_back(o);
  }
  return seen;
}

struct Step {
  size_t backward_nodes = 0;  // in train_step, reachable from a gradient and not from the forward pass
  size_t matmuls = 0, batched_matmuls = 0;
};

Step train_step_of(const std::string& optimizer) {
  const std::string src =
      "dim B = 4\n"
      "input x : [B, 2]\n"
      "input y : [B, 1]\n"
      "param W1 : [2, 8] ~ xavier_uniform\n"
      "param b1 : [8]\n"
      "param W2 : [8, 1] ~ xavier_uniform\n"
      "param b2 : [1]\n"
      "pred = sigmoid(tanh(x @ W1 + b1) @ W2 + b2)\n"
      "loss mse(pred, y)\n"
      "output pred\n"
      "optimizer " + optimizer + "\n";
  auto a = test::analyze_source(src);
  INFO(src);
  REQUIRE(a->model);
  ModelIR& m = *a->model;
  REQUIRE(differentiate_loss(m, {}).empty());
  REQUIRE_FALSE(build_train_step(m).has_value());
  std::vector<NodeId> fwd_roots{m.training.loss.node}, grad_roots, step_roots{m.training.loss.node, m.train.step_out};
  for (const NamedNode& o : m.training.outputs) fwd_roots.push_back(o.node);
  for (const NamedNode& g : m.grads) grad_roots.push_back(g.node);
  for (NodeId p : m.train.new_params) step_roots.push_back(p);
  for (const StateSlot& s : m.train.slots) step_roots.push_back(s.out);
  auto fwd = reachable(m.graph, fwd_roots), grad = reachable(m.graph, grad_roots), step = reachable(m.graph, step_roots);
  CHECK(train_step_reads_gradients(m) == (optimizer.rfind("sgd", 0) == 0));
  Step out;
  for (NodeId n = 0; n < m.graph.size(); ++n) {
    if (!step[n]) continue;
    // (leaves, constants among them, are shared by anything)
    if (grad[n] && !fwd[n] && op_kind(m.graph[n].op) != OpKind::Leaf) ++out.backward_nodes;
    if (m.graph[n].op == Op::MatMul) {
      ++out.matmuls;
      out.batched_matmuls += m.graph[n].rank() == 3;
    }
  }
  return out;
}

TEST_CASE("gradient-free train_steps build no backward pass, and batch the population's forward", "[gradient_free]") {
  Step sgd = train_step_of("sgd(lr = 0.5)");
  CHECK(sgd.backward_nodes > 10);
  for (const char* opt : {"genetic(population = 16)", "es(population = 8)"}) {
    INFO(opt);
    Step s = train_step_of(opt);
    CHECK(s.backward_nodes == 0);
    // The two products of the forward for the population, batched, and the
    // plain forward's two for the loss train_step returns (es adds the
    // product that sums its directions, unbatched).
    CHECK(s.batched_matmuls == 2);
  }
}

}  // namespace
}  // namespace gradc
