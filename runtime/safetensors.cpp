// safetensors files (SPEC 4): the reader checks everything a hostile or
// damaged file could get wrong before it allocates, following the reference
// implementation (huggingface/safetensors); the writer lays files out as the
// Python library does. Also the file helpers every tensor format shares:
// bounded reads, atomic writes, and dispatch on the extension.
//
// Layout: u64 little-endian header length n | n bytes of JSON | data section.
// JSON: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
//        "__metadata__": {"key": "value"}}; offsets are relative to the data section.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <numeric>
#include <optional>
#include <system_error>
#include <unordered_set>

#include "runtime/json.h"
#include "runtime/tensor_io.h"

static_assert(std::endian::native == std::endian::little, "tensor files are little-endian; gradc assumes a little-endian host");

namespace gradc {
namespace {

// The reference implementation's limit on the header (MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw DataError(what + ": " + msg); }

std::string tensor_label(std::string_view name) { return fmt::format("tensor '{}'", json::escape(name)); }

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

// One header entry, checked for syntax but not yet against the data section.
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct DTypeInfo {
  DType type;
  size_t file_size;  // bytes per element in the file
  bool from_i64;
};

// The dtypes gradc reads; nullopt for the rest (F16, BF16, BOOL, U8, ...).
std::optional<DTypeInfo> lookup_dtype(std::string_view s) {
  if (s == "F32") return DTypeInfo{DType::F32, 4, false};
  if (s == "F64") return DTypeInfo{DType::F64, 8, false};
  if (s == "I32") return DTypeInfo{DType::I32, 4, false};
  if (s == "I64") return DTypeInfo{DType::I32, 8, true};
  return std::nullopt;
}

std::string_view file_dtype(DType t) {
  switch (t) {
    case DType::F32:
      return "F32";
    case DType::F64:
      return "F64";
    case DType::I32:
      return "I32";
  }
  return "?";
}

// uints = "[" [ uint *( "," uint ) ] "]", each a non-negative integer that fits int64.
std::vector<int64_t> read_uints(json::Reader& r, const std::string& what, const std::string& label, const char* field) {
  if (r.peek() != json::Kind::Array)
    fail(what, fmt::format("{}: {} must be an array of non-negative integers, not {}", label, field, json::kind_name(r.peek())));
  std::vector<int64_t> out;
  r.begin_array();
  while (r.next_item()) {
    if (r.peek() != json::Kind::Number)
      fail(what, fmt::format("{}: {} must hold non-negative integers, not {}", label, field, json::kind_name(r.peek())));
    json::Number n = r.read_number();
    if (!n.integral) fail(what, fmt::format("{}: {} entry {} is not an integer", label, field, n.text));
    if (n.text[0] == '-' && n.text != "-0") fail(what, fmt::format("{}: {} entry {} is negative", label, field, n.text));
    if (!n.in_range) fail(what, fmt::format("{}: {} entry {} is too large", label, field, n.text));
    out.push_back(n.integer);
  }
  return out;
}

// entry = "{" "dtype": string "," "shape": uints "," "data_offsets": "[" uint "," uint "]" "}"
// in any order; other keys are rejected (they are typos: no writer emits them).
Entry read_entry(json::Reader& r, const std::string& what, const std::string& name) {
  const std::string label = tensor_label(name);
  if (r.peek() != json::Kind::Object)
    fail(what,
         fmt::format("{}: entry must be an object with dtype, shape and data_offsets, not {}", label, json::kind_name(r.peek())));
  Entry e;
  e.name = name;
  bool has_dtype = false, has_shape = false, has_offsets = false;
  auto once = [&](bool& seen, const char* key) {
    if (seen) fail(what, fmt::format("{}: key '{}' appears twice", label, key));
    seen = true;
  };
  r.begin_object();
  std::string key;
  while (r.next_member(key)) {
    if (key == "dtype") {
      once(has_dtype, "dtype");
      if (r.peek() != json::Kind::String)
        fail(what, fmt::format("{}: dtype must be a string, not {}", label, json::kind_name(r.peek())));
      e.dtype = r.read_string();
    } else if (key == "shape") {
      once(has_shape, "shape");
      e.shape = read_uints(r, what, label, "shape");
    } else if (key == "data_offsets") {
      once(has_offsets, "data_offsets");
      std::vector<int64_t> o = read_uints(r, what, label, "data_offsets");
      if (o.size() != 2) fail(what, fmt::format("{}: data_offsets must be [begin, end], not {} numbers", label, o.size()));
      e.begin = static_cast<uint64_t>(o[0]);
      e.end = static_cast<uint64_t>(o[1]);
    } else {
      fail(what, fmt::format("{}: unknown key '{}' (expected dtype, shape and data_offsets)", label, json::escape(key)));
    }
  }
  if (!has_dtype) fail(what, label + ": missing key 'dtype'");
  if (!has_shape) fail(what, label + ": missing key 'shape'");
  if (!has_offsets) fail(what, label + ": missing key 'data_offsets'");
  return e;
}

// metadata = "{" [ string ":" string *( "," string ":" string ) ] "}" / null
void read_metadata(json::Reader& r, const std::string& what, TensorFileMetadata& meta) {
  if (r.peek() == json::Kind::Null) {
    r.read_null();
    return;
  }
  if (r.peek() != json::Kind::Object)
    fail(what, fmt::format("__metadata__ must be an object of strings, not {}", json::kind_name(r.peek())));
  std::unordered_set<std::string> keys;
  r.begin_object();
  std::string key;
  while (r.next_member(key)) {
    if (r.peek() != json::Kind::String)
      fail(what,
           fmt::format("__metadata__ value of '{}' must be a string, not {}", json::escape(key), json::kind_name(r.peek())));
    if (!keys.insert(key).second) fail(what, fmt::format("__metadata__ key '{}' appears twice", json::escape(key)));
    meta.emplace_back(key, r.read_string());
  }
}

// header = "{" [ member *( "," member ) ] "}"; member = name ":" entry / "__metadata__" ":" metadata
void read_header(std::string_view header, const std::string& what, std::vector<Entry>& entries, TensorFileMetadata& meta) {
  json::Reader r(header);
  std::string current;  // the tensor being read, named in syntax errors
  try {
    if (r.peek() != json::Kind::Object)
      fail(what, fmt::format("header must be a json object, not {}", json::kind_name(r.peek())));
    r.begin_object();
    std::unordered_set<std::string> names;
    bool has_meta = false;
    std::string key;
    while (r.next_member(key)) {
      if (key == "__metadata__") {
        if (has_meta) fail(what, "__metadata__ appears twice");
        has_meta = true;
        read_metadata(r, what, meta);
        continue;
      }
      if (key.empty()) fail(what, "a tensor has an empty name");
      if (!names.insert(key).second) fail(what, tensor_label(key) + ": name appears twice in the header");
      current = key;
      entries.push_back(read_entry(r, what, key));
      current.clear();
    }
    r.finish();
  } catch (const json::ParseError& e) {
    std::string where = current.empty() ? "" : tensor_label(current) + ": ";
    fail(what, fmt::format("{}invalid json in the header at byte {}: {}", where, 8 + e.offset(), e.detail()));
  }
}

// Checks each entry against the data section (bounds, dtype, size), then that
// the tensors tile the data section exactly: no overlap, no holes.
std::vector<DTypeInfo> check_layout(const std::vector<Entry>& entries, uint64_t data_size, const std::string& what) {
  std::vector<DTypeInfo> types;
  types.reserve(entries.size());
  for (const Entry& e : entries) {
    const std::string label = tensor_label(e.name);
    std::optional<DTypeInfo> t = lookup_dtype(e.dtype);
    if (!t)
      fail(what, fmt::format("{}: dtype '{}' is not supported (supported: F32, F64, I32, I64)", label, json::escape(e.dtype)));
    types.push_back(*t);
    std::string offsets = fmt::format("data_offsets [{}, {}]", e.begin, e.end);
    if (e.begin > e.end) fail(what, fmt::format("{}: {} end before they begin", label, offsets));
    if (e.end > data_size) fail(what, fmt::format("{}: {} lie outside the data section of {} bytes", label, offsets, data_size));
    // numel * element size, overflow-checked; it must match the byte range exactly.
    uint64_t bytes = t->file_size;
    for (int64_t d : e.shape)
      if (__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes))
        fail(what, fmt::format("{}: shape {} has too many elements", label, shape_string(e.shape)));
    if (bytes != e.end - e.begin)
      fail(what, fmt::format("{}: shape {} of dtype {} needs {} bytes, but {} hold {}", label, shape_string(e.shape), e.dtype,
                             bytes, offsets, e.end - e.begin));
  }
  std::vector<size_t> order(entries.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return std::pair(entries[a].begin, entries[a].end) < std::pair(entries[b].begin, entries[b].end);
  });
  uint64_t covered = 0;
  const Entry* prev = nullptr;
  for (size_t i : order) {
    const Entry& e = entries[i];
    if (e.begin < covered)
      fail(what, fmt::format("{}: data_offsets [{}, {}] overlap {} at [{}, {}]", tensor_label(e.name), e.begin, e.end,
                             tensor_label(prev->name), prev->begin, prev->end));
    if (e.begin > covered)
      fail(what, fmt::format("{}: bytes [{}, {}) of the data section before it belong to no tensor", tensor_label(e.name),
                             covered, e.begin));
    covered = e.end;
    prev = &e;
  }
  if (covered != data_size)
    fail(what, fmt::format("bytes [{}, {}) at the end of the data section belong to no tensor", covered, data_size));
  return types;
}

