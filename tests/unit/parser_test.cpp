// Unit tests of the parser (SPEC 2.2-2.3): precedence and associativity,
// calls, fn forms, every statement kind, and error recovery. The expression
// tree is checked as an s-expression built by walking the AST.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::parse_source;

std::string op_text(Tok t) {
  std::string s(tok_name(t));
  return s.size() >= 2 && s.front() == '\'' ? s.substr(1, s.size() - 2) : s;
}

// (op a b), (neg x), (T x), (call f a k=v), [a b]
std::string sexpr(const Expr& e) {
  auto args = [&](std::string s) {
    for (const Expr* a : e.args) s += " " + sexpr(*a);
    for (const KwArg& k : e.kwargs) s += fmt::format(" {}={}", k.name, sexpr(*k.value));
    return s;
  };
  switch (e.kind) {
    case ExprKind::Number: return e.is_int ? std::to_string(e.int_value) : fmt::format("{}", e.number);
    case ExprKind::Bool: return e.bool_value ? "true" : "false";
    case ExprKind::Name: return std::string(e.name);
    case ExprKind::Call: return args("(call " + std::string(e.name)) + ")";
    case ExprKind::List: return "[" + args("").substr(e.args.empty() ? 0 : 1) + "]";
    case ExprKind::Unary: return args("(neg") + ")";
    case ExprKind::Binary: return args("(" + op_text(e.op)) + ")";
    case ExprKind::Transpose: return args("(T") + ")";
    case ExprKind::Error: return "<error>";
  }
  return "?";
}

// Parses "y = <text>" and returns the value as an s-expression (no errors allowed).
std::string parse_expr(const std::string& text) {
  auto a = parse_source("y = " + text + "\n");
  INFO("expression: " << text << "\n" << render_all(a->diags));
  REQUIRE(a->diags.empty());
  REQUIRE(a->ast.stmts.size() == 1);
  REQUIRE(a->ast.stmts[0].kind == StmtKind::Let);
  return sexpr(*a->ast.stmts[0].value);
}

// Parses "y = <text>" and returns the syntax errors.
std::vector<Diagnostic> parse_errors(const std::string& text) { return parse_source("y = " + text + "\n")->diags; }

TEST_CASE("parser: unary minus binds looser than '^'", "[parser]") {
  CHECK(parse_expr("-x^2") == "(neg (^ x 2))");
  CHECK(parse_expr("-x * y") == "(* (neg x) y)");
  CHECK(parse_expr("x * -y") == "(* x (neg y))");
  CHECK(parse_expr("--x") == "(neg (neg x))");
  CHECK(parse_expr("a - -b") == "(- a (neg b))");
  CHECK(parse_expr("2^-x") == "(^ 2 (neg x))");
}

TEST_CASE("parser: '^' is right-associative", "[parser]") {
  CHECK(parse_expr("a^b^c") == "(^ a (^ b c))");
  CHECK(parse_expr("a^b^c^d") == "(^ a (^ b (^ c d)))");
  CHECK(parse_expr("(a^b)^c") == "(^ (^ a b) c)");
}

TEST_CASE("parser: '+' '-' '*' '/' '@' are left-associative", "[parser]") {
  CHECK(parse_expr("a - b - c") == "(- (- a b) c)");
  CHECK(parse_expr("a + b - c + d") == "(+ (- (+ a b) c) d)");
  CHECK(parse_expr("a / b / c") == "(/ (/ a b) c)");
  CHECK(parse_expr("a @ b @ c") == "(@ (@ a b) c)");
  CHECK(parse_expr("a - (b - c)") == "(- a (- b c))");
}

TEST_CASE("parser: '*' binds tighter than '+', and '@' sits at the level of '*'", "[parser]") {
  CHECK(parse_expr("a + b * c") == "(+ a (* b c))");
  CHECK(parse_expr("a * b + c") == "(+ (* a b) c)");
  CHECK(parse_expr("(a + b) * c") == "(* (+ a b) c)");
  CHECK(parse_expr("a @ b * c") == "(* (@ a b) c)");
  CHECK(parse_expr("a * b @ c") == "(@ (* a b) c)");
  CHECK(parse_expr("x @ W + b") == "(+ (@ x W) b)");
  CHECK(parse_expr("a / b @ c") == "(@ (/ a b) c)");
  CHECK(parse_expr("a + b @ c - d") == "(- (+ a (@ b c)) d)");
}

