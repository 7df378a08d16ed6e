// Column selection (select_columns, csv_columns): names, indices, ranges, *,
// !, quoting, as_vector, the dtype conversions and their errors, and the
// example data sets.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>

#include "runtime/csv.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::error_of;

const CsvTable& table() {
  static const CsvTable t = parse_csv("a,b,label\n1,2,0\n3,4,1\n5,6,2\n", "t.csv");
  return t;
}

std::vector<size_t> sel(const std::string& spec) { return select_columns(table(), spec); }

std::string sel_error(const std::string& spec) {
  return error_of([&] { select_columns(table(), spec); });
}

std::vector<double> values_of(const Tensor& t) {
  std::vector<double> v;
  for (int64_t i = 0; i < t.numel(); ++i) v.push_back(t.get(i));
  return v;
}

TEST_CASE("column selection by names indices ranges and star") {
  CHECK(sel("b") == std::vector<size_t>{1});
  CHECK(sel("b,a") == std::vector<size_t>{1, 0});
  CHECK(sel(" label , a ") == std::vector<size_t>{2, 0});
  CHECK(sel("2,0") == std::vector<size_t>{2, 0});
  CHECK(sel("0-1") == std::vector<size_t>{0, 1});
  CHECK(sel("1-1,0") == std::vector<size_t>{1, 0});
  CHECK(sel("*") == std::vector<size_t>{0, 1, 2});
  CHECK(sel("\"label\"") == std::vector<size_t>{2});
}

TEST_CASE("column selection with a leading bang keeps the other columns in file order") {
  CHECK(sel("!label") == std::vector<size_t>{0, 1});
  CHECK(sel("  !label,a") == std::vector<size_t>{1});
  CHECK(sel("!0-1") == std::vector<size_t>{2});
  CHECK(sel("!b") == std::vector<size_t>{0, 2});
}

TEST_CASE("column names win over indices and quoted names may hold commas") {
  CsvTable t = parse_csv("1,0,x-y,\"p,q\",!n,2-3\n10,20,30,40,50,60\n", "n.csv");
  CHECK(select_columns(t, "0") == std::vector<size_t>{1});      // the column named "0"
  CHECK(select_columns(t, "2-3") == std::vector<size_t>{5});    // the column named "2-3"
  CHECK(select_columns(t, "x-y") == std::vector<size_t>{2});
  CHECK(select_columns(t, "\"p,q\"") == std::vector<size_t>{3});
  CHECK(select_columns(t, "\"!n\"") == std::vector<size_t>{4});
  CHECK(select_columns(t, "3-4") == std::vector<size_t>{3, 4});  // no such name: a range
  CHECK(error_of([&] { select_columns(t, "\"2\""); }) == "n.csv: column selection '\"2\"': unknown column '2'");
}

