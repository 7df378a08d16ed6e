// The gradients of a model's loss, as graph roots: the step between the
// checked graph and the optimizer update (reverse.h does the differentiating;
// this file chooses what to differentiate with respect to).
#include "compiler/autodiff/model_gradients.h"

#include <fmt/format.h>

#include <algorithm>

#include "compiler/autodiff/reverse.h"
#include "compiler/ir/builder.h"
#include "compiler/ir/verifier.h"

namespace gradc {

std::vector<std::string> differentiate_loss(ModelIR& model, const std::vector<std::string>& wrt) {
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
  std::vector<NodeId> grads = gradients(b, model.training.loss.node, xs);
  for (size_t i = 0; i < grads.size(); ++i) model.grads.push_back({targets[i].name, grads[i], targets[i].loc});
  verify_model(model);
  return problems;
}

}  // namespace gradc
