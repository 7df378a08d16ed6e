// Numeric CSV files as training data for `gradc train` (SPEC 3): reading a
// table of numbers, picking columns into a tensor, and standardizing features.
//
// A CSV file here is a header line of column names, then one row of numbers
// per line. The reader is small and strict because files come from users:
//   - cells are separated by ',', lines end with "\n" or "\r\n"; spaces and
//     tabs around a cell are ignored; a UTF-8 byte order mark is skipped;
//   - blank lines (only spaces or tabs) are ignored wherever they are;
//   - a cell may be wrapped in double quotes ("a,b"; "" is a quote inside),
//     which is how column names holding commas are written; a quoted cell
//     ends on its own line;
//   - header names may be empty (pandas writes one for the index column) but
//     non-empty names must be unique;
//   - a line is at most kMaxCsvLineBytes (1 MiB; some 100,000 columns of
//     numbers), checked before the line is split, so that a file of one
//     endless line fails at once rather than after gigabytes of cells;
//   - data cells are decimal numbers: [+-] digits [. digits] [(e|E) [+-] digits]
//     (".5" and "5." too); NaN, inf and numbers beyond the f64 range are
//     rejected, numbers too small for f64 read as 0.
// Every mistake is a DataError "PATH:LINE:COL: message" (1-based; COL is the
// byte column where the cell starts), lowercase with no trailing period.
// Any bytes at all (binary junk, NULs, invalid UTF-8) give such an error,
// never a crash: file text in messages shows other bytes as \xNN.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "gradc/tensor.h"

namespace gradc {

// The largest CSV file read_csv accepts: 2 GiB.
inline constexpr uint64_t kMaxCsvBytes = uint64_t{2} << 30;

// The longest line (without its line end) parse_csv accepts: 1 MiB.
inline constexpr size_t kMaxCsvLineBytes = size_t{1} << 20;

// A CSV file of numbers, with where each cell came from for messages.
struct CsvTable {
  std::string path;                 // the file as given, starts every message
  std::vector<std::string> header;  // column names (quotes removed)
  std::vector<double> values;       // rows() x cols(), row-major; all finite
  std::vector<int64_t> row_line;    // the 1-based line of each row
  std::vector<uint32_t> cell_col;   // the 1-based byte column of each cell, like values

  size_t cols() const { return header.size(); }
  size_t rows() const { return row_line.size(); }
  double at(size_t row, size_t col) const { return values[row * cols() + col]; }
  // "PATH:LINE:COL" of a cell.
  std::string where(size_t row, size_t col) const;
};

// Parses CSV text read from `path` (used only in messages).
CsvTable parse_csv(std::string_view text, const std::string& path);

// Reads and parses the file at `path` (at most kMaxCsvBytes).
CsvTable read_csv(const std::string& path);

// Column selection, in the words of the user documentation:
//   A column selection is a comma-separated list of items, each a column
//   name, a 0-based column index, an inclusive index range `a-b`, or `*` for
//   all columns; columns come in the order listed. A `!` at the start of the
//   whole selection means every column except those listed, in file order
//   (`!label` is all features). Names win over indices when a header name
//   looks like a number; write a name holding a comma or starting with `!` in
//   double quotes. Selecting a column twice, or nothing at all, is an error.
// Returns the 0-based indices of the selected columns. Throws DataError
// "PATH: column selection 'SPEC': ..." for an unknown name (listing the
// first few names), an index out of range, or an empty selection.
std::vector<size_t> select_columns(const CsvTable& t, const std::string& spec);

// The columns `spec` selects as a tensor of `dtype`: shape [rows, ncols], or
// [rows] when `as_vector` (then the selection must be exactly one column).
// f32 needs every value within the f32 range; i32 needs whole numbers within
// the i32 range ("PATH:LINE:COL: ..." naming the value and column otherwise).
Tensor csv_columns(const CsvTable& t, const std::string& spec, DType dtype, bool as_vector);

// Per-feature standardization, fit on training data and applied to training
// and evaluation data alike, so that features with large units (digits'
// pixels 0..16, breast_cancer's areas in the thousands) do not swamp the rest.
struct Standardizer {
  std::vector<double> mean;  // one per feature
  std::vector<double> std;   // population standard deviation; 1 for a constant feature
};

// Fits a Standardizer on `x` (f32 or f64, shape [rows, ...]): one feature per
// element of a row (a [rows] tensor has one feature), statistics over rows.
// A constant feature gets mean = its value and std = 1, so it becomes exactly
// 0 rather than rounding noise. Throws DataError for an i32 or rank-0 tensor,
// or a NaN or infinite value (naming the row and feature).
Standardizer fit_standardizer(const Tensor& x);

// x = (x - mean) / std, per feature. Throws DataError when `x` is not f32 or
// f64, or has a different number of features than `s` was fit on.
void apply_standardizer(const Standardizer& s, Tensor& x);

}  // namespace gradc
