// safetensors (SPEC 4): round trips, the Python library's exact layout, and
// every way a header can be malformed (each a DataError naming file and tensor).
#include <fmt/format.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <limits>
#include <nlohmann/json.hpp>

#include "runtime/tensor_io.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::bytes_of;
using test::check_style;
using test::error_of;
using test::st_file;

const std::string kWhat = "in.safetensors";

NamedTensors parse(std::string_view bytes, TensorFileMetadata* meta = nullptr) {
  return test::on_exact_copy(bytes, [&](std::string_view b) { return parse_safetensors(b, kWhat, meta); });
}

// Parsing `bytes` fails with a message in house style containing every part.
void expect_bad(const std::string& bytes, std::initializer_list<std::string> parts) {
  std::string msg = error_of([&] { parse(bytes); });
  check_style(msg, kWhat);
  for (const std::string& p : parts) CHECK_THAT(msg, Catch::Contains(p));
}

// A file with one header entry for tensor 'x' (given as JSON) and `data`.
std::string one(const std::string& entry, std::string_view data) { return st_file("{\"x\":" + entry + "}", data); }

Tensor filled(DType t, std::vector<int64_t> shape, double start) {
  Tensor x(t, std::move(shape));
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, start + 0.5 * static_cast<double>(i) * (t == DType::I32 ? 2 : 1));
  return x;
}

TEST_CASE("safetensors round trip of f32, f64 and i32 tensors of several shapes") {
  NamedTensors ts;
  ts.emplace_back("scalar_f32", filled(DType::F32, {}, 3.25));
  ts.emplace_back("vec", filled(DType::F32, {5}, -1));
  ts.emplace_back("w.f64", filled(DType::F64, {2, 3}, 0.1));
  ts.emplace_back("idx", filled(DType::I32, {2, 3, 4}, -7));
  ts.emplace_back("empty", filled(DType::F32, {0}, 0));
  ts.emplace_back("empty3", filled(DType::I32, {3, 0, 2}, 0));
  ts.emplace_back("scalar_f64", filled(DType::F64, {}, 1e300));
  ts.emplace_back("odd", filled(DType::F32, {3}, 9));  // 12 bytes: later 8-byte data would be misaligned
  ts.emplace_back("late_f64", filled(DType::F64, {1}, 2));
  ts.emplace_back("caf\xc3\xa9 \"quoted\"\n", filled(DType::I32, {1}, 4));
  // Special values travel bit for bit.
  float* v = ts[1].second.data<float>();
  v[0] = std::numeric_limits<float>::quiet_NaN();
  v[1] = -0.0f;
  v[2] = std::numeric_limits<float>::infinity();
  v[3] = std::numeric_limits<float>::denorm_min();

  TensorFileMetadata meta = {{"format", "pt"}, {"note", "line\nbreak \xe2\x82\xac"}, {"", "empty key"}};
  for (bool with_meta : {false, true}) {
    INFO("with metadata: " << with_meta);
    std::string bytes = serialize_safetensors(ts, with_meta ? meta : TensorFileMetadata{});
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);
    CHECK((bytes.find("__metadata__") != std::string::npos) == with_meta);

    TensorFileMetadata got_meta = {{"stale", "entry"}};
    NamedTensors back = parse(bytes, &got_meta);
    REQUIRE(back.size() == ts.size());
    for (size_t i = 0; i < ts.size(); ++i) {
      INFO("tensor " << ts[i].first);
      CHECK(back[i].first == ts[i].first);
      CHECK(test::same_tensor(back[i].second, ts[i].second));
    }
    CHECK(got_meta == (with_meta ? meta : TensorFileMetadata{}));

    // Every tensor starts at a multiple of its element size.
    nlohmann::json header = nlohmann::json::parse(std::string_view(bytes).substr(8, n));
    for (const auto& [key, entry] : header.items()) {
      if (key == "__metadata__") continue;
      int64_t begin = entry.at("data_offsets").at(0).get<int64_t>();
      int64_t elem = entry.at("dtype").get<std::string>() == "F64" ? 8 : 4;
      CHECK(begin % elem == 0);
    }
  }
}

