// Deterministic printouts of the AST: an indented tree with source positions
// (`gradc dump --stage ast`) and Graphviz DOT (`--format dot`).
#include <fmt/format.h>

#include "compiler/frontend/ast.h"
#include "compiler/support/source.h"

namespace gradc {
namespace {

std::string number_text(const Expr& e) {
  return e.is_int ? fmt::format("{}", e.int_value) : fmt::format("{}", e.number);
}

// One line describing an expression node, without its children.
std::string expr_label(const Expr& e) {
  switch (e.kind) {
    case ExprKind::Number: return fmt::format("number {}", number_text(e));
    case ExprKind::Bool: return e.bool_value ? "bool true" : "bool false";
    case ExprKind::Name: return fmt::format("name {}", e.name);
    case ExprKind::Call: return fmt::format("call {}", e.name);
    case ExprKind::List: return "list";
    case ExprKind::Unary: return "unary -";
    case ExprKind::Binary: return fmt::format("binary {}", tok_name(e.op));
    case ExprKind::Transpose: return "postfix .T";
    case ExprKind::Error: return "error";
  }
  return "?";
}

std::string type_text(const TypeRef& t) {
  std::string s = t.dtype.empty() ? "f32" : std::string(t.dtype);
  s += "[";
  for (size_t i = 0; i < t.dims.size(); ++i) {
    if (i) s += ", ";
    s += t.dims[i].name.empty() ? fmt::format("{}", t.dims[i].value) : std::string(t.dims[i].name);
  }
  return s + "]";
}

class AstPrinter {
 public:
  explicit AstPrinter(const SourceManager& sm) : sm_(sm) {}

  std::string run(const Ast& ast) {
    for (const Stmt& s : ast.stmts) stmt(s);
    return std::move(out_);
  }

 private:
  std::string at(SourceLoc loc) const {
    LineCol lc = sm_.line_col(loc.file, loc.begin);
    return fmt::format("@{}:{}", lc.line, lc.column);
  }

  void line(int indent, const std::string& text, SourceLoc loc) {
    out_ += std::string(indent * 2, ' ') + text + "  " + at(loc) + "\n";
  }

  void expr(const Expr& e, int indent) {
    line(indent, expr_label(e), e.kind == ExprKind::Binary || e.kind == ExprKind::Unary ? e.op_loc : e.loc);
    for (const Expr* a : e.args) expr(*a, indent + 1);
    for (const KwArg& k : e.kwargs) {
      line(indent + 1, fmt::format("kwarg {}", k.name), k.name_loc);
      expr(*k.value, indent + 2);
    }
  }

  void stmt(const Stmt& s) {
    switch (s.kind) {
      case StmtKind::Model: line(0, fmt::format("model {}", s.name), s.loc); break;
      case StmtKind::Dim:
        line(0, s.dim_dynamic ? fmt::format("dim {}", s.name) : fmt::format("dim {} = {}", s.name, s.dim_value), s.loc);
        break;
      case StmtKind::Input: line(0, fmt::format("input {} : {}", s.name, type_text(s.type)), s.loc); break;
      case StmtKind::Param:
      case StmtKind::Buffer:
        line(0, fmt::format("{} {} : {}{}", s.kind == StmtKind::Param ? "param" : "buffer", s.name, type_text(s.type),
                            s.value ? " ~" : ""), s.loc);
        if (s.value) expr(*s.value, 1);
        break;
      case StmtKind::Fn: {
        std::string params;
        for (const Binding& p : s.params) params += (params.empty() ? "" : ", ") + std::string(p.name);
        line(0, fmt::format("fn {}({})", s.name, params), s.loc);
        for (const Binding& b : s.locals) {
          line(1, fmt::format("let {} =", b.name), b.name_loc);
          expr(*b.value, 2);
        }
        line(1, "return", s.value->loc);
        expr(*s.value, 2);
        break;
      }
      case StmtKind::Let:
        line(0, fmt::format("let {} =", s.name), s.loc);
        expr(*s.value, 1);
        break;
      case StmtKind::Output: {
        std::string names;
        for (const Binding& b : s.outputs) names += (names.empty() ? "" : ", ") + std::string(b.name);
        line(0, fmt::format("output {}", names), s.loc);
        break;
      }
      case StmtKind::Metric:
        line(0, fmt::format("metric {} =", s.name), s.loc);
        expr(*s.value, 1);
        break;
      case StmtKind::Loss:
        line(0, "loss", s.loc);
        expr(*s.value, 1);
        break;
      case StmtKind::Optimizer:
        line(0, "optimizer", s.loc);
        expr(*s.value, 1);
        break;
    }
  }

  const SourceManager& sm_;
  std::string out_;
};

std::string dot_escape(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\') r += '\\';
    r += c;
  }
  return r;
}

class AstDotPrinter {
 public:
  std::string run(const Ast& ast) {
    out_ = "digraph ast {\n  node [shape=box, fontname=\"monospace\"];\n";
    for (const Stmt& s : ast.stmts) {
      int id = next_++;
      std::string label = fmt::format("{} {}", stmt_kind(s.kind), s.name);
      if (s.kind == StmtKind::Input || s.kind == StmtKind::Param || s.kind == StmtKind::Buffer) label += " : " + type_text(s.type);
      out_ += fmt::format("  n{} [label=\"{}\", style=filled, fillcolor=lightgrey];\n", id, dot_escape(label));
      for (const Binding& b : s.locals) {
        int l = next_++;
        out_ += fmt::format("  n{} [label=\"let {}\"];\n  n{} -> n{};\n", l, dot_escape(b.name), id, l);
        out_ += fmt::format("  n{} -> n{};\n", l, expr(*b.value));
      }
      if (s.value) out_ += fmt::format("  n{} -> n{};\n", id, expr(*s.value));
    }
    return out_ + "}\n";
  }

 private:
  static const char* stmt_kind(StmtKind k) {
    switch (k) {
      case StmtKind::Model: return "model";
      case StmtKind::Dim: return "dim";
      case StmtKind::Input: return "input";
      case StmtKind::Param: return "param";
      case StmtKind::Buffer: return "buffer";
      case StmtKind::Fn: return "fn";
      case StmtKind::Let: return "let";
      case StmtKind::Output: return "output";
      case StmtKind::Metric: return "metric";
      case StmtKind::Loss: return "loss";
      case StmtKind::Optimizer: return "optimizer";
    }
    return "?";
  }

  int expr(const Expr& e) {
    int id = next_++;
    out_ += fmt::format("  n{} [label=\"{}\"];\n", id, dot_escape(expr_label(e)));
    for (const Expr* a : e.args) out_ += fmt::format("  n{} -> n{};\n", id, expr(*a));
    for (const KwArg& k : e.kwargs)
      out_ += fmt::format("  n{} -> n{} [label=\"{}\"];\n", id, expr(*k.value), dot_escape(k.name));
    return id;
  }

  std::string out_;
  int next_ = 0;
};

}  // namespace

std::string print_ast(const Ast& ast, const SourceManager& sm) { return AstPrinter(sm).run(ast); }
std::string print_ast_dot(const Ast& ast) { return AstDotPrinter().run(ast); }

}  // namespace gradc
