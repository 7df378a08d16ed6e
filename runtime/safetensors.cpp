// safetensors files (SPEC 4): the reader checks everything a hostile or
// damaged file could get wrong before it allocates, following the reference
// implementation (huggingface/safetensors); the writer lays files out as the
// Python library does. Also the file helpers every tensor format shares:
// bounded reads, atomic writes, and dispatch on the extension.
//
// Layout: u64 little-endian header length n | n bytes of JSON | data section.
// JSON: {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...,
//        "__metadata__": {"key": "value"}}; offsets are relative to the data section.
// The JSON is read by nlohmann::json's SAX parser (Debian's nlohmann-json3-dev,
// header-only, private to this file); HeaderReader checks the grammar.
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
#include <nlohmann/json.hpp>
#include <numeric>
#include <optional>
#include <system_error>
#include <unordered_set>

#include "runtime/tensor_io.h"
#include "runtime/output_file.h"

static_assert(std::endian::native == std::endian::little, "tensor files are little-endian; gradc assumes a little-endian host");

namespace gradc {
namespace {

// The reference implementation's limit on the header (MAX_HEADER_SIZE).
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw DataError(what + ": " + msg); }

// `s` as JSON spells it, without the quotes: escaped, on one line, invalid
// UTF-8 replaced (for messages).
std::string show(std::string_view s) {
  std::string q = nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return q.substr(1, q.size() - 2);
}

// `s` as a JSON string literal, or nullopt when it is not valid UTF-8.
std::optional<std::string> json_quoted(std::string_view s) {
  try {
    return nlohmann::json(std::string(s)).dump();
  } catch (const nlohmann::json::type_error&) {
    return std::nullopt;
  }
}

std::string tensor_label(std::string_view name) { return fmt::format("tensor '{}'", show(name)); }

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

// The header grammar, checked event by event as nlohmann::json's SAX parser
// reads the text (no tree is built; the parser itself does not recurse):
//   header   = "{" [ member *( "," member ) ] "}"
//   member   = name ":" entry / "__metadata__" ":" metadata
//   entry    = "{" "dtype": string "," "shape": uints "," "data_offsets": "[" uint "," uint "]" "}"
//              (in any order; other keys are rejected: they are typos, no writer emits them)
//   uints    = "[" [ uint *( "," uint ) ] "]", each a non-negative integer that fits int64
//   metadata = "{" [ string ":" string *( "," string ":" string ) ] "}" / null
// A violation throws a DataError at once. Syntax errors (and invalid UTF-8,
// lone surrogates, control characters in strings, which the parser rejects)
// arrive in parse_error() and are reworded in the house style.
class HeaderReader final : public nlohmann::json_sax<nlohmann::json> {
 public:
  HeaderReader(const std::string& what, std::vector<Entry>& entries, TensorFileMetadata& meta)
      : what_(what), entries_(entries), meta_(meta) {}

