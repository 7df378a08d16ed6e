// Tokens of the gradc language (SPEC 2.1).
#pragma once

#include <cstdint>
#include <string_view>

#include "compiler/support/source.h"

namespace gradc {

#define GRADC_KEYWORDS(X) \
  X(KwModel, "model")     \
  X(KwDim, "dim")         \
  X(KwInput, "input")     \
  X(KwParam, "param")     \
  X(KwFn, "fn")           \
  X(KwReturn, "return")   \
  X(KwOutput, "output")   \
  X(KwMetric, "metric")   \
  X(KwLoss, "loss")       \
  X(KwBuffer, "buffer")   \
  X(KwOptimizer, "optimizer") \
  X(KwTrue, "true")       \
  X(KwFalse, "false")

enum class Tok : uint8_t {
  Eof,
  Newline,
  Ident,
  Int,    // 12
  Float,  // 0.5 .5 1e-3
#define X(name, text) name,
  GRADC_KEYWORDS(X)
#undef X
  LParen, RParen, LBracket, RBracket, LBrace, RBrace,
  Comma, Colon, Tilde, Dot, Assign,
  Plus, Minus, Star, Slash, At, Caret,
  Lt, Le, Gt, Ge, EqEq, NotEq,
  Error,  // a lexical error, already reported
};

// How a token kind reads in a message: "identifier", "')'", "'model'".
std::string_view tok_name(Tok t);

struct Token {
  Tok kind = Tok::Eof;
  SourceLoc loc;
  std::string_view text;  // points into the SourceManager's copy of the file
};

}  // namespace gradc
