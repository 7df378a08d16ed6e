// The abstract syntax tree of a gradc model file (SPEC 2.2-2.3).
//
// Nodes live in an arena owned by the Ast, so destroying a deep tree never
// recurses. Names are views into the SourceManager's copy of the file. Every
// node carries its source span.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "compiler/frontend/token.h"

namespace gradc {

enum class ExprKind : uint8_t {
  Number,     // 12, 0.5 (int_value valid when is_int)
  Bool,       // true / false
  Name,       // x
  Call,       // f(a, key = b)
  List,       // [a, b]
  Unary,      // -x
  Binary,     // a + b  (op is the token kind)
  Transpose,  // x.T
  Error,      // a placeholder after a parse error
};

struct Expr;

struct KwArg {
  std::string_view name;
  SourceLoc name_loc;
  Expr* value = nullptr;
};

struct Expr {
  ExprKind kind = ExprKind::Error;
  SourceLoc loc;     // the whole expression
  SourceLoc op_loc;  // Binary/Unary/Transpose: the operator; Call: the callee name
  Tok op = Tok::Eof;
  double number = 0;
  int64_t int_value = 0;
  bool is_int = false;
  bool bool_value = false;
  std::string_view name;       // Name, Call callee
  std::vector<Expr*> args;     // Call args, List elements, Unary [x], Binary [a, b], Transpose [x]
  std::vector<KwArg> kwargs;   // Call keyword arguments, in source order
  int depth = 1;               // height of the tree below (and including) this node
};

// A dimension in a type: an integer literal or a `dim` name.
struct DimRef {
  SourceLoc loc;
  std::string_view name;  // empty for a literal
  int64_t value = 0;
};

// TYPE := [DTYPE] '[' DIMS ']'
struct TypeRef {
  SourceLoc loc;
  std::string_view dtype;  // "f32", "f64", "i32", or empty (f32)
  SourceLoc dtype_loc;
  std::vector<DimRef> dims;
};

struct Binding {
  std::string_view name;
  SourceLoc name_loc;
  Expr* value = nullptr;
};

enum class StmtKind : uint8_t { Model, Dim, Input, Param, Fn, Let, Output, Metric, Loss, Optimizer, Buffer };

struct Stmt {
  StmtKind kind = StmtKind::Let;
  SourceLoc loc;                      // the whole statement's first line
  std::string_view name;              // Model, Dim, Input, Param, Buffer, Fn, Let, Metric
  SourceLoc name_loc;
  int64_t dim_value = 0;              // Dim
  bool dim_dynamic = false;           // Dim: `dim NAME` with no size (SPEC 2.2)
  SourceLoc value_loc;                // Dim: the integer
  TypeRef type;                       // Input, Param, Buffer
  Expr* value = nullptr;              // Let, Metric, Loss, Fn result, Param or Buffer init, Optimizer call
  std::vector<Binding> params;        // Fn parameters (value unused)
  std::vector<Binding> locals;        // Fn block-form assignments
  std::vector<Binding> outputs;       // Output names (value unused)
};

class Ast {
 public:
  Expr* new_expr(ExprKind kind, SourceLoc loc) {
    Expr& e = exprs_.emplace_back();
    e.kind = kind;
    e.loc = loc;
    return &e;
  }
  // A stable copy of a name for the string_views of the tree, for trees that
  // are not parsed from a file (the C++ embedded front end).
  std::string_view intern(std::string_view name) { return names_.emplace_back(name); }
  // Every expression of the tree, in no particular order.
  const std::deque<Expr>& exprs() const { return exprs_; }

  std::vector<Stmt> stmts;
  // Names declared by statements that failed to parse: uses are not reported again.
  std::vector<std::string_view> broken_names;
  bool broken_loss = false;  // a `loss` statement failed to parse
  uint32_t file = 0;         // the SourceManager id of the parsed file
  SourceLoc start;           // where model-wide errors point; invalid: the file's start

 private:
  std::deque<Expr> exprs_;
  std::deque<std::string> names_;
};

// A deterministic indented printout (`gradc dump --stage ast`).
std::string print_ast(const Ast& ast, const class SourceManager& sm);
// Graphviz DOT of the AST.
std::string print_ast_dot(const Ast& ast);

}  // namespace gradc
