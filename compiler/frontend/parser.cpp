// The recursive-descent parser. The grammar rule of each function is in the
// comment above it; precedence follows SPEC 2.3, highest last here:
//   comparison < additive < multiplicative < unary minus < power < postfix .T
#include "compiler/frontend/parser.h"

#include "compiler/frontend/lexer.h"
#include "compiler/support/messages.h"

#include <fmt/format.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>

namespace gradc {
namespace {

// Thrown after a syntax error has been reported; the statement loop catches
// it and resynchronizes at the next line.
struct SyntaxError {};

class Parser {
 public:
  Parser(const SourceManager& sm, uint32_t file, Ast& ast, DiagEngine& diags)
      : toks_(lex(sm, file, diags)), ast_(ast), diags_(diags) {}

  // file := { statement NEWLINE }
  void run() {
    while (peek() != Tok::Eof) {
      if (accept(Tok::Newline)) continue;
      size_t start = pos_;
      pending_name_ = {};
      pending_loss_ = peek() == Tok::KwLoss;
      try {
        statement();
      } catch (const SyntaxError&) {
        if (pos_ == start) advance();
        // Later uses of a name whose statement failed to parse are not errors of their own.
        if (!pending_name_.empty()) ast_.broken_names.push_back(pending_name_);
        ast_.broken_loss = ast_.broken_loss || pending_loss_;
        if (toks_[pos_ - 1].kind == Tok::Newline) continue;  // recovery already stopped at a new line
      }
      skip_line();
    }
  }

 private:
  // ---- token helpers ----
  const Token& cur() const { return toks_[pos_]; }
  Tok peek(size_t ahead = 0) const {
    size_t i = std::min(pos_ + ahead, toks_.size() - 1);
    return toks_[i].kind;
  }
  const Token& advance() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  bool accept(Tok k) {
    if (peek() != k) return false;
    advance();
    return true;
  }
  const Token& expect(Tok k, std::string_view what) {
    if (peek() != k) fail(cur().loc, diag::err_expected(what, describe(cur())));
    return advance();
  }
  void skip_line() {
    while (peek() != Tok::Newline && peek() != Tok::Eof) advance();
  }
  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::Ident: return fmt::format("'{}'", t.text);
      case Tok::Int:
      case Tok::Float: return fmt::format("number '{}'", t.text);
      default: return std::string(tok_name(t.kind));
    }
  }
  // Reports (unless the token is an already-reported lexical error) and aborts the statement.
  [[noreturn]] void fail(SourceLoc loc, std::string msg) {
    if (cur().kind != Tok::Error) diags_.error(loc, std::move(msg));
    throw SyntaxError{};
  }

  // ---- statements ----

