// NumPy .npy files: every format version and dtype on hand-built files,
// Fortran order, int64 narrowing, and malformed files.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "runtime/tensor_io.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::bytes_of;
using test::check_style;
using test::error_of;
using test::npy_file;

const std::string kWhat = "a.npy";

Tensor parse(std::string_view bytes) {
  return test::on_exact_copy(bytes, [](std::string_view b) { return parse_npy(b, kWhat); });
}

void expect_bad(const std::string& bytes, std::initializer_list<std::string> parts) {
  std::string msg = error_of([&] { parse(bytes); });
  check_style(msg, kWhat);
  for (const std::string& p : parts) CHECK_THAT(msg, Catch::Contains(p));
}

// The header numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
std::string dict(const std::string& descr, const std::string& shape, bool fortran = false) {
  return fmt::format("{{'descr': '{}', 'fortran_order': {}, 'shape': {}, }}", descr, fortran ? "True" : "False", shape);
}

TEST_CASE("npy reads every format version and dtype") {
  for (int version : {1, 2, 3}) {
    INFO("version " << version);
    Tensor f4 = parse(npy_file(version, dict("<f4", "(2, 3)"), bytes_of<float>({0, 1.5f, 2, 3, 4, -5})));
    CHECK(f4.type_string() == "f32[2, 3]");
    CHECK(f4.get(1) == 1.5);
    CHECK(f4.get(5) == -5);
    Tensor f8 = parse(npy_file(version, dict("<f8", "(3,)"), bytes_of<double>({0.1, 0.2, 1e300})));
    CHECK(f8.type_string() == "f64[3]");
    CHECK(f8.data<double>()[2] == 1e300);
    Tensor i4 = parse(npy_file(version, dict("<i4", "(2,)"), bytes_of<int32_t>({-7, INT32_MAX})));
    CHECK(i4.type_string() == "i32[2]");
    CHECK(i4.data<int32_t>()[1] == INT32_MAX);
    Tensor i8 = parse(npy_file(version, dict("<i8", "(1, 3)"), bytes_of<int64_t>({INT32_MIN, 0, 42})));
    CHECK(i8.type_string() == "i32[1, 3]");
    CHECK(i8.data<int32_t>()[0] == INT32_MIN);
    CHECK(i8.data<int32_t>()[2] == 42);
  }
  // The version-2 header length is a u32: a header over 64 KiB still works.
  std::string big = dict("<f4", "(1,)") + std::string(70000, ' ');
  CHECK(parse(npy_file(2, big, bytes_of<float>({9}))).get(0) == 9);
}

