// IDX files, the format of MNIST, Fashion-MNIST and EMNIST, plain or
// gzip-compressed (as they are distributed).
//
// Layout: 0x00 0x00 | type code | number of dims n | n sizes, u32 big-endian
// | the elements in row-major order, each big-endian. Nothing marks the end
// of the data, so its size is the header's product of sizes and must be the
// rest of the file exactly.
//
// The sizes come from the file, so they are checked before anything is
// allocated: their product against the session limit, a plain file's data
// against the file's size, gzip data against what deflate can hold, and
// decompression stops one byte past the data the header claims, so that a
// small file that inflates without end (a gzip bomb) costs nothing.
#include <zlib.h>

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <climits>
#include <filesystem>

#include "gradc/session.h"
#include "runtime/tensor_io.h"

namespace gradc {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw DataError(what + ": " + msg); }

// The most dims a header can name (n is one byte), and so its largest size.
constexpr size_t kMaxIdxHeaderBytes = 4 + 4 * 255;

// Deflate turns at most 1032 bytes into one compressed byte (a 258-byte match
// coded in two bits); the slack covers a small file's gzip header and trailer.
constexpr uint64_t kMaxDeflateRatio = 1032;
constexpr uint64_t kGzipSlackBytes = 1024;

struct IdxType {
  unsigned char code;
  const char* name;
  size_t size;  // bytes per element in the file
  DType dtype;  // the tensor's dtype: every value converts exactly
};

constexpr IdxType kTypes[] = {
    {0x08, "u8", 1, DType::F32},  {0x09, "i8", 1, DType::F32},  {0x0B, "i16", 2, DType::F32},
    {0x0C, "i32", 4, DType::I32}, {0x0D, "f32", 4, DType::F32}, {0x0E, "f64", 8, DType::F64},
};

const IdxType* find_type(unsigned char code) {
  for (const IdxType& t : kTypes)
    if (t.code == code) return &t;
  return nullptr;
}

bool is_gzip(std::string_view bytes) { return bytes.size() >= 2 && bytes[0] == '\x1f' && bytes[1] == '\x8b'; }

uint32_t be32(std::string_view b, size_t at) {
  auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(b[at + k])); };
  return u(0) << 24 | u(1) << 16 | u(2) << 8 | u(3);
}

struct IdxHeader {
  const IdxType* type = nullptr;
  std::vector<int64_t> shape;
  size_t header_bytes = 0;  // 4 + 4 * dims
  uint64_t data_bytes = 0;  // as the file stores them
};

