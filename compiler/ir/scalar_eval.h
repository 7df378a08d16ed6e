// The value of every elementwise op on scalars: the one definition of each
// op's arithmetic, shared by the reference interpreter and constant folding.
// Each function is a switch over every op with no default (see ops.def).
#pragma once

#include "compiler/ir/ops.h"

namespace gradc {

// Elementwise ops only (Unary, Binary, Compare kinds); doubles in and out.
double eval_unary(Op op, double x);
double eval_binary(Op op, double a, double b);

// A reduction (Reduce kind) folds its group with the binary op `combine`,
// starting from `identity`.
struct ReduceRule {
  Op combine;
  double identity;
};
ReduceRule reduce_rule(Op op);

}  // namespace gradc
