// Source files and locations.
//
// A SourceLoc is a byte span in one registered file; the SourceManager turns
// it into a line, a column and the text of that line for diagnostics.
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace gradc {

// A half-open byte span [begin, end) in file `file` (1-based; 0 = no location).
struct SourceLoc {
  uint32_t file = 0;
  uint32_t begin = 0;
  uint32_t end = 0;

  bool valid() const { return file != 0; }
  // The span from the start of `a` to the end of `b` (same file).
  static SourceLoc span(SourceLoc a, SourceLoc b) {
    if (!a.valid()) return b;
    if (!b.valid() || a.file != b.file) return a;
    return {a.file, std::min(a.begin, b.begin), std::max(a.end, b.end)};
  }
};

// At most `limit` + 1 bytes of `in` (more than `limit` tells the caller the
// source is too large), read in pieces: a special file cannot make us read
// forever, and a small file costs its own size. (Reading into a buffer of the
// whole limit zero-filled 16 MiB: 4,096 fresh pages, 20-40 ms of every
// `gradc` command and host compile_file on a virtual machine, and a Model
// that kept the 16 MiB.) A read error leaves `in` bad.
std::string read_bounded(std::istream& in, size_t limit);

struct LineCol {
  int line = 0;    // 1-based
  int column = 0;  // 1-based byte column
};

class SourceManager {
 public:
  // Registers a file's text; returns its id for SourceLoc::file.
  uint32_t add(std::string name, std::string text);

  const std::string& name(uint32_t file) const { return files_.at(file - 1).name; }
  const std::string& text(uint32_t file) const { return files_.at(file - 1).text; }
  LineCol line_col(uint32_t file, uint32_t offset) const;
  // The text of a 1-based line, without its line terminator.
  std::string_view line_text(uint32_t file, int line) const;
  // The byte offset of a 1-based line and column, clamped to the file (the
  // inverse of line_col). Locations known as line:col, such as the C++ lines
  // of an embedded model (std::source_location), become SourceLocs with it.
  uint32_t offset_of(uint32_t file, int line, int column) const;
  // The id of the file registered under `name`, or 0.
  uint32_t find(std::string_view name) const;

 private:
  struct File {
    std::string name;
    std::string text;
    std::vector<uint32_t> line_starts;
  };
  std::vector<File> files_;
};

}  // namespace gradc
