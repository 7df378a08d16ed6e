// The optimizer statement (SPEC 2.5): names, options, defaults and ranges.
#include <fmt/format.h>

#include <cmath>

#include "compiler/frontend/sema_impl.h"

namespace gradc {
namespace {

struct OptionSpec {
  std::string_view name;
  double default_value;
  enum class Range : uint8_t { NonNegative, Unit, Bool } range = Range::NonNegative;
};

struct OptimizerDef {
  std::string_view name;
  std::vector<OptionSpec> options;
};

using R = OptionSpec::Range;

// Defaults follow torch.optim; the order is SPEC 2.5's.
const std::vector<OptimizerDef>& optimizers() {
  static const std::vector<OptimizerDef> defs = {
      {"sgd", {{"lr", 0.01}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0}, {"nesterov", 0, R::Bool}}},
      {"adam", {{"lr", 0.001}, {"beta1", 0.9, R::Unit}, {"beta2", 0.999, R::Unit}, {"eps", 1e-8}, {"weight_decay", 0}}},
      {"adamw", {{"lr", 0.001}, {"beta1", 0.9, R::Unit}, {"beta2", 0.999, R::Unit}, {"eps", 1e-8}, {"weight_decay", 0.01}}},
      {"rmsprop",
       {{"lr", 0.01}, {"alpha", 0.99}, {"eps", 1e-8}, {"weight_decay", 0}, {"momentum", 0}, {"centered", 0, R::Bool}}},
      {"adagrad",
       {{"lr", 0.01}, {"lr_decay", 0}, {"weight_decay", 0}, {"initial_accumulator_value", 0}, {"eps", 1e-10}}},
  };
  return defs;
}

}  // namespace

void Sema::resolve_optimizer(const Stmt* s) {
  OptimizerSpec& spec = model_.optimizer;
  const OptimizerDef* def = &optimizers()[0];
  if (s) {
    def = nullptr;
    for (const OptimizerDef& d : optimizers())
      if (d.name == s->name) def = &d;
    if (!def) {
      error(s->name_loc, fmt::format("unknown optimizer '{}' (expected sgd, adam, adamw, rmsprop or adagrad)", s->name));
      return;
    }
    spec.loc = s->loc;
  }
  spec.name = def->name;
  spec.options.clear();
  for (const OptionSpec& o : def->options) spec.options.emplace_back(std::string(o.name), o.default_value);
  if (!s) return;
  const Expr& call = *s->value;
  if (!call.args.empty()) {
    error(call.args[0]->loc, fmt::format("optimizer options are given by name, e.g. {}(lr = 0.1)", def->name));
    return;
  }
  std::string names;
  for (const OptionSpec& o : def->options) names += std::string(o.name) + ", ";
  names += "clip_grad_norm";
  for (const KwArg& k : call.kwargs) {
    auto v = const_float(*k.value, fmt::format("option '{}'", k.name));
    if (!v) continue;
    if (!std::isfinite(*v)) {
      error(k.value->loc, fmt::format("option '{}' must be finite, got {}", k.name, *v));
      continue;
    }
    if (k.name == "clip_grad_norm") {
      if (*v <= 0) error(k.value->loc, fmt::format("clip_grad_norm must be positive, got {}", *v));
      else spec.options.emplace_back("clip_grad_norm", *v);
      continue;
    }
    const OptionSpec* o = nullptr;
    for (const OptionSpec& c : def->options)
      if (c.name == k.name) o = &c;
    if (!o) {
      error(k.name_loc, fmt::format("optimizer '{}' has no option '{}' (its options: {})", def->name, k.name, names));
      continue;
    }
    bool ok = o->range == R::Bool ? (*v == 0 || *v == 1) : o->range == R::Unit ? (*v >= 0 && *v < 1) : *v >= 0;
    if (!ok) {
      error(k.value->loc, fmt::format("option '{}' of '{}' must be {}, got {}", k.name, def->name,
                                      o->range == R::Bool   ? "true or false"
                                      : o->range == R::Unit ? "in [0, 1)"
                                                            : "non-negative",
                                      *v));
      continue;
    }
    for (auto& [name, val] : spec.options)
      if (name == k.name) val = *v;
  }
  // torch.optim.SGD rejects nesterov without momentum or with dampening.
  if (spec.name == "sgd" && spec.option("nesterov") != 0 &&
      (spec.option("momentum") <= 0 || spec.option("dampening") != 0)) {
    SourceLoc where = s->loc;
    for (const KwArg& k : call.kwargs)
      if (k.name == "nesterov") where = k.name_loc;
    error(where, "sgd with nesterov = true needs momentum > 0 and dampening = 0");
  }
}

}  // namespace gradc
