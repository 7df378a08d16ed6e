// Diagnostics as plain values: what the compiler reports about a user's model.
//
// Every error carries a file, a 1-based line and column, the source line and
// the span to underline, so a host can render it clang-style (render()) or
// present it its own way. No LLVM or compiler-internal types appear here.
#pragma once

#include <string>
#include <vector>

#include "gradc/tensor.h"

namespace gradc {

enum class Severity { Error, Warning, Note, Fatal };  // Fatal: compilation stopped (error limit)

struct Diagnostic {
  Severity severity = Severity::Error;
  std::string file;         // empty when the diagnostic has no location
  int line = 0;             // 1-based; 0 when there is no location
  int column = 0;           // 1-based byte column
  int length = 1;           // bytes to underline, starting at column (same line)
  std::string message;      // lowercase, no trailing period
  std::string source_line;  // the text of `line`, without its newline
  std::vector<Diagnostic> notes;

  // "file:line:col: error: message", the source line, a caret line, then notes.
  std::string render() const;
};

// Renders every diagnostic, in order.
std::string render_all(const std::vector<Diagnostic>& diags);

// A run-time error that a line of the model explains (a class id out of
// range, a non-finite value under check_numerics): a DataError whose
// diagnostic points at that line, rendered as compile-time errors are.
// what() is the rendered diagnostic.
struct ModelError : DataError {
  explicit ModelError(Diagnostic d) : DataError(d.render()), diagnostic(std::move(d)) {}
  Diagnostic diagnostic;
};

}  // namespace gradc
