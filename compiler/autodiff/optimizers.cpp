// The optimizer table and the update rules of SPEC 2.5, step for step as
// torch.optim computes them.
// Scalar coefficients (bias corrections, decayed learning rates) are computed
// in f64 from the run-time lr and step, like PyTorch's Python floats, then
// rounded to the param's dtype where they meet tensors.
#include "compiler/autodiff/optimizers.h"

#include <fmt/format.h>

#include "compiler/autodiff/gradient_free.h"
#include "compiler/ir/builder.h"
#include "compiler/ir/verifier.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

// What every update rule uses: scalar helpers, the learning rate rounded to
// the param's dtype, and the param's state slots.
class Updater {
 public:
  using SlotIn = std::function<NodeId(const std::string&)>;
  using SlotOut = std::function<void(const std::string&, NodeId)>;
  Updater(Builder& b, const OptimizerSpec& opt, NodeId lr, NodeId t) : b(b), opt(opt), lr_in(lr), t(t) {}

  Builder& b;
  const OptimizerSpec& opt;
  NodeId lr_in;        // the run-time learning rate (f64)
  NodeId t;            // the step number, from 1 (f64)
  NodeId lr = kNoNode;  // lr_in rounded to the param's dtype
  SlotIn slot_in;       // a slot's value before the step
  SlotOut slot_out;     // records a slot's value after the step

  double option(std::string_view key) const { return opt.option(key); }
  // An f64 scalar constant.
  NodeId d(double v) { return b.constant(v, DType::F64); }
  // An f64 scalar rounded to the dtype of x (where scalars meet tensors).
  NodeId as(NodeId s, NodeId x) { return b.cast(s, b[x].dtype); }
  NodeId c(double v, NodeId x) { return b.scalar_like(v, x); }
  NodeId mul(NodeId a, NodeId x) { return b.mul(a, x); }
  NodeId add(NodeId a, NodeId x) { return b.add(a, x); }
  NodeId sub(NodeId a, NodeId x) { return b.sub(a, x); }
  NodeId sqrt(NodeId x) { return b.unary(Op::Sqrt, x); }

  NodeId run(const OptimizerRule& rule, NodeId p, NodeId g) {
    lr = as(lr_in, p);
    return rule.update(*this, p, g);
  }
};