std::string shape_text(const std::vector<int64_t>& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

// The header at the start of `bytes` (at least its first 4 + 4 * dims bytes),
// the file's or, when `gzip`, the decompressed data's.
IdxHeader parse_header(std::string_view bytes, const std::string& what, bool gzip) {
  const char* holder = gzip ? "the decompressed data" : "file";
  if (bytes.size() < 4) fail(what, fmt::format("{} is {} bytes, too short for an IDX header", holder, bytes.size()));
  if (bytes[0] != 0 || bytes[1] != 0)
    fail(what, fmt::format("not an IDX file (its first bytes are {:02x} {:02x}, where IDX files start with 00 00)",
                           static_cast<unsigned char>(bytes[0]), static_cast<unsigned char>(bytes[1])));
  IdxHeader h;
  auto code = static_cast<unsigned char>(bytes[2]);
  h.type = find_type(code);
  if (!h.type)
    fail(what, fmt::format("the IDX type code 0x{:02x} is not supported (supported: 0x08 u8, 0x09 i8, "
                           "0x0b i16, 0x0c i32, 0x0d f32, 0x0e f64)",
                           code));
  size_t dims = static_cast<unsigned char>(bytes[3]);
  if (dims == 0) fail(what, "the IDX header has no dimensions");
  h.header_bytes = 4 + 4 * dims;
  if (bytes.size() < h.header_bytes)
    fail(what, fmt::format("{} is {} bytes, too short for an IDX header of {} dimensions ({} bytes)", holder,
                           bytes.size(), dims, h.header_bytes));
  for (size_t k = 0; k < dims; ++k) h.shape.push_back(be32(bytes, 4 + 4 * k));
  // The tensor's size, checked before anything is allocated. Each size is
  // below 2^32, so a running product above the limit stops before it overflows.
  uint64_t elements = 1;
  for (int64_t d : h.shape) {
    elements *= static_cast<uint64_t>(d);
    if (elements * dtype_size(h.type->dtype) > static_cast<uint64_t>(kMaxSessionBytes))
      fail(what, fmt::format("the IDX header claims shape {} of {}: more than the {} GiB a tensor of data may hold",
                             shape_text(h.shape), h.type->name, kMaxSessionBytes >> 30));
  }
  h.data_bytes = elements * h.type->size;
  return h;
}

// The data after the header must be exactly what the header claims.
void check_data_size(const IdxHeader& h, uint64_t size, const std::string& what) {
  if (size != h.data_bytes)
    fail(what, fmt::format("data is {} bytes, but shape {} of {} needs {}{}", size, shape_text(h.shape), h.type->name,
                           h.data_bytes, size < h.data_bytes ? " (the file is truncated)" : " (trailing bytes)"));
}

// Elements [first, first + count) of `out` from big-endian file data, one
// loop per type so that the bytes of a large image set convert quickly.
void decode(const char* src, uint64_t first, uint64_t count, const IdxType& type, Tensor& out) {
  const auto* s = reinterpret_cast<const unsigned char*>(src);
  auto be = [&](uint64_t i) {
    uint64_t v = 0;
    for (size_t k = 0; k < type.size; ++k) v = v << 8 | s[i * type.size + k];
    return v;
  };
  auto fill = [&](auto* dst, auto value_of) {
    dst += first;
    for (uint64_t i = 0; i < count; ++i) dst[i] = value_of(i);
  };
  switch (type.code) {
    case 0x08: fill(out.data<float>(), [&](uint64_t i) { return static_cast<float>(s[i]); }); break;
    case 0x09: fill(out.data<float>(), [&](uint64_t i) { return static_cast<float>(static_cast<int8_t>(s[i])); }); break;
    case 0x0B: fill(out.data<float>(), [&](uint64_t i) { return static_cast<float>(static_cast<int16_t>(be(i))); }); break;
    case 0x0C: fill(out.data<int32_t>(), [&](uint64_t i) { return static_cast<int32_t>(static_cast<uint32_t>(be(i))); }); break;
    case 0x0D: fill(out.data<float>(), [&](uint64_t i) { return std::bit_cast<float>(static_cast<uint32_t>(be(i))); }); break;
    case 0x0E: fill(out.data<double>(), [&](uint64_t i) { return std::bit_cast<double>(be(i)); }); break;
  }
}

Tensor make_tensor(const IdxHeader& h, const std::string& what) {
  try {
    return Tensor(h.type->dtype, h.shape);
  } catch (const DataError& e) {
    fail(what, e.what());
  }
}

// A gzip stream read a piece at a time (zlib's inflate, gzip framing only).
// Concatenated gzip members read as one stream, as gunzip reads them.
class Gunzip {
 public:
  Gunzip(std::string_view in, const std::string& what) : what_(what) {
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    rest_ = in.size();
    if (inflateInit2(&z_, 16 + MAX_WBITS) != Z_OK) fail(what_, "cannot start gzip decompression (not enough memory)");
  }
  Gunzip(const Gunzip&) = delete;
  Gunzip& operator=(const Gunzip&) = delete;
  ~Gunzip() { inflateEnd(&z_); }

  // Decompresses up to `n` bytes into `dst`; fewer only at the end of the data.
  size_t read(char* dst, size_t n) {
    size_t got = 0;
    while (got < n && !ended_) {
      feed();
      z_.next_out = reinterpret_cast<Bytef*>(dst + got);
      z_.avail_out = static_cast<uInt>(std::min<size_t>(n - got, UINT_MAX));
      uInt before = z_.avail_out;
      int rc = inflate(&z_, Z_NO_FLUSH);
      got += before - z_.avail_out;
      if (rc == Z_STREAM_END) {
        member_end();
      } else if (rc == Z_BUF_ERROR && z_.avail_in == 0 && rest_ == 0) {
        fail(what_, "the gzip data is truncated (it ends before its end marker)");
      } else if (rc != Z_OK) {
        fail(what_, fmt::format("the gzip data is corrupt ({})", z_.msg ? z_.msg : "inflate failed"));
      }
    }
    return got;
  }

 private:
  // Hands zlib the next piece of input (its counts are 32-bit).
  void feed() {
    if (z_.avail_in > 0 || rest_ == 0) return;
    z_.avail_in = static_cast<uInt>(std::min<uint64_t>(rest_, UINT_MAX));
    rest_ -= z_.avail_in;
  }
  // After a member: another member follows, or the data must end here.
  void member_end() {
    feed();
    if (z_.avail_in == 0) {
      ended_ = true;
      return;
    }
    if (z_.avail_in < 2 || z_.next_in[0] != 0x1f || z_.next_in[1] != 0x8b)
      fail(what_, "bytes follow the end of the gzip data");
    inflateReset(&z_);
  }

  const std::string& what_;
  z_stream z_{};
  uint64_t rest_ = 0;  // input not yet handed to zlib
  bool ended_ = false;
};

Tensor parse_gzip_idx(std::string_view bytes, const std::string& what) {
  Gunzip in(bytes, what);
  std::string header(kMaxIdxHeaderBytes, '\0');
  size_t got = in.read(header.data(), 4);
  if (got == 4) got += in.read(header.data() + 4, 4 * static_cast<unsigned char>(header[3]));
  IdxHeader h = parse_header(std::string_view(header.data(), got), what, true);
  if (h.data_bytes > kMaxDeflateRatio * bytes.size() + kGzipSlackBytes)
    fail(what, fmt::format("the IDX header claims shape {} of {} ({} bytes), more than {} bytes of gzip data can hold "
                           "(the file is truncated or damaged)",
                           shape_text(h.shape), h.type->name, h.data_bytes, bytes.size()));
  Tensor out = make_tensor(h, what);
  // A piece at a time, so that the file's bytes are never held twice.
  std::string piece(size_t{1} << 20, '\0');  // a whole number of elements of every type
  uint64_t elements = h.data_bytes / h.type->size, done = 0;
  while (done < elements) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(piece.size(), (elements - done) * h.type->size));
    size_t n = in.read(piece.data(), want);
    if (n < want) check_data_size(h, done * h.type->size + n, what);
    decode(piece.data(), done, n / h.type->size, *h.type, out);
    done += n / h.type->size;
  }
  char extra;
  if (in.read(&extra, 1) != 0)
    fail(what, fmt::format("the gzip data holds more than the {} bytes that shape {} of {} needs (trailing bytes)",
                           h.data_bytes, shape_text(h.shape), h.type->name));
  return out;
}

