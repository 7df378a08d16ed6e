// Helpers for the tensor-file tests: building files byte by byte, checking
// error messages, and scratch directories.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cctype>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include "gradc/tensor.h"

namespace gradc::test {

// `v` as `n` little-endian bytes.
inline std::string le(uint64_t v, int n) {
  std::string s;
  for (int k = 0; k < n; ++k) s += static_cast<char>((v >> (8 * k)) & 0xff);
  return s;
}

// The raw bytes of a list of values (host order, which is little-endian).
template <class T>
std::string bytes_of(std::initializer_list<T> values) {
  std::string s;
  for (T v : values) s.append(reinterpret_cast<const char*>(&v), sizeof v);
  return s;
}

// A safetensors file: u64 header length, the header as given, the data.
inline std::string st_file(std::string_view header, std::string_view data) {
  return le(header.size(), 8) + std::string(header) + std::string(data);
}

// A .npy file of format version `major`.0 with `dict` as its header, padded
// with spaces and a newline so that the data starts at a multiple of 64, as
// numpy writes it.
inline std::string npy_file(int major, std::string_view dict, std::string_view data) {
  size_t prefix = major == 1 ? 10 : 12;
  std::string header(dict);
  size_t total = prefix + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  std::string s = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0' + le(header.size(), major == 1 ? 2 : 4);
  return s + header + std::string(data);
}

// Runs `parse` over a copy of `bytes` in a heap buffer of exactly that size,
// so that AddressSanitizer reports any read past the end.
template <class F>
auto on_exact_copy(std::string_view bytes, F&& parse) {
  std::vector<char> buf(bytes.begin(), bytes.end());
  return parse(std::string_view(buf.data(), buf.size()));
}

// The message of the DataError that `f` throws, or "<no error>". Any other
// exception escapes and fails the test.
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const DataError& e) {
    return e.what();
  }
  return "<no error>";
}

// Checks the house style of a DataError message about `what`: it starts with
// "WHAT: ", goes on in lowercase, and has no trailing period.
inline void check_style(const std::string& msg, const std::string& what) {
  INFO("message: " << msg);
  REQUIRE(msg != "<no error>");
  REQUIRE(msg.rfind(what + ": ", 0) == 0);
  REQUIRE(msg.size() > what.size() + 2);
  CHECK(!std::isupper(static_cast<unsigned char>(msg[what.size() + 2])));
  CHECK(msg.back() != '.');
}

// A fresh directory, removed with everything in it at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "gradc-test-XXXXXX").string();
    REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all, std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::string operator/(const std::string& name) const { return (path_ / name).string(); }
  // The names of the entries in the directory, sorted.
  std::vector<std::string> entries() const { return entries_of(path_); }
  // The names of the entries in the directory `dir`, sorted.
  static std::vector<std::string> entries_of(const std::filesystem::path& dir) {
    std::vector<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(dir)) out.push_back(e.path().filename().string());
    std::sort(out.begin(), out.end());
    return out;
  }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// True when the tensors have the same dtype, shape and bytes.
inline bool same_tensor(const Tensor& a, const Tensor& b) {
  return a.dtype() == b.dtype() && a.shape() == b.shape() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace gradc::test
