// Graph ops, generated from the op table ops.def.
#pragma once

#include <cstdint>
#include <string_view>

namespace gradc {

enum class OpKind : uint8_t {
  Leaf, Unary, Cast, Binary, Compare, Select, Reduce, ArgMax, MatMul,
  Reshape, Transpose, BroadcastTo, Concat, Slice, Pad, OneHot,
};

enum class Op : uint8_t {
#define GRADC_OP(name, spelling, arity, kind) name,
#include "compiler/ir/ops.def"
#undef GRADC_OP
};

struct OpInfo {
  std::string_view spelling;  // as printed in graph dumps
  int arity;                  // -1: one or more
  OpKind kind;
};

const OpInfo& op_info(Op op);
inline std::string_view op_name(Op op) { return op_info(op).spelling; }
inline OpKind op_kind(Op op) { return op_info(op).kind; }

}  // namespace gradc