  bool null() override { return value("null"); }
  bool boolean(bool) override { return value("a boolean"); }
  bool number_integer(number_integer_t v) override {
    if (v < 0) return bad_number(fmt::format("{}", v), "is negative");
    return number(uint64_t(v));
  }
  bool number_unsigned(number_unsigned_t v) override {
    if (v > uint64_t(INT64_MAX)) return bad_number(fmt::format("{}", v), "is too large");
    return number(v);
  }
  // Integers beyond uint64 arrive here as well, spelled without '.', 'e' or 'E'.
  bool number_float(number_float_t, const string_t& text) override {
    if (text.find_first_of(".eE") != std::string::npos) return bad_number(text, "is not an integer");
    return bad_number(text, text[0] == '-' ? "is negative" : "is too large");
  }
  bool string(string_t& s) override {
    if (state_ == State::Dtype) {
      entries_.back().dtype = std::move(s);
      state_ = State::Entry;
      return true;
    }
    if (state_ == State::MetaValue) {
      if (!meta_keys_.insert(key_).second) fail(fmt::format("__metadata__ key '{}' appears twice", show(key_)));
      meta_.emplace_back(std::move(key_), std::move(s));
      state_ = State::Meta;
      return true;
    }
    return value("a string");
  }
  bool binary(binary_t&) override { return value("binary data"); }  // never from JSON text
  bool start_object(std::size_t) override {
    ++depth_;
    if (state_ == State::Start) return state_ = State::Top, true;
    if (state_ == State::TopValue) return state_ = State::Entry, true;
    if (state_ == State::MetaTop) return state_ = State::Meta, true;
    return value("an object");
  }
  bool start_array(std::size_t) override {
    ++depth_;
    if (state_ == State::Shape || state_ == State::Offsets) return state_ = State(int(state_) + 1), true;
    return value("an array");
  }
  bool end_array() override {
    --depth_;
    if (state_ == State::OffsetsItems) {
      if (offsets_.size() != 2)
        fail(fmt::format("{}: data_offsets must be [begin, end], not {} numbers", label_, offsets_.size()));
      entries_.back().begin = offsets_[0];
      entries_.back().end = offsets_[1];
    }
    state_ = State::Entry;
    return true;
  }
  bool end_object() override {
    --depth_;
    if (state_ == State::Entry) {
      if (!has_dtype_) fail(label_ + ": missing key 'dtype'");
      if (!has_shape_) fail(label_ + ": missing key 'shape'");
      if (!has_offsets_) fail(label_ + ": missing key 'data_offsets'");
      label_.clear();
    }
    state_ = State::Top;  // after an entry or the metadata; the header's own '}' ends the parse
    return true;
  }
  bool key(string_t& k) override {
    if (state_ == State::Top) {
      if (k == "__metadata__") {
        if (has_meta_) fail("__metadata__ appears twice");
        has_meta_ = true;
        state_ = State::MetaTop;
        return true;
      }
      if (k.empty()) fail("a tensor has an empty name");
      if (!names_.insert(k).second) fail(tensor_label(k) + ": name appears twice in the header");
      label_ = tensor_label(k);
      entries_.push_back(Entry{std::move(k), {}, {}, 0, 0});
      has_dtype_ = has_shape_ = has_offsets_ = false;
      state_ = State::TopValue;
    } else if (state_ == State::Entry) {
      if (k == "dtype") {
        once(has_dtype_, "dtype");
        state_ = State::Dtype;
      } else if (k == "shape") {
        once(has_shape_, "shape");
        state_ = State::Shape;
      } else if (k == "data_offsets") {
        once(has_offsets_, "data_offsets");
        offsets_.clear();
        state_ = State::Offsets;
      } else {
        fail(fmt::format("{}: unknown key '{}' (expected dtype, shape and data_offsets)", label_, show(k)));
      }
    } else {  // State::Meta
      key_ = std::move(k);
      state_ = State::MetaValue;
    }
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    // position counts the bytes read, the offending one included.
    size_t offset = position > 0 ? position - 1 : 0;
    std::string where = label_.empty() ? "" : label_ + ": ";
    fail(fmt::format("{}invalid json in the header at byte {}: {}", where, 8 + offset, syntax_detail(e.what())));
  }

 private:
  enum class State { Start, Top, TopValue, Entry, Dtype, Shape, ShapeItems, Offsets, OffsetsItems, MetaTop, Meta, MetaValue };

  [[noreturn]] void fail(const std::string& msg) const { gradc::fail(what_, msg); }
  void once(bool& seen, const char* key) {
    if (seen) fail(fmt::format("{}: key '{}' appears twice", label_, key));
    seen = true;
  }
  const char* field() const { return state_ == State::Shape || state_ == State::ShapeItems ? "shape" : "data_offsets"; }