// "train-images-idx3-ubyte", "t10k-labels.idx1-ubyte", "x.idx", "x.idx3",
// each with an optional ".gz".
bool named_like_idx(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  auto strip = [&](std::string_view suffix) {
    bool has = name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
    if (has) name.resize(name.size() - suffix.size());
    return has;
  };
  strip(".gz");
  bool ubyte = strip("-ubyte");
  size_t digits = 0;
  while (!name.empty() && std::isdigit(static_cast<unsigned char>(name.back()))) name.pop_back(), ++digits;
  return ubyte ? digits > 0 && strip("idx") : strip(".idx");
}

}  // namespace

Tensor parse_idx(std::string_view bytes, const std::string& what) {
  if (is_gzip(bytes)) return parse_gzip_idx(bytes, what);
  IdxHeader h = parse_header(bytes, what, false);
  check_data_size(h, bytes.size() - h.header_bytes, what);
  Tensor out = make_tensor(h, what);
  decode(bytes.data() + h.header_bytes, 0, h.data_bytes / h.type->size, *h.type, out);
  return out;
}

// A plain regular file's header is checked against its size before the
// file is read, so that a large file that is not what it claims fails at once.
Tensor read_idx(const std::string& path) {
  std::string head = read_file_head(path, kMaxIdxHeaderBytes);
  if (!head.empty() && !is_gzip(head)) {
    IdxHeader h = parse_header(head, path, false);
    std::error_code ec;
    uint64_t size = std::filesystem::file_size(path, ec);
    if (!ec && size >= h.header_bytes) check_data_size(h, size - h.header_bytes, path);
  }
  return parse_idx(read_binary_file(path), path);
}

bool is_idx(const std::string& path, std::string_view head) {
  if (named_like_idx(std::filesystem::path(path).filename().string())) return true;
  std::string magic(4, '\0');
  if (is_gzip(head)) {
    try {
      magic.resize(Gunzip(head, path).read(magic.data(), 4));
    } catch (const DataError&) {
      return false;  // head is only the start of the file: a damaged start is not IDX
    }
  } else {
    magic = head.substr(0, 4);
  }
  return magic.size() == 4 && magic[0] == 0 && magic[1] == 0 && find_type(static_cast<unsigned char>(magic[2])) &&
         magic[3] != 0;
}

}  // namespace gradc