Tensor make_tensor(const Entry& e, const DTypeInfo& t, std::string_view data, const std::string& what) {
  Tensor out;
  try {
    out = Tensor(t.type, e.shape);
  } catch (const DataError&) {
    fail(what, fmt::format("{}: shape {} is too large", tensor_label(e.name), shape_string(e.shape)));
  }
  const char* src = data.data() + e.begin;
  if (!t.from_i64) {
    std::memcpy(out.raw(), src, out.nbytes());
    return out;
  }
  int32_t* dst = out.data<int32_t>();
  for (int64_t i = 0; i < out.numel(); ++i) {
    int64_t v;
    std::memcpy(&v, src + 8 * i, 8);
    if (v < INT32_MIN || v > INT32_MAX)
      fail(what, fmt::format("{}: element {} of the I64 data is {}, outside the i32 range", tensor_label(e.name), i, v));
    dst[i] = static_cast<int32_t>(v);
  }
  return out;
}

void append_le64(std::string& out, uint64_t v) {
  for (int k = 0; k < 8; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
}

// strerror, thread-safely, lowercased to fit a diagnostic.
std::string errno_text(int err) {
  std::string s = std::error_code(err, std::generic_category()).message();
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

}  // namespace

NamedTensors parse_safetensors(std::string_view bytes, const std::string& what, TensorFileMetadata* metadata) {
  if (bytes.size() < 8)
    fail(what, fmt::format("file is {} bytes, too short for the 8-byte header length of a safetensors file", bytes.size()));
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  if (n > kMaxHeaderBytes) fail(what, fmt::format("header length {} is larger than the limit of {} bytes", n, kMaxHeaderBytes));
  if (n > bytes.size() - 8)
    fail(what, fmt::format("header length {} runs past the end of the file ({} bytes follow the length)", n, bytes.size() - 8));
  std::string_view data = bytes.substr(8 + n);

  std::vector<Entry> entries;
  TensorFileMetadata meta;
  read_header(bytes.substr(8, n), what, entries, meta);
  std::vector<DTypeInfo> types = check_layout(entries, data.size(), what);

  NamedTensors out;
  out.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) out.emplace_back(entries[i].name, make_tensor(entries[i], types[i], data, what));
  if (metadata) *metadata = std::move(meta);
  return out;
}

