// A model definition as plain data: what the C++ embedded front end
// (gradc/embed.h) records, and what Model::compile_def() compiles.
//
// It is the text language's syntax tree in a form a header can build without
// compiler-internal types: statements in order, and expressions as a flat
// vector of nodes that name their children by index. Every node carries the
// std::source_location of the C++ code that wrote it, so a diagnostic points
// at the C++ line. No LLVM or compiler-internal types appear here.
#pragma once

#include <cstdint>
#include <source_location>
#include <string>
#include <utility>
#include <vector>

namespace gradc::embed {

// One expression node, as the text language would parse it (SPEC 2.3).
struct DefExpr {
  enum class Kind : uint8_t {
    Number,     // number / is_int / int_value; a negative literal is Unary '-' of a positive one
    Bool,       // bool_value
    Name,       // text: an input, param, named value, dim, fn parameter or dtype (f32, f64)
    Call,       // text: the builtin or fn; args positional, kwargs by name
    List,       // args: the elements ([B, 2], [a, b])
    Unary,      // text "-"; args [x]
    Binary,     // text: "+ - * / @ ^ < <= > >= == !="; args [a, b]
    Transpose,  // x.T; args [x]
  };
  Kind kind = Kind::Number;
  std::string text;
  double number = 0;
  int64_t int_value = 0;
  bool is_int = false;
  bool bool_value = false;
  std::vector<int> args;                          // indices into ModelDef::exprs
  std::vector<std::pair<std::string, int>> kwargs;  // name, index into ModelDef::exprs
  std::source_location loc;                       // the C++ code that wrote it
};

// A dimension in a declared type: a dim's name, or a size when name is empty.
struct DefDim {
  std::string name;
  int64_t value = 0;
};

// One statement (SPEC 2.2).
struct DefStmt {
  enum class Kind : uint8_t { Dim, Input, Param, Fn, Let, Output, Metric, Loss, Optimizer, Buffer };
  Kind kind = Kind::Let;
  std::string name;                 // Dim, Input, Param, Fn, Let, Metric, Optimizer
  int64_t dim_value = 0;            // Dim
  bool dim_dynamic = false;         // Dim: no size (SPEC 2.2)
  std::string dtype;                // Input, Param, Buffer: "f32", "f64", "i32" or "" (f32)
  std::vector<DefDim> dims;         // Input, Param, Buffer
  int value = -1;                   // Let, Metric, Loss, Fn result, Param or Buffer init (-1: none), Optimizer call
  std::vector<std::string> names;   // Fn parameters; Output names
  std::vector<std::pair<std::string, int>> locals;  // Fn block-form assignments, in order
  std::source_location loc;
};

struct ModelDef {
  std::string name;  // the model's name (what `model NAME` or the file stem gives a text model)
  std::vector<DefExpr> exprs;
  std::vector<DefStmt> stmts;
  std::source_location loc;  // where the definition was started: model-wide errors point here
};

}  // namespace gradc::embed