  // A value that the state does not expect: `kind` says what was found.
  bool value(const char* kind) {
    switch (state_) {
      case State::Start:
        fail(fmt::format("header must be a json object, not {}", kind));
      case State::TopValue:
        fail(fmt::format("{}: entry must be an object with dtype, shape and data_offsets, not {}", label_, kind));
      case State::Dtype:
        fail(fmt::format("{}: dtype must be a string, not {}", label_, kind));
      case State::Shape:
      case State::Offsets:
        fail(fmt::format("{}: {} must be an array of non-negative integers, not {}", label_, field(), kind));
      case State::ShapeItems:
      case State::OffsetsItems:
        fail(fmt::format("{}: {} must hold non-negative integers, not {}", label_, field(), kind));
      case State::MetaTop:
        if (std::string_view(kind) == "null") return state_ = State::Top, true;
        fail(fmt::format("__metadata__ must be an object of strings, not {}", kind));
      case State::MetaValue:
        fail(fmt::format("__metadata__ value of '{}' must be a string, not {}", show(key_), kind));
      case State::Top:
      case State::Entry:
      case State::Meta:
        break;  // a key comes first: the parser never calls here
    }
    fail("internal error: unexpected json value");
  }
  // A valid number (a non-negative int64) for a uints array.
  bool number(uint64_t v) {
    if (state_ == State::ShapeItems) return entries_.back().shape.push_back(int64_t(v)), true;
    if (state_ == State::OffsetsItems) return offsets_.push_back(v), true;
    return value("a number");
  }
  // A number that no uints array accepts, as spelled or printed; `problem` says why.
  bool bad_number(const std::string& text, const char* problem) {
    if (state_ != State::ShapeItems && state_ != State::OffsetsItems) return value("a number");
    fail(fmt::format("{}: {} entry {} {}", label_, field(), text, problem));
  }

  // nlohmann's message without its prefix and the raw bytes it last read
  // (which may not be printable), with the common cases in gradc's words.
  std::string syntax_detail(std::string msg) const {
    if (size_t p = msg.find("column "); p != std::string::npos) msg = msg.substr(msg.find(": ", p) + 2);
    std::string context;
    if (msg.rfind("syntax error while parsing ", 0) == 0) {
      size_t dash = msg.find(" - ");
      context = msg.substr(27, dash - 27);
      msg = dash == std::string::npos ? "" : msg.substr(dash + 3);
    }
    if (size_t p = msg.find("; last read: '"); p != std::string::npos) {
      size_t q = msg.rfind("'; expected ");
      msg = msg.substr(0, p) + (q != std::string::npos && q > p ? msg.substr(q + 1) : "");
    }
    bool in_array = state_ == State::ShapeItems || state_ == State::OffsetsItems;
    const char* inside = depth_ == 0 ? "" : in_array ? " inside an array" : " inside an object";
    if (msg.rfind("unexpected end of input", 0) == 0) return fmt::format("end of input{}", inside);
    if (msg.find("; expected end of input") != std::string::npos) return "unexpected text after the json value";
    if (msg.find("ill-formed UTF-8") != std::string::npos) return "invalid utf-8 in a string";
    if (context == "object key" && msg.rfind("unexpected '}'", 0) == 0) return "trailing comma before '}'";
    if (context == "value" && msg.rfind("unexpected ']'", 0) == 0) return "trailing comma before ']'";
    return msg;
  }