namespace {

NodeId sgd_update(Updater& u, NodeId p, NodeId g) {
  // g += wd*p; buf = g at t=1 else momentum*buf + (1-dampening)*g;
  // g = nesterov ? g + momentum*buf : buf; p -= lr*g
  double wd = u.option("weight_decay");
  if (wd != 0) g = u.add(g, u.mul(u.c(wd, p), p));
  double mom = u.option("momentum");
  if (mom != 0) {
    NodeId buf = u.slot_in("momentum_buffer");
    NodeId later = u.add(u.mul(u.c(mom, p), buf), u.mul(u.c(1 - u.option("dampening"), p), g));
    buf = u.b.where(u.b.binary(Op::Eq, u.t, u.d(1)), g, later);
    u.slot_out("momentum_buffer", buf);
    g = u.option("nesterov") != 0 ? u.add(g, u.mul(u.c(mom, p), buf)) : buf;
  }
  return u.sub(p, u.mul(u.lr, g));
}

// adam and adamw differ only in how weight decay enters.
NodeId adam_update(Updater& u, NodeId p, NodeId g, bool decoupled) {
  Builder& b = u.b;
  double wd = u.option("weight_decay");
  double b1 = u.option("beta1"), b2 = u.option("beta2"), eps = u.option("eps");
  // adamw: p *= 1 - lr*wd first; adam: g += wd*p
  if (decoupled && wd != 0) p = u.mul(p, u.as(b.sub(u.d(1), b.mul(u.lr_in, u.d(wd))), p));
  if (!decoupled && wd != 0) g = u.add(g, u.mul(u.c(wd, p), p));
  // m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
  NodeId m = u.add(u.mul(u.c(b1, p), u.slot_in("exp_avg")), u.mul(u.c(1 - b1, p), g));
  NodeId v = u.add(u.mul(u.c(b2, p), u.slot_in("exp_avg_sq")), u.mul(u.c(1 - b2, p), u.mul(g, g)));
  u.slot_out("exp_avg", m);
  u.slot_out("exp_avg_sq", v);
  // p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
  NodeId bc1 = b.sub(u.d(1), b.binary(Op::Pow, u.d(b1), u.t));
  NodeId bc2_sqrt = b.unary(Op::Sqrt, b.sub(u.d(1), b.binary(Op::Pow, u.d(b2), u.t)));
  NodeId step_size = u.as(b.div(u.lr_in, bc1), p);
  NodeId denom = u.add(b.div(u.sqrt(v), u.as(bc2_sqrt, p)), u.c(eps, p));
  return u.sub(p, u.mul(step_size, b.div(m, denom)));
}

NodeId rmsprop_update(Updater& u, NodeId p, NodeId g) {
  double wd = u.option("weight_decay");
  double alpha = u.option("alpha"), eps = u.option("eps"), mom = u.option("momentum");
  // g += wd*p; s = alpha*s + (1-alpha)*g^2
  if (wd != 0) g = u.add(g, u.mul(u.c(wd, p), p));
  NodeId s = u.add(u.mul(u.c(alpha, p), u.slot_in("square_avg")), u.mul(u.c(1 - alpha, p), u.mul(g, g)));
  u.slot_out("square_avg", s);
  NodeId dnm;
  if (u.option("centered") != 0) {
    // a = alpha*a + (1-alpha)*g;  d = sqrt(s - a^2) + eps
    NodeId a = u.add(u.mul(u.c(alpha, p), u.slot_in("grad_avg")), u.mul(u.c(1 - alpha, p), g));
    u.slot_out("grad_avg", a);
    dnm = u.add(u.sqrt(u.sub(s, u.mul(a, a))), u.c(eps, p));
  } else {
    dnm = u.add(u.sqrt(s), u.c(eps, p));  // d = sqrt(s) + eps
  }
  if (mom != 0) {
    // buf = momentum*buf + g/d;  p -= lr*buf
    NodeId buf = u.add(u.mul(u.c(mom, p), u.slot_in("momentum_buffer")), u.b.div(g, dnm));
    u.slot_out("momentum_buffer", buf);
    return u.sub(p, u.mul(u.lr, buf));
  }
  return u.sub(p, u.mul(u.lr, u.b.div(g, dnm)));  // p -= lr*g/d
}

NodeId adagrad_update(Updater& u, NodeId p, NodeId g) {
  Builder& b = u.b;
  // g += wd*p; clr = lr/(1+(t-1)*lr_decay); sum += g^2; p -= clr*g/(sqrt(sum)+eps)
  double wd = u.option("weight_decay");
  if (wd != 0) g = u.add(g, u.mul(u.c(wd, p), p));
  NodeId clr = b.div(u.lr_in, b.add(u.d(1), b.mul(b.sub(u.t, u.d(1)), u.d(u.option("lr_decay")))));
  NodeId sum = u.add(u.slot_in("sum"), u.mul(g, g));
  u.slot_out("sum", sum);
  return u.sub(p, u.mul(u.as(clr, p), b.div(g, u.add(u.sqrt(sum), u.c(u.option("eps"), p)))));
}

using R = OptimizerOption::Range;

std::vector<OptimizerRule> make_table() {
  return {
      {"sgd",
       {{"lr", 0.01}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0}, {"nesterov", 0, R::Bool}},
       {{"momentum_buffer", "momentum", ""}},
       // torch.optim.SGD rejects nesterov without momentum or with dampening.
       {{[](const OptimizerSpec& o) {
           return o.option("nesterov") != 0 && (o.option("momentum") <= 0 || o.option("dampening") != 0);
         },
         "nesterov", "sgd with nesterov = true needs momentum > 0 and dampening = 0"}},
       sgd_update},
      {"adam",
       {{"lr", 0.001}, {"beta1", 0.9, R::Unit}, {"beta2", 0.999, R::Unit}, {"eps", 1e-8}, {"weight_decay", 0}},
       {{"exp_avg", "", ""}, {"exp_avg_sq", "", ""}},
       {},
       [](Updater& u, NodeId p, NodeId g) { return adam_update(u, p, g, false); }},
      {"adamw",
       {{"lr", 0.001}, {"beta1", 0.9, R::Unit}, {"beta2", 0.999, R::Unit}, {"eps", 1e-8}, {"weight_decay", 0.01}},
       {{"exp_avg", "", ""}, {"exp_avg_sq", "", ""}},
       {},
       [](Updater& u, NodeId p, NodeId g) { return adam_update(u, p, g, true); }},
      {"rmsprop",
       {{"lr", 0.01}, {"alpha", 0.99}, {"eps", 1e-8}, {"weight_decay", 0}, {"momentum", 0}, {"centered", 0, R::Bool}},
       {{"square_avg", "", ""}, {"momentum_buffer", "momentum", ""}, {"grad_avg", "centered", ""}},
       {},
       rmsprop_update},
      {"adagrad",
       {{"lr", 0.01}, {"lr_decay", 0}, {"weight_decay", 0}, {"initial_accumulator_value", 0}, {"eps", 1e-10}},
       {{"sum", "", "initial_accumulator_value"}},
       {},
       adagrad_update},
      // Gradient-free (gradient_free.cpp); their state slots (opt.population.NAME,
      // opt.fitness) are shaped by the population, so the step makes them.
      {"genetic",
       {{"population", 64, R::Count},
        {"elite", 4, R::Whole},
        {"mutation_std", 0.02},
        {"mutation_rate", 1, R::Probability},
        {"crossover", 0.5, R::Probability},
        {"tournament", 3, R::Count}},
       {},
       {{[](const OptimizerSpec& o) { return o.option("elite") > o.option("population"); }, "elite",
         "genetic keeps at most `population` elites"}},
       nullptr,
       build_genetic_step},
      {"es",
       {{"population", 64, R::Count}, {"sigma", 0.02}, {"lr", 0.01}},
       {},
       {{[](const OptimizerSpec& o) { return o.option("sigma") == 0; }, "sigma",
         "es needs sigma > 0 (it divides by sigma)"}},
       nullptr,
       build_es_step},
  };
}

