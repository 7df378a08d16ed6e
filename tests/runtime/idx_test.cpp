// IDX files (MNIST's format), plain and gzip-compressed: every type code on
// hand-built files, and every way a file can be malformed or hostile (sizes
// that disagree with the data, huge claims, gzip bombs) as a DataError naming
// the file.
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>

#include "runtime/tensor_io.h"
#include "tests/common/idx_files.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::check_style;
using test::error_of;
using test::gzip;
using test::idx_file;

const std::string kWhat = "t10k-images-idx3-ubyte";

Tensor parse(std::string_view bytes) {
  return test::on_exact_copy(bytes, [](std::string_view b) { return parse_idx(b, kWhat); });
}

// The message of a bad file, plain and gzip-compressed alike.
void expect_bad(const std::string& bytes, std::initializer_list<std::string> parts) {
  for (const std::string& file : {bytes, gzip(bytes)}) {
    INFO((file == bytes ? "plain" : "gzip"));
    std::string msg = error_of([&] { parse(file); });
    check_style(msg, kWhat);
    for (const std::string& p : parts) CHECK_THAT(msg, Catch::Contains(p));
  }
}

TEST_CASE("idx reads every type code, plain and gzip-compressed") {
  std::string u8 = idx_file(0x08, {2, 3}, std::string("\x00\x01\x7f\x80\xfe\xff", 6));
  for (const std::string& file : {u8, gzip(u8)}) {
    Tensor t = parse(file);
    CHECK(t.type_string() == "f32[2, 3]");
    CHECK(t.get(0) == 0);
    CHECK(t.get(3) == 128);
    CHECK(t.get(5) == 255);  // no rescaling
  }
  Tensor i8 = parse(idx_file(0x09, {3}, std::string("\x01\x80\xff", 3)));
  CHECK(i8.type_string() == "f32[3]");
  CHECK((i8.get(0) == 1 && i8.get(1) == -128 && i8.get(2) == -1));
  Tensor i16 = parse(idx_file(0x0B, {2}, std::string("\x01\x02\xff\xfe", 4)));
  CHECK((i16.get(0) == 258 && i16.get(1) == -2));
  Tensor i32 = parse(idx_file(0x0C, {1, 2}, std::string("\x7f\xff\xff\xff\x80\x00\x00\x00", 8)));
  CHECK(i32.type_string() == "i32[1, 2]");
  CHECK((i32.data<int32_t>()[0] == INT32_MAX && i32.data<int32_t>()[1] == INT32_MIN));
  Tensor f32 = parse(idx_file(0x0D, {2}, std::string("\x3f\xc0\x00\x00\xff\x80\x00\x00", 8)));
  CHECK(f32.type_string() == "f32[2]");
  CHECK((f32.get(0) == 1.5 && f32.get(1) == -INFINITY));
  Tensor f64 = parse(idx_file(0x0E, {1}, std::string("\xc0\x04\x00\x00\x00\x00\x00\x00", 8)));
  CHECK(f64.type_string() == "f64[1]");
  CHECK(f64.get(0) == -2.5);
  // Empty data sets and four dimensions.
  CHECK(parse(idx_file(0x08, {0, 28, 28}, "")).type_string() == "f32[0, 28, 28]");
  CHECK(parse(idx_file(0x08, {1, 1, 2, 1}, std::string(2, '\x05'))).get(1) == 5);
}

TEST_CASE("idx: concatenated gzip members read as one stream, as gunzip reads them") {
  std::string file = idx_file(0x08, {4}, "abcd");
  Tensor t = parse(gzip(file.substr(0, 7)) + gzip(file.substr(7)));
  CHECK(t.type_string() == "f32[4]");
  CHECK(t.get(3) == 'd');
}

TEST_CASE("idx: a header that is not IDX, or not supported") {
  expect_bad("", {"is 0 bytes, too short for an IDX header"});
  expect_bad(std::string("\x00\x00\x08", 3), {"is 3 bytes, too short"});
  CHECK_THAT(error_of([] { parse(""); }), Catch::Contains(kWhat + ": file is 0 bytes"));
  CHECK_THAT(error_of([] { parse(gzip("")); }), Catch::Contains(kWhat + ": the decompressed data is 0 bytes"));
  expect_bad(std::string("\x00\x01\x08\x01", 4), {"not an IDX file (its first bytes are 00 01"});
  expect_bad("PK\x03\x04", {"not an IDX file (its first bytes are 50 4b"});
  for (unsigned char code : {0x00, 0x07, 0x0A, 0x0F, 0xFF}) {
    INFO("type code " << int(code));
    expect_bad(idx_file(code, {1}, "a"), {fmt::format("the IDX type code 0x{:02x} is not supported", code),
                                          "0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64"});
  }
  expect_bad(idx_file(0x08, {}, "a"), {"the IDX header has no dimensions"});
  expect_bad(idx_file(0x08, {1, 2, 3}, "").substr(0, 13), {"too short for an IDX header of 3 dimensions (16 bytes)"});
}

TEST_CASE("idx: the data must be exactly the header's size") {
  expect_bad(idx_file(0x08, {3, 2, 2}, std::string(11, 'a')),
             {"data is 11 bytes, but shape [3, 2, 2] of u8 needs 12 (the file is truncated)"});
  expect_bad(idx_file(0x0D, {2}, std::string(7, 'a')), {"data is 7 bytes, but shape [2] of f32 needs 8"});
  std::string trailing = idx_file(0x08, {3, 2, 2}, std::string(13, 'a'));
  CHECK_THAT(error_of([&] { parse(trailing); }), Catch::Contains("data is 13 bytes, but shape [3, 2, 2] of u8 needs 12 (trailing bytes)"));
  CHECK_THAT(error_of([&] { parse(gzip(trailing)); }),
             Catch::Contains("the gzip data holds more than the 12 bytes that shape [3, 2, 2] of u8 needs (trailing bytes)"));
}

