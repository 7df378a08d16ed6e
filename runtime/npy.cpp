// NumPy .npy files (format versions 1.0, 2.0 and 3.0): one array.
//
// Layout: "\x93NUMPY" | major | minor | header length (u16 LE for 1.0, u32 LE
// for 2.0 and 3.0) | header, a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }
// padded with spaces and a newline | the array's data.
// The header is parsed by a tiny grammar (below), never evaluated.
#include <fmt/format.h>

#include <cstring>
#include <optional>

#include "runtime/output_file.h"
#include "runtime/tensor_io.h"

namespace gradc {
namespace {

[[noreturn]] void fail(const std::string& what, const std::string& msg) { throw DataError(what + ": " + msg); }

// Text from the file for a message: printable ASCII kept, other bytes as \xNN.
std::string show(std::string_view s) {
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f && c != '\\')
      out += c;
    else
      out += fmt::format("\\x{:02x}", u);
  }
  return out;
}

// Python's spelling of a shape: (), (5,), (2, 3).
std::string tuple_string(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

struct NpyHeader {
  std::string descr;
  bool fortran_order = false;
  std::vector<int64_t> shape;
};

// header = "{" [ item *( "," item ) [ "," ] ] "}"
// item   = str ":" ( str / "True" / "False" / tuple )
// tuple  = "(" [ int "," [ int *( "," int ) [ "," ] ] ] ")"   -- "(5)" is an int in Python, not a tuple
// str    = "'" *char "'" / '"' *char '"'          -- no escapes
// int    = 1*DIGIT [ "L" ]                        -- Python 2 wrote 3L
class HeaderParser {
 public:
  HeaderParser(std::string_view text, size_t base, const std::string& what) : text_(text), base_(base), what_(what) {}

  NpyHeader parse() {
    NpyHeader h;
    bool has_descr = false, has_fortran = false, has_shape = false;
    expect('{');
    for (bool first = true;; first = false) {
      ws();
      if (at('}')) break;
      if (!first) {
        expect(',');
        ws();
        if (at('}')) break;
      }
      size_t key_at = pos_;
      std::string key = str();
      expect(':');
      auto once = [&](bool& seen) {
        if (seen) error(key_at, fmt::format("key '{}' appears twice", show(key)));
        seen = true;
      };
      if (key == "descr") {
        once(has_descr);
        ws();
        if (at('[')) error(pos_, "structured dtypes are not supported");
        h.descr = str();
      } else if (key == "fortran_order") {
        once(has_fortran);
        h.fortran_order = boolean();
      } else if (key == "shape") {
        once(has_shape);
        h.shape = tuple();
      } else {
        error(key_at, fmt::format("unexpected key '{}' (a .npy header has descr, fortran_order and shape)", show(key)));
      }
    }
    ++pos_;
    ws();
    if (pos_ < text_.size()) error(pos_, "unexpected text after the closing '}'");
    if (!has_descr) fail(what_, "the .npy header has no 'descr'");
    if (!has_fortran) fail(what_, "the .npy header has no 'fortran_order'");
    if (!has_shape) fail(what_, "the .npy header has no 'shape'");
    return h;
  }

 private:
  [[noreturn]] void error(size_t at, const std::string& detail) {
    fail(what_, fmt::format("invalid .npy header at byte {}: {}", base_ + at, detail));
  }
  bool at(char c) const { return pos_ < text_.size() && text_[pos_] == c; }
  void ws() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r'))
      ++pos_;
  }
  void expect(char c) {
    ws();
    if (pos_ >= text_.size()) error(pos_, fmt::format("expected '{}', found the end of the header", c));
    if (text_[pos_] != c) error(pos_, fmt::format("expected '{}', found '{}'", c, show(text_.substr(pos_, 1))));
    ++pos_;
  }
  std::string str() {
    ws();
    if (!at('\'') && !at('"')) error(pos_, "expected a quoted string");
    char q = text_[pos_];
    size_t start = pos_++;
    std::string s;
    for (;; ++pos_) {
      if (pos_ >= text_.size() || text_[pos_] == '\n') error(start, "unterminated string");
      if (text_[pos_] == '\\') error(pos_, "escapes in header strings are not supported");
      if (text_[pos_] == q) break;
      s += text_[pos_];
    }
    ++pos_;
    return s;
  }
  bool boolean() {
    ws();
    if (text_.substr(pos_, 4) == "True") {
      pos_ += 4;
      return true;
    }
    if (text_.substr(pos_, 5) == "False") {
      pos_ += 5;
      return false;
    }
    error(pos_, "expected True or False");
  }
  int64_t integer() {
    ws();
    size_t start = pos_;
    if (at('-')) error(pos_, "a shape entry is negative");
    if (pos_ >= text_.size() || text_[pos_] < '0' || text_[pos_] > '9') error(pos_, "expected a non-negative integer");
    int64_t v = 0;
    bool overflow = false;
    for (; pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9'; ++pos_)
      overflow |= __builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, text_[pos_] - '0', &v);
    if (overflow) error(start, fmt::format("shape entry {} is too large", text_.substr(start, pos_ - start)));
    if (at('L') || at('l')) ++pos_;
    return v;
  }
  std::vector<int64_t> tuple() {
    expect('(');
    std::vector<int64_t> out;
    ws();
    bool comma = false;
    while (!at(')')) {
      if (!out.empty() && !comma) expect(',');  // reports the missing comma
      out.push_back(integer());
      ws();
      comma = at(',');
      if (comma) ++pos_;
      ws();
    }
    if (out.size() == 1 && !comma) error(pos_, fmt::format("shape ({}) is not a tuple: write ({},)", out[0], out[0]));
    ++pos_;
    return out;
  }

  std::string_view text_;
  size_t pos_ = 0;
  size_t base_;  // the header's offset in the file, for messages
  const std::string& what_;
};