TEST_CASE("safetensors reads the Python library's layout, padding and I64 included") {
  // As safetensors.torch.save_file writes {"weight": f32[2,2], "bias": f32[2],
  // "a_f64": f64[2], "step": i64[]} with metadata {"format": "pt"}: compact
  // JSON, metadata first, 8-byte dtypes first then by name, header padded
  // with spaces to a multiple of 8.
  std::string header = R"({"__metadata__":{"format":"pt"},"a_f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                       R"("step":{"dtype":"I64","shape":[],"data_offsets":[16,24]},)"
                       R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[24,32]},)"
                       R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[32,48]}})";
  REQUIRE(header.size() % 8 != 0);  // so that the padding is exercised
  header.append(8 - header.size() % 8, ' ');
  std::string data =
      bytes_of<double>({0.25, -8}) + bytes_of<int64_t>({1000}) + bytes_of<float>({0.5f, -1}) + bytes_of<float>({1, 2, 3, 4});
  TensorFileMetadata meta;
  NamedTensors ts = parse(st_file(header, data), &meta);
  REQUIRE(ts.size() == 4);
  CHECK(ts[0].first == "a_f64");
  CHECK(ts[0].second.type_string() == "f64[2]");
  CHECK(ts[0].second.get(1) == -8);
  CHECK(ts[1].first == "step");
  CHECK(ts[1].second.type_string() == "i32[]");
  CHECK(ts[1].second.data<int32_t>()[0] == 1000);
  CHECK(ts[2].second.type_string() == "f32[2]");
  CHECK(ts[3].first == "weight");
  CHECK(ts[3].second.type_string() == "f32[2, 2]");
  CHECK(ts[3].second.get(3) == 4);
  CHECK(meta == TensorFileMetadata{{"format", "pt"}});
  REQUIRE(find_tensor(ts, "bias") != nullptr);
  CHECK(find_tensor(ts, "bias")->get(0) == 0.5);
}

TEST_CASE("safetensors writes byte for byte what the Python library writes") {
  std::string header = R"({"__metadata__":{"format":"pt"},"a_f64":{"dtype":"F64","shape":[2],"data_offsets":[0,16]},)"
                       R"("bias":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
                       R"("weight":{"dtype":"F32","shape":[2,2],"data_offsets":[24,40]}})";
  REQUIRE(header.size() % 8 != 0);
  header.append(8 - header.size() % 8, ' ');
  std::string python =
      st_file(header, bytes_of<double>({0.25, -8}) + bytes_of<float>({0.5f, -1}) + bytes_of<float>({1, 2, 3, 4}));

  NamedTensors ts;
  ts.emplace_back("a_f64", Tensor(DType::F64, {2}));
  ts.emplace_back("bias", Tensor(DType::F32, {2}));
  ts.emplace_back("weight", Tensor(DType::F32, {2, 2}));
  ts[0].second.set(0, 0.25), ts[0].second.set(1, -8);
  ts[1].second.set(0, 0.5), ts[1].second.set(1, -1);
  for (int i = 0; i < 4; ++i) ts[2].second.set(i, i + 1);
  CHECK(serialize_safetensors(ts, {{"format", "pt"}}) == python);
}

TEST_CASE("safetensors I64 data becomes i32 with a range check") {
  std::string entry = R"({"dtype":"I64","shape":[3],"data_offsets":[0,24]})";
  NamedTensors ok = parse(one(entry, bytes_of<int64_t>({INT32_MIN, -1, INT32_MAX})));
  CHECK(ok[0].second.dtype() == DType::I32);
  CHECK(ok[0].second.data<int32_t>()[0] == INT32_MIN);
  CHECK(ok[0].second.data<int32_t>()[2] == INT32_MAX);
  expect_bad(one(entry, bytes_of<int64_t>({1, int64_t{1} << 32, -(int64_t{1} << 40)})),
             {"tensor 'x'", "element 1", "4294967296", "i32 range"});
  expect_bad(one(entry, bytes_of<int64_t>({0, 0, int64_t{INT32_MIN} - 1})), {"element 2", "-2147483649"});
}