  // statement := model | dim | input | param | fn | output | metric | loss | optimizer | let
  void statement() {
    const Token& t = cur();
    Stmt s;
    s.loc = t.loc;
    switch (t.kind) {
      case Tok::KwModel: {  // model := 'model' NAME
        advance();
        s.kind = StmtKind::Model;
        name_into(s, "a model name after 'model'");
        break;
      }
      case Tok::KwDim: {  // dim := 'dim' NAME ['=' INT]
        advance();
        s.kind = StmtKind::Dim;
        name_into(s, "a dim name after 'dim'");
        if (cur().kind == Tok::Newline || cur().kind == Tok::Eof) {  // a dynamic dim
          s.dim_dynamic = true;
          break;
        }
        expect(Tok::Assign, "'=' and a size after the dim name, or the end of the line (a dynamic dim)");
        bool neg = accept(Tok::Minus);
        const Token& v = cur();
        if (v.kind == Tok::Float)
          fail(v.loc, diag::err_dim_size_not_integer(v.text));
        expect(Tok::Int, "an integer dim size");
        s.value_loc = v.loc;
        s.dim_value = int_literal(v) * (neg ? -1 : 1);
        if (neg) s.value_loc = SourceLoc::span(toks_[pos_ - 2].loc, v.loc);
        break;
      }
      case Tok::KwInput:  // input := 'input' NAME ':' type
      case Tok::KwParam:    // param := 'param' NAME ':' type ['~' expr]
      case Tok::KwBuffer: {  // buffer := 'buffer' NAME ':' type ['~' expr]
        bool has_init = t.kind != Tok::KwInput;
        s.kind = t.kind == Tok::KwParam ? StmtKind::Param : t.kind == Tok::KwBuffer ? StmtKind::Buffer : StmtKind::Input;
        advance();
        name_into(s, s.kind == StmtKind::Param    ? "a param name after 'param'"
                     : s.kind == StmtKind::Buffer ? "a buffer name after 'buffer'"
                                                  : "an input name after 'input'");
        expect(Tok::Colon, fmt::format("':' and a type after '{}'", s.name));
        s.type = type();
        if (has_init && accept(Tok::Tilde)) s.value = expr();
        break;
      }
      case Tok::KwFn: fn(s); break;
      case Tok::KwOutput: {  // output := 'output' NAME {',' NAME}
        advance();
        s.kind = StmtKind::Output;
        do {
          const Token& n = expect(Tok::Ident, "an output name");
          s.outputs.push_back({n.text, n.loc, nullptr});
        } while (accept(Tok::Comma));
        break;
      }
      case Tok::KwMetric: {  // metric := 'metric' NAME '=' expr
        advance();
        s.kind = StmtKind::Metric;
        name_into(s, "a metric name after 'metric'");
        expect(Tok::Assign, "'=' after the metric name");
        s.value = expr();
        break;
      }
      case Tok::KwLoss: {  // loss := 'loss' expr
        advance();
        s.kind = StmtKind::Loss;
        s.value = expr();
        break;
      }
      case Tok::KwOptimizer: {  // optimizer := 'optimizer' NAME '(' [kwargs] ')'
        advance();
        s.kind = StmtKind::Optimizer;
        const Token& n = expect(Tok::Ident, "an optimizer name after 'optimizer' (sgd, adam, adamw, rmsprop, adagrad)");
        s.name = n.text;
        s.name_loc = n.loc;
        if (peek() != Tok::LParen) {
          s.value = ast_.new_expr(ExprKind::Call, n.loc);
          s.value->name = n.text;
          s.value->op_loc = n.loc;
        } else {
          s.value = call(n);
        }
        break;
      }
      case Tok::Ident: {  // let := NAME '=' expr
        s.kind = StmtKind::Let;
        name_into(s, "a name");
        if (peek() != Tok::Assign)
          fail(cur().loc, diag::err_expected_assign_after_name(s.name, describe(cur())));
        advance();
        s.value = expr();
        break;
      }
      case Tok::KwReturn:
        fail(t.loc, diag::err_return_outside_fn());
      case Tok::Error:
        fail(t.loc, "");
      default:
        fail(t.loc, diag::err_expected_statement(describe(t)));
    }
    // The whole line must be consumed before the statement counts.
    if (peek() != Tok::Newline) fail(cur().loc, diag::err_expected_eol_after_statement(describe(cur())));
    ast_.stmts.push_back(std::move(s));
  }

  void name_into(Stmt& s, std::string_view what) {
    if (peek() >= Tok::KwModel && peek() <= Tok::KwFalse)
      fail(cur().loc, diag::err_keyword_as_name(cur().text));
    const Token& n = expect(Tok::Ident, what);
    s.name = n.text;
    s.name_loc = n.loc;
    pending_name_ = n.text;
  }

  // fn := 'fn' NAME '(' [NAME {',' NAME}] ')' ( '=' expr | '{' NL {NAME '=' expr NL} 'return' expr NL '}' )
  void fn(Stmt& s) {
    advance();
    s.kind = StmtKind::Fn;
    name_into(s, "a function name after 'fn'");
    expect(Tok::LParen, fmt::format("'(' after 'fn {}'", s.name));
    if (peek() != Tok::RParen) {
      do {
        if (peek() >= Tok::KwModel && peek() <= Tok::KwFalse)
          fail(cur().loc, diag::err_keyword_as_param(cur().text));
        const Token& p = expect(Tok::Ident, "a parameter name");
        s.params.push_back({p.text, p.loc, nullptr});
      } while (accept(Tok::Comma));
    }
    expect(Tok::RParen, "')' after the parameters");
    if (accept(Tok::Assign)) {
      s.value = expr();
      return;
    }
    if (!accept(Tok::LBrace))
      fail(cur().loc, diag::err_expected_fn_body(s.name, describe(cur())));
    // Block body: one assignment per line, then 'return'. After an error the
    // whole block is skipped, up to its '}' or the next top-level statement.
    try {
      block(s);
    } catch (const SyntaxError&) {
      // Braces do not nest in the language: the block ends at the next '}'.
      while (peek() != Tok::Eof && peek() != Tok::RBrace) advance();
      accept(Tok::RBrace);
      throw;
    }
  }

