// Unit tests of the parser's statements (SPEC 2.2), the AST printer, and
// error recovery: independent syntax errors are all reported, and a broken
// statement does not cascade into errors elsewhere.
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::compile;
using test::has_error;
using test::parse_source;

TEST_CASE("parser: every statement kind", "[parser]") {
  auto a = parse_source(
      "model mnist\n"
      "dim B = 64\n"
      "input x : [B, 784]\n"
      "input labels : i32[B]\n"
      "input s : f64[]\n"
      "param W : f32[784, 10] ~ normal(0, 0.1)\n"
      "param b : [10]\n"
      "fn f(a) = a\n"
      "h = x @ W + b\n"
      "output h, b\n"
      "metric acc = mean(h)\n"
      "loss cross_entropy(h, labels)\n"
      "optimizer adam(lr = 0.1, clip_grad_norm = 1)\n");
  INFO(render_all(a->diags));
  REQUIRE(a->diags.empty());
  const auto& st = a->ast.stmts;
  std::vector<StmtKind> kinds;
  for (const Stmt& s : st) kinds.push_back(s.kind);
  REQUIRE(kinds == std::vector<StmtKind>{StmtKind::Model, StmtKind::Dim, StmtKind::Input, StmtKind::Input,
                                         StmtKind::Input, StmtKind::Param, StmtKind::Param, StmtKind::Fn,
                                         StmtKind::Let, StmtKind::Output, StmtKind::Metric, StmtKind::Loss,
                                         StmtKind::Optimizer});
  CHECK(st[0].name == "mnist");
  CHECK(st[1].name == "B");
  CHECK(st[1].dim_value == 64);
  // input x : [B, 784] -- default dtype, a named and a literal dim
  CHECK(st[2].type.dtype.empty());
  REQUIRE(st[2].type.dims.size() == 2);
  CHECK(st[2].type.dims[0].name == "B");
  CHECK(st[2].type.dims[1].name.empty());
  CHECK(st[2].type.dims[1].value == 784);
  CHECK(st[3].type.dtype == "i32");
  CHECK(st[4].type.dtype == "f64");
  CHECK(st[4].type.dims.empty());
  CHECK(st[5].type.dtype == "f32");
  REQUIRE(st[5].value != nullptr);
  CHECK(st[5].value->kind == ExprKind::Call);
  CHECK(st[5].value->name == "normal");
  CHECK(st[5].value->args.size() == 2);
  CHECK(st[6].value == nullptr);  // no initializer: zeros
  REQUIRE(st[9].outputs.size() == 2);
  CHECK(st[9].outputs[0].name == "h");
  CHECK(st[9].outputs[1].name == "b");
  CHECK(st[10].name == "acc");
  CHECK(st[12].name == "adam");
  REQUIRE(st[12].value != nullptr);
  REQUIRE(st[12].value->kwargs.size() == 2);
  CHECK(st[12].value->kwargs[1].name == "clip_grad_norm");
}

TEST_CASE("parser: an optimizer without parentheses", "[parser]") {
  auto a = parse_source("optimizer sgd\n");
  REQUIRE(a->diags.empty());
  REQUIRE(a->ast.stmts.size() == 1);
  CHECK(a->ast.stmts[0].name == "sgd");
  REQUIRE(a->ast.stmts[0].value != nullptr);
  CHECK(a->ast.stmts[0].value->kind == ExprKind::Call);
  CHECK(a->ast.stmts[0].value->kwargs.empty());
}

TEST_CASE("parser: statements carry their source line and column", "[parser]") {
  auto a = parse_source("\n  dim B = 4\ninput x : [B]\n");
  REQUIRE(a->ast.stmts.size() == 2);
  LineCol lc = a->sm.line_col(a->ast.stmts[0].loc.file, a->ast.stmts[0].loc.begin);
  CHECK(lc.line == 2);
  CHECK(lc.column == 3);
  lc = a->sm.line_col(a->ast.stmts[1].name_loc.file, a->ast.stmts[1].name_loc.begin);
  CHECK(lc.line == 3);
  CHECK(lc.column == 7);
}

TEST_CASE("parser: the AST printout of '-x^2'", "[parser]") {
  auto a = parse_source("y = -x^2\n");
  REQUIRE(a->diags.empty());
  CHECK(print_ast(a->ast, a->sm) ==
        "let y =  @1:1\n"
        "  unary -  @1:5\n"
        "    binary '^'  @1:7\n"
        "      name x  @1:6\n"
        "      number 2  @1:8\n");
  // The public API prints the same tree.
  Model m = compile("y = -x^2\n");
  CHECK(m.dump(Stage::Ast) == print_ast(a->ast, a->sm));
}