TEST_CASE("idx: huge claimed sizes fail before anything is allocated") {
  // 2^32-1 cubed elements, and a product that would overflow 64 bits.
  expect_bad(idx_file(0x08, {0xffffffff, 0xffffffff, 0xffffffff}, "a"),
             {"the IDX header claims shape [4294967295, 4294967295, 4294967295] of u8: more than the 16 GiB"});
  // 2^32 f64 elements are 32 GiB as a tensor.
  expect_bad(idx_file(0x0E, {65536, 65536}, "a"), {"more than the 16 GiB a tensor of data may hold"});
  // Within the limit, but more than a small gzip file can inflate to.
  std::string claim = gzip(idx_file(0x08, {60000, 28, 28}, "abc"));
  CHECK_THAT(error_of([&] { parse(claim); }),
             Catch::Contains(fmt::format("the IDX header claims shape [60000, 28, 28] of u8 (47040000 bytes), more than "
                                         "{} bytes of gzip data can hold",
                                         claim.size())));
}

TEST_CASE("idx: gzip bombs, truncated and corrupt gzip data") {
  // 100 bytes claimed, 10 MB of zeros inflated: decompression stops one byte
  // past the claim.
  std::string bomb = gzip(idx_file(0x08, {100}, std::string(10 << 20, '\0')));
  CHECK(bomb.size() < 20000);
  CHECK_THAT(error_of([&] { parse(bomb); }), Catch::Contains("the gzip data holds more than the 100 bytes"));
  std::string file = gzip(idx_file(0x08, {300}, std::string(300, 'x')));
  CHECK_THAT(error_of([&] { parse(file.substr(0, file.size() - 4)); }),
             Catch::Contains("the gzip data is truncated (it ends before its end marker)"));
  CHECK_THAT(error_of([&] { parse(file.substr(0, 12)); }), Catch::Contains("the gzip data is truncated"));
  std::string corrupt = file;
  corrupt[12] = static_cast<char>(corrupt[12] ^ 0xff);
  corrupt[13] = static_cast<char>(corrupt[13] ^ 0x55);
  CHECK_THAT(error_of([&] { parse(corrupt); }), Catch::Contains(kWhat + ": the gzip data"));
  CHECK_THAT(error_of([&] { parse(file + "junk"); }), Catch::Contains("bytes follow the end of the gzip data"));
  std::string bad_crc = file;
  bad_crc[bad_crc.size() - 6] = static_cast<char>(bad_crc[bad_crc.size() - 6] ^ 1);
  CHECK_THAT(error_of([&] { parse(bad_crc); }), Catch::Contains("the gzip data is corrupt (incorrect data check)"));
}

TEST_CASE("idx files: named or recognized by their first bytes") {
  for (const char* name : {"train-images-idx3-ubyte", "t10k-labels-idx1-ubyte.gz", "train-labels.idx1-ubyte",
                           "dir/EMNIST-TRAIN-IMAGES-IDX3-UBYTE.GZ", "x.idx", "x.idx3", "x.idx.gz"})
    CHECK(is_idx(name, ""));
  for (const char* name : {"data.idx3.csv", "x.csv", "x-ubyte", "idx", "t10k-labels-idx-ubyte", "a.gz"}) {
    INFO(name);
    CHECK_FALSE(is_idx(name, ""));
  }
  std::string file = idx_file(0x08, {1}, "a");
  CHECK(is_idx("x.bin", file));
  CHECK(is_idx("x.bin", gzip(file)));
  CHECK(is_idx("x.bin", gzip(file).substr(0, 20)));  // only the start of a larger file
  CHECK_FALSE(is_idx("x.bin", gzip("label,x\n1,2\n")));
  CHECK_FALSE(is_idx("x.bin", idx_file(0x08, {}, "")));
  CHECK_FALSE(is_idx("x.bin", "\x1f\x8b"));
}

TEST_CASE("idx files on disk: read_idx, and a size checked before the file is read") {
  test::TempDir dir;
  auto write = [&](const std::string& name, const std::string& bytes) {
    test::write_bytes(dir / name, bytes);
    return dir / name;
  };
  std::string img = write("img-idx3-ubyte.gz", gzip(idx_file(0x08, {2, 1, 2}, "\x01\x02\x03\x04")));
  Tensor t = read_idx(img);
  CHECK(t.type_string() == "f32[2, 1, 2]");
  CHECK(t.get(3) == 4);
  CHECK(read_tensor_file(img, "x").front().second.type_string() == "f32[2, 1, 2]");
  // A sparse 1 GiB file whose header claims 4 bytes: rejected from its size.
  std::string big = write("big-idx1-ubyte", idx_file(0x08, {4}, "abcd"));
  std::filesystem::resize_file(big, uint64_t{1} << 30);
  CHECK_THAT(error_of([&] { read_idx(big); }),
             Catch::Contains(big + ": data is 1073741816 bytes, but shape [4] of u8 needs 4 (trailing bytes)"));
  CHECK_THAT(error_of([&] { read_idx(dir / "missing-idx1-ubyte"); }), Catch::Contains("cannot open"));
  CHECK_THAT(error_of([&] { read_idx(dir.path().string()); }), Catch::Contains("is a directory"));
  CHECK(read_file_head(img, 2) == "\x1f\x8b");
  CHECK(read_file_head(dir.path().string(), 2).empty());
  CHECK(read_file_head("/dev/zero", 2).empty());
}

}  // namespace
}  // namespace gradc
