// The gradients of a model's loss, as graph roots: the step between the
// checked graph and the optimizer update (reverse.h does the differentiating;
// this file chooses what to differentiate with respect to).
#include "compiler/autodiff/model_gradients.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/autodiff/batching.h"
#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/ir/builder.h"
#include "compiler/ir/verifier.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

NodeId identity_rows(Builder& b, DType dt, int64_t n, int64_t first, int64_t k) {
  // Element (i, j) of the block is element m = (first + i) n + j of the
  // identity, which is 1 iff m is a multiple of n + 1. The pattern repeats
  // every n + 1 elements, so start at first * n modulo n + 1.
  const int64_t period = n + 1, start = (first * n) % period, count = k * n;
  const int64_t rows = (start + count + period - 1) / period;
  Attrs pad, slice;
  pad.ints = {0, 0, n};
  NodeId pulse = b.make(Op::Pad, {b.broadcast_to(b.constant(1, dt), {{1, {}}})}, pad);  // [1, 0, ..., 0]
  NodeId repeated = b.reshape(b.broadcast_to(pulse, {{rows, {}}, {period, {}}}), {rows * period});
  slice.ints = {0, start, start + count};
  return b.reshape(b.make(Op::Slice, {repeated}, slice), {k, n});
}

namespace {

// The elements a block of directions may hold across the largest value
// they reach (about 32 MiB of f32 per batched value).
constexpr int64_t kForwardBlockElements = int64_t{1} << 23;

// d loss / d x by vector forward mode: the loss's tangent in direction v (a
// leaf of x's type), batched over blocks of basis directions; the tangents
// of a block are that block's gradient elements.
NodeId forward_gradient(Builder& b, NodeId loss, NodeId x, const std::string& name, int64_t largest) {
  const Node xn = b[x];
  const int64_t n = numel(xn.shape);
  NodeId v = b.leaf(Op::Input, "@tangent." + name, xn.dtype, xn.shape);
  NodeId tangent = directional_derivative(b, loss, x, v);
  // As many directions per block as keep the largest value of the model
  // (times the block) within kForwardBlockElements.
  const int64_t block = std::clamp<int64_t>(kForwardBlockElements / largest, 1, n);
  std::vector<NodeId> parts;
  for (int64_t first = 0; first < n; first += block) {
    const int64_t k = std::min(block, n - first);
    std::vector<int64_t> sizes{k};
    for (const Dim& d : xn.shape) sizes.push_back(d.size);
    NodeId directions = b.reshape(identity_rows(b, xn.dtype, n, first, k), sizes);
    std::vector<NodeId> r = batch_nodes(b, {tangent}, {{v, directions}}, k);
    GRADC_ASSERT(!r.empty(), "forward mode: the loss's tangent cannot be batched over directions");
    NodeId part = r[0];
    if (b[part].rank() == 0) part = b.broadcast_to(b.reshape(part, {1}), {{k, {}}});  // the loss ignores x
    parts.push_back(b.cast(part, xn.dtype));
  }
  Attrs axis0;
  axis0.ints = {0};
  NodeId flat = parts.size() == 1 ? parts[0] : b.make(Op::Concat, parts, axis0);
  std::vector<int64_t> shape;
  for (const Dim& d : xn.shape) shape.push_back(d.size);
  return shape.empty() ? b.reshape(flat, {}) : b.reshape(flat, shape);
}

}  // namespace

std::vector<std::string> differentiate_loss(ModelIR& model, const std::vector<std::string>& wrt, bool forward) {
  std::vector<std::string> problems;
  std::vector<NamedNode> targets;
  for (const ParamDecl& p : model.params) targets.push_back({p.name, p.node, p.loc});
  for (const std::string& name : wrt) {
    const NamedNode* found = nullptr;
    for (const auto* list : {&model.inputs, &model.training.values})
      for (const NamedNode& v : *list)
        if (v.name == name) found = &v;
    if (!found) {
      problems.push_back(fmt::format("--wrt {}: the model has no input or named value '{}'", name, name));
    } else if (!is_float(model.graph[found->node].dtype)) {
      problems.push_back(fmt::format("--wrt {}: '{}' is i32; gradients exist only for float values", name, name));
    } else if (std::none_of(targets.begin(), targets.end(), [&](const NamedNode& t) { return t.name == name; })) {
      targets.push_back(*found);
    }
  }
  if (!problems.empty()) return problems;
  Builder b(model.graph);
  // grad and train_step run in training mode: differentiate that loss.
  b.at(model.training.loss.loc);
  std::vector<NodeId> xs;
  for (const NamedNode& t : targets) xs.push_back(t.node);
  std::vector<NodeId> grads;
  if (forward) {
    int64_t largest = 1;  // of the model's own values (before any tangent)
    for (NodeId id = 0; id < model.graph.size(); ++id) largest = std::max(largest, numel(model.graph[id].shape));
    for (const NamedNode& t : targets) grads.push_back(forward_gradient(b, model.training.loss.node, t.node, t.name, largest));
  } else {
    grads = gradients(b, model.training.loss.node, xs);
  }
  for (size_t i = 0; i < grads.size(); ++i) model.grads.push_back({targets[i].name, grads[i], targets[i].loc});
  verify_model(model);
  return problems;
}

}  // namespace gradc
