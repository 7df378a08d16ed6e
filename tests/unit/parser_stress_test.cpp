// Pathological inputs: the front end must never crash, hang or overflow its
// stack. Each input either compiles or yields a few diagnostics with a
// location; nesting limits are reported once, not once per level.
#include <catch2/catch.hpp>


#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::compile;
using test::has_error;

std::string repeat(const std::string& s, size_t n) {
  std::string r;
  r.reserve(s.size() * n);
  for (size_t i = 0; i < n; ++i) r += s;
  return r;
}

// The model around a pathological expression: x is an input, y the expression.
std::string wrap(const std::string& expr) { return "input x : [3]\ny = " + expr + "\nloss sum(x)\n"; }

// A compile that survived: it succeeded, or it failed with a bounded number
// of located diagnostics. Also prints every stage that is available.
void check_survives(const Model& m) {
  INFO(render_all(m.diagnostics()).substr(0, 2000));
  if (!m.ok()) {
    REQUIRE_FALSE(m.diagnostics().empty());
    CHECK(m.diagnostics().size() <= static_cast<size_t>(DiagEngine::kMaxErrors) + 1);
    for (const Diagnostic& d : m.diagnostics()) {
      // Only the final "too many errors" note has no location.
      if (d.message.find("too many errors") == std::string::npos) CHECK(d.line >= 1);
      CHECK(d.message.find("internal compiler error") == std::string::npos);
    }
  }
  CHECK_NOTHROW(m.dump(Stage::Ast));
  CHECK_NOTHROW(m.dump(Stage::Ast, DumpFormat::Dot));
  if (m.ok()) {
    CHECK_FALSE(m.dump(Stage::Graph).empty());
    CHECK_NOTHROW(m.info());
  }
}

TEST_CASE("stress: 200,000 nested parentheses", "[parser][stress]") {
  Model m = compile(wrap(repeat("(", 200000) + "x" + repeat(")", 200000)));
  check_survives(m);
  REQUIRE_FALSE(m.ok());
  CHECK(m.diagnostics().size() == 1);
  CHECK(has_error(m.diagnostics(), "too deeply nested"));
  CHECK(m.diagnostics()[0].line == 2);
}

TEST_CASE("stress: moderate nesting within the limits compiles", "[parser][stress]") {
  Model m = compile(wrap(repeat("(", 100) + "x" + repeat(")", 100) + " + " + repeat("-", 100) + "x"));
  check_survives(m);
  CHECK(m.ok());
}

TEST_CASE("stress: 200,000 unary minus", "[parser][stress]") {
  Model m = compile(wrap(repeat("-", 200000) + "x"));
  check_survives(m);
  if (!m.ok()) CHECK(m.diagnostics().size() == 1);
  // The same with spaces between the signs.
  check_survives(compile(wrap(repeat("- ", 200000) + "x")));
}

TEST_CASE("stress: a 100,000-term sum", "[parser][stress]") {
  std::string expr = "x";
  for (int i = 1; i < 100000; ++i) expr += " + x";
  Model m = compile(wrap(expr));
  check_survives(m);
  if (!m.ok()) {
    CHECK(m.diagnostics().size() == 1);
    CHECK(m.diagnostics()[0].line == 2);
  }
}

TEST_CASE("stress: 100,000 nested brackets", "[parser][stress]") {
  Model m = compile(wrap("sum(" + repeat("[", 100000) + "x" + repeat("]", 100000) + ")"));
  check_survives(m);
  REQUIRE_FALSE(m.ok());
  CHECK(m.diagnostics().size() == 1);
  // Unbalanced: only openers, across many lines.
  check_survives(compile(wrap(repeat("[\n", 100000) + "x")));
}

TEST_CASE("stress: a 1 MB line of identifiers", "[parser][stress]") {
  std::string line;
  for (int i = 0; line.size() < (1u << 20); ++i) line += "abc" + std::to_string(i % 1000) + " ";
  Model m = compile("input x : [3]\n" + line + "\nloss sum(x)\n");
  check_survives(m);
  REQUIRE_FALSE(m.ok());
  CHECK(m.diagnostics().size() == 1);  // the line is one bad statement
  CHECK(m.diagnostics()[0].line == 2);
  // The same identifiers as a 1 MB sum expression.
  std::string sum = "x";
  while (sum.size() < (1u << 20)) sum += " + x";
  check_survives(compile(wrap(sum)));
}

TEST_CASE("stress: a 1 MB identifier is an ordinary name", "[parser][stress]") {
  std::string name(1u << 20, 'w');
  Model m = compile("input " + name + " : [3]\nloss sum(" + name + ")\n");
  check_survives(m);
  CHECK(m.ok());
}

TEST_CASE("stress: a long misspelled name is reported, not searched for ever", "[parser][stress]") {
  // The "did you mean" search must not be quadratic in the name's length: a
  // 1 MB misspelled name must finish (ctest's TIMEOUT catches a hang; no
  // timing is asserted here, machines are noisy).
  std::string name(1u << 20, 'w');
  Model bad = compile("input " + name + " : [3]\nloss sum(" + name + "v)\n");
  check_survives(bad);
  CHECK(has_error(bad.diagnostics(), "unknown name"));
}

TEST_CASE("stress: deep calls, '.T' chains and '^' chains", "[parser][stress]") {
  check_survives(compile(wrap(repeat("exp(", 100000) + "x" + repeat(")", 100000))));
  check_survives(compile(wrap("x" + repeat(".T", 100000))));
  check_survives(compile(wrap(repeat("x^", 100000) + "x")));
  check_survives(compile(wrap(repeat("x @ ", 100000) + "x")));
  check_survives(compile(wrap(repeat("f(", 100000))));
  check_survives(compile(wrap(repeat("sum(x, axis=", 50000) + "0" + repeat(")", 50000))));
}

TEST_CASE("stress: junk bytes and unbalanced brackets", "[parser][stress]") {
  std::string junk;
  for (int i = 0; i < 200000; ++i) junk += static_cast<char>(i * 131 % 256);
  check_survives(compile(junk));
  check_survives(compile(repeat(")", 100000)));
  check_survives(compile(repeat("}", 100000)));
  check_survives(compile(repeat("fn f(x) {\n", 10000)));
  check_survives(compile(repeat("\n", 1000000)));
  check_survives(compile(std::string(100000, '\0')));
}

}  // namespace
}  // namespace gradc