struct NpyDType {
  DType type;
  size_t file_size;
  bool from_i64;
};

NpyDType lookup_descr(const std::string& descr, const std::string& what) {
  std::string_view code = descr;
  char order = '=';
  if (!code.empty() && (code[0] == '<' || code[0] == '>' || code[0] == '|' || code[0] == '=')) {
    order = code[0];
    code.remove_prefix(1);
  }
  std::optional<NpyDType> t;
  if (code == "f4") t = NpyDType{DType::F32, 4, false};
  if (code == "f8") t = NpyDType{DType::F64, 8, false};
  if (code == "i4") t = NpyDType{DType::I32, 4, false};
  if (code == "i8") t = NpyDType{DType::I32, 8, true};
  if (!t) fail(what, fmt::format("dtype '{}' is not supported (supported: <f4, <f8, <i4, <i8)", show(descr)));
  if (order == '>')
    fail(what, fmt::format("big-endian dtype '{}' is not supported: save the array as little-endian, e.g. a.astype('<{}')",
                           show(descr), code));
  return *t;  // '<', and '=' or '|' (native), which is little-endian on every host gradc runs on
}

// Copies the file's elements into `out` in C order: from Fortran order when
// `fortran`, and converting int64 to int32 (range-checked) when `t.from_i64`.
void copy_elements(const char* src, const NpyDType& t, bool fortran, Tensor& out, const std::string& what) {
  const std::vector<int64_t>& shape = out.shape();
  const int64_t n = out.numel();
  const size_t rank = shape.size();
  if (n == 0) return;
  if (!fortran && !t.from_i64) {
    std::memcpy(out.raw(), src, out.nbytes());
    return;
  }
  // Fortran order: the first index varies fastest. Walk the C-order
  // multi-index like an odometer, keeping the source element index in step.
  std::vector<int64_t> idx(rank, 0), fstride(rank, 1);
  for (size_t k = 1; k < rank; ++k) fstride[k] = fstride[k - 1] * shape[k - 1];
  char* dst = static_cast<char*>(out.raw());
  const size_t dst_size = dtype_size(out.dtype());
  int64_t s = 0;
  for (int64_t i = 0; i < n; ++i) {
    const char* p = src + static_cast<size_t>(s) * t.file_size;
    if (t.from_i64) {
      int64_t v;
      std::memcpy(&v, p, 8);
      if (v < INT32_MIN || v > INT32_MAX)
        fail(what, fmt::format("element {} is {}, outside the i32 range (<i8 data is converted to i32)", i, v));
      auto w = static_cast<int32_t>(v);
      std::memcpy(dst + static_cast<size_t>(i) * 4, &w, 4);
    } else {
      std::memcpy(dst + static_cast<size_t>(i) * dst_size, p, dst_size);
    }
    if (!fortran) {
      s = i + 1;
      continue;
    }
    for (size_t k = rank; k-- > 0;) {
      s += fstride[k];
      if (++idx[k] < shape[k]) break;
      s -= shape[k] * fstride[k];
      idx[k] = 0;
    }
  }
}

}  // namespace

