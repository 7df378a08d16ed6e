// The optimizer statement (SPEC 2.5), checked against the optimizer table
// (autodiff/optimizers.h: names, options, defaults, ranges, constraints).
#include <fmt/format.h>

#include <cmath>

#include "compiler/autodiff/optimizers.h"
#include "compiler/frontend/sema_impl.h"
#include "compiler/support/messages.h"

namespace gradc {
namespace {

using R = OptimizerOption::Range;

// "sgd, adam, adamw, rmsprop or adagrad"
std::string optimizer_names() {
  std::string out;
  const auto& t = optimizer_table();
  for (size_t i = 0; i < t.size(); ++i) out += std::string(i == 0 ? "" : i + 1 == t.size() ? " or " : ", ") + std::string(t[i].name);
  return out;
}

}  // namespace

void Sema::resolve_optimizer(const Stmt* s) {
  OptimizerSpec& spec = model_.optimizer;
  const OptimizerRule* def = &optimizer_table()[0];
  if (s) {
    def = find_optimizer(s->name);
    if (!def) {
      error(s->name_loc, diag::err_unknown_optimizer(s->name, optimizer_names()));
      return;
    }
    spec.loc = s->loc;
  }
  spec.name = def->name;
  spec.options.clear();
  for (const OptimizerOption& o : def->options) spec.options.emplace_back(std::string(o.name), o.default_value);
  if (!s) return;
  const Expr& call = *s->value;
  if (!call.args.empty()) {
    error(call.args[0]->loc, diag::err_optimizer_positional(def->name));
    return;
  }
  std::string names;
  for (const OptimizerOption& o : def->options) names += std::string(o.name) + ", ";
  // clip_grad_norm is an option of every gradient-based optimizer.
  if (def->gradient_free()) names.resize(names.size() - 2);
  else names += "clip_grad_norm";
  for (const KwArg& k : call.kwargs) {
    auto v = const_float(*k.value, fmt::format("option '{}'", k.name));
    if (!v) continue;
    if (!std::isfinite(*v)) {
      error(k.value->loc, diag::err_option_not_finite(k.name, *v));
      continue;
    }
    if (k.name == "clip_grad_norm" && !def->gradient_free()) {
      if (*v <= 0) error(k.value->loc, diag::err_clip_nonpositive(*v));
      else spec.options.emplace_back("clip_grad_norm", *v);
      continue;
    }
    const OptimizerOption* o = nullptr;
    for (const OptimizerOption& c : def->options)
      if (c.name == k.name) o = &c;
    if (!o) {
      error(k.name_loc, diag::err_unknown_option(def->name, k.name, names));
      continue;
    }
    bool whole = *v == std::floor(*v) && *v <= (1 << 24);
    bool ok = false;
    std::string_view wanted;
    switch (o->range) {
      case R::NonNegative: ok = *v >= 0, wanted = "non-negative"; break;
      case R::Unit: ok = *v >= 0 && *v < 1, wanted = "in [0, 1)"; break;
      case R::Probability: ok = *v >= 0 && *v <= 1, wanted = "in [0, 1]"; break;
      case R::Bool: ok = *v == 0 || *v == 1, wanted = "true or false"; break;
      case R::Count: ok = whole && *v >= 1, wanted = "a whole number from 1 to 16777216"; break;
      case R::Whole: ok = whole && *v >= 0, wanted = "a whole number from 0 to 16777216"; break;
    }
    if (!ok) {
      error(k.value->loc, diag::err_option_range(k.name, def->name, wanted, *v));
      continue;
    }
    for (auto& [name, val] : spec.options)
      if (name == k.name) val = *v;
  }
  for (const OptimizerRule::Constraint& c : def->constraints) {
    if (!c.invalid(spec)) continue;
    SourceLoc where = s->loc;
    for (const KwArg& k : call.kwargs)
      if (k.name == c.at) where = k.name_loc;
    error(where, std::string(c.message));
  }
}

}  // namespace gradc