TEST_CASE("npy shapes: scalars, one dimension, empty arrays") {
  Tensor s = parse(npy_file(1, dict("<f8", "()"), bytes_of<double>({2.5})));
  CHECK(s.rank() == 0);
  CHECK(s.get(0) == 2.5);
  CHECK(parse(npy_file(1, dict("<f4", "(5,)"), std::string(20, '\0'))).type_string() == "f32[5]");
  CHECK(parse(npy_file(1, dict("<f4", "(0,)"), "")).numel() == 0);
  CHECK(parse(npy_file(1, dict("<i4", "(2, 0, 3)"), "")).type_string() == "i32[2, 0, 3]");
  // Python 2 wrote long integers with an L; other spellings numpy accepts.
  CHECK(parse(npy_file(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L), }", std::string(8, '\0'))).rank() == 2);
  CHECK(parse(npy_file(1, R"({"shape":(1,),"descr":"<f4","fortran_order":False})", std::string(4, '\0'))).numel() == 1);
  CHECK(parse(npy_file(1, dict("<f4", "( 2 , 1 , )"), std::string(8, '\0'))).type_string() == "f32[2, 1]");
}

TEST_CASE("npy byte order markers") {
  CHECK(parse(npy_file(1, dict("=f4", "(1,)"), bytes_of<float>({3}))).get(0) == 3);
  CHECK(parse(npy_file(1, dict("|i4", "(1,)"), bytes_of<int32_t>({3}))).get(0) == 3);
  CHECK(parse(npy_file(1, dict("f8", "(1,)"), bytes_of<double>({3}))).get(0) == 3);
  expect_bad(npy_file(1, dict(">f4", "(1,)"), "abcd"), {"big-endian dtype '>f4' is not supported", "astype('<f4')"});
  expect_bad(npy_file(1, dict(">i8", "(1,)"), std::string(8, '\0')), {"big-endian dtype '>i8'"});
  for (const char* d : {"<f2", "|u1", "|b1", "<i2", "<u4", "<c8", "|O", "<U3", "float32", ""}) {
    INFO("descr " << d);
    expect_bad(npy_file(1, dict(d, "(1,)"), "abcd"),
               {fmt::format("dtype '{}' is not supported (supported: <f4, <f8, <i4, <i8)", d)});
  }
  expect_bad(npy_file(1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "abcd"),
             {"structured dtypes are not supported"});
}

TEST_CASE("npy Fortran-ordered arrays are transposed to C order") {
  // a = [[0, 1, 2], [3, 4, 5]] in Fortran order: columns first.
  Tensor t = parse(npy_file(1, dict("<f4", "(2, 3)", true), bytes_of<float>({0, 3, 1, 4, 2, 5})));
  CHECK(t.type_string() == "f32[2, 3]");
  for (int i = 0; i < 6; ++i) CHECK(t.get(i) == i);

  // a[i, j, k] = 100 i + 10 j + k of shape (2, 3, 4), stored at i + 2 j + 6 k.
  std::vector<int64_t> fdata(24);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) fdata[i + 2 * j + 6 * k] = 100 * i + 10 * j + k;
  std::string raw(reinterpret_cast<const char*>(fdata.data()), fdata.size() * 8);
  Tensor c = parse(npy_file(3, dict("<i8", "(2, 3, 4)", true), raw));
  CHECK(c.type_string() == "i32[2, 3, 4]");
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k) CHECK(c.data<int32_t>()[i * 12 + j * 4 + k] == 100 * i + 10 * j + k);

  // Rank 0 and 1 are the same in both orders; empty arrays are fine.
  CHECK(parse(npy_file(1, dict("<f8", "(3,)", true), bytes_of<double>({1, 2, 3}))).get(2) == 3);
  CHECK(parse(npy_file(1, dict("<f8", "()", true), bytes_of<double>({7}))).get(0) == 7);
  CHECK(parse(npy_file(1, dict("<f4", "(0, 3)", true), "")).numel() == 0);
}

TEST_CASE("npy int64 is narrowed to i32, naming the first element out of range") {
  expect_bad(npy_file(1, dict("<i8", "(4,)"), bytes_of<int64_t>({1, 2, 3000000000, -3000000000})),
             {"element 2 is 3000000000, outside the i32 range"});
  expect_bad(npy_file(1, dict("<i8", "()"), bytes_of<int64_t>({INT64_MIN})), {"element 0 is -9223372036854775808"});
  // In Fortran order the index is numpy's a.flat index (C order): the value
  // stored second is a[1, 0], element 2.
  expect_bad(npy_file(1, dict("<i8", "(2, 2)", true), bytes_of<int64_t>({0, int64_t{1} << 40, 0, 0})),
             {"element 2 is 1099511627776"});
}

