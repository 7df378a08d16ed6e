// The evaluation half of the host API: initial params, grad, forward and
// gradcheck, run by the reference interpreter.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <new>

#include "compiler/autodiff/forward.h"
#include "compiler/autodiff/optimizers.h"
#include "compiler/ir/printer.h"
#include "compiler/api/model_impl.h"
#include "compiler/support/diagnostics.h"
#include "compiler/exec/init.h"
#include "compiler/exec/interpreter.h"
#include "runtime/random.h"

namespace gradc {
namespace {

const ModelIR& checked(const std::optional<ModelIR>& m) {
  if (!m) throw DataError("the model did not compile; it cannot be evaluated");
  return *m;
}

// The leaves (inputs and params) that `roots` depend on.
std::vector<bool> needed_leaves(const Graph& g, const std::vector<NodeId>& roots) {
  std::vector<bool> need(g.size(), false);
  for (NodeId r : roots) need[r] = true;
  for (size_t i = g.size(); i-- > 0;)
    if (need[i])
      for (NodeId o : g[static_cast<NodeId>(i)].operands) need[o] = true;
  return need;
}

// Binds every needed input, param and buffer (buffers come from `params`),
// checking names, dtypes and shapes.
void bind_all(Interpreter& interp, const ModelIR& m, const std::vector<NodeId>& roots, const NamedTensors& inputs,
              const NamedTensors& params) {
  std::vector<bool> need = needed_leaves(m.graph, roots);
  auto bind = [&](const std::string& kind, const std::string& name, NodeId node, const NamedTensors& from) {
    if (!need[node]) return;
    const Node& n = m.graph[node];
    const Tensor* t = find_tensor(from, name);
    if (!t)
      throw DataError(fmt::format("missing {} tensor '{}' (expected {})", kind, name, type_str(n.dtype, n.shape)));
    if (t->dtype() != n.dtype || t->shape() != sizes(n.shape))
      throw DataError(fmt::format("{} tensor '{}': expected {}, got {}", kind, name, type_str(n.dtype, n.shape),
                                  t->type_string()));
    interp.bind(node, *t);
  };
  for (const NamedNode& v : m.inputs) bind("input", v.name, v.node, inputs);
  for (const ParamDecl& p : m.params) bind("param", p.name, p.node, params);
  for (const ParamDecl& p : m.buffers) bind("buffer", p.name, p.node, params);
  // Dropout's random bits (training mode): seed 0 at step 0, the masks of a
  // session's first train_step under the default seed.
  for (NodeId n = 0; n < m.graph.size(); ++n) {
    if (!need[n] || m.graph[n].op != Op::Input) continue;
    if (m.graph[n].attrs.name == kRandomSeed) interp.bind_values(n, {0.0, 0.0});
    if (m.graph[n].attrs.name == kStepCounter) interp.bind_values(n, {0.0});
  }
}

// Runs the interpreter; an evaluation error gets the DSL location of its node.
void run_roots(Interpreter& interp, const SourceManager& sm, const std::vector<NodeId>& roots) {
  try {
    interp.run(roots);
  } catch (const EvalError& e) {
    if (!e.loc.valid()) throw;
    throw_model_error(sm, e.loc, e.what());
  }
}

// Whether every input that `root` needs is present.
bool inputs_present(const ModelIR& m, NodeId root, const NamedTensors& inputs) {
  std::vector<bool> need = needed_leaves(m.graph, {root});
  for (const NamedNode& v : m.inputs)
    if (need[v.node] && !find_tensor(inputs, v.name)) return false;
  return true;
}

}  // namespace

NamedTensors Model::initial_params(uint64_t seed) const {
  const ModelIR& m = checked(impl_->runnable());
  NamedTensors out = init_params(m, seed);
  for (auto& b : init_buffers(m, seed)) out.push_back(std::move(b));
  return out;
}

// In training mode: the training roots (ModelIR::training).
namespace {

// The model to evaluate for these inputs: the specialization for the sizes
// they give its dynamic dims (itself when it has none). (A template on the
// pointer because Model::Impl is private to Model's members.)
template <class ImplPtr>
ImplPtr for_inputs(const ImplPtr& impl, const NamedTensors& inputs) {
  checked(impl->runnable());
  return impl->specialization(impl->bind_dynamic(inputs), impl, /*capacity=*/false);
}

}  // namespace

NamedTensors Model::grad(const NamedTensors& inputs, const NamedTensors& params) const {
  std::shared_ptr<Impl> spec = for_inputs(impl_, inputs);
  const ModelIR& m = *spec->runnable();
  std::vector<NodeId> roots{m.training.loss.node};
  for (const NamedNode& g : m.grads) roots.push_back(g.node);
  for (const NamedNode& o : m.training.outputs) roots.push_back(o.node);
  Interpreter interp(m.graph);
  bind_all(interp, m, roots, inputs, params);
  run_roots(interp, spec->sm, roots);
  NamedTensors out;
  out.emplace_back("loss", interp.result(m.training.loss.node));
  for (const NamedNode& g : m.grads) out.emplace_back("grad." + g.name, interp.result(g.node));
  for (const NamedNode& o : m.training.outputs) out.emplace_back("out." + o.name, interp.result(o.node));
  return out;
}

NamedTensors Model::forward(const NamedTensors& inputs, const NamedTensors& params) const {
  std::shared_ptr<Impl> spec = for_inputs(impl_, inputs);
  const ModelIR& m = *spec->runnable();
  std::vector<NodeId> roots;
  for (const NamedNode& o : m.outputs) roots.push_back(o.node);
  bool with_loss = inputs_present(m, m.loss.node, inputs);
  if (with_loss) roots.push_back(m.loss.node);
  std::vector<const NamedNode*> metrics;
  for (const NamedNode& mt : m.metrics)
    if (inputs_present(m, mt.node, inputs)) metrics.push_back(&mt), roots.push_back(mt.node);
  Interpreter interp(m.graph);
  bind_all(interp, m, roots, inputs, params);
  run_roots(interp, spec->sm, roots);
  NamedTensors out;
  for (const NamedNode& o : m.outputs) out.emplace_back("out." + o.name, interp.result(o.node));
  if (with_loss) out.emplace_back("loss", interp.result(m.loss.node));
  for (const NamedNode* mt : metrics) out.emplace_back("metric." + mt->name, interp.result(mt->node));
  return out;
}

std::vector<GradcheckParam> Model::gradcheck(const GradcheckOptions& opts, const NamedTensors& given_inputs,
                                             const NamedTensors& given_params) const {
  // Dynamic dims: the sizes the given inputs bind, else their stand-ins.
  std::shared_ptr<Impl> spec = for_inputs(impl_, given_inputs);
  const ModelIR& m = *spec->runnable();
  const Graph& g = m.graph;
  // Inputs: the given ones, else seeded random values (class ids within the
  // range of the one_hot or the embedding table that reads them, else 0 or 1).
  std::vector<std::pair<NodeId, std::vector<double>>> leaves;
  for (const NamedNode& v : m.inputs) {
    const Node& n = g[v.node];
    // The reference interpreter holds f64 values: a --set that makes an input
    // too large for memory is an error naming it, not an internal one.
    std::vector<double> vals;
    auto bytes = static_cast<double>(numel(n.shape)) * sizeof(double);
    try {
      if (bytes > static_cast<double>(kMaxSessionBytes)) throw std::bad_alloc();
      vals.resize(static_cast<size_t>(numel(n.shape)));
    } catch (const std::bad_alloc&) {
      throw DataError(fmt::format("gradcheck: input '{}' of type {} needs {:.0f} bytes as f64 values; "
                                  "the limit is {} GiB (bind smaller dims with --set)",
                                  v.name, type_str(n.dtype, n.shape), bytes, kMaxSessionBytes >> 30));
    }
    if (const Tensor* t = find_tensor(given_inputs, v.name)) {
      if (t->dtype() != n.dtype || t->shape() != sizes(n.shape))
        throw DataError(fmt::format("input tensor '{}': expected {}, got {}", v.name, type_str(n.dtype, n.shape),
                                    t->type_string()));
      for (size_t i = 0; i < vals.size(); ++i) vals[i] = t->get(static_cast<int64_t>(i));
    } else {
      RandomStream rng(opts.seed ^ 0x5eed, v.name);
      int64_t classes = 2;
      for (const Node& user : g.nodes()) {
        if (user.op == Op::OneHot && user.operands[0] == v.node) classes = user.attrs.ints[0];
        if (user.op == Op::Embedding && user.operands[0] == v.node) classes = g[user.operands[1]].shape[0].size;
      }
      for (double& x : vals)
        x = n.dtype == DType::I32 ? std::floor(rng.uniform() * static_cast<double>(classes)) : rng.normal();
    }
    leaves.emplace_back(v.node, std::move(vals));
  }
  // Dropout's random bits (training mode): the seed's words and step 0, so
  // the masks are those of the first train_step, fixed while the params vary.
  auto word = [](uint64_t w) { return static_cast<double>(static_cast<int32_t>(static_cast<uint32_t>(w))); };
  for (NodeId n = 0; n < g.size(); ++n) {
    if (g[n].op != Op::Input) continue;
    if (g[n].attrs.name == kRandomSeed) leaves.emplace_back(n, std::vector<double>{word(opts.seed), word(opts.seed >> 32)});
    if (g[n].attrs.name == kStepCounter) leaves.emplace_back(n, std::vector<double>{0.0});
  }
  NamedTensors init = given_params.empty() ? initial_params(opts.seed) : given_params;
  // Buffers stay at their values; only the params are perturbed.
  for (const ParamDecl& p : m.buffers) {
    const Tensor* t = find_tensor(init, p.name);
    const Node& n = g[p.node];
    if (!t || t->shape() != sizes(n.shape))
      throw DataError(fmt::format("buffer tensor '{}': expected {}", p.name, type_str(n.dtype, n.shape)));
    std::vector<double> vals(static_cast<size_t>(t->numel()));
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = t->get(static_cast<int64_t>(i));
    leaves.emplace_back(p.node, std::move(vals));
  }
  std::vector<std::vector<double>> params;
  for (const ParamDecl& p : m.params) {
    const Tensor* t = find_tensor(init, p.name);
    const Node& n = g[p.node];
    if (!t || t->shape() != sizes(n.shape))
      throw DataError(fmt::format("param tensor '{}': expected {}", p.name, type_str(n.dtype, n.shape)));
    std::vector<double> vals(static_cast<size_t>(t->numel()));
    for (size_t i = 0; i < vals.size(); ++i) vals[i] = t->get(static_cast<int64_t>(i));
    params.push_back(std::move(vals));
  }
  // Forward mode: per param, the directional derivative of the loss along
  // a direction held by a new input leaf, in a copy of the graph (its nodes
  // keep their ids there).
  bool forward = opts.mode != GradcheckMode::Reverse, reverse = opts.mode != GradcheckMode::Forward;
  Graph tangent_graph;
  for (const Node& n : g.nodes()) {  // interned nodes are distinct, so each keeps its id
    NodeId id = tangent_graph.add(n);
    GRADC_ASSERT(id + 1 == tangent_graph.size(), "gradcheck: the graph's copy renumbered a node");
  }
  std::vector<NodeId> direction_leaf, tangent;
  if (forward) {
    Builder b(tangent_graph);
    for (const ParamDecl& p : m.params) {
      const Node& n = g[p.node];
      direction_leaf.push_back(b.leaf(Op::Input, "@direction." + p.name, n.dtype, n.shape));
      tangent.push_back(directional_derivative(b, m.training.loss.node, p.node, direction_leaf.back()));
    }
  }
  std::vector<std::vector<double>> direction(direction_leaf.size());
  for (size_t i = 0; i < direction.size(); ++i) direction[i].assign(params[i].size(), 0.0);
  // Evaluates `roots` in f64 throughout with the current param values (and
  // directions).
  auto evaluate = [&](const std::vector<NodeId>& roots) {
    auto interp = std::make_unique<Interpreter>(tangent_graph, /*promote_f32=*/true);
    for (const auto& [node, vals] : leaves) interp->bind_values(node, vals);
    for (size_t i = 0; i < m.params.size(); ++i) interp->bind_values(m.params[i].node, params[i]);
    for (size_t i = 0; i < direction_leaf.size(); ++i) interp->bind_values(direction_leaf[i], direction[i]);
    run_roots(*interp, spec->sm, roots);
    return interp;
  };
  // d loss / d param pi . d by forward accumulation.
  auto directional = [&](size_t pi, const std::vector<double>& d) {
    direction[pi] = d;
    double t = evaluate({tangent[pi]})->values(tangent[pi])[0];
    std::fill(direction[pi].begin(), direction[pi].end(), 0.0);
    return t;
  };
  // The loss that the gradients are of: grad's, in training mode.
  NodeId loss_node = m.training.loss.node;
  auto loss = [&] { return evaluate({loss_node})->values(loss_node)[0]; };

  std::vector<NodeId> grad_roots;
  for (size_t i = 0; i < m.params.size(); ++i) grad_roots.push_back(m.grads[i].node);
  std::unique_ptr<Interpreter> analytic_run = reverse ? evaluate(grad_roots) : nullptr;

  std::vector<GradcheckParam> report;
  for (size_t pi = 0; pi < m.params.size(); ++pi) {
    GradcheckParam r;
    r.name = m.params[pi].name;
    std::vector<double> analytic = reverse ? analytic_run->values(m.grads[pi].node) : std::vector<double>(params[pi].size());
    std::vector<double>& p = params[pi];
    auto compare = [&](double a, double num) {
      double err = std::fabs(a - num);
      r.max_abs_error = std::max(r.max_abs_error, err);
      r.max_rel_error = std::max(r.max_rel_error, err / std::max({std::fabs(num), std::fabs(a), 1e-12}));
      if (!(err <= opts.atol + opts.rtol * std::fabs(num))) r.ok = false;  // NaN fails too
      ++r.checked;
    };
    // The derivative along d by each mode asked for, against the numeric
    // one; in both modes, also against each other.
    auto check = [&](double by_reverse, const std::vector<double>& d, double numeric) {
      if (reverse) compare(by_reverse, numeric);
      if (!forward) return;
      double by_forward = directional(pi, d);
      compare(by_forward, numeric);
      if (reverse) compare(by_forward, by_reverse);
    };
    if (static_cast<int64_t>(p.size()) <= opts.max_elements) {
      std::vector<double> unit(p.size(), 0.0);
      for (size_t i = 0; i < p.size(); ++i) {
        double orig = p[i];
        p[i] = orig + opts.eps;
        double up = loss();
        p[i] = orig - opts.eps;
        double down = loss();
        p[i] = orig;
        unit[i] = 1;
        check(analytic[i], unit, (up - down) / (2 * opts.eps));
        unit[i] = 0;
      }
    } else {
      r.projected = true;
      RandomStream rng(opts.seed ^ 0xd1ec, r.name);
      std::vector<double> orig = p, dir(p.size());
      for (int k = 0; k < opts.directions; ++k) {
        double norm = 0, a = 0;
        for (double& d : dir) d = rng.normal(), norm += d * d;
        norm = std::sqrt(norm);
        for (size_t i = 0; i < p.size(); ++i) dir[i] /= norm, a += analytic[i] * dir[i];
        for (size_t i = 0; i < p.size(); ++i) p[i] = orig[i] + opts.eps * dir[i];
        double up = loss();
        for (size_t i = 0; i < p.size(); ++i) p[i] = orig[i] - opts.eps * dir[i];
        double down = loss();
        p = orig;
        check(a, dir, (up - down) / (2 * opts.eps));
      }
    }
    report.push_back(r);
  }
  return report;
}

}  // namespace gradc
