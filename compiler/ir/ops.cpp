// The op table, expanded from ops.def.
#include "compiler/ir/ops.h"

#include <array>

namespace gradc {

namespace {
constexpr std::array kOps = {
#define GRADC_OP(name, spelling, arity, kind) OpInfo{spelling, arity, OpKind::kind},
#include "compiler/ir/ops.def"
#undef GRADC_OP
};
}  // namespace

const OpInfo& op_info(Op op) { return kOps[static_cast<size_t>(op)]; }

}  // namespace gradc
