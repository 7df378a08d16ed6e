// Numeric CSV files (see csv.h): the line and cell splitter, the number
// grammar, column selection, and standardization.
//
// Everything works on byte offsets into the file's text with explicit bounds,
// so that no input can read past the end; text quoted in a message goes
// through show(), which keeps printable ASCII and writes other bytes as \xNN.
#include "runtime/csv.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <new>
#include <unordered_map>

#include "runtime/tensor_io.h"

namespace gradc {
namespace {

// File text for a message: printable ASCII kept, other bytes as \xNN, cut
// after `limit` bytes of the original with "...".
std::string show(std::string_view s, size_t limit = 32) {
  std::string out;
  for (size_t i = 0; i < s.size() && i < limit; ++i) {
    auto u = static_cast<unsigned char>(s[i]);
    if (u >= 0x20 && u < 0x7f && s[i] != '\\')
      out += s[i];
    else
      out += fmt::format("\\x{:02x}", u);
  }
  if (s.size() > limit) out += "...";
  return out;
}

// "column 'x'", or "column 3" for a column with an empty name.
std::string column_label(const CsvTable& t, size_t c) {
  return t.header[c].empty() ? fmt::format("column {}", c) : fmt::format("column '{}'", show(t.header[c]));
}

[[noreturn]] void fail_at(const std::string& path, int64_t line, size_t col, const std::string& msg) {
  throw DataError(fmt::format("{}:{}:{}: {}", path, line, col, msg));
}

bool is_space(char c) { return c == ' ' || c == '\t'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool is_blank(std::string_view line) {
  for (char c : line)
    if (!is_space(c)) return false;
  return true;
}

// One cell of a line: its text without surrounding spaces (without the quotes
// for a quoted cell, "" not yet undone) and its 1-based byte column.
struct Cell {
  std::string_view text;
  size_t col;
  bool quoted;
};

// A quoting mistake found by split_line, at a 1-based byte column.
struct SplitError {
  size_t col = 0;  // 0: none
  std::string message;
};

// line   = cell *( "," cell )
// cell   = *WS ( quoted / bare ) *WS           WS = " " / TAB
// quoted = DQUOTE *( any-but-DQUOTE / DQUOTE DQUOTE ) DQUOTE
// bare   = *( any-but-"," )
// `col0` is the byte column before the line's first byte (3 after a BOM).
SplitError split_line(std::string_view line, size_t col0, std::vector<Cell>& cells) {
  cells.clear();
  size_t i = 0;
  for (;;) {
    size_t start = i;
    while (i < line.size() && is_space(line[i])) ++i;
    if (i < line.size() && line[i] == '"') {
      size_t open = i++;
      for (;; ++i) {
        if (i >= line.size()) return {col0 + open + 1, "quoted cell has no closing quote on this line"};
        if (line[i] != '"') continue;
        if (i + 1 < line.size() && line[i + 1] == '"') {
          ++i;  // "" is a quote inside the cell
          continue;
        }
        break;
      }
      cells.push_back({line.substr(open + 1, i - open - 1), col0 + open + 1, true});
      ++i;
      while (i < line.size() && is_space(line[i])) ++i;
      if (i < line.size() && line[i] != ',')
        return {col0 + i + 1, fmt::format("unexpected '{}' after the closing quote of a cell", show(line.substr(i, 1)))};
    } else {
      size_t text_begin = i;
      while (i < line.size() && line[i] != ',') ++i;
      size_t text_end = i;
      while (text_end > text_begin && is_space(line[text_end - 1])) --text_end;
      size_t col = text_begin < text_end ? text_begin : start;
      cells.push_back({line.substr(text_begin, text_end - text_begin), col0 + col + 1, false});
    }
    if (i >= line.size()) return {};
    ++i;  // the comma
  }
}

// A quoted cell's text with "" turned back into ".
std::string unquote(const Cell& c) {
  if (!c.quoted) return std::string(c.text);
  std::string out;
  for (size_t i = 0; i < c.text.size(); ++i) {
    out += c.text[i];
    if (c.text[i] == '"' && i + 1 < c.text.size() && c.text[i + 1] == '"') ++i;
  }
  return out;
}

enum class NumberStatus { Ok, NotNumber, NotFinite, TooLarge };

// number = [ "+" / "-" ] ( 1*DIGIT [ "." *DIGIT ] / "." 1*DIGIT ) [ ( "e" / "E" ) [ "+" / "-" ] 1*DIGIT ]
// Checked here (std::from_chars would accept "nan", "inf" and a prefix such
// as "1e"), then converted by std::from_chars, which rounds correctly and
// ignores the locale. Values too small for f64 become 0.
NumberStatus parse_number(std::string_view s, double& out) {
  size_t i = 0;
  bool negative = i < s.size() && s[i] == '-';
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  size_t sign_end = i;
  size_t int_begin = i;
  while (i < s.size() && is_digit(s[i])) ++i;
  size_t int_end = i, frac_begin = i, frac_end = i;
  if (i < s.size() && s[i] == '.') {
    frac_begin = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    frac_end = i;
  }
  bool ok = int_end > int_begin || frac_end > frac_begin;
  int64_t exponent = 0;
  if (ok && i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    bool exp_negative = i < s.size() && s[i] == '-';
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    size_t exp_begin = i;
    for (; i < s.size() && is_digit(s[i]); ++i) exponent = std::min<int64_t>(exponent * 10 + (s[i] - '0'), 1'000'000'000);
    if (i == exp_begin) ok = false;
    if (exp_negative) exponent = -exponent;
  }
  if (!ok || i != s.size()) {
    std::string word;
    for (char c : s.substr(sign_end)) word += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return word == "nan" || word == "inf" || word == "infinity" ? NumberStatus::NotFinite : NumberStatus::NotNumber;
  }
  std::string_view digits = s.substr(s[0] == '+' ? 1 : 0);
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), out);
  if (ec == std::errc() && ptr == digits.data() + digits.size()) return NumberStatus::Ok;
  // Out of range: too large, or too small (the decimal exponent of the first
  // nonzero digit tells which; a zero mantissa is never out of range).
  int64_t e10 = exponent;
  size_t first = int_begin;
  while (first < int_end && s[first] == '0') ++first;
  if (first < int_end) {
    e10 += static_cast<int64_t>(int_end - first) - 1;
  } else {
    size_t f = frac_begin;
    while (f < frac_end && s[f] == '0') ++f;
    e10 -= static_cast<int64_t>(f - frac_begin) + 1;
  }
  if (e10 >= 0) return NumberStatus::TooLarge;
  out = negative ? -0.0 : 0.0;
  return NumberStatus::Ok;
}

}  // namespace

std::string CsvTable::where(size_t row, size_t col) const {
  return fmt::format("{}:{}:{}", path, row_line[row], cell_col[row * cols() + col]);
}

CsvTable parse_csv(std::string_view text, const std::string& path) {
  if (text.size() > kMaxCsvBytes)
    fail_at(path, 1, 1, fmt::format("file is {} bytes, larger than the limit of 2 GiB for csv files", text.size()));
  CsvTable t;
  t.path = path;
  bool have_header = false;
  std::vector<Cell> cells;
  size_t pos = text.substr(0, 3) == "\xEF\xBB\xBF" ? 3 : 0;  // UTF-8 byte order mark
  size_t col0 = pos;
  int64_t lineno = 1;
  int64_t end_line = 1;  // where the text ends, for "no data rows"
  size_t end_col = pos + 1;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    size_t end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > kMaxCsvLineBytes)
      fail_at(path, lineno, col0 + kMaxCsvLineBytes + 1,
              fmt::format("line is {} bytes long, longer than the limit of 1 MiB for a line of a csv file", line.size()));
    end_line = nl == std::string_view::npos ? lineno : lineno + 1;
    end_col = nl == std::string_view::npos ? col0 + (end - pos) + 1 : 1;
    if (!is_blank(line)) {
      if (SplitError e = split_line(line, col0, cells); e.col) fail_at(path, lineno, e.col, e.message);
      if (!have_header) {
        have_header = true;
        std::unordered_map<std::string_view, size_t> seen;
        for (const Cell& c : cells) t.header.push_back(unquote(c));
        for (size_t k = 0; k < t.header.size(); ++k) {
          if (t.header[k].empty()) continue;
          auto [it, fresh] = seen.emplace(t.header[k], k);
          if (!fresh)
            fail_at(path, lineno, cells[k].col,
                    fmt::format("duplicate column name '{}' (columns {} and {})", show(t.header[k]), it->second, k));
        }
      } else {
        size_t n = t.cols();
        if (cells.size() != n) {
          size_t col = cells.size() > n ? cells[n].col : col0 + line.size() + 1;
          fail_at(path, lineno, col,
                  fmt::format("row has {} cell{}, expected {} (one per column of the header)", cells.size(),
                              cells.size() == 1 ? "" : "s", n));
        }
        for (size_t k = 0; k < n; ++k) {
          double v = 0;
          const Cell& c = cells[k];
          switch (parse_number(c.text, v)) {
            case NumberStatus::Ok: break;
            case NumberStatus::NotNumber:
              if (c.text.empty()) fail_at(path, lineno, c.col, fmt::format("empty cell in {}, expected a number", column_label(t, k)));
              fail_at(path, lineno, c.col, fmt::format("'{}' in {} is not a number", show(c.text), column_label(t, k)));
            case NumberStatus::NotFinite:
              fail_at(path, lineno, c.col, fmt::format("'{}' in {} is not a finite number", show(c.text), column_label(t, k)));
            case NumberStatus::TooLarge:
              fail_at(path, lineno, c.col,
                      fmt::format("'{}' in {} is not a finite number (beyond the f64 range)", show(c.text), column_label(t, k)));
          }
          t.values.push_back(v);
          t.cell_col.push_back(static_cast<uint32_t>(c.col));  // below 2^32: lines are at most 2 GiB
        }
        t.row_line.push_back(lineno);
      }
    }
    if (nl == std::string_view::npos) break;
    pos = nl + 1;
    col0 = 0;
    ++lineno;
  }
  if (!have_header) fail_at(path, 1, 1, "empty file, expected a header line of column names");
  if (t.rows() == 0) fail_at(path, end_line, end_col, "no data rows after the header");
  return t;
}