NamedTensors read_safetensors(const std::string& path, TensorFileMetadata* metadata) {
  return parse_safetensors(read_binary_file(path), path, metadata);
}

std::string serialize_safetensors(const NamedTensors& ts, const TensorFileMetadata& metadata) {
  std::unordered_set<std::string_view> names;
  for (const auto& [name, t] : ts) {
    if (name.empty()) throw DataError("cannot save a tensor with an empty name");
    if (name == "__metadata__") throw DataError("cannot save a tensor named '__metadata__': the name is reserved");
    if (!json::is_valid_utf8(name))
      throw DataError(fmt::format("cannot save {}: the name is not valid utf-8", tensor_label(name)));
    if (!names.insert(name).second) throw DataError(fmt::format("cannot save {} twice", tensor_label(name)));
  }
  std::unordered_set<std::string_view> keys;
  for (const auto& [k, v] : metadata) {
    if (!json::is_valid_utf8(k) || !json::is_valid_utf8(v))
      throw DataError(fmt::format("metadata entry '{}' is not valid utf-8", json::escape(k)));
    if (!keys.insert(k).second) throw DataError(fmt::format("metadata key '{}' appears twice", json::escape(k)));
  }

  // Data order: 8-byte dtypes first, each group in the given order, so that
  // every tensor starts at a multiple of its element size.
  std::vector<size_t> order(ts.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    size_t sa = dtype_size(ts[a].second.dtype()), sb = dtype_size(ts[b].second.dtype());
    return sa != sb ? sa > sb : a < b;
  });
  std::vector<uint64_t> begin(ts.size());
  uint64_t data_size = 0;
  for (size_t i : order) {
    begin[i] = data_size;
    data_size += ts[i].second.nbytes();
  }

  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    for (size_t i = 0; i < metadata.size(); ++i)
      header += fmt::format("{}{}:{}", i ? "," : "", json::quote(metadata[i].first), json::quote(metadata[i].second));
    header += "}";
  }
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = ts[i].second;
    std::string shape;
    for (size_t d = 0; d < t.shape().size(); ++d) shape += fmt::format("{}{}", d ? "," : "", t.shape()[d]);
    header += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", header.size() > 1 ? "," : "",
                          json::quote(ts[i].first), file_dtype(t.dtype()), shape, begin[i], begin[i] + t.nbytes());
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');  // as the Python library pads

  std::string out;
  out.reserve(8 + header.size() + data_size);
  append_le64(out, header.size());
  out += header;
  for (size_t i : order) out.append(static_cast<const char*>(ts[i].second.raw()), ts[i].second.nbytes());
  return out;
}

