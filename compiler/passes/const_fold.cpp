// Constant folding of scalar elementwise ops.
#include "compiler/passes/const_fold.h"

#include "compiler/ir/scalar_eval.h"
#include "compiler/passes/rebuild.h"

namespace gradc {

ModelIR fold_constants(const ModelIR& m, size_t* folded) {
  return rebuild(m, [](Builder& b, const Node& n) -> NodeId {
    OpKind k = op_kind(n.op);
    bool elementwise = k == OpKind::Unary || k == OpKind::Binary || k == OpKind::Compare || k == OpKind::Cast ||
                       k == OpKind::Select;
    if (!elementwise || !n.shape.empty()) return kNoNode;
    for (NodeId o : n.operands)
      if (b[o].op != Op::Constant) return kNoNode;
    auto c = [&](size_t i) { return b[n.operands[i]].attrs.value; };
    double v;
    if (k == OpKind::Unary) v = eval_unary(n.op, c(0));
    else if (k == OpKind::Cast) v = c(0);
    else if (k == OpKind::Select) v = c(0) != 0 ? c(1) : c(2);
    else v = eval_binary(n.op, c(0), c(1));
    if (n.dtype == DType::F32) v = static_cast<double>(static_cast<float>(v));
    return b.constant(v, n.dtype);
  }, folded);
}

}  // namespace gradc
