// The lexer: bytes -> tokens (SPEC 2.1).
//
// Newlines end statements, except inside ( ) and [ ], where the lexer drops
// them so the parser never sees a continuation. Bad bytes (control
// characters, stray non-ASCII, invalid UTF-8) are reported once per run.
#pragma once

#include <vector>

#include "compiler/frontend/token.h"
#include "compiler/support/diagnostics.h"

namespace gradc {

// Tokenizes the whole file; always ends with Newline, Eof.
std::vector<Token> lex(const SourceManager& sm, uint32_t file, DiagEngine& diags);

}  // namespace gradc
