// CSV reading (runtime/csv.h): good files in their variations, every error
// with its exact PATH:LINE:COL and message, the size limit, and random bytes.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <random>

#include "runtime/csv.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::error_of;

const std::string kPath = "t.csv";

// Parses `text` from a heap buffer of exactly its size, so that
// AddressSanitizer would see a read past the end.
CsvTable parse(std::string_view text) {
  return test::on_exact_copy(text, [](std::string_view b) { return parse_csv(b, kPath); });
}

std::string error_for(std::string_view text) {
  return error_of([&] { parse(text); });
}

TEST_CASE("csv reads a header and rows of numbers with their lines and columns") {
  CsvTable t = parse("a,b,c\n1,2,3\n4,5,6\n");
  CHECK(t.path == kPath);
  CHECK(t.header == std::vector<std::string>{"a", "b", "c"});
  REQUIRE(t.rows() == 2);
  REQUIRE(t.cols() == 3);
  CHECK(t.values == std::vector<double>{1, 2, 3, 4, 5, 6});
  CHECK(t.at(1, 2) == 6);
  CHECK(t.row_line == std::vector<int64_t>{2, 3});
  CHECK(t.cell_col == std::vector<uint32_t>{1, 3, 5, 1, 3, 5});
  CHECK(t.where(1, 1) == "t.csv:3:3");
}

TEST_CASE("csv number forms signs decimals and exponents") {
  CsvTable t = parse("x\n-2\n+3\n0.25\n.5\n5.\n-1.5e3\n2E-2\n1e+2\n007\n-0\n1e-400\n1.7976931348623157e308\n");
  CHECK(t.values == std::vector<double>{-2, 3, 0.25, 0.5, 5, -1500, 0.02, 100, 7, 0, 0, 1.7976931348623157e308});
  CHECK(std::signbit(t.values[9]));  // -0 stays -0
  CHECK(t.values[10] == 0);           // too small for f64: 0
}

TEST_CASE("csv accepts CRLF spaces tabs a missing final newline and blank lines") {
  CsvTable t = parse(" a ,\tb\r\n  1 , 2\t\r\n\r\n   \n3,4");
  CHECK(t.header == std::vector<std::string>{"a", "b"});
  CHECK(t.values == std::vector<double>{1, 2, 3, 4});
  CHECK(t.row_line == std::vector<int64_t>{2, 5});
  CHECK(t.cell_col == std::vector<uint32_t>{3, 7, 1, 3});
  // Blank lines before the header and several at the end are fine too.
  CsvTable u = parse("\n\na\n1\n\n\n");
  CHECK(u.header == std::vector<std::string>{"a"});
  CHECK(u.row_line == std::vector<int64_t>{4});
}

TEST_CASE("csv quoted names keep commas and doubled quotes") {
  CsvTable t = parse("\"a,b\", \"say \"\"hi\"\"\" ,c\n\"1.5\",2, 3\n");
  CHECK(t.header == std::vector<std::string>{"a,b", "say \"hi\"", "c"});
  CHECK(t.values == std::vector<double>{1.5, 2, 3});
  CHECK(t.cell_col == std::vector<uint32_t>{1, 7, 10});
}

TEST_CASE("csv skips a UTF-8 byte order mark and counts its bytes in columns") {
  CsvTable t = parse("\xEF\xBB\xBFx,y\n1,2\n");
  CHECK(t.header == std::vector<std::string>{"x", "y"});
  CHECK(error_for("\xEF\xBB\xBFx,x\n1,2\n") == "t.csv:1:6: duplicate column name 'x' (columns 0 and 1)");
}

TEST_CASE("csv allows empty column names such as a pandas index column") {
  CsvTable t = parse(",a,\n0,1.5,2\n1,2.5,3\n");
  CHECK(t.header == std::vector<std::string>{"", "a", ""});
  CHECK(t.values == std::vector<double>{0, 1.5, 2, 1, 2.5, 3});
}

TEST_CASE("csv cells that are not numbers name the text and the column") {
  CHECK(error_for("a,b\n1,x2\n") == "t.csv:2:3: 'x2' in column 'b' is not a number");
  CHECK(error_for("a,b\n1,2\n3,  4 5\n") == "t.csv:3:5: '4 5' in column 'b' is not a number");
  for (const char* bad : {"1e", "1.2.3", "--1", "+-1", "0x10", ".", "e5", "1e5.0", "1_000", "-", "1 5", "\"\"", "\"1\"\"\""}) {
    INFO("cell " << bad);
    std::string msg = error_for(std::string("a\n") + bad + "\n");
    CHECK_THAT(msg, Catch::StartsWith("t.csv:2:1: "));
    CHECK((msg.find("is not a number") != std::string::npos || msg.find("row has") != std::string::npos ||
           msg.find("empty cell") != std::string::npos || msg.find("after the closing quote") != std::string::npos));
  }
  // Long text is cut; bytes that are not printable ASCII are shown as \xNN.
  CHECK(error_for("a\n" + std::string(50, 'z') + "\n") ==
        "t.csv:2:1: '" + std::string(32, 'z') + "...' in column 'a' is not a number");
  CHECK(error_for(std::string("a,b\n1,\x01\xff\0q\n", 11)) == "t.csv:2:3: '\\x01\\xff\\x00q' in column 'b' is not a number");
  CHECK(error_for(",a\n1,2\nq,3\n") == "t.csv:3:1: 'q' in column 0 is not a number");
}