TEST_CASE("safetensors rejects bad header lengths before reading further") {
  expect_bad("", {"file is 0 bytes", "too short"});
  expect_bad("abc", {"file is 3 bytes"});
  expect_bad(test::le(200'000'000, 8) + "{}", {"header length 200000000", "limit of 100000000"});
  expect_bad(test::le(UINT64_MAX, 8) + "{}", {"header length 18446744073709551615", "limit"});
  expect_bad(test::le(100, 8) + "{}", {"header length 100 runs past the end of the file (2 bytes"});
  expect_bad(test::le(0, 8), {"invalid json in the header at byte 8", "end of input"});
}

TEST_CASE("safetensors rejects invalid json and utf-8 in the header") {
  expect_bad(st_file("{\"\xff\":{}}", ""), {"invalid json in the header at byte 10", "invalid utf-8"});
  expect_bad(one(R"({"dtype":"F32",)", ""), {"tensor 'x': invalid json in the header at byte 28", "trailing comma before '}'"});
  expect_bad(st_file(R"({"x":{"dtype":"F32")", ""), {"tensor 'x': invalid json in the header", "end of input inside an object"});
  expect_bad(st_file(R"({"x" {}})", ""), {"at byte 13", "expected ':'"});
  expect_bad(st_file("{}   x", ""), {"at byte 13", "after the json value"});
  expect_bad(st_file("[1, 2]", ""), {"header must be a json object, not an array"});
  expect_bad(st_file("\"text\"", ""), {"header must be a json object, not a string"});
  expect_bad(one(std::string(100000, '['), ""), {"tensor 'x': entry must be an object", "not an array"});
  expect_bad(st_file(R"({"__metadata__":{"a":"\ud800"}})", ""), {"surrogate"});
}

TEST_CASE("safetensors header json: escapes, surrogate pairs, exact integers, whitespace") {
  // Names with escapes and \u escapes (a surrogate pair included) read as UTF-8.
  std::string e = R"({"dtype":"I32","shape":[1],"data_offsets":[0,4]})";
  NamedTensors ts = parse(st_file(R"({"a\"b\\c\n\u00e9\ud83d\ude00":)" + e + "}", bytes_of<int32_t>({7})));
  REQUIRE(ts.size() == 1);
  CHECK(ts[0].first == "a\"b\\c\n\xc3\xa9\xf0\x9f\x98\x80");
  // Whitespace anywhere JSON allows it; -0 is zero; the largest int64 is exact.
  CHECK(parse(st_file(" {\t\"x\" :\n{ \"dtype\" : \"F32\" , \"shape\" : [ -0 ] , \"data_offsets\" : [ 0 , 0 ] } }\r\n", ""))
            .size() == 1);
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offsets":[9223372036854775807,9223372036854775807]})", "abcd"),
             {"data_offsets [9223372036854775807, 9223372036854775807] lie outside"});
  expect_bad(one(R"({"dtype":"F32","shape":[9223372036854775808],"data_offsets":[0,4]})", "abcd"),
             {"shape entry 9223372036854775808 is too large"});
  expect_bad(one(R"({"dtype":"F32","shape":[-99999999999999999999],"data_offsets":[0,4]})", "abcd"),
             {"shape entry -99999999999999999999 is negative"});
  // What strict JSON forbids.
  expect_bad(st_file("{\"a\nb\":{}}", ""), {"invalid json in the header", "control character"});
  expect_bad(st_file(R"({"x":1,})", ""), {"entry must be an object"});
  expect_bad(one(R"({"dtype":"F32","shape":[1,],"data_offsets":[0,4]})", "abcd"), {"trailing comma before ']'"});
  expect_bad(one(R"({"dtype":"F32","shape":[01],"data_offsets":[0,4]})", "abcd"), {"invalid json in the header"});
  expect_bad(one(R"({"dtype":"F32","shape":[NaN],"data_offsets":[0,4]})", "abcd"), {"invalid json in the header"});
  expect_bad(one(R"({"dtype":'F32',"shape":[],"data_offsets":[0,4]})", "abcd"), {"invalid json in the header"});
  expect_bad(st_file("/* c */ {}", ""), {"invalid json in the header at byte 8"});
  expect_bad(st_file("{} {}", ""), {"at byte 11", "after the json value"});
  expect_bad(st_file(R"({"__metadata__":{"a":"\udc00"}})", ""), {"surrogate"});
  expect_bad(st_file(R"({"__metadata__":{"a":"\u12g4"}})", ""), {"invalid json in the header"});
  // Deep nesting is rejected by the grammar before the parser goes deep.
  expect_bad(st_file(R"({"__metadata__":{"a":)" + std::string(100000, '['), ""), {"__metadata__ value of 'a'", "not an array"});
  expect_bad(st_file(std::string(100000, '['), ""), {"header must be a json object, not an array"});
}