TEST_CASE("column selection errors") {
  CHECK(sel_error("c") == "t.csv: column selection 'c': unknown column 'c'; the columns are 'a', 'b', 'label'");
  CHECK(sel_error("a,Label") == "t.csv: column selection 'a,Label': unknown column 'Label'; the columns are 'a', 'b', 'label'");
  CHECK(sel_error("3") == "t.csv: column selection '3': column index 3 is out of range: the file has 3 columns (0-2)");
  CHECK(sel_error("1-7") == "t.csv: column selection '1-7': column index 7 is out of range: the file has 3 columns (0-2)");
  CHECK(sel_error("99999999999999999999999") ==
        "t.csv: column selection '99999999999999999999999': column index 99999999999999999999999 is out of range: "
        "the file has 3 columns (0-2)");
  CHECK(sel_error("2-0") == "t.csv: column selection '2-0': range 2-0 goes backwards, write 0-2");
  CHECK(sel_error("a,a") == "t.csv: column selection 'a,a': column 'a' (index 0) is selected twice");
  CHECK(sel_error("*,label") == "t.csv: column selection '*,label': column 'label' (index 2) is selected twice");
  CHECK(sel_error("0-1,b") == "t.csv: column selection '0-1,b': column 'b' (index 1) is selected twice");
  CHECK(sel_error("") == "t.csv: column selection '': empty selection, expected column names, indices, ranges a-b or *");
  CHECK(sel_error("  ") == "t.csv: column selection '  ': empty selection, expected column names, indices, ranges a-b or *");
  CHECK(sel_error("!") == "t.csv: column selection '!': nothing listed after '!'");
  CHECK(sel_error("!*") == "t.csv: column selection '!*': selects no columns");
  CHECK(sel_error("!a,b,label") == "t.csv: column selection '!a,b,label': selects no columns");
  CHECK(sel_error("a,,b") == "t.csv: column selection 'a,,b': empty item (two commas in a row, or a comma at an end)");
  CHECK(sel_error("a,") == "t.csv: column selection 'a,': empty item (two commas in a row, or a comma at an end)");
  CHECK(sel_error("\"a") == "t.csv: column selection '\"a': quoted cell has no closing quote on this line (character 1)");
  CHECK(sel_error("a,!b") == "t.csv: column selection 'a,!b': unknown column '!b' ('!' means \"all but\" only at the start of "
                             "the whole selection); the columns are 'a', 'b', 'label'");
  CHECK(sel_error("-1") == "t.csv: column selection '-1': unknown column '-1'; the columns are 'a', 'b', 'label'");
}

TEST_CASE("an unknown column lists the first eight names and how many more") {
  CsvTable t = read_csv(GRADC_EXAMPLES_DATA "/digits.csv");
  std::string msg = error_of([&] { select_columns(t, "pixel"); });
  CHECK_THAT(msg, Catch::EndsWith(": column selection 'pixel': unknown column 'pixel'; the columns are "
                                  "'p0', 'p1', 'p2', 'p3', 'p4', 'p5', 'p6', 'p7' and 57 more"));
}

TEST_CASE("csv_columns makes matrices and vectors of each dtype") {
  Tensor x = csv_columns(table(), "!label", DType::F32, false);
  CHECK(x.type_string() == "f32[3, 2]");
  CHECK(values_of(x) == std::vector<double>{1, 2, 3, 4, 5, 6});
  Tensor y = csv_columns(table(), "label", DType::I32, true);
  CHECK(y.type_string() == "i32[3]");
  CHECK(values_of(y) == std::vector<double>{0, 1, 2});
  Tensor y2 = csv_columns(table(), "label", DType::F64, false);
  CHECK(y2.type_string() == "f64[3, 1]");
  Tensor z = csv_columns(table(), "b,0", DType::F64, false);
  CHECK(values_of(z) == std::vector<double>{2, 1, 4, 3, 6, 5});
  CsvTable p = parse_csv("v\n0.1\n", "p.csv");
  CHECK(csv_columns(p, "v", DType::F64, true).data<double>()[0] == 0.1);
  CHECK(csv_columns(p, "v", DType::F32, true).data<float>()[0] == 0.1f);
}

TEST_CASE("csv_columns as a vector needs exactly one column") {
  CHECK(error_of([] { csv_columns(table(), "a,b", DType::F32, true); }) ==
        "t.csv: column selection 'a,b' selects 2 columns, but a [rows]-shaped input takes exactly one");
}

TEST_CASE("csv_columns i32 needs whole numbers in range and names the cell") {
  CsvTable t = parse_csv("x,label\n1,0\n2,  1.5\n", "i.csv");
  CHECK(error_of([&] { csv_columns(t, "label", DType::I32, true); }) ==
        "i.csv:3:5: value 1.5 in column 'label' is not a whole number, as i32 data needs");
  CHECK(values_of(csv_columns(t, "x", DType::I32, true)) == std::vector<double>{1, 2});
  CsvTable r = parse_csv("n\n-2147483648\n2147483647\n2.0\n-0\n", "r.csv");
  CHECK(values_of(csv_columns(r, "n", DType::I32, true)) == std::vector<double>{-2147483648.0, 2147483647.0, 2, 0});
  CsvTable big = parse_csv("n\n1\n2147483648\n", "big.csv");
  CHECK(error_of([&] { csv_columns(big, "0", DType::I32, true); }) ==
        "big.csv:3:1: value 2147483648 in column 'n' is outside the i32 range");
  CsvTable small = parse_csv("m,n\n1,-2147483649\n", "small.csv");
  CHECK(error_of([&] { csv_columns(small, "*", DType::I32, false); }) ==
        "small.csv:2:3: value -2147483649 in column 'n' is outside the i32 range");
  CsvTable tiny = parse_csv("n\n1e-300\n", "tiny.csv");
  CHECK(error_of([&] { csv_columns(tiny, "n", DType::I32, true); }) ==
        "tiny.csv:2:1: value 1e-300 in column 'n' is not a whole number, as i32 data needs");
}