const OptimizerRule& rule_of(const OptimizerSpec& opt) {
  const OptimizerRule* r = find_optimizer(opt.name);
  if (!r) internal_error(__FILE__, __LINE__, "unknown optimizer " + opt.name);
  return *r;
}

}  // namespace

const std::vector<OptimizerRule>& optimizer_table() {
  static const std::vector<OptimizerRule> t = make_table();
  return t;
}

const OptimizerRule* find_optimizer(std::string_view name) {
  for (const OptimizerRule& r : optimizer_table())
    if (r.name == name) return &r;
  return nullptr;
}

std::vector<std::string> optimizer_slots(const OptimizerSpec& opt) {
  std::vector<std::string> out;
  for (const OptimizerSlot& s : rule_of(opt).slots)
    if (s.present_when.empty() || opt.option(s.present_when) != 0) out.emplace_back(s.name);
  return out;
}

double slot_initial_value(const OptimizerSpec& opt, const std::string& slot) {
  for (const OptimizerSlot& s : rule_of(opt).slots)
    if (s.name == slot && !s.initial_from.empty()) return opt.option(s.initial_from);
  return 0.0;
}

std::optional<std::string> build_train_step(ModelIR& m) {
  const OptimizerRule& rule = rule_of(m.optimizer);
  GRADC_ASSERT(rule.gradient_free() || m.grads.size() >= m.params.size(), "build_train_step needs the param gradients");
  Builder b(m.graph);
  b.at(m.optimizer.loc.valid() ? m.optimizer.loc : m.loss.loc);
  TrainStep& ts = m.train;
  ts.lr = b.leaf(Op::Input, kLearningRate, DType::F64, {});
  // (dropout may have made the step counter's leaf already: one leaf per name)
  ts.step_in = kNoNode;
  for (NodeId n = 0; n < m.graph.size(); ++n)
    if (m.graph[n].op == Op::Input && m.graph[n].attrs.name == kStepCounter) ts.step_in = n;
  if (ts.step_in == kNoNode) ts.step_in = b.leaf(Op::Input, kStepCounter, DType::F64, {});
  NodeId t = b.add(ts.step_in, b.constant(1, DType::F64));  // t = step number, from 1
  ts.step_out = t;
  if (rule.gradient_free()) {
    if (auto problem = rule.whole_step(m, b, t)) return problem;
    verify_model(m);
    return std::nullopt;
  }

  std::vector<NodeId> grads;
  for (size_t i = 0; i < m.params.size(); ++i) grads.push_back(m.grads[i].node);
  // clip_grad_norm: every g *= min(1, MAX / (||g|| + 1e-6)), ||g|| over all params together
  for (const auto& [key, max_norm] : m.optimizer.options) {
    if (key != "clip_grad_norm" || grads.empty()) continue;
    NodeId total = kNoNode;
    for (NodeId g : grads) {
      NodeId sq = b.cast(b.sum_all(b.mul(g, g)), DType::F64);
      total = total == kNoNode ? sq : b.add(total, sq);
    }
    NodeId norm = b.unary(Op::Sqrt, total);
    NodeId coef = b.binary(Op::Minimum, b.constant(1, DType::F64),
                           b.div(b.constant(max_norm, DType::F64), b.add(norm, b.constant(1e-6, DType::F64))));
    for (NodeId& g : grads) g = b.mul(g, b.cast(coef, b[g].dtype));
  }

  Updater up(b, m.optimizer, ts.lr, t);
  for (size_t i = 0; i < m.params.size(); ++i) {
    const ParamDecl& p = m.params[i];
    up.slot_in = [&](const std::string& slot) {
      for (const StateSlot& s : ts.slots)
        if (s.param == i && s.slot == slot) return s.in;
      NodeId in = b.leaf(Op::Input, fmt::format("opt.{}.{}", slot, p.name), b[p.node].dtype, b[p.node].shape);
      ts.slots.push_back({slot, i, fmt::format("opt.{}.{}", slot, p.name), in, kNoNode});
      return in;
    };
    up.slot_out = [&](const std::string& slot, NodeId v) {
      for (StateSlot& s : ts.slots)
        if (s.param == i && s.slot == slot) s.out = v;
    };
    ts.new_params.push_back(up.run(rule, p.node, grads[i]));
  }
  verify_model(m);
  return std::nullopt;
}

ModelIR build_update_model(const ModelIR& m) {
  GRADC_ASSERT(!rule_of(m.optimizer).gradient_free(), "a gradient-free optimizer has no update to apply");
  ModelIR u;
  u.name = m.name;
  u.dims = m.dims;
  u.dynamic_dims = m.dynamic_dims;
  u.optimizer = m.optimizer;
  Builder b(u.graph);
  for (const ParamDecl& p : m.params) {
    const Node& n = m.graph[p.node];
    b.at(p.loc);
    u.params.push_back({p.name, b.leaf(Op::Param, p.name, n.dtype, n.shape), p.init, p.loc});
    u.grads.push_back({p.name, b.leaf(Op::Input, "grad." + p.name, n.dtype, n.shape), p.loc});
  }
  build_train_step(u);
  return u;
}

}  // namespace gradc