CsvTable read_csv(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && static_cast<uint64_t>(st.st_size) > kMaxCsvBytes)
    fail_at(path, 1, 1, fmt::format("file is {} bytes, larger than the limit of 2 GiB for csv files", st.st_size));
  std::string text = read_binary_file(path, kMaxCsvBytes);
  try {
    return parse_csv(text, path);
  } catch (const std::bad_alloc&) {
    throw DataError(fmt::format("{}: not enough memory to hold the table of a {}-byte file", path, text.size()));
  }
}

// spec = [ "!" ] item *( "," item )
// item = "*" / name / index / index "-" index / DQUOTE name DQUOTE
std::vector<size_t> select_columns(const CsvTable& t, const std::string& spec) {
  std::string prefix = fmt::format("{}: column selection '{}': ", t.path, show(spec, 80));
  auto fail = [&](const std::string& msg) -> void { throw DataError(prefix + msg); };
  std::string_view s = spec;
  size_t i = 0;
  while (i < s.size() && is_space(s[i])) ++i;
  bool negate = i < s.size() && s[i] == '!';
  if (negate) ++i;
  if (is_blank(s.substr(i))) fail(negate ? "nothing listed after '!'" : "empty selection, expected column names, indices, ranges a-b or *");

  std::unordered_map<std::string_view, size_t> by_name;
  for (size_t c = 0; c < t.cols(); ++c)
    if (!t.header[c].empty()) by_name.emplace(t.header[c], c);
  auto index_of = [&](std::string_view digits) -> size_t {
    size_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || v >= t.cols())
      fail(fmt::format("column index {} is out of range: the file has {} columns (0-{})", show(digits), t.cols(), t.cols() - 1));
    return v;
  };
  auto all_digits = [](std::string_view d) {
    if (d.empty()) return false;
    for (char c : d)
      if (!is_digit(c)) return false;
    return true;
  };

  std::vector<size_t> listed;
  std::vector<Cell> items;
  if (SplitError e = split_line(s.substr(i), i, items); e.col) fail(fmt::format("{} (character {})", e.message, e.col));
  for (const Cell& item : items) {
    std::string text = unquote(item);
    if (!item.quoted && text.empty()) fail("empty item (two commas in a row, or a comma at an end)");
    if (auto it = by_name.find(text); it != by_name.end()) {
      listed.push_back(it->second);
    } else if (item.quoted) {
      fail(fmt::format("unknown column '{}'", show(text)));
    } else if (text == "*") {
      for (size_t c = 0; c < t.cols(); ++c) listed.push_back(c);
    } else if (all_digits(text)) {
      listed.push_back(index_of(text));
    } else if (size_t dash = text.find('-');
               dash != std::string::npos && all_digits(text.substr(0, dash)) && all_digits(text.substr(dash + 1))) {
      size_t a = index_of(std::string_view(text).substr(0, dash)), b = index_of(std::string_view(text).substr(dash + 1));
      if (a > b) fail(fmt::format("range {} goes backwards, write {}-{}", text, b, a));
      for (size_t c = a; c <= b; ++c) listed.push_back(c);
    } else {
      std::string names;
      size_t shown = std::min<size_t>(t.cols(), 8);
      for (size_t c = 0; c < shown; ++c) names += fmt::format("{}'{}'", c ? ", " : "", show(t.header[c]));
      if (t.cols() > shown) names += fmt::format(" and {} more", t.cols() - shown);
      std::string hint = text[0] == '!' ? " ('!' means \"all but\" only at the start of the whole selection)" : "";
      fail(fmt::format("unknown column '{}'{}; the columns are {}", show(text), hint, names));
    }
  }

  std::vector<char> picked(t.cols(), 0);
  for (size_t c : listed) {
    if (picked[c]) fail(fmt::format("{} (index {}) is selected twice", column_label(t, c), c));
    picked[c] = 1;
  }
  if (!negate) return listed;
  std::vector<size_t> rest;
  for (size_t c = 0; c < t.cols(); ++c)
    if (!picked[c]) rest.push_back(c);
  if (rest.empty()) fail("selects no columns");
  return rest;
}

