// Unit tests of the lexer (SPEC 2.1): token kinds, numbers, '.T', comments,
// newline handling inside brackets, and lexical errors with their columns.
#include <catch2/catch.hpp>

#include <memory>
#include <string>
#include <vector>

#include "compiler/frontend/lexer.h"

namespace gradc {
namespace {

struct Lexed {
  SourceManager sm;
  std::vector<Token> toks;
  std::vector<Diagnostic> diags;
};

std::unique_ptr<Lexed> run_lexer(const std::string& src) {
  auto l = std::make_unique<Lexed>();
  uint32_t file = l->sm.add("lex.grad", src);
  DiagEngine diags(l->sm);
  l->toks = lex(l->sm, file, diags);
  l->diags = diags.take();
  return l;
}

// The token kinds of `src`, without the final Eof and the Newline(s) before it.
std::vector<Tok> kinds(const std::string& src) {
  auto l = run_lexer(src);
  std::vector<Tok> out;
  for (const Token& t : l->toks) out.push_back(t.kind);
  REQUIRE(out.size() >= 2);
  CHECK(out[out.size() - 2] == Tok::Newline);
  CHECK(out.back() == Tok::Eof);
  out.pop_back();
  while (!out.empty() && out.back() == Tok::Newline) out.pop_back();
  return out;
}

// The token texts of `src`, without the final Newline and Eof.
std::vector<std::string> texts(const std::string& src) {
  auto l = run_lexer(src);
  std::vector<std::string> out;
  for (size_t i = 0; i + 2 < l->toks.size(); ++i) out.emplace_back(l->toks[i].text);
  return out;
}

TEST_CASE("lexer: every operator and punctuation token", "[lexer]") {
  CHECK(kinds("( ) [ ] { } , : ~ . = + - * / @ ^ < <= > >= == !=") ==
        std::vector<Tok>{Tok::LParen, Tok::RParen, Tok::LBracket, Tok::RBracket, Tok::LBrace, Tok::RBrace,
                         Tok::Comma, Tok::Colon, Tok::Tilde, Tok::Dot, Tok::Assign, Tok::Plus, Tok::Minus,
                         Tok::Star, Tok::Slash, Tok::At, Tok::Caret, Tok::Lt, Tok::Le, Tok::Gt, Tok::Ge,
                         Tok::EqEq, Tok::NotEq});
  // Two-character operators are matched greedily even without spaces.
  CHECK(kinds("a<=b>=c==d!=e<f>g=h") ==
        std::vector<Tok>{Tok::Ident, Tok::Le, Tok::Ident, Tok::Ge, Tok::Ident, Tok::EqEq, Tok::Ident, Tok::NotEq,
                         Tok::Ident, Tok::Lt, Tok::Ident, Tok::Gt, Tok::Ident, Tok::Assign, Tok::Ident});
  CHECK(texts("<= >= == != ===") == std::vector<std::string>{"<=", ">=", "==", "!=", "==", "="});
}

TEST_CASE("lexer: every keyword, and identifiers that only look like keywords", "[lexer]") {
  CHECK(kinds("model dim input param fn return output metric loss optimizer true false") ==
        std::vector<Tok>{Tok::KwModel, Tok::KwDim, Tok::KwInput, Tok::KwParam, Tok::KwFn, Tok::KwReturn,
                         Tok::KwOutput, Tok::KwMetric, Tok::KwLoss, Tok::KwOptimizer, Tok::KwTrue, Tok::KwFalse});
  CHECK(kinds("Model models _dim dim2 inputs fn_ True lossy") == std::vector<Tok>(8, Tok::Ident));
  CHECK(texts("_a1 B x_2y") == std::vector<std::string>{"_a1", "B", "x_2y"});
}

TEST_CASE("lexer: numbers of every form in SPEC 2.1", "[lexer]") {
  CHECK(kinds("12 0.5 .5 1e-3 2.5E+4 7e2 3. 0") ==
        std::vector<Tok>{Tok::Int, Tok::Float, Tok::Float, Tok::Float, Tok::Float, Tok::Float, Tok::Float, Tok::Int});
  CHECK(texts("12 0.5 .5 1e-3 2.5E+4") == std::vector<std::string>{"12", "0.5", ".5", "1e-3", "2.5E+4"});
  // A minus sign is an operator, never part of the literal.
  CHECK(kinds("-3") == std::vector<Tok>{Tok::Minus, Tok::Int});
  CHECK(kinds("x-1e-3") == std::vector<Tok>{Tok::Ident, Tok::Minus, Tok::Float});
  auto l = run_lexer("1e-3 .5");
  CHECK(l->diags.empty());
}

TEST_CASE("lexer: '.T' after a name or a closing bracket vs a decimal point", "[lexer]") {
  CHECK(kinds("x.T") == std::vector<Tok>{Tok::Ident, Tok::Dot, Tok::Ident});
  CHECK(texts("x.T") == std::vector<std::string>{"x", ".", "T"});
  CHECK(kinds("1.5") == std::vector<Tok>{Tok::Float});
  CHECK(kinds("(a).T.T") == std::vector<Tok>{Tok::LParen, Tok::Ident, Tok::RParen, Tok::Dot, Tok::Ident, Tok::Dot,
                                             Tok::Ident});
  // "2.T" is the integer 2 transposed (rejected later by sema), not a float "2." followed by T.
  CHECK(kinds("2.T") == std::vector<Tok>{Tok::Int, Tok::Dot, Tok::Ident});
  CHECK(kinds("x.5") == std::vector<Tok>{Tok::Ident, Tok::Float});
}

TEST_CASE("lexer: comments run to the end of the line", "[lexer]") {
  CHECK(kinds("x # a comment with ( [ { and 1.2.3 !!\ny") == std::vector<Tok>{Tok::Ident, Tok::Newline, Tok::Ident});
  CHECK(kinds("# only a comment") == std::vector<Tok>{});
  CHECK(kinds("a#b\n") == std::vector<Tok>{Tok::Ident});
  auto l = run_lexer("x # caf\xc3\xa9 \x01 $\n");
  CHECK(l->diags.empty());  // anything goes inside a comment
}

TEST_CASE("lexer: newlines end statements but collapse and are dropped inside ( ) and [ ]", "[lexer]") {
  CHECK(kinds("a\n\n\nb") == std::vector<Tok>{Tok::Ident, Tok::Newline, Tok::Ident});
  CHECK(kinds("\n\n a") == std::vector<Tok>{Tok::Ident});  // no leading newline token
  CHECK(kinds("f(a,\n  b)\nc") == std::vector<Tok>{Tok::Ident, Tok::LParen, Tok::Ident, Tok::Comma, Tok::Ident,
                                                    Tok::RParen, Tok::Newline, Tok::Ident});
  CHECK(kinds("[1,\n2]") == std::vector<Tok>{Tok::LBracket, Tok::Int, Tok::Comma, Tok::Int, Tok::RBracket});
  CHECK(kinds("((a\n)\n)") == std::vector<Tok>{Tok::LParen, Tok::LParen, Tok::Ident, Tok::RParen, Tok::RParen});
  // Braces do not suppress newlines: fn blocks are line-oriented.
  CHECK(kinds("{\na\n}") == std::vector<Tok>{Tok::LBrace, Tok::Newline, Tok::Ident, Tok::Newline, Tok::RBrace});
  // Windows line endings: '\r' is whitespace.
  CHECK(kinds("a\r\nb") == std::vector<Tok>{Tok::Ident, Tok::Newline, Tok::Ident});
}

TEST_CASE("lexer: an unclosed bracket does not swallow the next statement", "[lexer]") {
  CHECK(kinds("y = (a\nloss y") ==
        std::vector<Tok>{Tok::Ident, Tok::Assign, Tok::LParen, Tok::Ident, Tok::Newline, Tok::KwLoss, Tok::Ident});
}

TEST_CASE("lexer: token locations are byte spans", "[lexer]") {
  auto l = run_lexer("ab <= 1.5\n  cd");
  REQUIRE(l->toks.size() >= 5);
  CHECK(l->toks[1].loc.begin == 3);
  CHECK(l->toks[1].loc.end == 5);
  CHECK(l->toks[2].loc.begin == 6);
  CHECK(l->toks[2].loc.end == 9);
  LineCol lc = l->sm.line_col(l->toks[4].loc.file, l->toks[4].loc.begin);
  CHECK(lc.line == 2);
  CHECK(lc.column == 3);
}

TEST_CASE("lexer: a bad character is one diagnostic with its column", "[lexer]") {
  auto l = run_lexer("a = b $ c");
  REQUIRE(l->diags.size() == 1);
  CHECK(l->diags[0].line == 1);
  CHECK(l->diags[0].column == 7);
  CHECK(l->diags[0].message == "unexpected character '$'");
  CHECK(l->diags[0].file == "lex.grad");
}

TEST_CASE("lexer: a run of junk is reported once, separate runs separately", "[lexer]") {
  auto one = run_lexer("a $$?`! b");
  REQUIRE(one->diags.size() == 1);
  CHECK(one->diags[0].column == 3);
  auto two = run_lexer("a $ b ` c\n  ?? d");
  REQUIRE(two->diags.size() == 3);
  CHECK(two->diags[0].column == 3);
  CHECK(two->diags[1].column == 7);
  CHECK(two->diags[1].message == "unexpected character '`'");
  CHECK(two->diags[2].line == 2);
  CHECK(two->diags[2].column == 3);
  // Each run leaves one Error token for the parser.
  int errors = 0;
  for (const Token& t : two->toks) errors += t.kind == Tok::Error;
  CHECK(errors == 3);
}

TEST_CASE("lexer: control characters are named by their code", "[lexer]") {
  auto l = run_lexer(std::string("a \x01\x02 b \x7f"));
  REQUIRE(l->diags.size() == 2);
  CHECK(l->diags[0].column == 3);
  CHECK(l->diags[0].message.find("control character 0x01") != std::string::npos);
  CHECK(l->diags[1].column == 8);
  CHECK(l->diags[1].message.find("0x7f") != std::string::npos);
}

TEST_CASE("lexer: non-ASCII and invalid UTF-8", "[lexer]") {
  SECTION("a valid UTF-8 character is shown whole") {
    auto l = run_lexer("x = a \xe2\x88\x91 b");  // U+2211
    REQUIRE(l->diags.size() == 1);
    CHECK(l->diags[0].column == 7);
    CHECK(l->diags[0].message == "unexpected character '\xe2\x88\x91' in model source");
  }
  SECTION("invalid bytes name the first byte") {
    auto l = run_lexer("x = \xff\xfe\xfd y");
    REQUIRE(l->diags.size() == 1);
    CHECK(l->diags[0].column == 5);
    CHECK(l->diags[0].message.find("invalid UTF-8 byte 0xff") != std::string::npos);
  }
  SECTION("a run mixing UTF-8, invalid bytes and ASCII junk is one diagnostic") {
    auto l = run_lexer("x \xc3\xa9\x80$\xe2\x88 y");
    CHECK(l->diags.size() == 1);
  }
  SECTION("a truncated sequence at the end of the file") {
    auto l = run_lexer("x \xe2\x88");
    REQUIRE(l->diags.size() == 1);
    CHECK(l->diags[0].column == 3);
  }
  SECTION("columns after a multi-byte character count bytes") {
    auto l = run_lexer("\xc3\xa9 $");
    REQUIRE(l->diags.size() == 2);
    CHECK(l->diags[1].column == 4);
  }
  SECTION("a NUL byte inside the text") {
    auto l = run_lexer(std::string("a \0 b", 5));
    REQUIRE(l->diags.size() == 1);
    CHECK(l->diags[0].column == 3);
    CHECK(l->diags[0].message.find("0x00") != std::string::npos);
  }
}

TEST_CASE("lexer: malformed numbers", "[lexer]") {
  SECTION("an exponent without digits") {
    for (std::string src : {"1e", "1e+", "2.5E-", "1ex"}) {
      INFO(src);
      auto l = run_lexer("y = " + src);
      REQUIRE(l->diags.size() == 1);
      CHECK(l->diags[0].column == 5);
      CHECK(l->diags[0].message.find("malformed number") != std::string::npos);
    }
    auto l = run_lexer("1e+");
    REQUIRE(l->diags.size() == 1);
    CHECK(l->diags[0].message == "malformed number '1e+': exponent has no digits");
  }
  SECTION("letters glued to a number") {
    auto l = run_lexer("a = 12abc + 1.5x");
    REQUIRE(l->diags.size() == 2);
    CHECK(l->diags[0].message == "malformed number '12abc'");
    CHECK(l->diags[0].column == 5);
    CHECK(l->diags[1].message == "malformed number '1.5x'");
    CHECK(l->diags[1].column == 13);
  }
  SECTION("a malformed number becomes one Error token and lexing continues") {
    auto l = run_lexer("3q + b");
    REQUIRE(l->toks.size() == 5);
    CHECK(l->toks[0].kind == Tok::Error);
    CHECK(l->toks[1].kind == Tok::Plus);
    CHECK(l->toks[2].kind == Tok::Ident);
  }
  SECTION("a second decimal point starts a new number") {
    CHECK(kinds("1.2.3") == std::vector<Tok>{Tok::Float, Tok::Float});
  }
}

TEST_CASE("lexer: empty input and whitespace only", "[lexer]") {
  CHECK(kinds("").empty());
  CHECK(kinds("  \t \n \n").empty());
}

}  // namespace
}  // namespace gradc
