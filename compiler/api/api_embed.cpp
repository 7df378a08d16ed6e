// Model::compile_def: a model defined in C++ (gradc/embed.h) becomes the
// syntax tree that the same model written in the text language parses into,
// and then goes through exactly the same pipeline (run_pipeline).
//
// Locations: every node of the definition carries the std::source_location
// of the C++ code that wrote it. Each C++ file named there is registered in
// the SourceManager under its name, with its text when it can be read (so a
// diagnostic shows the C++ line and a caret), else as empty lines; a location
// is the offset of its line and column in that file.
#include <fmt/format.h>

#include <fstream>
#include <map>

#include "compiler/api/model_impl.h"
#include "compiler/support/stack.h"
#include "gradc/embed_def.h"
#include "gradc/gradc.h"

namespace gradc {

namespace {

// The largest C++ file read to show source lines in diagnostics.
constexpr size_t kMaxCppSourceBytes = 16 << 20;

// A malformed definition (not one that gradc/embed.h writes): reported, never a crash.
struct BadDef {
  std::string what;
};

class DefConverter {
 public:
  DefConverter(const embed::ModelDef& def, SourceManager& sm, Ast& ast) : def_(def), sm_(sm), ast_(ast) {}

  void run() {
    ast_.start = loc(def_.loc);
    ast_.file = ast_.start.file;
    for (const embed::DefStmt& d : def_.stmts) ast_.stmts.push_back(stmt(d));
  }

 private:
  // The SourceLoc of a C++ location: one byte at its line and column.
  SourceLoc loc(const std::source_location& l) {
    if (l.line() == 0 || l.file_name() == nullptr || *l.file_name() == 0) return {};
    std::string name = l.file_name();
    auto it = files_.find(name);
    if (it == files_.end()) it = files_.emplace(name, register_file(name)).first;
    int line = static_cast<int>(l.line());
    uint32_t begin = sm_.offset_of(it->second, line, static_cast<int>(l.column()));
    return {it->second, begin, begin + 1};
  }

  // Registers a C++ file: its text, or as many empty lines as the definition
  // refers to when it cannot be read.
  uint32_t register_file(const std::string& name) {
    std::string text;
    std::ifstream in(name, std::ios::binary);
    if (in) {
      text = read_bounded(in, kMaxCppSourceBytes);
      if (text.size() > kMaxCppSourceBytes) text.clear();
    }
    if (text.empty()) {
      uint32_t lines = def_.loc.line();
      for (const embed::DefExpr& e : def_.exprs)
        if (name == e.loc.file_name()) lines = std::max(lines, e.loc.line());
      for (const embed::DefStmt& s : def_.stmts)
        if (name == s.loc.file_name()) lines = std::max(lines, s.loc.line());
      text.assign(lines, '\n');
    }
    return sm_.add(name, std::move(text));
  }

  std::string_view name(const std::string& n) { return ast_.intern(n); }

