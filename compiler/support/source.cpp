// Offset -> line:column mapping for registered source files.
#include "compiler/support/source.h"

#include <algorithm>
#include <istream>

namespace gradc {

std::string read_bounded(std::istream& in, size_t limit) {
  std::string text;
  char piece[1 << 16];
  while (in && text.size() <= limit) {
    in.read(piece, static_cast<std::streamsize>(std::min(sizeof piece, limit + 1 - text.size())));
    text.append(piece, static_cast<size_t>(in.gcount()));
  }
  return text;
}

uint32_t SourceManager::add(std::string name, std::string text) {
  File f{std::move(name), std::move(text), {0}};
  for (uint32_t i = 0; i < f.text.size(); ++i)
    if (f.text[i] == '\n') f.line_starts.push_back(i + 1);
  files_.push_back(std::move(f));
  return static_cast<uint32_t>(files_.size());
}

LineCol SourceManager::line_col(uint32_t file, uint32_t offset) const {
  const File& f = files_.at(file - 1);
  offset = std::min<uint32_t>(offset, f.text.size());
  auto it = std::upper_bound(f.line_starts.begin(), f.line_starts.end(), offset);
  int line = static_cast<int>(it - f.line_starts.begin());
  return {line, static_cast<int>(offset - f.line_starts[line - 1]) + 1};
}

std::string_view SourceManager::line_text(uint32_t file, int line) const {
  const File& f = files_.at(file - 1);
  if (line < 1 || line > static_cast<int>(f.line_starts.size())) return {};
  uint32_t b = f.line_starts[line - 1];
  uint32_t e = line < static_cast<int>(f.line_starts.size()) ? f.line_starts[line] - 1
                                                              : static_cast<uint32_t>(f.text.size());
  std::string_view s(f.text.data() + b, e - b);
  if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
  return s;
}

uint32_t SourceManager::offset_of(uint32_t file, int line, int column) const {
  const File& f = files_.at(file - 1);
  if (line < 1) return 0;
  if (line > static_cast<int>(f.line_starts.size())) return static_cast<uint32_t>(f.text.size());
  uint32_t begin = f.line_starts[line - 1];
  uint32_t end = line < static_cast<int>(f.line_starts.size()) ? f.line_starts[line] - 1
                                                                : static_cast<uint32_t>(f.text.size());
  return std::min(end, begin + static_cast<uint32_t>(std::max(column, 1) - 1));
}

uint32_t SourceManager::find(std::string_view name) const {
  for (size_t i = 0; i < files_.size(); ++i)
    if (files_[i].name == name) return static_cast<uint32_t>(i + 1);
  return 0;
}

}  // namespace gradc