TEST_CASE("parser: malformed statements", "[parser]") {
  struct Case {
    const char* src;
    const char* message;
  };
  for (Case c : {
           Case{"input x [3]\n", "expected ':' and a type after 'x'"},
           Case{"dim model = 3\n", "'model' is a keyword and cannot be used as a name"},
           Case{"input x : f16[3]\n", "unknown dtype 'f16'"},
           Case{"dim B = 2.5\n", "dim size must be an integer, found '2.5'"},
           Case{"dim B = 99999999999999999999\n", "integer literal '99999999999999999999' is too large"},
           Case{"x + 1\n", "expected '=' after 'x'"},
           Case{"42\n", "expected a statement, found number '42'"},
           Case{"loss x y\n", "expected end of line after statement, found 'y'"},
           Case{"output\n", "expected an output name"},
           Case{"optimizer 3\n", "expected an optimizer name"},
           Case{"input x : [B, 2.5]\n", "expected a dim name or an integer size"},
           Case{"y = loss\n", "expected an expression, found keyword 'loss'"},
           Case{"y = )\n", "expected an expression, found ')'"},
       }) {
    INFO(c.src);
    auto a = parse_source(c.src);
    REQUIRE(a->diags.size() == 1);
    CHECK(a->diags[0].message.find(c.message) != std::string::npos);
    CHECK(a->diags[0].line == 1);
    CHECK(a->diags[0].column >= 1);
  }
}

TEST_CASE("parser: negative sizes parse (sema rejects them)", "[parser]") {
  auto a = parse_source("dim B = -4\ninput x : [B, -1]\n");
  REQUIRE(a->diags.empty());
  REQUIRE(a->ast.stmts.size() == 2);
  CHECK(a->ast.stmts[0].dim_value == -4);
  CHECK(a->ast.stmts[1].type.dims[1].value == -1);
}

TEST_CASE("parser: two independent syntax errors are both reported", "[parser][recovery]") {
  const std::string src =
      "input x : [3]\n"
      "y = x +* 2\n"
      "z = x * 2\n"
      "w = (x\n"
      "loss sum(z)\n";
  auto a = parse_source(src);
  REQUIRE(a->diags.size() == 2);
  CHECK(a->diags[0].line == 2);
  CHECK(a->diags[0].column == 8);
  CHECK(a->diags[1].line == 4);  // the ')' was expected at the end of line 4
  CHECK(a->diags[1].message.find("expected ')'") != std::string::npos);
  REQUIRE(a->diags[1].notes.size() == 1);
  CHECK(a->diags[1].notes[0].line == 4);
  CHECK(a->diags[1].notes[0].column == 5);
  // The good statements in between and after are in the AST.
  std::vector<std::string> names;
  for (const Stmt& s : a->ast.stmts) names.emplace_back(s.kind == StmtKind::Loss ? "loss" : std::string(s.name));
  CHECK(names == std::vector<std::string>{"x", "z", "loss"});
}

TEST_CASE("parser: syntax errors do not cascade into name errors", "[parser][recovery]") {
  // 'y' and 'w' failed to parse; their later uses are not reported again.
  Model m = compile(
      "input x : [3]\n"
      "y = x +* 2\n"
      "w = (x\n"
      "output y, w\n"
      "loss sum(y) + sum(w)\n");
  INFO(test::rendered(m));
  REQUIRE_FALSE(m.ok());
  CHECK(m.diagnostics().size() == 2);
  CHECK_FALSE(has_error(m.diagnostics(), "unknown name"));
}

TEST_CASE("parser: a syntax error and a later type error are both reported", "[parser][recovery]") {
  Model m = compile(
      "input x : [3]\n"
      "input v : [4]\n"
      "y = x *\n"
      "z = x + v\n"
      "loss sum(z)\n");
  INFO(test::rendered(m));
  REQUIRE_FALSE(m.ok());
  REQUIRE(m.diagnostics().size() == 2);
  CHECK(m.diagnostics()[0].line == 3);
  CHECK(m.diagnostics()[1].line == 4);
  CHECK(m.diagnostics()[1].message.find("[3] and [4]") != std::string::npos);
}

TEST_CASE("parser: an error inside a fn block resumes after the block", "[parser][recovery]") {
  auto a = parse_source(
      "fn g(x) {\n"
      "  t = x +\n"
      "  return t\n"
      "}\n"
      "y = ) \n"
      "loss 1\n");
  REQUIRE(a->diags.size() == 2);
  CHECK(a->diags[0].line == 2);
  CHECK(a->diags[1].line == 5);
  REQUIRE(a->ast.stmts.size() == 1);
  CHECK(a->ast.stmts[0].kind == StmtKind::Loss);
}

TEST_CASE("parser: a lexical error is not reported again by the parser", "[parser][recovery]") {
  auto a = parse_source("y = x $ 2\nz = 1\n");
  REQUIRE(a->diags.size() == 1);
  CHECK(a->diags[0].message == "unexpected character '$'");
  REQUIRE(a->ast.stmts.size() == 1);
  CHECK(a->ast.stmts[0].name == "z");
}

TEST_CASE("parser: many errors stop at the limit with a final note", "[parser][recovery]") {
  std::string src;
  for (int i = 0; i < 50; ++i) src += "y" + std::to_string(i) + " = )\n";
  Model m = compile(src);
  REQUIRE_FALSE(m.ok());
  const auto& d = m.diagnostics();
  REQUIRE(d.size() == static_cast<size_t>(DiagEngine::kMaxErrors) + 1);
  CHECK(d[0].line == 1);
  CHECK(d[DiagEngine::kMaxErrors - 1].line == DiagEngine::kMaxErrors);
  CHECK(d.back().message.find("too many errors") != std::string::npos);
}

}  // namespace
}  // namespace gradc