TEST_CASE("safetensors entries must have exactly dtype, shape and data_offsets of the right types") {
  expect_bad(one(R"({"shape":[2],"data_offsets":[0,8]})", bytes_of<float>({1, 2})), {"tensor 'x': missing key 'dtype'"});
  expect_bad(one(R"({"dtype":"F32","data_offsets":[0,8]})", bytes_of<float>({1, 2})), {"tensor 'x': missing key 'shape'"});
  expect_bad(one(R"({"dtype":"F32","shape":[2]})", bytes_of<float>({1, 2})), {"tensor 'x': missing key 'data_offsets'"});
  expect_bad(one("5", ""), {"tensor 'x': entry must be an object", "not a number"});
  expect_bad(one(R"({"dtype":32,"shape":[],"data_offsets":[0,4]})", "abcd"),
             {"tensor 'x': dtype must be a string, not a number"});
  expect_bad(one(R"({"dtype":"F32","shape":"2","data_offsets":[0,4]})", "abcd"), {"tensor 'x': shape must be an array"});
  expect_bad(one(R"({"dtype":"F32","shape":[1,"2"],"data_offsets":[0,4]})", "abcd"),
             {"tensor 'x': shape must hold non-negative integers, not a string"});
  expect_bad(one(R"({"dtype":"F32","shape":[-1],"data_offsets":[0,4]})", "abcd"), {"tensor 'x': shape entry -1 is negative"});
  expect_bad(one(R"({"dtype":"F32","shape":[1.5],"data_offsets":[0,4]})", "abcd"), {"shape entry 1.5 is not an integer"});
  expect_bad(one(R"({"dtype":"F32","shape":[1e0],"data_offsets":[0,4]})", "abcd"), {"shape entry 1e0 is not an integer"});
  expect_bad(one(R"({"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,4]})", "abcd"),
             {"shape entry 99999999999999999999 is too large"});
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offsets":{}})", "abcd"), {"tensor 'x': data_offsets must be an array"});
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offsets":[4]})", "abcd"),
             {"data_offsets must be [begin, end], not 1 numbers"});
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offsets":[0,4,4]})", "abcd"), {"not 3 numbers"});
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offsets":[-4,0]})", "abcd"), {"data_offsets entry -4 is negative"});
  expect_bad(one(R"({"dtype":"F32","dtype":"F32","shape":[],"data_offsets":[0,4]})", "abcd"), {"key 'dtype' appears twice"});
  expect_bad(one(R"({"dtype":"F32","shape":[],"data_offset":[0,4]})", "abcd"), {"tensor 'x': unknown key 'data_offset'"});
}

TEST_CASE("safetensors offsets must lie inside the data section and match the shape") {
  expect_bad(one(R"({"dtype":"F32","shape":[25],"data_offsets":[0,100]})", std::string(64, '\0')),
             {"in.safetensors: tensor 'x': data_offsets [0, 100] lie outside the data section of 64 bytes"});
  expect_bad(one(R"({"dtype":"F32","shape":[1],"data_offsets":[8,4]})", std::string(8, '\0')),
             {"tensor 'x': data_offsets [8, 4] end before they begin"});
  expect_bad(one(R"({"dtype":"F32","shape":[2,3],"data_offsets":[0,20]})", std::string(20, '\0')),
             {"tensor 'x': shape [2, 3] of dtype F32 needs 24 bytes, but data_offsets [0, 20] hold 20"});
  expect_bad(one(R"({"dtype":"F64","shape":[2],"data_offsets":[0,8]})", std::string(8, '\0')), {"needs 16 bytes"});
  expect_bad(one(R"({"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,8]})", std::string(8, '\0')),
             {"tensor 'x': shape [4294967296, 4294967296, 16] has too many elements"});
  expect_bad(one(R"({"dtype":"F32","shape":[9223372036854775807,0],"data_offsets":[0,0]})", ""), {"too many elements"});
  expect_bad(one(R"({"dtype":"F32","shape":[1],"data_offsets":[18446744073709551612,18446744073709551616]})", "abcd"),
             {"tensor 'x': data_offsets entry 18446744073709551612 is too large"});
}

