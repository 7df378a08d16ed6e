// The lexer (SPEC 2.1): comments, identifiers and keywords, numbers, operators.
#include "compiler/frontend/lexer.h"
#include "compiler/support/messages.h"

#include <fmt/format.h>

#include <array>

namespace gradc {

std::string_view tok_name(Tok t) {
  switch (t) {
    case Tok::Eof: return "end of file";
    case Tok::Newline: return "end of line";
    case Tok::Ident: return "identifier";
    case Tok::Int: return "integer";
    case Tok::Float: return "number";
#define X(name, text) \
  case Tok::name: return "'" text "'";
      GRADC_KEYWORDS(X)
#undef X
    case Tok::LParen: return "'('";
    case Tok::RParen: return "')'";
    case Tok::LBracket: return "'['";
    case Tok::RBracket: return "']'";
    case Tok::LBrace: return "'{'";
    case Tok::RBrace: return "'}'";
    case Tok::Comma: return "','";
    case Tok::Colon: return "':'";
    case Tok::Tilde: return "'~'";
    case Tok::Dot: return "'.'";
    case Tok::Assign: return "'='";
    case Tok::Plus: return "'+'";
    case Tok::Minus: return "'-'";
    case Tok::Star: return "'*'";
    case Tok::Slash: return "'/'";
    case Tok::At: return "'@'";
    case Tok::Caret: return "'^'";
    case Tok::Lt: return "'<'";
    case Tok::Le: return "'<='";
    case Tok::Gt: return "'>'";
    case Tok::Ge: return "'>='";
    case Tok::EqEq: return "'=='";
    case Tok::NotEq: return "'!='";
    case Tok::Error: return "invalid token";
  }
  return "token";
}

namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_ident(char c) { return is_ident_start(c) || is_digit(c); }

struct Keyword {
  std::string_view text;
  Tok kind;
};
constexpr std::array kKeywords = {
#define X(name, text) Keyword{text, Tok::name},
    GRADC_KEYWORDS(X)
#undef X
};

class Lexer {
 public:
  Lexer(const SourceManager& sm, uint32_t file, DiagEngine& diags)
      : src_(sm.text(file)), file_(file), diags_(diags) {}

  std::vector<Token> run() {
    while (pos_ < src_.size()) next();
    push(Tok::Newline, pos_, pos_);
    push(Tok::Eof, pos_, pos_);
    return std::move(toks_);
  }

 private:
  void push(Tok k, size_t b, size_t e) {
    toks_.push_back({k, {file_, static_cast<uint32_t>(b), static_cast<uint32_t>(e)},
                     std::string_view(src_).substr(b, e - b)});
  }

  void next() {
    size_t b = pos_;
    char c = src_[pos_];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
      ++pos_;
    } else if (c == '#') {
      while (pos_ < src_.size() && src_[pos_] != '\n') ++pos_;
    } else if (c == '\n') {
      ++pos_;
      // An unclosed bracket would swallow the rest of the file; a line that
      // starts with a statement keyword cannot continue an expression.
      if (depth_ > 0 && next_line_starts_statement()) depth_ = 0;
      if (depth_ == 0 && !toks_.empty() && toks_.back().kind != Tok::Newline) push(Tok::Newline, b, pos_);
    } else if (is_ident_start(c)) {
      while (pos_ < src_.size() && is_ident(src_[pos_])) ++pos_;
      std::string_view text = std::string_view(src_).substr(b, pos_ - b);
      Tok kind = Tok::Ident;
      for (const Keyword& k : kKeywords)
        if (k.text == text) kind = k.kind;
      push(kind, b, pos_);
    } else if (is_digit(c) || (c == '.' && pos_ + 1 < src_.size() && is_digit(src_[pos_ + 1]))) {
      number();
    } else {
      punct(c);
    }
  }

  bool next_line_starts_statement() const {
    size_t p = pos_;
    while (p < src_.size() && (src_[p] == ' ' || src_[p] == '\t')) ++p;
    size_t b = p;
    while (p < src_.size() && is_ident(src_[p])) ++p;
    std::string_view word = std::string_view(src_).substr(b, p - b);
    for (std::string_view k : {"model", "dim", "input", "param", "fn", "output", "metric", "loss", "buffer", "optimizer"})
      if (word == k) return true;
    return false;
  }