  void block(Stmt& s) {
    for (;;) {
      while (accept(Tok::Newline)) {
      }
      if (peek() == Tok::Eof)
        fail(cur().loc, diag::err_fn_unterminated(s.name));
      if (peek() == Tok::RBrace) fail(cur().loc, diag::err_fn_no_return(s.name));
      if (accept(Tok::KwReturn)) {
        s.value = expr();
        while (accept(Tok::Newline)) {
        }
        expect(Tok::RBrace, fmt::format("'}}' after the return of fn '{}'", s.name));
        return;
      }
      if (peek() >= Tok::KwModel && peek() <= Tok::KwOptimizer && peek() != Tok::KwReturn)
        fail(cur().loc, diag::err_not_allowed_in_fn(describe(cur())));
      const Token& n = expect(Tok::Ident, "'NAME = EXPR' or 'return' in fn block");
      expect(Tok::Assign, fmt::format("'=' after '{}'", n.text));
      Expr* v = expr();
      s.locals.push_back({n.text, n.loc, v});
      if (peek() != Tok::Newline) fail(cur().loc, diag::err_expected_eol(describe(cur())));
    }
  }

  // type := [IDENT] '[' [dimref {',' dimref}] ']'
  TypeRef type() {
    TypeRef ty;
    ty.loc = cur().loc;
    if (peek() == Tok::Ident) {
      const Token& d = advance();
      ty.dtype = d.text;
      ty.dtype_loc = d.loc;
      if (d.text != "f32" && d.text != "f64" && d.text != "i32")
        fail(d.loc, diag::err_unknown_dtype(d.text));
    }
    expect(Tok::LBracket, "'[' to begin the shape (for example [B, 784])");
    if (peek() != Tok::RBracket) {
      do {
        DimRef dr;
        dr.loc = cur().loc;
        if (peek() == Tok::Ident) {
          dr.name = advance().text;
        } else if (peek() == Tok::Int) {
          dr.value = int_literal(advance());
        } else if (peek() == Tok::Minus && peek(1) == Tok::Int) {
          advance();
          const Token& v = advance();
          dr.loc = SourceLoc::span(dr.loc, v.loc);
          dr.value = -int_literal(v);
        } else {
          fail(cur().loc, diag::err_expected_dim(describe(cur())));
        }
        ty.dims.push_back(dr);
      } while (accept(Tok::Comma));
    }
    const Token& close = expect(Tok::RBracket, "']' to end the shape");
    ty.loc = SourceLoc::span(ty.loc, close.loc);
    return ty;
  }

  int64_t int_literal(const Token& t) {
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (ec != std::errc() || p != t.text.data() + t.text.size() || v > (int64_t{1} << 62))
      fail(t.loc, diag::err_integer_too_large(t.text));
    return v;
  }

  // ---- expressions ----

  Expr* node(ExprKind kind, SourceLoc loc, std::initializer_list<Expr*> args = {}) {
    Expr* e = ast_.new_expr(kind, loc);
    for (Expr* a : args) {
      e->args.push_back(a);
      e->depth = std::max(e->depth, a->depth + 1);
    }
    if (e->depth > kMaxDepth)
      fail(loc, diag::err_too_deep_operators(kMaxDepth));
    return e;
  }

  // Guards recursion through brackets, calls and unary minus.
  struct Nest {
    Parser& p;
    Nest(Parser& parser, SourceLoc loc) : p(parser) {
      if (++p.nesting_ > kMaxNesting) {
        --p.nesting_;
        p.fail(loc, diag::err_too_deep_brackets(kMaxNesting));
      }
    }
    ~Nest() { --p.nesting_; }
  };