TEST_CASE("parser: '.T' binds tighter than '^' and unary minus", "[parser]") {
  CHECK(parse_expr("x.T") == "(T x)");
  CHECK(parse_expr("x.T^2") == "(^ (T x) 2)");
  CHECK(parse_expr("x^y.T") == "(^ x (T y))");
  CHECK(parse_expr("-x.T") == "(neg (T x))");
  CHECK(parse_expr("x.T.T") == "(T (T x))");
  CHECK(parse_expr("(a @ b).T") == "(T (@ a b))");
  CHECK(parse_expr("f(x).T @ y") == "(@ (T (call f x)) y)");
}

TEST_CASE("parser: comparisons are the loosest level", "[parser]") {
  CHECK(parse_expr("a < b + c") == "(< a (+ b c))");
  CHECK(parse_expr("a * b >= -c") == "(>= (* a b) (neg c))");
  CHECK(parse_expr("a == b") == "(== a b)");
  CHECK(parse_expr("a != b") == "(!= a b)");
  CHECK(parse_expr("a <= b") == "(<= a b)");
  CHECK(parse_expr("a > b") == "(> a b)");
  CHECK(parse_expr("(a < b) < c") == "(< (< a b) c)");
  CHECK(parse_expr("a < (b < c)") == "(< a (< b c))");
}

TEST_CASE("parser: chained comparisons are an error", "[parser]") {
  for (std::string text : {"a < b < c", "a == b != c", "a <= b > c"}) {
    INFO(text);
    auto d = parse_errors(text);
    REQUIRE(d.size() == 1);
    CHECK(d[0].message.find("cannot be chained") != std::string::npos);
    CHECK(d[0].line == 1);
  }
  auto d = parse_errors("a < b < c");
  CHECK(d[0].column == 11);  // "y = a < b < c": the second '<'
}

TEST_CASE("parser: calls with positional, keyword and list arguments", "[parser]") {
  CHECK(parse_expr("f()") == "(call f)");
  CHECK(parse_expr("sum(x, axis=1, keepdims=true)") == "(call sum x axis=1 keepdims=true)");
  CHECK(parse_expr("reshape(x, [B, -1])") == "(call reshape x [B (neg 1)])");
  CHECK(parse_expr("concat([a, b * 2], axis = -1)") == "(call concat [a (* b 2)] axis=(neg 1))");
  CHECK(parse_expr("f([])") == "(call f [])");
  CHECK(parse_expr("f(g(x), h(y, k=z))") == "(call f (call g x) (call h y k=z))");
  CHECK(parse_expr("sum(x, axis=[0, 2])") == "(call sum x axis=[0 2])");
  CHECK(parse_expr("f(a,\n  b)") == "(call f a b)");  // a newline inside ( ) continues the statement
  CHECK(parse_expr("leaky_relu(x, slope=0.5)") == "(call leaky_relu x slope=0.5)");
}

TEST_CASE("parser: malformed calls", "[parser]") {
  auto d = parse_errors("f(k=1, x)");
  REQUIRE(d.size() == 1);
  CHECK(d[0].message == "positional argument follows keyword argument");
  d = parse_errors("f(x, k=1, k=2)");
  REQUIRE(d.size() == 1);
  CHECK(d[0].message == "keyword argument 'k' given twice");
  REQUIRE(d[0].notes.size() == 1);
  CHECK(d[0].notes[0].column == 10);  // "y = f(x, k=1, ...": the first 'k'
  d = parse_errors("f(x,)");
  REQUIRE(d.size() == 1);
  CHECK(d[0].message.find("expected an expression") != std::string::npos);
  d = parse_errors("x.U");
  REQUIRE(d.size() == 1);
  CHECK(d[0].message.find("expected 'T' after '.'") != std::string::npos);
}

