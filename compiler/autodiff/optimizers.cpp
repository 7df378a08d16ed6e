// The update rules of SPEC 2.5, step for step as torch.optim computes them.
// Scalar coefficients (bias corrections, decayed learning rates) are computed
// in f64 from the run-time lr and step, like PyTorch's Python floats, then
// rounded to the param's dtype where they meet tensors.
#include "compiler/autodiff/optimizers.h"

#include <fmt/format.h>

#include "compiler/ir/builder.h"
#include "compiler/ir/verifier.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

std::vector<std::string> optimizer_slots(const OptimizerSpec& opt) {
  if (opt.name == "sgd") return opt.option("momentum") != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  if (opt.name == "adam" || opt.name == "adamw") return {"exp_avg", "exp_avg_sq"};
  if (opt.name == "rmsprop") {
    std::vector<std::string> s{"square_avg"};
    if (opt.option("momentum") != 0) s.push_back("momentum_buffer");
    if (opt.option("centered") != 0) s.push_back("grad_avg");
    return s;
  }
  if (opt.name == "adagrad") return {"sum"};
  internal_error(__FILE__, __LINE__, "unknown optimizer " + opt.name);
}

double slot_initial_value(const OptimizerSpec& opt, const std::string& slot) {
  return opt.name == "adagrad" && slot == "sum" ? opt.option("initial_accumulator_value") : 0.0;
}

namespace {

// Builds one param's update; `slot_in(name)` gives a slot's value before the
// step and `slot_out(name, v)` records its value after.
class Updater {
 public:
  Updater(Builder& b, const OptimizerSpec& opt, NodeId lr, NodeId t) : b_(b), opt_(opt), lr_(lr), t_(t) {}

  // An f64 scalar constant.
  NodeId d(double v) { return b_.constant(v, DType::F64); }
  // An f64 scalar rounded to the dtype of x (where scalars meet tensors).
  NodeId as(NodeId s, NodeId x) { return b_.cast(s, b_[x].dtype); }
  NodeId c(double v, NodeId x) { return b_.scalar_like(v, x); }