Tensor csv_columns(const CsvTable& t, const std::string& spec, DType dtype, bool as_vector) {
  std::vector<size_t> sel = select_columns(t, spec);
  if (as_vector && sel.size() != 1)
    throw DataError(fmt::format("{}: column selection '{}' selects {} columns, but a [rows]-shaped input takes exactly one",
                                t.path, show(spec, 80), sel.size()));
  auto rows = static_cast<int64_t>(t.rows()), ncols = static_cast<int64_t>(sel.size());
  Tensor out(dtype, as_vector ? std::vector<int64_t>{rows} : std::vector<int64_t>{rows, ncols});
  for (size_t r = 0; r < t.rows(); ++r) {
    for (size_t k = 0; k < sel.size(); ++k) {
      double v = t.at(r, sel[k]);
      auto i = static_cast<int64_t>(r * sel.size() + k);
      auto bad = [&](const char* what) {
        throw DataError(fmt::format("{}: value {} in {} {}", t.where(r, sel[k]), v, column_label(t, sel[k]), what));
      };
      switch (dtype) {
        case DType::F64: out.data<double>()[i] = v; break;
        case DType::F32:
          if (std::fabs(v) > std::numeric_limits<float>::max()) bad("is outside the f32 range");
          out.data<float>()[i] = static_cast<float>(v);
          break;
        case DType::I32:
          if (v != std::trunc(v)) bad("is not a whole number, as i32 data needs");
          if (v < -2147483648.0 || v > 2147483647.0) bad("is outside the i32 range");
          out.data<int32_t>()[i] = static_cast<int32_t>(v);
          break;
      }
    }
  }
  return out;
}

