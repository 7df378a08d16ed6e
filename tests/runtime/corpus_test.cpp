// The fuzzer's seed corpus (tests/fuzz/corpus_tensor, written by
// make_tensor_corpus.py with Python's json and gzip modules, independent writers):
// every valid_* file reads, every bad_* file is a DataError naming the file.
#include <catch2/catch.hpp>
#include <filesystem>

#include "runtime/tensor_io.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

TEST_CASE("the tensor fuzz corpus: valid seeds read, broken seeds are DataErrors") {
  int valid = 0, bad = 0;
  for (const auto& e : std::filesystem::directory_iterator(GRADC_TENSOR_CORPUS)) {
    std::string path = e.path().string();
    std::string name = e.path().filename().string();
    INFO("seed " << name);
    if (name.rfind("valid_", 0) == 0) {
      CHECK_NOTHROW(read_tensor_file(path, "x"));
      ++valid;
    } else if (name.rfind("bad_", 0) == 0) {
      test::check_style(test::error_of([&] { read_tensor_file(path, "x"); }), path);
      ++bad;
    }
  }
  CHECK(valid >= 5);
  CHECK(bad >= 5);

  std::string dir = GRADC_TENSOR_CORPUS;
  NamedTensors mixed = read_safetensors(dir + "/valid_mixed.safetensors");
  REQUIRE(mixed.size() == 4);
  CHECK(mixed[1].second.type_string() == "i32[]");
  CHECK(mixed[1].second.get(0) == 1000);
  Tensor fortran = read_npy(dir + "/valid_v2_i8_fortran.npy");
  for (int i = 0; i < 6; ++i) CHECK(fortran.get(i) == i);
  CHECK_THAT(test::error_of([&] { read_tensor_file(dir + "/bad_offsets.safetensors", "x"); }),
             Catch::Contains("tensor 'x': data_offsets [0, 100] lie outside the data section of 64 bytes"));
  Tensor labels = read_idx(dir + "/valid_labels-idx1-ubyte.gz");
  CHECK(labels.type_string() == "f32[2]");
  CHECK(labels.get(0) == 7);
  CHECK(read_idx(dir + "/valid_i16.idx2.gz").get(0) == -300);
  CHECK_THAT(test::error_of([&] { read_tensor_file(dir + "/bad_bomb-idx1-ubyte.gz", "x"); }),
             Catch::Contains("the gzip data holds more than the 10 bytes that shape [10] of u8 needs"));
}

}  // namespace
}  // namespace gradc