  Expr* expr() { return comparison(); }

  // comparison := additive [('<'|'<='|'>'|'>='|'=='|'!=') additive]
  Expr* comparison() {
    Expr* lhs = additive();
    if (is_comparison(peek())) {
      const Token& op = advance();
      Expr* rhs = additive();
      lhs = binary(op, lhs, rhs);
      if (is_comparison(peek()))
        fail(cur().loc, diag::err_chained_comparison(op.text,
                                    cur().text));
    }
    return lhs;
  }
  static bool is_comparison(Tok k) {
    return k == Tok::Lt || k == Tok::Le || k == Tok::Gt || k == Tok::Ge || k == Tok::EqEq || k == Tok::NotEq;
  }

  // additive := multiplicative {('+'|'-') multiplicative}
  Expr* additive() {
    Expr* lhs = multiplicative();
    while (peek() == Tok::Plus || peek() == Tok::Minus) {
      const Token& op = advance();
      lhs = binary(op, lhs, multiplicative());
    }
    return lhs;
  }

  // multiplicative := unary {('*'|'/'|'@') unary}
  Expr* multiplicative() {
    Expr* lhs = unary();
    while (peek() == Tok::Star || peek() == Tok::Slash || peek() == Tok::At) {
      const Token& op = advance();
      lhs = binary(op, lhs, unary());
    }
    return lhs;
  }

  Expr* binary(const Token& op, Expr* lhs, Expr* rhs) {
    Expr* e = node(ExprKind::Binary, SourceLoc::span(lhs->loc, rhs->loc), {lhs, rhs});
    e->op = op.kind;
    e->op_loc = op.loc;
    return e;
  }

  // unary := '-' unary | power
  Expr* unary() {
    if (peek() != Tok::Minus) return power();
    const Token& op = advance();
    Nest guard(*this, op.loc);
    Expr* x = unary();
    Expr* e = node(ExprKind::Unary, SourceLoc::span(op.loc, x->loc), {x});
    e->op = Tok::Minus;
    e->op_loc = op.loc;
    return e;
  }

  // power := postfix ['^' unary]      (right-associative: a^b^c = a^(b^c))
  Expr* power() {
    Expr* base = postfix();
    if (peek() != Tok::Caret) return base;
    const Token& op = advance();
    Nest guard(*this, op.loc);
    Expr* exp = unary();
    return binary(op, base, exp);
  }

  // postfix := primary {'.' 'T'}
  Expr* postfix() {
    Expr* e = primary();
    while (peek() == Tok::Dot) {
      const Token& dot = advance();
      if (peek() != Tok::Ident || cur().text != "T")
        fail(cur().loc, diag::err_expected_T(describe(cur())));
      const Token& t = advance();
      Expr* tr = node(ExprKind::Transpose, SourceLoc::span(e->loc, t.loc), {e});
      tr->op_loc = SourceLoc::span(dot.loc, t.loc);
      e = tr;
    }
    return e;
  }

