// The recursive-descent parser: tokens -> AST (SPEC 2.2-2.3).
//
// Each statement is parsed on its own; a syntax error reports one diagnostic
// and skips to the end of that statement's line, so independent errors in
// later statements are still found. Nesting is bounded (kMaxNesting levels of
// brackets, calls and unary minus; kMaxDepth levels of operators in total) so
// pathological input yields a diagnostic instead of a stack overflow.
#pragma once

#include "compiler/frontend/ast.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

inline constexpr int kMaxNesting = 256;
inline constexpr int kMaxDepth = 10000;

// Parses a whole file into `ast`.
void parse(const SourceManager& sm, uint32_t file, Ast& ast, DiagEngine& diags);

}  // namespace gradc