TEST_CASE("npy rejects damaged files with a clear message") {
  std::string good = npy_file(1, dict("<f4", "(2,)"), bytes_of<float>({1, 2}));
  expect_bad("", {"not a .npy file"});
  expect_bad("PK\x03\x04 zip file", {"not a .npy file"});
  expect_bad(std::string("\x93NUMPZ", 6) + good.substr(6), {"not a .npy file"});
  expect_bad(good.substr(0, 9), {"file is 9 bytes, too short"});
  expect_bad(std::string("\x93NUMPY\x02\x00\x10\x00\x00", 11), {"file is 11 bytes, too short"});
  std::string v4 = good;
  v4[6] = 4;
  expect_bad(v4, {"unsupported .npy format version 4.0 (supported: 1.0, 2.0, 3.0)"});
  std::string v11 = good;
  v11[7] = 1;
  expect_bad(v11, {"version 1.1"});
  std::string long_header = good;
  long_header[8] = '\xff', long_header[9] = '\xff';
  expect_bad(long_header, {"header length 65535 runs past the end of the file"});
  expect_bad(npy_file(1, dict("<f4", "(2,)"), bytes_of<float>({1})),
             {"data is 4 bytes, but shape (2,) of '<f4' needs 8 (the file is truncated)"});
  expect_bad(npy_file(1, dict("<f4", "(2,)"), bytes_of<float>({1, 2, 3})), {"needs 8 (trailing bytes)"});
  expect_bad(good.substr(0, good.size() - 1), {"truncated"});
  expect_bad(npy_file(1, dict("<f4", "(4294967296, 4294967296)"), ""), {"shape (4294967296, 4294967296) has too many elements"});
  expect_bad(npy_file(1, dict("<f4", "(99999999999999999999,)"), ""), {"shape entry 99999999999999999999 is too large"});
}

TEST_CASE("npy header syntax errors name the byte") {
  auto bad_header = [](const std::string& d, std::initializer_list<std::string> parts) {
    std::string msg = error_of([&] { parse(npy_file(1, d, std::string(4, '\0'))); });
    check_style(msg, kWhat);
    for (const std::string& p : parts) CHECK_THAT(msg, Catch::Contains(p));
  };
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1), }",
             {"invalid .npy header at byte", "shape (1) is not a tuple: write (1,)"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", {"negative"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1 2), }", {"expected ','"});
  bad_header("{'descr': '<f4', 'fortran_order': 0, 'shape': (1,), }", {"expected True or False"});
  bad_header("{'descr': '<f4', 'fortran_order': false, 'shape': (1,), }", {"expected True or False"});
  bad_header("{'descr': '<f4', 'shape': (1,), }", {"the .npy header has no 'fortran_order'"});
  bad_header("{'fortran_order': False, 'shape': (1,), }", {"no 'descr'"});
  bad_header("{'descr': '<f4', 'fortran_order': False}", {"no 'shape'"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", {"unexpected key 'extra'"});
  bad_header("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (1,)}", {"key 'descr' appears twice"});
  bad_header("{'descr': '<f4, 'fortran_order': False, 'shape': (1,)}", {"byte 27: expected ',', found 'f'"});
  bad_header("{'descr' '<f4'}", {"expected ':'"});
  bad_header("{'descr': '<f4\\x', 'fortran_order': False, 'shape': (1,)}", {"escapes"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)} junk", {"unexpected text after the closing '}'"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,)", {"expected ','", "end of the header"});
  bad_header("['descr', '<f4']", {"invalid .npy header at byte 10: expected '{'"});
  bad_header("", {"expected '{'"});
  bad_header("{'descr': '<f4', 'fortran_order': False, 'shape': (1,),,}", {"expected a quoted string"});
  bad_header("{'descr': '\xff\xfe', 'fortran_order': False, 'shape': (1,)}", {"dtype '\\xff\\xfe' is not supported"});
}

TEST_CASE("npy every truncation of a valid file is a DataError") {
  for (int version : {1, 2}) {
    std::string bytes = npy_file(version, dict("<i8", "(2, 2)", true), bytes_of<int64_t>({1, 2, 3, 4}));
    REQUIRE(parse(bytes).numel() == 4);
    for (size_t n = 0; n < bytes.size(); ++n) {
      INFO("version " << version << ", prefix of " << n << " bytes");
      check_style(error_of([&] { parse(std::string_view(bytes).substr(0, n)); }), kWhat);
    }
  }
}

}  // namespace
}  // namespace gradc