  // primary := NUMBER | 'true' | 'false' | NAME | call | '(' expr ')' | '[' [expr {',' expr}] ']'
  Expr* primary() {
    const Token& t = cur();
    switch (t.kind) {
      case Tok::Int:
      case Tok::Float: {
        advance();
        Expr* e = node(ExprKind::Number, t.loc);
        e->is_int = t.kind == Tok::Int;
        std::string text(t.text);
        errno = 0;
        e->number = std::strtod(text.c_str(), nullptr);
        if (errno == ERANGE && std::abs(e->number) > 1)
          fail(t.loc, diag::err_number_out_of_range(t.text));
        if (e->is_int) e->int_value = int_literal(t);
        return e;
      }
      case Tok::KwTrue:
      case Tok::KwFalse: {
        advance();
        Expr* e = node(ExprKind::Bool, t.loc);
        e->bool_value = t.kind == Tok::KwTrue;
        e->number = e->bool_value ? 1 : 0;
        return e;
      }
      case Tok::Ident: {
        advance();
        if (peek() == Tok::LParen) return call(t);
        Expr* e = node(ExprKind::Name, t.loc);
        e->name = t.text;
        return e;
      }
      case Tok::LParen: {
        Nest guard(*this, t.loc);
        advance();
        Expr* e = expr();
        expect_close(Tok::RParen, t);
        return e;
      }
      case Tok::LBracket: {
        Nest guard(*this, t.loc);
        advance();
        Expr* list = ast_.new_expr(ExprKind::List, t.loc);
        if (peek() != Tok::RBracket) {
          do {
            Expr* el = expr();
            list->args.push_back(el);
            list->depth = std::max(list->depth, el->depth + 1);
          } while (accept(Tok::Comma));
        }
        const Token& close = expect_close(Tok::RBracket, t);
        list->loc = SourceLoc::span(t.loc, close.loc);
        return list;
      }
      default:
        // Spellings from other frameworks, answered with gradc's: PyTorch's
        // `dim=` keyword is `axis=`, Python's `**` is `^`.
        if (t.kind == Tok::KwDim && peek(1) == Tok::Assign) fail(t.loc, diag::err_dim_keyword_is_axis());
        if (t.kind == Tok::Star && pos_ > 0 && toks_[pos_ - 1].kind == Tok::Star &&
            toks_[pos_ - 1].loc.end == t.loc.begin)
          fail(SourceLoc::span(toks_[pos_ - 1].loc, t.loc), diag::err_power_is_caret());
        if (t.kind >= Tok::KwModel && t.kind <= Tok::KwOptimizer)
          fail(t.loc, diag::err_expected_expr_keyword(tok_name(t.kind)));
        fail(t.loc, diag::err_expected_expr(describe(t)));
    }
  }

  const Token& expect_close(Tok k, const Token& open) {
    if (peek() != k) {
      if (peek() == Tok::Error) throw SyntaxError{};  // already reported by the lexer
      diags_.error(cur().loc, diag::err_expected_close(tok_name(k), tok_name(open.kind),
                                          describe(cur())));
      diags_.note(open.loc, diag::note_opened_here(tok_name(open.kind)));
      throw SyntaxError{};
    }
    return advance();
  }

  // call := NAME '(' [arg {',' arg}] ')';  arg := expr | NAME '=' expr  (keywords after positionals)
  Expr* call(const Token& callee) {
    Nest guard(*this, callee.loc);
    const Token& open = expect(Tok::LParen, "'('");
    Expr* e = ast_.new_expr(ExprKind::Call, callee.loc);
    e->name = callee.text;
    e->op_loc = callee.loc;
    if (peek() != Tok::RParen) {
      do {
        if (peek() == Tok::Ident && peek(1) == Tok::Assign) {
          const Token& k = advance();
          advance();
          for (const KwArg& prev : e->kwargs)
            if (prev.name == k.text) {
              diags_.error(k.loc, diag::err_kwarg_twice(k.text));
              diags_.note(prev.name_loc, diag::note_first_given_here());
              throw SyntaxError{};
            }
          Expr* v = expr();
          e->kwargs.push_back({k.text, k.loc, v});
          e->depth = std::max(e->depth, v->depth + 1);
        } else {
          if (!e->kwargs.empty())
            fail(cur().loc, diag::err_positional_after_keyword());
          Expr* v = expr();
          e->args.push_back(v);
          e->depth = std::max(e->depth, v->depth + 1);
        }
      } while (accept(Tok::Comma));
    }
    const Token& close = expect_close(Tok::RParen, open);
    e->loc = SourceLoc::span(callee.loc, close.loc);
    if (e->depth > kMaxDepth)
      fail(e->loc, diag::err_too_deep_operators(kMaxDepth));
    return e;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::string_view pending_name_;  // the name the current statement declares, once parsed
  bool pending_loss_ = false;      // the current statement is a `loss`
  int nesting_ = 0;
  Ast& ast_;
  DiagEngine& diags_;
};

}  // namespace

void parse(const SourceManager& sm, uint32_t file, Ast& ast, DiagEngine& diags) {
  ast.file = file;
  Parser(sm, file, ast, diags).run();
}

}  // namespace gradc
