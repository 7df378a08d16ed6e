// Graph ops, generated from the op table ops.def (read its header comment
// before adding an op: it lists every rule a new row needs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

namespace gradc {

enum class OpKind : uint8_t {
  Leaf, Unary, Cast, Binary, Compare, Select, Reduce, ArgMax, MatMul,
  Reshape, Transpose, BroadcastTo, Concat, Slice, Pad, OneHot,
  Window,
  Gather, ScatterAdd,  // lookup
  Random,
  Scan, ScanOut,  // loops
};

// How the model language reaches an op (see ops.def).
enum class OpDsl : uint8_t { None, Fn, Own };

enum class Op : uint8_t {
#define GRADC_OP(name, spelling, arity, kind, dsl, dsl_name, verb) name,
#include "compiler/ir/ops.def"
#undef GRADC_OP
};

struct OpInfo {
  Op op;
  std::string_view spelling;  // as printed in graph dumps
  int arity;                  // -1: one or more
  OpKind kind;
  OpDsl dsl;
  std::string_view dsl_name;  // the builtin's name; empty when dsl is None
  std::string_view verb;      // Binary/Compare: "cannot VERB tensors of shapes ..."
};

const OpInfo& op_info(Op op);
// Every row of the op table, in order.
std::span<const OpInfo> all_ops();
inline std::string_view op_name(Op op) { return op_info(op).spelling; }
inline OpKind op_kind(Op op) { return op_info(op).kind; }

}  // namespace gradc