TEST_CASE("safetensors tensors must tile the data section: no overlap, no holes") {
  auto entry = [](const char* name, int begin, int end) {
    return fmt::format(R"("{}":{{"dtype":"F32","shape":[{}],"data_offsets":[{},{}]}})", name, (end - begin) / 4, begin, end);
  };
  expect_bad(st_file("{" + entry("a", 0, 8) + "," + entry("b", 4, 12) + "}", std::string(12, '\0')),
             {"tensor 'b': data_offsets [4, 12] overlap tensor 'a' at [0, 8]"});
  expect_bad(st_file("{" + entry("a", 0, 8) + "," + entry("b", 0, 8) + "}", std::string(8, '\0')), {"overlap tensor 'a'"});
  expect_bad(st_file("{" + entry("b", 12, 20) + "," + entry("a", 0, 8) + "}", std::string(20, '\0')),
             {"tensor 'b': bytes [8, 12) of the data section before it belong to no tensor"});
  expect_bad(st_file("{" + entry("a", 0, 8) + "}", std::string(12, '\0')),
             {"bytes [8, 12) at the end of the data section belong to no tensor"});
  expect_bad(st_file("{}", "xx"), {"bytes [0, 2) at the end"});
  // An empty tensor inside another one overlaps it, as in the reference implementation.
  expect_bad(st_file("{" + entry("a", 0, 8) + "," + entry("z", 4, 4) + "}", std::string(8, '\0')), {"tensor 'z'", "overlap"});
  // Empty tensors at the edges, and tensors listed out of data order, are fine.
  NamedTensors ts =
      parse(st_file("{" + entry("b", 8, 16) + "," + entry("e", 16, 16) + "," + entry("a", 0, 8) + "," + entry("e0", 0, 0) + "}",
                    bytes_of<float>({1, 2, 3, 4})));
  REQUIRE(ts.size() == 4);
  CHECK(ts[0].first == "b");
  CHECK(ts[0].second.get(0) == 3);
  CHECK(ts[1].second.numel() == 0);
  CHECK(ts[2].second.get(1) == 2);
  CHECK(parse(st_file("{}", "")).empty());
}

TEST_CASE("safetensors names must be unique and non-empty, dtypes supported") {
  std::string e = R"({"dtype":"F32","shape":[],"data_offsets":[0,4]})";
  expect_bad(st_file(R"({"a":)" + e + R"(,"a":)" + e + "}", "abcd"), {"tensor 'a': name appears twice in the header"});
  expect_bad(st_file(R"({"":)" + e + "}", "abcd"), {"a tensor has an empty name"});
  for (const char* dt : {"F16", "BF16", "BOOL", "U8", "I8", "I16", "U32", "U64", "F8_E4M3", "f32", "complex"}) {
    INFO("dtype " << dt);
    expect_bad(one(fmt::format(R"({{"dtype":"{}","shape":[],"data_offsets":[0,4]}})", dt), "abcd"),
               {fmt::format("tensor 'x': dtype '{}' is not supported (supported: F32, F64, I32, I64)", dt)});
  }
  // Names are shown escaped, so a message stays on one line.
  expect_bad(st_file(R"({"a\nb":{"dtype":"F16","shape":[],"data_offsets":[0,2]}})", "ab"), {"tensor 'a\\nb'"});
}

TEST_CASE("safetensors __metadata__ must be one object of strings") {
  std::string e = R"("x":{"dtype":"F32","shape":[],"data_offsets":[0,4]})";
  TensorFileMetadata meta;
  CHECK(parse(st_file(R"({"__metadata__":null,)" + e + "}", "abcd"), &meta).size() == 1);
  CHECK(meta.empty());
  expect_bad(st_file(R"({"__metadata__":[],)" + e + "}", "abcd"), {"__metadata__ must be an object of strings, not an array"});
  expect_bad(st_file(R"({"__metadata__":{"k":1},)" + e + "}", "abcd"),
             {"__metadata__ value of 'k' must be a string, not a number"});
  expect_bad(st_file(R"({"__metadata__":{"k":"1","k":"2"},)" + e + "}", "abcd"), {"__metadata__ key 'k' appears twice"});
  expect_bad(st_file(R"({"__metadata__":{},"__metadata__":{},)" + e + "}", "abcd"), {"__metadata__ appears twice"});
}

