// IDX files in memory, for the tests of the IDX reader and of data loading:
// the header (00 00 TYPE RANK, then each size as a big-endian u32) followed by
// the data as given, and gzip compression as gzip(1) writes it.
#pragma once

#include <catch2/catch.hpp>
#include <zlib.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace gradc::test {

// TYPE 0x08 is unsigned bytes, 0x0c i32, 0x0d f32, 0x0e f64 (the data is not checked against it).
inline std::string idx_file(unsigned char type, std::initializer_list<uint32_t> shape, std::string_view data) {
  std::string s{'\0', '\0', static_cast<char>(type), static_cast<char>(shape.size())};
  for (uint32_t d : shape)
    for (int k = 3; k >= 0; --k) s += static_cast<char>((d >> (8 * k)) & 0xff);
  return s + std::string(data);
}

inline std::string gzip(std::string_view bytes) {
  z_stream z{};
  REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK);
  std::string out(deflateBound(&z, static_cast<uLong>(bytes.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(bytes.data()));
  z.avail_in = static_cast<uInt>(bytes.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = static_cast<uInt>(out.size());
  REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

}  // namespace gradc::test