namespace {

// The features of x, a [rows, ...] tensor: one per element of a row.
size_t feature_count(const Tensor& x) {
  if (x.dtype() == DType::I32) throw DataError("cannot standardize an i32 tensor, only f32 or f64");
  if (x.rank() == 0) throw DataError("cannot standardize a scalar, expected a tensor of shape [rows, ...]");
  if (x.shape()[0] > 0) return static_cast<size_t>(x.numel() / x.shape()[0]);
  size_t f = 1;  // no rows: the product of the other dims, saturating
  for (int d = 1; d < x.rank(); ++d) {
    auto n = static_cast<size_t>(x.shape()[d]);
    f = n != 0 && f > SIZE_MAX / n ? SIZE_MAX : f * n;
  }
  return f;
}

}  // namespace

// mean = sum(x) / n; std = sqrt(sum((x - mean)^2) / n), computed as
// scale * sqrt(sum(((x - mean) / scale)^2) / n) with scale = max |x - mean|
// so that the squares neither overflow nor underflow.
Standardizer fit_standardizer(const Tensor& x) {
  size_t features = feature_count(x);
  if (x.shape()[0] == 0) throw DataError("cannot fit a standardizer on 0 rows");
  auto rows = static_cast<size_t>(x.shape()[0]);
  std::vector<double> sum(features, 0.0), lo(features, INFINITY), hi(features, -INFINITY);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t f = 0; f < features; ++f) {
      double v = x.get(static_cast<int64_t>(r * features + f));
      if (!std::isfinite(v))
        throw DataError(fmt::format("cannot standardize: row {}, feature {} is {}, not a finite number", r, f, v));
      sum[f] += v;
      lo[f] = std::min(lo[f], v);
      hi[f] = std::max(hi[f], v);
    }
  }
  Standardizer s;
  s.mean.resize(features);
  s.std.assign(features, 1.0);
  std::vector<double> scale(features);
  for (size_t f = 0; f < features; ++f) {
    double mean = sum[f] / static_cast<double>(rows);
    if (!std::isfinite(mean)) {  // the sum overflowed: add up x / n instead
      mean = 0;
      for (size_t r = 0; r < rows; ++r) mean += x.get(static_cast<int64_t>(r * features + f)) / static_cast<double>(rows);
    }
    s.mean[f] = lo[f] == hi[f] ? lo[f] : std::clamp(mean, lo[f], hi[f]);
    scale[f] = std::max(hi[f] - s.mean[f], s.mean[f] - lo[f]);
  }
  std::vector<double> squares(features, 0.0);
  for (size_t r = 0; r < rows; ++r) {
    for (size_t f = 0; f < features; ++f) {
      if (lo[f] == hi[f]) continue;
      double d = (x.get(static_cast<int64_t>(r * features + f)) - s.mean[f]) / scale[f];
      squares[f] += d * d;
    }
  }
  for (size_t f = 0; f < features; ++f) {
    if (lo[f] == hi[f]) continue;  // constant: std 1, so the feature becomes exactly 0
    double sd = scale[f] * std::sqrt(squares[f] / static_cast<double>(rows));
    if (std::isfinite(sd) && sd > 0) s.std[f] = sd;
  }
  return s;
}

void apply_standardizer(const Standardizer& s, Tensor& x) {
  size_t features = feature_count(x);
  if (features != s.mean.size() || features != s.std.size())
    throw DataError(fmt::format("cannot standardize: the standardizer was fit on {} features, the tensor {} has {}",
                                s.mean.size(), x.type_string(), features));
  auto n = x.numel();
  for (int64_t i = 0; i < n; ++i) {
    size_t f = static_cast<size_t>(i) % features;
    x.set(i, (x.get(i) - s.mean[f]) / s.std[f]);
  }
}

}  // namespace gradc