TEST_CASE("safetensors serialize rejects names a reader would reject") {
  Tensor t(DType::F32, {1});
  auto msg = [&](NamedTensors ts, TensorFileMetadata meta = {}) { return error_of([&] { serialize_safetensors(ts, meta); }); };
  CHECK_THAT(msg({{"", t}}), Catch::Contains("empty name"));
  CHECK_THAT(msg({{"a", t}, {"a", t}}), Catch::Contains("cannot save tensor 'a' twice"));
  CHECK_THAT(msg({{"__metadata__", t}}), Catch::Contains("reserved"));
  CHECK_THAT(msg({{"bad\xff", t}}), Catch::Contains("not valid utf-8"));
  CHECK_THAT(msg({{"a", t}}, {{"k", "1"}, {"k", "2"}}), Catch::Contains("metadata key 'k' appears twice"));
  CHECK_THAT(msg({{"a", t}}, {{"k", "\xc0\x80"}}), Catch::Contains("not valid utf-8"));
  CHECK(msg({{"a", t}}) == "<no error>");
}

// A file with metadata and three tensors, for the sweeps below.
std::string sample_file() {
  NamedTensors ts;
  ts.emplace_back("w", filled(DType::F32, {2, 3}, 1));
  ts.emplace_back("b", filled(DType::F64, {3}, 2));
  ts.emplace_back("n", filled(DType::I32, {}, 5));
  return serialize_safetensors(ts, {{"format", "gradc"}});
}

// A file is read header first: a header that does not describe the data
// section fails before the data is read (a sparse 4 GiB file whose header is
// `{}` is refused at once, not after reading 4 GiB), and a file reads back as
// the same bytes parse.
TEST_CASE("read_safetensors checks the header against the file's size before reading the data") {
  test::TempDir dir;
  std::string path = dir / "f.safetensors";
  std::string bytes = sample_file();
  test::write_bytes(path, bytes);
  TensorFileMetadata m1, m2;
  NamedTensors a = read_safetensors(path, &m1), b = parse(bytes, &m2);
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) CHECK((a[i].first == b[i].first && a[i].second.type_string() == b[i].second.type_string()));
  CHECK(m1 == m2);
  for (size_t n : {size_t{0}, size_t{7}, size_t{8}, size_t{20}, bytes.size() - 1}) {
    test::write_bytes(path, bytes.substr(0, n));
    CHECK(error_of([&] { read_safetensors(path); }) == error_of([&] { parse_safetensors(bytes.substr(0, n), path); }));
  }
  test::write_bytes(path, st_file("{}      ", ""));  // padded to 8 bytes, as writers do
  std::filesystem::resize_file(path, uint64_t{4} << 30);  // sparse: takes no disk space
  auto start = std::chrono::steady_clock::now();
  CHECK(error_of([&] { read_safetensors(path); }) ==
        path + ": bytes [0, 4294967280) at the end of the data section belong to no tensor");
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(2));
}

TEST_CASE("safetensors every truncation of a valid file is a DataError") {
  std::string bytes = sample_file();
  REQUIRE(parse(bytes).size() == 3);
  for (size_t n = 0; n < bytes.size(); ++n) {
    INFO("prefix of " << n << " bytes");
    std::string msg = error_of([&] { parse(std::string_view(bytes).substr(0, n)); });
    check_style(msg, kWhat);
  }
}

TEST_CASE("safetensors every one-byte corruption parses or is a DataError") {
  std::string bytes = sample_file();
  int errors = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (char c : {'\0', '\xff', '"', '{', '[', '9', ' ', '-', ','}) {
      std::string bad = bytes;
      if (bad[i] == c) continue;
      bad[i] = c;
      INFO("byte " << i << " set to " << static_cast<int>(c));
      std::string msg = error_of([&] { parse(bad); });
      if (msg != "<no error>") {
        check_style(msg, kWhat);
        ++errors;
      }
    }
  }
  CHECK(errors > static_cast<int>(bytes.size()));
}

}  // namespace
}  // namespace gradc
