// Rendering diagnostics the way clang does: location, message, source line, caret.
#include "compiler/support/diagnostics.h"

#include <fmt/format.h>

namespace gradc {

void internal_error(const char* file, int line, const std::string& msg) {
  throw InternalError(fmt::format("{} ({}:{})", msg, file, line));
}

Diagnostic make_diagnostic(const SourceManager& sm_, Severity sev, SourceLoc loc, std::string message) {
  Diagnostic d;
  d.severity = sev;
  d.message = std::move(message);
  if (loc.valid()) {
    LineCol lc = sm_.line_col(loc.file, loc.begin);
    d.file = sm_.name(loc.file);
    d.line = lc.line;
    d.column = lc.column;
    d.source_line = std::string(sm_.line_text(loc.file, lc.line));
    int rest = static_cast<int>(d.source_line.size()) - (lc.column - 1);
    int len = static_cast<int>(loc.end) - static_cast<int>(loc.begin);
    d.length = std::max(1, std::min(len, rest));
  }
  return d;
}

void throw_model_error(const SourceManager& sm, SourceLoc loc, std::string message) {
  if (!loc.valid()) throw DataError(std::move(message));
  throw ModelError(make_diagnostic(sm, Severity::Error, loc, std::move(message)));
}

void DiagEngine::error(SourceLoc loc, std::string message) {
  if (errors_ >= kMaxErrors) throw TooManyErrors{};
  diags_.push_back(make(Severity::Error, loc, std::move(message)));
  if (++errors_ == kMaxErrors) {
    diags_.push_back(make(Severity::Fatal, {},
                          fmt::format("too many errors emitted ({}), stopping now", kMaxErrors)));
    throw TooManyErrors{};
  }
}

void DiagEngine::warning(SourceLoc loc, std::string message) {
  diags_.push_back(make(Severity::Warning, loc, std::move(message)));
}

void DiagEngine::note(SourceLoc loc, std::string message) {
  if (diags_.empty()) return;
  diags_.back().notes.push_back(make(Severity::Note, loc, std::move(message)));
}

namespace {

const char* severity_name(Severity s) {
  switch (s) {
    case Severity::Error: return "error";
    case Severity::Warning: return "warning";
    case Severity::Note: return "note";
    case Severity::Fatal: return "fatal error";
  }
  return "error";
}

// Length of the valid UTF-8 sequence starting at s[i], or 0 when invalid.
size_t utf8_length(const std::string& s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k)
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return 0;
  return n;
}

// Prints the source line (control characters and invalid UTF-8 shown as '?')
// and a caret line that lines up with it, '~' under the rest of the span.
void render_source(const Diagnostic& d, std::string& out) {
  std::string shown, caret;
  const std::string& s = d.source_line;
  size_t col0 = static_cast<size_t>(d.column - 1);
  size_t col_end = col0 + static_cast<size_t>(d.length);
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_length(s, i);
    unsigned char c = static_cast<unsigned char>(s[i]);
    bool tab = c == '\t';
    if (n == 0 || (n == 1 && c < 0x20 && !tab) || c == 0x7f) {
      shown += '?';
      n = 1;
    } else {
      shown.append(s, i, n);
    }
    char mark = i < col0 ? (tab ? '\t' : ' ') : i == col0 ? '^' : i < col_end ? '~' : 0;
    if (mark) caret += mark;
    i += n;
  }
  if (col0 >= s.size()) caret += std::string(col0 - std::min(col0, s.size()), ' ') + "^";
  out += "    " + shown + "\n    " + caret + "\n";
}

void render_one(const Diagnostic& d, std::string& out) {
  if (!d.file.empty()) out += fmt::format("{}:{}:{}: ", d.file, d.line, d.column);
  out += fmt::format("{}: {}\n", severity_name(d.severity), d.message);
  if (d.line > 0) render_source(d, out);
}

}  // namespace

std::string Diagnostic::render() const {
  std::string out;
  render_one(*this, out);
  for (const Diagnostic& n : notes) render_one(n, out);
  return out;
}

std::string render_all(const std::vector<Diagnostic>& diags) {
  std::string out;
  for (const Diagnostic& d : diags) out += d.render();
  return out;
}

}  // namespace gradc
