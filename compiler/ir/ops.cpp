// The op table, expanded from ops.def.
#include "compiler/ir/ops.h"

#include <array>

namespace gradc {

namespace {
constexpr std::array kOps = {
#define GRADC_OP(name, spelling, arity, kind, dsl, dsl_name, verb) \
  OpInfo{Op::name, spelling, arity, OpKind::kind, OpDsl::dsl, dsl_name, verb},
#include "compiler/ir/ops.def"
#undef GRADC_OP
};

// A row's DSL name is there exactly when the language reaches it by name.
constexpr bool dsl_names_consistent() {
  for (const OpInfo& o : kOps)
    if ((o.dsl == OpDsl::None) != o.dsl_name.empty()) return false;
  return true;
}
static_assert(dsl_names_consistent(), "ops.def: a row has a DSL name exactly when its Dsl column is Fn or Own");

// Only elementwise ops can be plain DSL functions: the front end's generic
// lowering takes float tensors and nothing else.
constexpr bool fn_rows_elementwise() {
  for (const OpInfo& o : kOps)
    if (o.dsl == OpDsl::Fn && o.kind != OpKind::Unary && o.kind != OpKind::Binary) return false;
  return true;
}
static_assert(fn_rows_elementwise(), "ops.def: only Unary and Binary rows can have Dsl Fn");

// The shape rule of Binary and Compare ops names the op by its verb.
constexpr bool verbs_present() {
  for (const OpInfo& o : kOps)
    if ((o.kind == OpKind::Binary || o.kind == OpKind::Compare) == o.verb.empty()) return false;
  return true;
}
static_assert(verbs_present(), "ops.def: Binary and Compare rows (and only they) need a verb");
}  // namespace

const OpInfo& op_info(Op op) { return kOps[static_cast<size_t>(op)]; }
std::span<const OpInfo> all_ops() { return kOps; }

}  // namespace gradc