  // NUMBER := DIGITS ['.' DIGITS*] [EXP] | '.' DIGITS [EXP];  EXP := ('e'|'E') ['+'|'-'] DIGITS
  void number() {
    size_t b = pos_;
    bool is_float = false;
    while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    if (pos_ < src_.size() && src_[pos_] == '.' &&
        !(pos_ + 1 < src_.size() && src_[pos_ + 1] == 'T' &&
          !(pos_ + 2 < src_.size() && is_ident(src_[pos_ + 2])))) {
      is_float = true;
      ++pos_;
      while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
    }
    if (pos_ < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t p = pos_ + 1;
      if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
      if (p < src_.size() && is_digit(src_[p])) {
        is_float = true;
        pos_ = p;
        while (pos_ < src_.size() && is_digit(src_[pos_])) ++pos_;
      } else {
        pos_ = p;
        error(b, pos_, diag::err_number_no_exponent_digits(std::string_view(src_).substr(b, pos_ - b)));
        return;
      }
    }
    if (pos_ < src_.size() && is_ident_start(src_[pos_])) {
      while (pos_ < src_.size() && is_ident(src_[pos_])) ++pos_;
      error(b, pos_, diag::err_malformed_number(std::string_view(src_).substr(b, pos_ - b)));
      return;
    }
    push(is_float ? Tok::Float : Tok::Int, b, pos_);
  }

  void punct(char c) {
    size_t b = pos_;
    auto two = [&](char second) { return pos_ + 1 < src_.size() && src_[pos_ + 1] == second; };
    Tok k;
    size_t n = 1;
    switch (c) {
      case '(': k = Tok::LParen; ++depth_; break;
      case '[': k = Tok::LBracket; ++depth_; break;
      case ')': k = Tok::RParen; if (depth_ > 0) --depth_; break;
      case ']': k = Tok::RBracket; if (depth_ > 0) --depth_; break;
      case '{': k = Tok::LBrace; break;
      case '}': k = Tok::RBrace; break;
      case ',': k = Tok::Comma; break;
      case ':': k = Tok::Colon; break;
      case '~': k = Tok::Tilde; break;
      case '.': k = Tok::Dot; break;
      case '+': k = Tok::Plus; break;
      case '-': k = Tok::Minus; break;
      case '*': k = Tok::Star; break;
      case '/': k = Tok::Slash; break;
      case '@': k = Tok::At; break;
      case '^': k = Tok::Caret; break;
      case '<': k = two('=') ? (n = 2, Tok::Le) : Tok::Lt; break;
      case '>': k = two('=') ? (n = 2, Tok::Ge) : Tok::Gt; break;
      case '=': k = two('=') ? (n = 2, Tok::EqEq) : Tok::Assign; break;
      case '!':
        if (two('=')) { k = Tok::NotEq; n = 2; break; }
        [[fallthrough]];
      default:
        bad_char();
        return;
    }
    pos_ += n;
    push(k, b, pos_);
  }

  // Reports an unexpected byte (or UTF-8 character) and skips it; a run of
  // bad bytes yields one diagnostic.
  void bad_char() {
    size_t b = pos_;
    unsigned char c = static_cast<unsigned char>(src_[pos_]);
    std::string msg;
    size_t n = 1;
    if (c >= 0x80) {
      size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
      bool ok = len != 0 && pos_ + len <= src_.size();
      for (size_t k = 1; ok && k < len; ++k)
        ok = (static_cast<unsigned char>(src_[pos_ + k]) & 0xC0) == 0x80;
      if (ok) {
        n = len;
        msg = diag::err_unexpected_char_in_source(std::string_view(src_).substr(pos_, n));
      } else {
        msg = diag::err_invalid_utf8(c);
      }
    } else if (c < 0x20 || c == 0x7f) {
      msg = diag::err_control_char(c);
    } else {
      msg = diag::err_unexpected_char(static_cast<char>(c));
    }
    pos_ += n;
    if (last_bad_end_ != b) error(b, pos_, msg);  // one report per run of junk
    last_bad_end_ = pos_;
  }

  void error(size_t b, size_t e, std::string msg) {
    diags_.error({file_, static_cast<uint32_t>(b), static_cast<uint32_t>(e)}, std::move(msg));
    push(Tok::Error, b, e);
  }

  const std::string& src_;
  uint32_t file_;
  DiagEngine& diags_;
  size_t pos_ = 0;
  int depth_ = 0;
  size_t last_bad_end_ = SIZE_MAX;
  std::vector<Token> toks_;
};

}  // namespace

std::vector<Token> lex(const SourceManager& sm, uint32_t file, DiagEngine& diags) {
  return Lexer(sm, file, diags).run();
}

}  // namespace gradc