TEST_CASE("csv_columns f32 needs values within the f32 range") {
  CsvTable t = parse_csv("x\n3.4e38\n-1e39\n", "f.csv");
  CHECK(error_of([&] { csv_columns(t, "x", DType::F32, true); }) == "f.csv:3:1: value -1e+39 in column 'x' is outside the f32 range");
  CHECK(values_of(csv_columns(t, "x", DType::F64, true)) == std::vector<double>{3.4e38, -1e39});
}

TEST_CASE("the digits example reads as 1797 rows of 64 pixels and a label") {
  CsvTable t = read_csv(GRADC_EXAMPLES_DATA "/digits.csv");
  REQUIRE(t.rows() == 1797);
  REQUIRE(t.cols() == 65);
  CHECK(t.header.front() == "p0");
  CHECK(t.header.back() == "label");
  Tensor x = csv_columns(t, "!label", DType::F32, false);
  CHECK(x.type_string() == "f32[1797, 64]");
  // The first row: 0,0,5,13,9,1,0,0,... label 0.
  CHECK(x.get(2) == 5);
  CHECK(x.get(3) == 13);
  for (int64_t i = 0; i < x.numel(); ++i) REQUIRE((x.get(i) >= 0 && x.get(i) <= 16 && x.get(i) == std::floor(x.get(i))));
  CHECK(values_of(csv_columns(t, "0-63", DType::F32, false)) == values_of(x));
  Tensor y = csv_columns(t, "label", DType::I32, true);
  CHECK(y.type_string() == "i32[1797]");
  std::vector<int> count(10, 0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    int32_t c = y.data<int32_t>()[i];
    REQUIRE((c >= 0 && c <= 9));
    ++count[static_cast<size_t>(c)];
  }
  for (int c : count) CHECK(c > 170);  // every digit, about 180 of each
  CHECK(y.data<int32_t>()[0] == 0);
  CHECK(y.data<int32_t>()[1] == 1);
  CHECK(t.row_line.back() == 1798);
}

TEST_CASE("the iris example reads as 150 rows of 4 features and 3 classes") {
  CsvTable t = read_csv(GRADC_EXAMPLES_DATA "/iris.csv");
  REQUIRE(t.rows() == 150);
  CHECK(t.header == std::vector<std::string>{"sepal_length", "sepal_width", "petal_length", "petal_width", "label"});
  Tensor x = csv_columns(t, "!label", DType::F64, false);
  CHECK(x.type_string() == "f64[150, 4]");
  CHECK(values_of(x).at(0) == 5.1);
  CHECK(values_of(x).at(1) == 3.5);
  CHECK(values_of(x).at(2) == 1.4);
  CHECK(values_of(x).at(3) == 0.2);
  CHECK(values_of(csv_columns(t, "0-3", DType::F64, false)) == values_of(x));
  Tensor y = csv_columns(t, "label", DType::I32, true);
  std::vector<int> count(3, 0);
  for (int64_t i = 0; i < y.numel(); ++i) {
    int32_t c = y.data<int32_t>()[i];
    REQUIRE((c >= 0 && c <= 2));
    ++count[static_cast<size_t>(c)];
  }
  CHECK(count == std::vector<int>{50, 50, 50});
}

}  // namespace
}  // namespace gradc