Tensor parse_npy(std::string_view bytes, const std::string& what) {
  static constexpr std::string_view kMagic("\x93NUMPY", 6);
  if (bytes.size() < 6 || bytes.substr(0, 6) != kMagic) fail(what, "not a .npy file (the magic string \\x93NUMPY is missing)");
  if (bytes.size() < 10) fail(what, fmt::format("file is {} bytes, too short for a .npy header", bytes.size()));
  int major = static_cast<unsigned char>(bytes[6]), minor = static_cast<unsigned char>(bytes[7]);
  if ((major != 1 && major != 2 && major != 3) || minor != 0)
    fail(what, fmt::format("unsupported .npy format version {}.{} (supported: 1.0, 2.0, 3.0)", major, minor));
  size_t start = major == 1 ? 10 : 12;
  if (bytes.size() < start) fail(what, fmt::format("file is {} bytes, too short for a .npy header", bytes.size()));
  uint64_t header_len = static_cast<unsigned char>(bytes[8]) | static_cast<uint64_t>(static_cast<unsigned char>(bytes[9])) << 8;
  if (major != 1)
    header_len |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[10])) << 16 |
                  static_cast<uint64_t>(static_cast<unsigned char>(bytes[11])) << 24;
  if (header_len > bytes.size() - start)
    fail(what,
         fmt::format("header length {} runs past the end of the file ({} bytes follow it)", header_len, bytes.size() - start));

  NpyHeader h = HeaderParser(bytes.substr(start, header_len), start, what).parse();
  NpyDType t = lookup_descr(h.descr, what);

  std::string_view data = bytes.substr(start + header_len);
  uint64_t need = t.file_size;
  for (int64_t d : h.shape)
    if (__builtin_mul_overflow(need, static_cast<uint64_t>(d), &need))
      fail(what, fmt::format("shape {} has too many elements", tuple_string(h.shape)));
  if (data.size() != need)
    fail(what, fmt::format("data is {} bytes, but shape {} of '{}' needs {}{}", data.size(), tuple_string(h.shape), show(h.descr),
                           need, data.size() < need ? " (the file is truncated)" : " (trailing bytes)"));

  Tensor out;
  try {
    out = Tensor(t.type, h.shape);
  } catch (const DataError&) {
    fail(what, fmt::format("shape {} is too large", tuple_string(h.shape)));
  }
  copy_elements(data.data(), t, h.fortran_order && h.shape.size() > 1, out, what);
  return out;
}

Tensor read_npy(const std::string& path) { return parse_npy(read_binary_file(path), path); }

std::string serialize_npy(const Tensor& t) {
  const char* descr = t.dtype() == DType::F64 ? "<f8" : t.dtype() == DType::I32 ? "<i4" : "<f4";
  std::string header = fmt::format("{{'descr': '{}', 'fortran_order': False, 'shape': {}, }}", descr, tuple_string(t.shape()));
  // Version 1.0: magic (6) + version (2) + length (2) + header, padded with
  // spaces and ended by '\n' so that the data starts on a 64-byte boundary.
  size_t total = 10 + header.size() + 1;
  header += std::string((64 - total % 64) % 64, ' ') + "\n";
  std::string out("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  out.append(static_cast<const char*>(t.raw()), t.nbytes());
  return out;
}

void write_npy(const std::string& path, const Tensor& t) { write_output_file(path, serialize_npy(t)); }

}  // namespace gradc