  template <class SlotIn, class SlotOut>
  NodeId update(NodeId p, NodeId g, SlotIn slot_in, SlotOut slot_out) {
    const std::string& name = opt_.name;
    double wd = opt_.option("weight_decay");
    auto mul = [&](NodeId a, NodeId x) { return b_.mul(a, x); };
    auto add = [&](NodeId a, NodeId x) { return b_.add(a, x); };
    auto sub = [&](NodeId a, NodeId x) { return b_.sub(a, x); };
    auto sqrt = [&](NodeId x) { return b_.unary(Op::Sqrt, x); };
    NodeId lr = as(lr_, p);
    if (name == "sgd") {
      // g += wd*p; buf = g at t=1 else momentum*buf + (1-dampening)*g;
      // g = nesterov ? g + momentum*buf : buf; p -= lr*g
      if (wd != 0) g = add(g, mul(c(wd, p), p));
      double mom = opt_.option("momentum");
      if (mom != 0) {
        NodeId buf = slot_in("momentum_buffer");
        NodeId later = add(mul(c(mom, p), buf), mul(c(1 - opt_.option("dampening"), p), g));
        buf = b_.where(b_.binary(Op::Eq, t_, d(1)), g, later);
        slot_out("momentum_buffer", buf);
        g = opt_.option("nesterov") != 0 ? add(g, mul(c(mom, p), buf)) : buf;
      }
      return sub(p, mul(lr, g));
    }
    if (name == "adam" || name == "adamw") {
      double b1 = opt_.option("beta1"), b2 = opt_.option("beta2"), eps = opt_.option("eps");
      // adamw: p *= 1 - lr*wd first; adam: g += wd*p
      if (name == "adamw" && wd != 0) p = mul(p, as(b_.sub(d(1), b_.mul(lr_, d(wd))), p));
      if (name == "adam" && wd != 0) g = add(g, mul(c(wd, p), p));
      // m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
      NodeId m = add(mul(c(b1, p), slot_in("exp_avg")), mul(c(1 - b1, p), g));
      NodeId v = add(mul(c(b2, p), slot_in("exp_avg_sq")), mul(c(1 - b2, p), mul(g, g)));
      slot_out("exp_avg", m);
      slot_out("exp_avg_sq", v);
      // p -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
      NodeId bc1 = b_.sub(d(1), b_.binary(Op::Pow, d(b1), t_));
      NodeId bc2_sqrt = b_.unary(Op::Sqrt, b_.sub(d(1), b_.binary(Op::Pow, d(b2), t_)));
      NodeId step_size = as(b_.div(lr_, bc1), p);
      NodeId denom = add(b_.div(sqrt(v), as(bc2_sqrt, p)), c(eps, p));
      return sub(p, mul(step_size, b_.div(m, denom)));
    }
    if (name == "rmsprop") {
      double alpha = opt_.option("alpha"), eps = opt_.option("eps"), mom = opt_.option("momentum");
      // g += wd*p; s = alpha*s + (1-alpha)*g^2
      if (wd != 0) g = add(g, mul(c(wd, p), p));
      NodeId s = add(mul(c(alpha, p), slot_in("square_avg")), mul(c(1 - alpha, p), mul(g, g)));
      slot_out("square_avg", s);
      NodeId dnm;
      if (opt_.option("centered") != 0) {
        // a = alpha*a + (1-alpha)*g;  d = sqrt(s - a^2) + eps
        NodeId a = add(mul(c(alpha, p), slot_in("grad_avg")), mul(c(1 - alpha, p), g));
        slot_out("grad_avg", a);
        dnm = add(sqrt(sub(s, mul(a, a))), c(eps, p));
      } else {
        dnm = add(sqrt(s), c(eps, p));  // d = sqrt(s) + eps
      }
      if (mom != 0) {
        // buf = momentum*buf + g/d;  p -= lr*buf
        NodeId buf = add(mul(c(mom, p), slot_in("momentum_buffer")), b_.div(g, dnm));
        slot_out("momentum_buffer", buf);
        return sub(p, mul(lr, buf));
      }
      return sub(p, mul(lr, b_.div(g, dnm)));  // p -= lr*g/d
    }
    if (name == "adagrad") {
      // g += wd*p; clr = lr/(1+(t-1)*lr_decay); sum += g^2; p -= clr*g/(sqrt(sum)+eps)
      if (wd != 0) g = add(g, mul(c(wd, p), p));
      NodeId clr = b_.div(lr_, b_.add(d(1), b_.mul(b_.sub(t_, d(1)), d(opt_.option("lr_decay")))));
      NodeId sum = add(slot_in("sum"), mul(g, g));
      slot_out("sum", sum);
      return sub(p, mul(as(clr, p), b_.div(g, add(sqrt(sum), c(opt_.option("eps"), p)))));
    }
    internal_error(__FILE__, __LINE__, "unknown optimizer " + name);
  }

 private:
  Builder& b_;
  const OptimizerSpec& opt_;
  NodeId lr_, t_;
};

}  // namespace

void build_train_step(ModelIR& m) {
  GRADC_ASSERT(m.grads.size() >= m.params.size(), "build_train_step needs the param gradients");
  Builder b(m.graph);
  b.at(m.optimizer.loc.valid() ? m.optimizer.loc : m.loss.loc);
  TrainStep& ts = m.train;
  ts.lr = b.leaf(Op::Input, kLearningRate, DType::F64, {});
  ts.step_in = b.leaf(Op::Input, kStepCounter, DType::F64, {});
  NodeId t = b.add(ts.step_in, b.constant(1, DType::F64));  // t = step number, from 1
  ts.step_out = t;

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
    auto slot_in = [&](const std::string& slot) {
      for (const StateSlot& s : ts.slots)
        if (s.param == i && s.slot == slot) return s.in;
      NodeId in = b.leaf(Op::Input, fmt::format("opt.{}.{}", slot, p.name), b[p.node].dtype, b[p.node].shape);
      ts.slots.push_back({slot, i, in, kNoNode});
      return in;
    };
    auto slot_out = [&](const std::string& slot, NodeId v) {
      for (StateSlot& s : ts.slots)
        if (s.param == i && s.slot == slot) s.out = v;
    };
    ts.new_params.push_back(up.update(p.node, grads[i], slot_in, slot_out));
  }
  verify_model(m);
}

}  // namespace gradc