TEST_CASE("csv empty cells are errors at the cell") {
  CHECK(error_for("a,b\n1,\n") == "t.csv:2:3: empty cell in column 'b', expected a number");
  CHECK(error_for("a,b,c\n1,   ,3\n") == "t.csv:2:3: empty cell in column 'b', expected a number");
  CHECK(error_for("a,b\n,2\n") == "t.csv:2:1: empty cell in column 'a', expected a number");
}

TEST_CASE("csv rows with the wrong number of cells say how many") {
  CHECK(error_for("a,b\n1,2,3\n") == "t.csv:2:5: row has 3 cells, expected 2 (one per column of the header)");
  CHECK(error_for("a,b,c\n1,2,3\n4,5\r\n") == "t.csv:3:4: row has 2 cells, expected 3 (one per column of the header)");
  CHECK(error_for("a,b\n7\n") == "t.csv:2:2: row has 1 cell, expected 2 (one per column of the header)");
  CHECK(error_for("a\n1,\n") == "t.csv:2:3: row has 2 cells, expected 1 (one per column of the header)");
}

TEST_CASE("csv empty files and files without data rows") {
  CHECK(error_for("") == "t.csv:1:1: empty file, expected a header line of column names");
  CHECK(error_for("\n  \r\n\t\n") == "t.csv:1:1: empty file, expected a header line of column names");
  CHECK(error_for("a,b\n") == "t.csv:2:1: no data rows after the header");
  CHECK(error_for("a,b") == "t.csv:1:4: no data rows after the header");
  CHECK(error_for("a,b\n\n \n") == "t.csv:4:1: no data rows after the header");
}

TEST_CASE("csv duplicate column names") {
  CHECK(error_for("a,b,a\n1,2,3\n") == "t.csv:1:5: duplicate column name 'a' (columns 0 and 2)");
  CHECK(error_for("x, \"y\" ,y\n1,2,3\n") == "t.csv:1:9: duplicate column name 'y' (columns 1 and 2)");
}

TEST_CASE("csv lines longer than 1 MiB are errors at the line, before it is split") {
  std::string header = "a";
  while (header.size() <= kMaxCsvLineBytes) header += ",a";  // a duplicate too: the length is checked first
  CHECK(error_for(header + "\n1\n") ==
        fmt::format("t.csv:1:{}: line is {} bytes long, longer than the limit of 1 MiB for a line of a csv file",
                    kMaxCsvLineBytes + 1, header.size()));
  std::string row = std::string(kMaxCsvLineBytes - 1, '0');  // exactly at the limit with "\r": accepted
  CHECK(parse("a\n" + row + "9\r\n").rows() == 1);
  CHECK(error_for("a\n" + row + "99\n") ==
        fmt::format("t.csv:2:{}: line is {} bytes long, longer than the limit of 1 MiB for a line of a csv file",
                    kMaxCsvLineBytes + 1, kMaxCsvLineBytes + 1));
}

TEST_CASE("csv rejects NaN and infinity and numbers beyond f64") {
  CHECK(error_for("a,b\n1,nan\n") == "t.csv:2:3: 'nan' in column 'b' is not a finite number");
  for (const char* bad : {"NaN", "-inf", "+Inf", "Infinity", "-INFINITY"})
    CHECK(error_for(std::string("a\n") + bad + "\n") == fmt::format("t.csv:2:1: '{}' in column 'a' is not a finite number", bad));
  CHECK(error_for("a\n1e400\n") == "t.csv:2:1: '1e400' in column 'a' is not a finite number (beyond the f64 range)");
  CHECK(error_for("a\n-2e308\n") == "t.csv:2:1: '-2e308' in column 'a' is not a finite number (beyond the f64 range)");
  CHECK(error_for("a\n1000e99999999999999999999\n") ==
        "t.csv:2:1: '1000e99999999999999999999' in column 'a' is not a finite number (beyond the f64 range)");
  CHECK(parse("a\n0.000001e-99999999999999999999\n").values == std::vector<double>{0});
}