  Expr* expr(int index, int level = 0) {
    if (index < 0 || index >= static_cast<int>(def_.exprs.size()))
      throw BadDef{fmt::format("expression index {} is out of range", index)};
    if (level > 100000) throw BadDef{"the expression nests too deeply"};
    const embed::DefExpr& d = def_.exprs[static_cast<size_t>(index)];
    using K = embed::DefExpr::Kind;
    static const std::map<std::string_view, Tok> binary_ops = {
        {"+", Tok::Plus}, {"-", Tok::Minus}, {"*", Tok::Star}, {"/", Tok::Slash}, {"@", Tok::At},
        {"^", Tok::Caret}, {"<", Tok::Lt},   {"<=", Tok::Le},  {">", Tok::Gt},    {">=", Tok::Ge},
        {"==", Tok::EqEq}, {"!=", Tok::NotEq}};
    ExprKind kind = ExprKind::Error;
    switch (d.kind) {
      case K::Number: kind = ExprKind::Number; break;
      case K::Bool: kind = ExprKind::Bool; break;
      case K::Name: kind = ExprKind::Name; break;
      case K::Call: kind = ExprKind::Call; break;
      case K::List: kind = ExprKind::List; break;
      case K::Unary: kind = ExprKind::Unary; break;
      case K::Binary: kind = ExprKind::Binary; break;
      case K::Transpose: kind = ExprKind::Transpose; break;
    }
    SourceLoc at = loc(d.loc);
    Expr* e = ast_.new_expr(kind, at);
    e->op_loc = at;
    e->number = d.number;
    e->int_value = d.int_value;
    e->is_int = d.is_int;
    e->bool_value = d.bool_value;
    if (d.kind == K::Bool) e->number = d.bool_value ? 1 : 0;  // as the parser writes true / false
    size_t want = d.kind == K::Unary || d.kind == K::Transpose ? 1 : d.kind == K::Binary ? 2 : d.args.size();
    if (d.args.size() != want) throw BadDef{fmt::format("a node of kind {} has {} operands", int(d.kind), d.args.size())};
    if (d.kind == K::Name || d.kind == K::Call) e->name = name(d.text);
    if (d.kind == K::Unary) {
      if (d.text != "-") throw BadDef{fmt::format("unknown unary operator '{}'", d.text)};
      e->op = Tok::Minus;
    }
    if (d.kind == K::Binary) {
      auto it = binary_ops.find(d.text);
      if (it == binary_ops.end()) throw BadDef{fmt::format("unknown binary operator '{}'", d.text)};
      e->op = it->second;
    }
    for (int a : d.args) {
      e->args.push_back(expr(a, level + 1));
      e->depth = std::max(e->depth, e->args.back()->depth + 1);
    }
    for (const auto& [key, value] : d.kwargs) {
      Expr* v = expr(value, level + 1);
      e->kwargs.push_back({name(key), at, v});
      e->depth = std::max(e->depth, v->depth + 1);
    }
    return e;
  }

  Stmt stmt(const embed::DefStmt& d) {
    using K = embed::DefStmt::Kind;
    Stmt s;
    s.loc = loc(d.loc);
    s.name = name(d.name);
    s.name_loc = s.loc;
    s.value_loc = s.loc;
    switch (d.kind) {
      case K::Dim:
        s.kind = StmtKind::Dim;
        s.dim_value = d.dim_value;
        s.dim_dynamic = d.dim_dynamic;
        break;
      case K::Input:
      case K::Param:
      case K::Buffer:
        s.kind = d.kind == K::Input ? StmtKind::Input : d.kind == K::Param ? StmtKind::Param : StmtKind::Buffer;
        s.type.loc = s.type.dtype_loc = s.loc;
        s.type.dtype = name(d.dtype);
        for (const embed::DefDim& dim : d.dims) s.type.dims.push_back({s.loc, name(dim.name), dim.value});
        if (d.kind != K::Input && d.value >= 0) s.value = expr(d.value);
        break;
      case K::Fn:
        s.kind = StmtKind::Fn;
        for (const std::string& p : d.names) s.params.push_back({name(p), s.loc, nullptr});
        for (const auto& [local, value] : d.locals) s.locals.push_back({name(local), s.loc, expr(value)});
        s.value = expr(d.value);
        break;
      case K::Let: s.kind = StmtKind::Let; s.value = expr(d.value); break;
      case K::Output:
        s.kind = StmtKind::Output;
        for (const std::string& o : d.names) s.outputs.push_back({name(o), s.loc, nullptr});
        break;
      case K::Metric: s.kind = StmtKind::Metric; s.value = expr(d.value); break;
      case K::Loss: s.kind = StmtKind::Loss; s.value = expr(d.value); break;
      case K::Optimizer: s.kind = StmtKind::Optimizer; s.value = expr(d.value); break;
    }
    return s;
  }

  const embed::ModelDef& def_;
  SourceManager& sm_;
  Ast& ast_;
  std::map<std::string, uint32_t> files_;
};

}  // namespace

Model Model::compile_def(const embed::ModelDef& def, const CompileOptions& opts) {
  auto impl = std::make_shared<Impl>();
  impl->opts = opts;
  impl->recompile = [def = std::make_shared<const embed::ModelDef>(def)](const CompileOptions& o) {
    return compile_def(*def, o).impl_;
  };
  run_with_large_stack([&] {
    run_pipeline(*impl, def.name.empty() ? std::string("model") : def.name, opts, [&](DiagEngine&) {
      try {
        DefConverter(def, impl->sm, impl->ast).run();
      } catch (const BadDef& bad) {
        internal_error(__FILE__, __LINE__, "malformed embedded model definition: " + bad.what);
      }
    });
  });
  return Model(std::move(impl));
}

}  // namespace gradc