void write_safetensors(const std::string& path, const NamedTensors& ts, const TensorFileMetadata& metadata) {
  std::string bytes;
  try {
    bytes = serialize_safetensors(ts, metadata);
  } catch (const DataError& e) {
    fail(path, e.what());
  }
  write_file_atomic(path, bytes);
}

// --- file helpers ---

std::string read_binary_file(const std::string& path, uint64_t max_bytes) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) fail(path, "cannot open: " + errno_text(errno));
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) fail(path, "cannot read: " + errno_text(errno));
  if (S_ISDIR(st.st_mode)) fail(path, "cannot read: is a directory");
  uint64_t size = S_ISREG(st.st_mode) ? static_cast<uint64_t>(st.st_size) : 0;
  if (size > max_bytes) fail(path, fmt::format("file is {} bytes, larger than the limit of {} bytes", size, max_bytes));

  std::string out;
  try {
    out.resize(size);  // the regular file's size, known to be below the limit
  } catch (const std::bad_alloc&) {
    fail(path, fmt::format("not enough memory to read {} bytes", size));
  }
  size_t got = 0;
  for (;;) {
    ssize_t k;
    if (got < out.size()) {
      k = ::read(fd, out.data() + got, out.size() - got);
    } else {
      // Past the expected size (a pipe, or a file that grew): append in chunks.
      char chunk[1 << 16];
      k = ::read(fd, chunk, sizeof chunk);
      if (k > 0) {
        if (got + static_cast<uint64_t>(k) > max_bytes)
          fail(path, fmt::format("file is larger than the limit of {} bytes", max_bytes));
        out.append(chunk, static_cast<size_t>(k));
      }
    }
    if (k < 0) {
      if (errno == EINTR) continue;
      fail(path, "cannot read: " + errno_text(errno));
    }
    if (k == 0) break;
    got += static_cast<size_t>(k);
  }
  out.resize(got);
  return out;
}

