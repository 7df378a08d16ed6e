// The diagnostics engine and the internal-error channel.
//
// User mistakes become Diagnostics with a source location (DiagEngine);
// compiler bugs throw InternalError via GRADC_ASSERT. Library code never exits.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "compiler/support/source.h"
#include "gradc/diagnostics.h"

namespace gradc {

// A bug in gradc itself, never a user error.
struct InternalError : std::logic_error {
  explicit InternalError(const std::string& what)
      : std::logic_error("internal compiler error: " + what) {}
};

[[noreturn]] void internal_error(const char* file, int line, const std::string& msg);

#define GRADC_ASSERT(cond, msg)                                       \
  do {                                                                \
    if (!(cond)) ::gradc::internal_error(__FILE__, __LINE__, (msg)); \
  } while (0)

// A diagnostic at `loc` with its source line and the span to underline (no
// location when `loc` is invalid). Every user-facing error that refers to the
// model, at compile time or at run time, is made here.
Diagnostic make_diagnostic(const SourceManager& sm, Severity sev, SourceLoc loc, std::string message);

// A run-time error at `loc` (gradc::ModelError; a plain DataError when the
// location is unknown).
[[noreturn]] void throw_model_error(const SourceManager& sm, SourceLoc loc, std::string message);

// Thrown (and caught by the compilation driver) when the error limit is hit.
struct TooManyErrors {};

class DiagEngine {
 public:
  static constexpr int kMaxErrors = 20;

  explicit DiagEngine(const SourceManager& sm) : sm_(sm) {}

  // Reports an error; after kMaxErrors it adds a final note and throws TooManyErrors.
  void error(SourceLoc loc, std::string message);
  // Reports a warning: printed like an error, but the compilation goes on.
  void warning(SourceLoc loc, std::string message);
  // Attaches a note to the most recent error.
  void note(SourceLoc loc, std::string message);

  int error_count() const { return errors_; }
  const std::vector<Diagnostic>& diagnostics() const { return diags_; }
  std::vector<Diagnostic> take() { return std::move(diags_); }

 private:
  Diagnostic make(Severity sev, SourceLoc loc, std::string message) const {
    return make_diagnostic(sm_, sev, loc, std::move(message));
  }

  const SourceManager& sm_;
  std::vector<Diagnostic> diags_;
  int errors_ = 0;
};

}  // namespace gradc