  const std::string& what_;
  std::vector<Entry>& entries_;
  TensorFileMetadata& meta_;
  State state_ = State::Start;
  int depth_ = 0;
  std::string label_;  // "tensor 'NAME'" while inside its entry
  bool has_dtype_ = false, has_shape_ = false, has_offsets_ = false, has_meta_ = false;
  std::vector<uint64_t> offsets_;
  std::unordered_set<std::string> names_, meta_keys_;
  std::string key_;  // the metadata key whose value comes next
};

void read_header(std::string_view header, const std::string& what, std::vector<Entry>& entries, TensorFileMetadata& meta) {
  HeaderReader reader(what, entries, meta);
  nlohmann::json::sax_parse(header.data(), header.data() + header.size(), &reader, nlohmann::json::input_format_t::json,
                            /*strict=*/true);
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
      fail(what, fmt::format("{}: dtype '{}' is not supported (supported: F32, F64, I32, I64)", label, show(e.dtype)));
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

namespace {

// The header length of a safetensors file of `total` bytes that starts with
// `first8`, checked against the limit and the file's size.
uint64_t header_length(std::string_view first8, uint64_t total, const std::string& what) {
  if (total < 8) fail(what, fmt::format("file is {} bytes, too short for the 8-byte header length of a safetensors file", total));
  uint64_t n = 0;
  std::memcpy(&n, first8.data(), 8);
  if (n > kMaxHeaderBytes) fail(what, fmt::format("header length {} is larger than the limit of {} bytes", n, kMaxHeaderBytes));
  if (n > total - 8)
    fail(what, fmt::format("header length {} runs past the end of the file ({} bytes follow the length)", n, total - 8));
  return n;
}

// A header read and checked against a data section of `data_size` bytes.
struct Layout {
  std::vector<Entry> entries;
  std::vector<DTypeInfo> types;
  TensorFileMetadata meta;
};

Layout read_layout(std::string_view header, uint64_t data_size, const std::string& what) {
  Layout l;
  read_header(header, what, l.entries, l.meta);
  l.types = check_layout(l.entries, data_size, what);
  return l;
}

NamedTensors make_tensors(Layout& l, std::string_view data, const std::string& what, TensorFileMetadata* metadata) {
  NamedTensors out;
  out.reserve(l.entries.size());
  for (size_t i = 0; i < l.entries.size(); ++i) out.emplace_back(l.entries[i].name, make_tensor(l.entries[i], l.types[i], data, what));
  if (metadata) *metadata = std::move(l.meta);
  return out;
}

}  // namespace

NamedTensors parse_safetensors(std::string_view bytes, const std::string& what, TensorFileMetadata* metadata) {
  uint64_t n = header_length(bytes.substr(0, 8), bytes.size(), what);
  std::string_view data = bytes.substr(8 + n);
  Layout l = read_layout(bytes.substr(8, n), data.size(), what);
  return make_tensors(l, data, what, metadata);
}

namespace {

// A file opened for reading, closed when it goes. O_NONBLOCK: opening a FIFO
// that has no writer returns at once (and reads end-of-file) instead of
// waiting for one forever; read_whole() and read_safetensors() clear it.
struct InputFile {
  int fd = -1;
  struct stat st {};
  explicit InputFile(const std::string& path) {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) fail(path, "cannot open: " + errno_text(errno));
    if (::fstat(fd, &st) != 0) {
      int err = errno;
      ::close(fd);
      fail(path, "cannot read: " + errno_text(err));
    }
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  ~InputFile() { ::close(fd); }
};

// The whole content of an opened file (see read_binary_file).
std::string read_whole(const InputFile& f, const std::string& path, uint64_t max_bytes) {
  int fd = f.fd;
  const struct stat& st = f.st;
  if (S_ISDIR(st.st_mode)) fail(path, "cannot read: is a directory");
  // A device (/dev/zero, /dev/urandom) has no size and may never end: only
  // regular files and pipes are read. A pipe is read up to kMaxStreamBytes.
  if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
    fail(path, "cannot read: not a regular file or a pipe");
  if (S_ISFIFO(st.st_mode)) max_bytes = std::min(max_bytes, kMaxStreamBytes);
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
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

}  // namespace

// A regular file is read in three steps, each checked before the next is
// allocated: the header length against the file's size, the header against
// the data section's size (so a 4 GiB file whose header is `{}` fails after
// reading 10 bytes), then the data section, which the checked header names
// byte for byte. Anything else (a pipe) is read whole, with a bound.
NamedTensors read_safetensors(const std::string& path, TensorFileMetadata* metadata) {
  InputFile f(path);
  if (!S_ISREG(f.st.st_mode)) return parse_safetensors(read_whole(f, path, kMaxTensorFileBytes), path, metadata);
  int fd = f.fd;
  const struct stat& st = f.st;
  (void)::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  auto size = static_cast<uint64_t>(st.st_size);
  if (size > kMaxTensorFileBytes)
    fail(path, fmt::format("file is {} bytes, larger than the limit of {} bytes", size, kMaxTensorFileBytes));
  auto read_at = [&](uint64_t offset, uint64_t length) {
    std::string out;
    try {
      out.resize(length);
    } catch (const std::bad_alloc&) {
      fail(path, fmt::format("not enough memory to read {} bytes", length));
    }
    for (uint64_t got = 0; got < length;) {
      ssize_t k = ::pread(fd, out.data() + got, length - got, static_cast<off_t>(offset + got));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0) fail(path, "cannot read: " + errno_text(errno));
      if (k == 0) fail(path, fmt::format("cannot read: the file shrank below {} bytes while it was read", size));
      got += static_cast<uint64_t>(k);
    }
    return out;
  };
  uint64_t n = header_length(read_at(0, std::min<uint64_t>(size, 8)), size, path);
  Layout l = read_layout(read_at(8, n), size - 8 - n, path);
  std::string data = read_at(8 + n, size - 8 - n);
  return make_tensors(l, data, path, metadata);
}

std::string serialize_safetensors(const NamedTensors& ts, const TensorFileMetadata& metadata) {
  std::unordered_set<std::string_view> names;
  std::vector<std::string> json_names;
  json_names.reserve(ts.size());
  for (const auto& [name, t] : ts) {
    if (name.empty()) throw DataError("cannot save a tensor with an empty name");
    if (name == "__metadata__") throw DataError("cannot save a tensor named '__metadata__': the name is reserved");
    std::optional<std::string> q = json_quoted(name);
    if (!q) throw DataError(fmt::format("cannot save {}: the name is not valid utf-8", tensor_label(name)));
    if (!names.insert(name).second) throw DataError(fmt::format("cannot save {} twice", tensor_label(name)));
    json_names.push_back(std::move(*q));
  }
  std::unordered_set<std::string_view> keys;
  std::vector<std::string> json_meta;
  for (const auto& [k, v] : metadata) {
    std::optional<std::string> qk = json_quoted(k), qv = json_quoted(v);
    if (!qk || !qv) throw DataError(fmt::format("metadata entry '{}' is not valid utf-8", show(k)));
    if (!keys.insert(k).second) throw DataError(fmt::format("metadata key '{}' appears twice", show(k)));
    json_meta.push_back(fmt::format("{}:{}", *qk, *qv));
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
    for (size_t i = 0; i < json_meta.size(); ++i) header += (i ? "," : "") + json_meta[i];
    header += "}";
  }
  for (size_t i = 0; i < ts.size(); ++i) {
    const Tensor& t = ts[i].second;
    std::string shape;
    for (size_t d = 0; d < t.shape().size(); ++d) shape += fmt::format("{}{}", d ? "," : "", t.shape()[d]);
    header += fmt::format("{}{}:{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", header.size() > 1 ? "," : "",
                          json_names[i], file_dtype(t.dtype()), shape, begin[i], begin[i] + t.nbytes());
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
  write_output_file(path, bytes);
}

// --- file helpers ---

std::string read_binary_file(const std::string& path, uint64_t max_bytes) {
  return read_whole(InputFile(path), path, max_bytes);
}

std::string read_file_head(const std::string& path, size_t n) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return "";
  try {
    InputFile f(path);
    std::string head(n, '\0');
    size_t got = 0;
    while (got < n) {
      ssize_t k = ::pread(f.fd, head.data() + got, n - got, static_cast<off_t>(got));
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) break;
      got += static_cast<size_t>(k);
    }
    head.resize(got);
    return head;
  } catch (const DataError&) {
    return "";  // the reader reports it
  }
}

NamedTensors read_tensor_file(const std::string& path, const std::string& default_name) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto one = [&](Tensor t) {
    NamedTensors ts;
    ts.emplace_back(default_name, std::move(t));
    return ts;
  };
  if (ext == ".safetensors") return read_safetensors(path);
  if (ext == ".npy") return one(read_npy(path));
  if (is_idx(path, "")) return one(read_idx(path));
  if (ext.empty())
    fail(path, "cannot tell the tensor file format without an extension (supported: .safetensors, .npy, IDX)");
  fail(path, fmt::format("unsupported tensor file extension '{}' (supported: .safetensors, .npy, IDX)", ext));
}

}  // namespace gradc