void write_file_atomic(const std::string& path, std::string_view bytes) {
  namespace fs = std::filesystem;
  if (path.empty()) throw DataError("cannot write a file with an empty path");
  fs::path target(path);
  std::string base = target.filename().string();
  if (base.empty() || base == "." || base == "..") fail(path, "cannot write: is a directory");
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";

  // A fresh name: pid, a process-wide counter and the clock; O_EXCL makes sure.
  static std::atomic<uint64_t> counter{0};
  struct Temp {
    std::string path;
    int fd = -1;
    ~Temp() {
      if (fd >= 0) ::close(fd);
      if (!path.empty()) ::unlink(path.c_str());
    }
  } tmp;
  for (int attempt = 0; tmp.fd < 0; ++attempt) {
    auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    tmp.path = (dir / fmt::format(".{}.tmp-{}-{}-{:x}", base.substr(0, 100), ::getpid(), counter++, now & 0xffffff)).string();
    tmp.fd = ::open(tmp.path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (tmp.fd < 0) {
      int err = errno;
      tmp.path.clear();  // not ours: never unlink it
      if (err != EEXIST || attempt >= 100) fail(path, "cannot write: " + errno_text(err));
    }
  }
  // Keep the mode of the file being replaced (a private checkpoint stays private).
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) (void)::fchmod(tmp.fd, old.st_mode & 07777);

  auto fail_errno = [&](const char* step) { fail(path, fmt::format("cannot write ({}): {}", step, errno_text(errno))); };
  for (size_t done = 0; done < bytes.size();) {
    ssize_t k = ::write(tmp.fd, bytes.data() + done, std::min<size_t>(bytes.size() - done, size_t{1} << 30));
    if (k < 0) {
      if (errno == EINTR) continue;
      fail_errno("write");
    }
    done += static_cast<size_t>(k);
  }
  if (::fsync(tmp.fd) != 0) fail_errno("fsync");
  int fd = tmp.fd;
  tmp.fd = -1;
  if (::close(fd) != 0) fail_errno("close");
  if (::rename(tmp.path.c_str(), path.c_str()) != 0) fail_errno("rename");
  tmp.path.clear();  // renamed: nothing left to remove

  // Make the rename itself durable. Filesystems that cannot sync a directory
  // (EINVAL) are accepted: the data is in place.
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) fail_errno("open directory");
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    errno = err;
    fail_errno("fsync directory");
  }
}

NamedTensors read_tensor_file(const std::string& path, const std::string& default_name) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".safetensors") return read_safetensors(path);
  if (ext == ".npy") {
    NamedTensors ts;
    ts.emplace_back(default_name, read_npy(path));
    return ts;
  }
  if (ext.empty()) fail(path, "cannot tell the tensor file format without an extension (supported: .safetensors, .npy)");
  fail(path, fmt::format("unsupported tensor file extension '{}' (supported: .safetensors, .npy)", ext));
}

}  // namespace gradc