TEST_CASE("csv quoting mistakes") {
  CHECK(error_for("\"a,b\n1\n") == "t.csv:1:1: quoted cell has no closing quote on this line");
  CHECK(error_for("a,\"b\"x\n1,2\n") == "t.csv:1:6: unexpected 'x' after the closing quote of a cell");
  CHECK(error_for("a\n\"1\n2\"\n") == "t.csv:2:1: quoted cell has no closing quote on this line");
}

TEST_CASE("read_csv reads a file and names the path in errors") {
  test::TempDir dir;
  std::string path = dir / "d.csv";
  test::write_bytes(path, "u,v\r\n1,2\r\n3,4\r\n");
  CsvTable t = read_csv(path);
  CHECK(t.path == path);
  CHECK(t.values == std::vector<double>{1, 2, 3, 4});
  test::write_bytes(path, "u,v\n1,2\n3,oops\n");
  CHECK(error_of([&] { read_csv(path); }) == path + ":3:3: 'oops' in column 'v' is not a number");
  std::string missing = dir / "missing.csv";
  CHECK_THAT(error_of([&] { read_csv(missing); }), Catch::StartsWith(missing + ": cannot open"));
}

TEST_CASE("read_csv refuses a file over 2 GiB before reading it") {
  test::TempDir dir;
  std::string path = dir / "huge.csv";
  test::write_bytes(path, "a\n1\n");
  std::filesystem::resize_file(path, kMaxCsvBytes + 1);  // sparse: takes no disk space
  CHECK(error_of([&] { read_csv(path); }) ==
        path + ":1:1: file is 2147483649 bytes, larger than the limit of 2 GiB for csv files");
}

// Random files: half made of CSV pieces, NULs and bytes that are not UTF-8,
// half a good file with a few bytes changed. Each either parses into a
// consistent table or gives a DataError that starts with "t.csv:LINE:COL: ".
TEST_CASE("csv survives random bytes") {
  const std::vector<std::string> pieces = {"1", "-2.5", "3e4", ".5", ",", ",", ",", "\n", "\n", "\r\n", " ", "\t", "\"",
                                           "\"x\"", "a", "e", "-", "+", ".", "nan", std::string(1, '\0'), "\xff", "\xef\xbb\xbf"};
  const std::string bytes = std::string("0123456789 \t,\n\r\".e-+x\0\xff", 24);
  const std::string good = "a, \"b\"\n1,2\n-3.5, 4e2\r\n\n.5,6.\n";
  std::mt19937 rng(12345);
  int parsed = 0, failed = 0;
  for (int round = 0; round < 6000; ++round) {
    std::string text;
    if (round % 2 == 0) {
      for (size_t i = 0, len = rng() % 30; i < len; ++i) text += pieces[rng() % pieces.size()];
    } else {
      text = good;
      for (int k = 0, edits = 1 + static_cast<int>(rng() % 3); k < edits; ++k) {
        size_t at = rng() % text.size();
        char c = bytes[rng() % bytes.size()];
        switch (rng() % 3) {
          case 0: text[at] = c; break;
          case 1: text.insert(at, 1, c); break;
          default: text.erase(at, 1);
        }
      }
    }
    try {
      CsvTable t = parse(text);
      ++parsed;
      REQUIRE(t.cols() > 0);
      REQUIRE(t.rows() > 0);
      REQUIRE(t.values.size() == t.rows() * t.cols());
      REQUIRE(t.cell_col.size() == t.values.size());
      for (double v : t.values) REQUIRE(std::isfinite(v));
      for (const char* spec : {"*", "!0", "1-0", "a"}) {  // conversions of whatever the table holds
        try {
          Tensor x = csv_columns(t, spec, DType::I32, false);
          REQUIRE(x.shape()[0] == static_cast<int64_t>(t.rows()));
        } catch (const DataError& e) {
          REQUIRE(std::string(e.what()).rfind("t.csv:", 0) == 0);
        }
      }
    } catch (const DataError& e) {
      ++failed;
      std::string msg = e.what();
      INFO("message: " << msg);
      REQUIRE(msg.rfind("t.csv:", 0) == 0);
      size_t a = msg.find(':', 6), b = msg.find(": ", a + 1);
      REQUIRE(a != std::string::npos);
      REQUIRE(b != std::string::npos);
      REQUIRE(std::stoll(msg.substr(6, a - 6)) >= 1);
      REQUIRE(std::stoll(msg.substr(a + 1, b - a - 1)) >= 1);
    }
  }
  CHECK(parsed > 100);  // the generator does reach both outcomes
  CHECK(failed > 100);
}

}  // namespace
}  // namespace gradc
