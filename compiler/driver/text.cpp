// `gradc text`: a text file as windows of byte ids and next-byte targets
// (text.h, docs/cli.md).
#include "compiler/driver/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <filesystem>
#include <iostream>
#include <string_view>

#include "compiler/driver/data.h"
#include "compiler/driver/train.h"
#include "gradc/session.h"

namespace gradc::driver {

namespace {

// A byte as a message shows it: 'a' when printable ASCII, else 0x0a.
std::string byte_text(uint8_t b) {
  if (b >= 0x20 && b < 0x7f && b != '\'') return fmt::format("'{}'", static_cast<char>(b));
  return fmt::format("0x{:02x}", b);
}

// "FILE:LINE:COL" of byte `at` of `text` (both 1-based, the column in bytes).
std::string place(const std::string& file, const std::string& text, size_t at) {
  size_t line = 1, start = 0;
  for (size_t i = 0; i < at; ++i)
    if (text[i] == '\n') ++line, start = i + 1;
  return fmt::format("{}:{}:{}", file, line, at - start + 1);
}

// The byte values that occur in `text`, in increasing order.
std::vector<uint8_t> bytes_of(const std::string& text) {
  std::array<bool, 256> seen{};
  for (char c : text) seen[static_cast<uint8_t>(c)] = true;
  std::vector<uint8_t> vocab;
  for (int b = 0; b < 256; ++b)
    if (seen[static_cast<size_t>(b)]) vocab.push_back(static_cast<uint8_t>(b));
  return vocab;
}

}  // namespace

std::string vocab_text(const std::vector<uint8_t>& vocab) {
  std::string s;
  for (uint8_t b : vocab) s += fmt::format("{}{}", s.empty() ? "" : " ", static_cast<int>(b));
  return s;
}

std::vector<uint8_t> vocab_of(const TensorFileMetadata& metadata, const std::string& what) {
  const std::string* entry = nullptr;
  for (const auto& [k, v] : metadata)
    if (k == kTextVocabKey) entry = &v;
  if (!entry)
    throw DataError(fmt::format("{}: no vocabulary: the file has no '{}' metadata entry (gradc text writes one)", what,
                                kTextVocabKey));
  std::vector<uint8_t> vocab;
  std::string_view rest = *entry;
  auto bad = [&](const std::string& why) {
    return DataError(fmt::format("{}: metadata '{}': {} (expected distinct byte values 0..255 in increasing order, "
                                 "space-separated)",
                                 what, kTextVocabKey, why));
  };
  while (!rest.empty()) {
    if (rest.front() == ' ') {
      rest.remove_prefix(1);
      continue;
    }
    int v = -1;
    auto [p, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), v);
    size_t len = static_cast<size_t>(p - rest.data());
    std::string item(rest.substr(0, std::min(rest.find(' '), rest.size())));
    if (ec != std::errc() || (len < rest.size() && rest[len] != ' ') || v < 0 || v > 255)
      throw bad(fmt::format("'{}' is not a byte value", item));
    if (!vocab.empty() && v <= vocab.back())
      throw bad(fmt::format("{} is not larger than the {} before it", v, vocab.back()));
    vocab.push_back(static_cast<uint8_t>(v));
    rest.remove_prefix(len);
  }
  if (vocab.empty()) throw bad("it is empty");
  return vocab;
}

int cmd_text(const Options& o) {
  // The output first: a path that cannot be written fails before any work.
  check_writable(o.output, "-o");
  // --vocab: the text.vocab of a file gradc text wrote, or the bytes of any other file.
  std::vector<uint8_t> vocab;
  if (!o.vocab.empty()) {
    try {
      if (file_type(o.vocab) == ".safetensors") {
        TensorFileMetadata metadata;
        (void)read_safetensors(o.vocab, &metadata);
        vocab = vocab_of(metadata, "--vocab " + o.vocab);
      } else {
        vocab = bytes_of(read_binary_file(o.vocab));
        if (vocab.empty()) throw DataError(fmt::format("{}: the file is empty, so it gives no vocabulary", o.vocab));
      }
    } catch (const DataError& e) {
      std::string what = e.what();
      throw DataError(what.starts_with("--vocab ") ? what : "--vocab " + what);  // "--vocab PATH: why"
    }
  }
  std::string text = read_binary_file(o.model);
  const int64_t bytes = static_cast<int64_t>(text.size());
  const int64_t T = o.window, S = o.stride > 0 ? o.stride : o.window;
  if (bytes == 0) throw DataError(fmt::format("{}: the text is empty", o.model));
  if (bytes < T + 1)
    throw DataError(fmt::format("{}: the text has {} byte{}, too few for one window of --window {}: a window needs "
                                "T + 1 = {} bytes (the target of its last position is the byte after it)",
                                o.model, bytes, bytes == 1 ? "" : "s", T, T + 1));
  if (vocab.empty()) vocab = bytes_of(text);
  std::array<int32_t, 256> id{};
  id.fill(-1);
  for (size_t i = 0; i < vocab.size(); ++i) id[vocab[i]] = static_cast<int32_t>(i);
  for (size_t i = 0; i < text.size(); ++i)
    if (id[static_cast<uint8_t>(text[i])] < 0)
      throw DataError(fmt::format("{}: byte {} is not in the vocabulary of --vocab {} ({} byte values), so it has no id",
                                  place(o.model, text, i), byte_text(static_cast<uint8_t>(text[i])), o.vocab,
                                  vocab.size()));
  const int64_t N = (bytes - 1 - T) / S + 1;
  // Checked before allocating, as every size a user chooses.
  double out_bytes = 2.0 * 4.0 * static_cast<double>(N) * static_cast<double>(T);
  if (out_bytes > static_cast<double>(kMaxSessionBytes))
    throw DataError(fmt::format("{}: {} windows of {} ids and targets would take {:.0f} bytes, more than {} GiB; a "
                                "larger --stride makes fewer windows",
                                o.model, N, T, out_bytes, kMaxSessionBytes >> 30));
  Tensor ids(DType::I32, {N, T}), targets(DType::I32, {N, T});
  int32_t* x = ids.data<int32_t>();
  int32_t* y = targets.data<int32_t>();
  for (int64_t i = 0; i < N; ++i)
    for (int64_t t = 0; t < T; ++t) {
      size_t at = static_cast<size_t>(i * S + t);
      x[i * T + t] = id[static_cast<uint8_t>(text[at])];
      y[i * T + t] = id[static_cast<uint8_t>(text[at + 1])];
    }
  TensorFileMetadata metadata = {{kTextVocabKey, vocab_text(vocab)},
                                 {"text.window", std::to_string(T)},
                                 {"text.stride", std::to_string(S)}};
  write_safetensors(o.output, {{"ids", std::move(ids)}, {"targets", std::move(targets)}}, metadata);
  int64_t unused = bytes - ((N - 1) * S + T + 1);
  std::cout << fmt::format("{}: {} bytes, a vocabulary of {}{}; {} window{} of {} (stride {}{})  ->  {}\n", o.model, bytes,
                           vocab.size(), o.vocab.empty() ? "" : " (of --vocab " + o.vocab + ")", N, N == 1 ? "" : "s", T, S,
                           unused == 1  ? "; the last byte is in none"
                           : unused > 1 ? fmt::format("; the last {} bytes are in none", unused)
                                        : "",
                           o.output);
  return 0;
}

}  // namespace gradc::driver