TEST_CASE("parser: an unclosed bracket points at its opening", "[parser]") {
  auto a = parse_source("y = (a + b\nloss y\n");
  REQUIRE(a->diags.size() == 1);
  CHECK(a->diags[0].message.find("expected ')' to match this '('") != std::string::npos);
  REQUIRE(a->diags[0].notes.size() == 1);
  CHECK(a->diags[0].notes[0].line == 1);
  CHECK(a->diags[0].notes[0].column == 5);
  // The statement on the next line is still parsed.
  REQUIRE(a->ast.stmts.size() == 1);
  CHECK(a->ast.stmts[0].kind == StmtKind::Loss);
}

TEST_CASE("parser: fn in one-line and block form", "[parser]") {
  auto a = parse_source(
      "fn f(a, b) = a * b + 1\n"
      "fn g(x) {\n"
      "  # a comment line\n"
      "  t = x * 2\n"
      "\n"
      "  u = t +\n"  // a trailing '+' does not continue the line outside brackets
      "      1\n"
      "  return u\n"
      "}\n"
      "fn h() = 3\n");
  // The block's second assignment is broken across lines outside brackets: one error.
  REQUIRE(a->diags.size() == 1);
  CHECK(a->diags[0].line == 6);
  REQUIRE(a->ast.stmts.size() == 2);
  CHECK(a->ast.stmts[0].name == "f");
  CHECK(a->ast.stmts[1].name == "h");

  auto b = parse_source(
      "fn f(a, b) = a * b + 1\n"
      "fn g(x) {\n"
      "  # a comment line\n"
      "  t = x * 2\n"
      "\n"
      "  u = (t +\n"
      "      1)\n"
      "  return u\n"
      "}\n"
      "fn h() = 3\n");
  INFO(render_all(b->diags));
  REQUIRE(b->diags.empty());
  REQUIRE(b->ast.stmts.size() == 3);
  const Stmt& f = b->ast.stmts[0];
  CHECK(f.kind == StmtKind::Fn);
  REQUIRE(f.params.size() == 2);
  CHECK(f.params[1].name == "b");
  CHECK(f.locals.empty());
  CHECK(sexpr(*f.value) == "(+ (* a b) 1)");
  const Stmt& g = b->ast.stmts[1];
  CHECK(g.kind == StmtKind::Fn);
  REQUIRE(g.locals.size() == 2);
  CHECK(g.locals[0].name == "t");
  CHECK(sexpr(*g.locals[0].value) == "(* x 2)");
  CHECK(sexpr(*g.locals[1].value) == "(+ t 1)");
  CHECK(sexpr(*g.value) == "u");
  CHECK(b->ast.stmts[2].params.empty());
}

TEST_CASE("parser: malformed fn blocks", "[parser]") {
  auto no_return = parse_source("fn g(x) {\n  t = x\n}\nloss 1\n");
  REQUIRE(no_return->diags.size() == 1);
  CHECK(no_return->diags[0].message == "fn 'g' has no 'return'");
  REQUIRE(no_return->ast.stmts.size() == 1);
  CHECK(no_return->ast.stmts[0].kind == StmtKind::Loss);

  auto stmt_inside = parse_source("fn g(x) {\n  param w : [3]\n  return x\n}\n");
  REQUIRE(stmt_inside->diags.size() == 1);
  CHECK(stmt_inside->diags[0].message.find("not allowed inside a fn block") != std::string::npos);
  CHECK(stmt_inside->diags[0].line == 2);

  auto unterminated = parse_source("fn g(x) {\n  return x\n");
  REQUIRE(unterminated->diags.size() == 1);
  CHECK(unterminated->diags[0].message.find("'}'") != std::string::npos);

  auto keyword_param = parse_source("fn g(loss) = 1\n");
  REQUIRE(keyword_param->diags.size() == 1);
  CHECK(keyword_param->diags[0].message.find("'loss' is a keyword") != std::string::npos);

  auto ret = parse_source("return 1\n");
  REQUIRE(ret->diags.size() == 1);
  CHECK(ret->diags[0].message == "'return' outside of a fn block");
}

}  // namespace
}  // namespace gradc
