// libFuzzer target over the data readers: safetensors (its header read by
// nlohmann::json's parser), .npy, IDX (plain and gzip) and CSV (with column selection). Any
// input must give either tensors or a DataError, never a crash, hang,
// sanitizer report or other exception.
// A safetensors file that parses must survive a round trip through the
// writer unchanged.
//
// Built two ways: with -fsanitize=fuzzer as a fuzzer (seeds in
// tests/fuzz/corpus_tensor), and with GRADC_FUZZ_REPLAY as an ordinary
// program that runs the seed corpus as a test (FILE_OR_DIR...).
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "runtime/csv.h"
#include "runtime/tensor_io.h"

namespace {

bool same(const gradc::Tensor& a, const gradc::Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

void check_round_trip(const gradc::NamedTensors& ts, const gradc::TensorFileMetadata& meta) {
  gradc::TensorFileMetadata meta2;
  gradc::NamedTensors back = gradc::parse_safetensors(gradc::serialize_safetensors(ts, meta), "round trip", &meta2);
  if (back.size() != ts.size() || meta2 != meta) __builtin_trap();
  for (size_t i = 0; i < ts.size(); ++i)
    if (back[i].first != ts[i].first || !same(back[i].second, ts[i].second)) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  try {
    gradc::TensorFileMetadata meta;
    gradc::NamedTensors ts = gradc::parse_safetensors(bytes, "fuzz.safetensors", &meta);
    check_round_trip(ts, meta);  // a file that was read must be writable
  } catch (const gradc::DataError&) {
  }
  try {
    gradc::Tensor t = gradc::parse_npy(bytes, "fuzz.npy");
    if (t.nbytes() > size) __builtin_trap();  // never more data than the file holds
  } catch (const gradc::DataError&) {
  }
  try {
    gradc::Tensor t = gradc::parse_idx(bytes, "fuzz-idx3-ubyte");
    bool gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
    if (!gzip && t.numel() > static_cast<int64_t>(size)) __builtin_trap();  // an element is at least a byte
  } catch (const gradc::DataError&) {
  }
  try {
    gradc::CsvTable t = gradc::parse_csv(bytes, "fuzz.csv");
    (void)gradc::csv_columns(t, "*", gradc::DType::F32, false);
    (void)gradc::csv_columns(t, "!0", gradc::DType::I32, false);
  } catch (const gradc::DataError&) {
  }
  return 0;
}

#include "tests/fuzz/replay_main.h"
