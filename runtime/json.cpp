// The strict JSON reader (json.h). Every input byte is checked exactly once;
// nothing recurses except parse(), whose depth the Reader bounds.
#include "runtime/json.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <limits>
#include <stdexcept>

namespace gradc::json {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// A character for a message: 'x' when printable ASCII, else its byte value.
std::string show_char(char c) {
  auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return fmt::format("'{}'", c);
  return fmt::format("byte 0x{:02x}", u);
}

// The length of the well-formed UTF-8 sequence starting at s[i] (a byte >=
// 0x80), or 0 when it is malformed (Unicode 15, table 3-7).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto at = [&](size_t k) -> unsigned { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0x100; };
  auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xbf) { return at(k) >= lo && at(k) <= hi; };
  unsigned b = at(0);
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b == 0xe0) return cont(1, 0xa0, 0xbf) && cont(2) ? 3 : 0;
  if ((b >= 0xe1 && b <= 0xec) || b == 0xee || b == 0xef) return cont(1) && cont(2) ? 3 : 0;
  if (b == 0xed) return cont(1, 0x80, 0x9f) && cont(2) ? 3 : 0;  // no surrogates
  if (b == 0xf0) return cont(1, 0x90, 0xbf) && cont(2) && cont(3) ? 4 : 0;
  if (b >= 0xf1 && b <= 0xf3) return cont(1) && cont(2) && cont(3) ? 4 : 0;
  if (b == 0xf4) return cont(1, 0x80, 0x8f) && cont(2) && cont(3) ? 4 : 0;  // <= U+10FFFF
  return 0;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

}  // namespace

ParseError::ParseError(size_t offset, const std::string& detail)
    : DataError(fmt::format("byte {}: {}", offset, detail)), offset_(offset), detail_(detail) {}

std::string_view kind_name(Kind k) {
  switch (k) {
    case Kind::Null:
      return "null";
    case Kind::Bool:
      return "a boolean";
    case Kind::Number:
      return "a number";
    case Kind::String:
      return "a string";
    case Kind::Array:
      return "an array";
    case Kind::Object:
      return "an object";
  }
  return "?";
}

Reader::Reader(std::string_view text, int max_depth) : text_(text), max_depth_(max_depth) {}

void Reader::fail(size_t offset, const std::string& detail) const { throw ParseError(offset, detail); }

// ws = *( %x20 / %x09 / %x0A / %x0D )
void Reader::skip_ws() {
  while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' || text_[pos_] == '\n' || text_[pos_] == '\r')) ++pos_;
}

size_t Reader::offset() {
  skip_ws();
  return pos_;
}

void Reader::expect(char c, const char* what) {
  skip_ws();
  if (pos_ >= text_.size()) fail(pos_, fmt::format("unexpected end of input, {}", what));
  if (text_[pos_] != c) fail(pos_, fmt::format("{}, found {}", what, show_char(text_[pos_])));
  ++pos_;
}

// value = false / null / true / object / array / number / string
Kind Reader::peek() {
  skip_ws();
  if (pos_ >= text_.size()) fail(pos_, "unexpected end of input, expected a value");
  char c = text_[pos_];
  switch (c) {
    case '{':
      return Kind::Object;
    case '[':
      return Kind::Array;
    case '"':
      return Kind::String;
    case 't':
    case 'f':
      return Kind::Bool;
    case 'n':
      return Kind::Null;
    default:
      if (c == '-' || is_digit(c)) return Kind::Number;
      fail(pos_, fmt::format("expected a value, found {}", show_char(c)));
  }
}

void Reader::open(char c, bool object, const char* what) {
  expect(c, what);
  if (static_cast<int>(stack_.size()) >= max_depth_) fail(pos_ - 1, fmt::format("nesting is deeper than {} levels", max_depth_));
  stack_.push_back({object, true});
}

// object = begin-object [ member *( value-separator member ) ] end-object
// member = string name-separator value
void Reader::begin_object() { open('{', true, "expected an object"); }

bool Reader::next_member(std::string& key) {
  if (stack_.empty() || !stack_.back().object) throw std::logic_error("json::Reader::next_member outside an object");
  skip_ws();
  if (pos_ >= text_.size()) fail(pos_, "unexpected end of input inside an object");
  if (text_[pos_] == '}') {
    ++pos_;
    stack_.pop_back();
    return false;
  }
  if (!stack_.back().first) {
    if (text_[pos_] != ',')
      fail(pos_, fmt::format("expected ',' or '}}' after an object member, found {}", show_char(text_[pos_])));
    ++pos_;
    skip_ws();
    if (pos_ < text_.size() && text_[pos_] == '}') fail(pos_, "trailing comma before '}'");
  }
  if (pos_ >= text_.size()) fail(pos_, "unexpected end of input inside an object");
  if (text_[pos_] != '"') fail(pos_, fmt::format("expected a string key, found {}", show_char(text_[pos_])));
  key.clear();
  read_string_into(key);
  expect(':', "expected ':' after an object key");
  stack_.back().first = false;
  return true;
}

// array = begin-array [ value *( value-separator value ) ] end-array
void Reader::begin_array() { open('[', false, "expected an array"); }

bool Reader::next_item() {
  if (stack_.empty() || stack_.back().object) throw std::logic_error("json::Reader::next_item outside an array");
  skip_ws();
  if (pos_ >= text_.size()) fail(pos_, "unexpected end of input inside an array");
  if (text_[pos_] == ']') {
    ++pos_;
    stack_.pop_back();
    return false;
  }
  if (!stack_.back().first) {
    if (text_[pos_] != ',') fail(pos_, fmt::format("expected ',' or ']' after an array item, found {}", show_char(text_[pos_])));
    ++pos_;
    skip_ws();
    if (pos_ < text_.size() && text_[pos_] == ']') fail(pos_, "trailing comma before ']'");
  }
  stack_.back().first = false;
  return true;
}

uint32_t Reader::read_hex4() {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k, ++pos_) {
    if (pos_ >= text_.size()) fail(pos_, "unexpected end of input in a \\u escape");
    char c = text_[pos_];
    int d = is_digit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : -1;
    if (d < 0) fail(pos_, fmt::format("expected a hex digit in a \\u escape, found {}", show_char(c)));
    v = v * 16 + static_cast<uint32_t>(d);
  }
  return v;
}

// string = quotation-mark *char quotation-mark
void Reader::read_string_into(std::string& out) {
  skip_ws();
  size_t start = pos_;
  if (pos_ >= text_.size() || text_[pos_] != '"') fail(pos_, "expected a string");
  ++pos_;
  for (;;) {
    if (pos_ >= text_.size()) fail(start, "unterminated string");
    auto c = static_cast<unsigned char>(text_[pos_]);
    if (c == '"') {
      ++pos_;
      return;
    }
    if (c < 0x20) fail(pos_, fmt::format("unescaped control character {} in a string", show_char(static_cast<char>(c))));
    if (c >= 0x80) {
      size_t n = utf8_sequence_length(text_, pos_);
      if (n == 0) fail(pos_, "invalid utf-8 in a string");
      out.append(text_.substr(pos_, n));
      pos_ += n;
      continue;
    }
    if (c != '\\') {
      out += static_cast<char>(c);
      ++pos_;
      continue;
    }
    size_t esc = pos_++;
    if (pos_ >= text_.size()) fail(start, "unterminated string");
    char e = text_[pos_++];
    switch (e) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        uint32_t cp = read_hex4();
        if (cp >= 0xdc00 && cp <= 0xdfff) fail(esc, "lone low surrogate in a \\u escape");
        if (cp >= 0xd800 && cp <= 0xdbff) {
          if (pos_ + 1 >= text_.size() || text_[pos_] != '\\' || text_[pos_ + 1] != 'u')
            fail(esc, "high surrogate not followed by a low surrogate");
          pos_ += 2;
          uint32_t lo = read_hex4();
          if (lo < 0xdc00 || lo > 0xdfff) fail(esc, "high surrogate not followed by a low surrogate");
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        append_utf8(out, cp);
        break;
      }
      default:
        fail(esc, fmt::format("invalid escape '\\{}'", show_char(e)));
    }
  }
}

std::string Reader::read_string() {
  std::string s;
  read_string_into(s);
  return s;
}

// number = [ minus ] int [ frac ] [ exp ]
// int = zero / ( digit1-9 *DIGIT ); frac = "." 1*DIGIT; exp = e [ minus / plus ] 1*DIGIT
Number Reader::read_number() {
  skip_ws();
  size_t start = pos_;
  auto digits = [&](const char* where) {
    if (pos_ >= text_.size() || !is_digit(text_[pos_])) fail(pos_, fmt::format("expected a digit {}", where));
    while (pos_ < text_.size() && is_digit(text_[pos_])) ++pos_;
  };
  Number n;
  bool negative = pos_ < text_.size() && text_[pos_] == '-';
  if (negative) ++pos_;
  size_t int_start = pos_;
  if (pos_ < text_.size() && text_[pos_] == '0') {
    ++pos_;
    if (pos_ < text_.size() && is_digit(text_[pos_])) fail(int_start, "leading zeros are not allowed in a number");
  } else {
    digits(negative ? "after '-'" : "in a number");
  }
  size_t int_end = pos_;
  n.integral = true;
  if (pos_ < text_.size() && text_[pos_] == '.') {
    ++pos_;
    digits("after '.'");
    n.integral = false;
  }
  if (pos_ < text_.size() && (text_[pos_] == 'e' || text_[pos_] == 'E')) {
    ++pos_;
    if (pos_ < text_.size() && (text_[pos_] == '+' || text_[pos_] == '-')) ++pos_;
    digits("in an exponent");
    n.integral = false;
  }
  n.text = text_.substr(start, pos_ - start);

  if (n.integral) {
    // Exact: accumulate the magnitude in uint64 and check it against int64's range.
    uint64_t mag = 0;
    const uint64_t limit = negative ? uint64_t{1} << 63 : (uint64_t{1} << 63) - 1;
    n.in_range = true;
    for (size_t i = int_start; i < int_end; ++i) {
      auto d = static_cast<uint64_t>(text_[i] - '0');
      if (mag > (limit - d) / 10) {
        n.in_range = false;
        break;
      }
      mag = mag * 10 + d;
    }
    if (n.in_range) n.integer = negative ? static_cast<int64_t>(0 - mag) : static_cast<int64_t>(mag);
  }
  auto [end, ec] = std::from_chars(n.text.data(), n.text.data() + n.text.size(), n.real);
  if (ec == std::errc::result_out_of_range) {
    // Integers beyond a double's range are still exact-checked above; other
    // numbers that do not fit a double are rejected rather than rounded.
    if (!n.integral) fail(start, fmt::format("number {} is out of the range of a double", n.text));
    n.real = negative ? -HUGE_VAL : HUGE_VAL;
  } else if (ec != std::errc() || end != n.text.data() + n.text.size()) {
    fail(start, fmt::format("malformed number {}", n.text));
  }
  return n;
}

bool Reader::read_bool() {
  skip_ws();
  if (text_.substr(pos_, 4) == "true") {
    pos_ += 4;
    return true;
  }
  if (text_.substr(pos_, 5) == "false") {
    pos_ += 5;
    return false;
  }
  fail(pos_, "expected 'true' or 'false'");
}

void Reader::read_null() {
  skip_ws();
  if (text_.substr(pos_, 4) != "null") fail(pos_, "expected 'null'");
  pos_ += 4;
}

void Reader::skip() {
  const size_t base = stack_.size();
  std::string key;
  for (;;) {
    // At the start of a value: consume a scalar or open a container.
    switch (peek()) {
      case Kind::Object:
        begin_object();
        break;
      case Kind::Array:
        begin_array();
        break;
      case Kind::String:
        read_string_into(key);
        key.clear();
        break;
      case Kind::Number:
        read_number();
        break;
      case Kind::Bool:
        read_bool();
        break;
      case Kind::Null:
        read_null();
        break;
    }
    // Close finished containers until one has another value, or we are back out.
    for (;;) {
      if (stack_.size() == base) return;
      bool more = stack_.back().object ? next_member(key) : next_item();
      if (more) break;
    }
  }
}

void Reader::finish() {
  skip_ws();
  if (pos_ < text_.size()) fail(pos_, fmt::format("unexpected {} after the json value", show_char(text_[pos_])));
}

const Value* Value::find(std::string_view key) const {
  for (const Member& m : members)
    if (m.key == key) return &m.value;
  return nullptr;
}

namespace {

// Recursion depth is bounded by the Reader's nesting limit.
Value parse_value(Reader& r) {
  Value v;
  v.offset = r.offset();
  v.kind = r.peek();
  switch (v.kind) {
    case Kind::Null:
      r.read_null();
      break;
    case Kind::Bool:
      v.boolean = r.read_bool();
      break;
    case Kind::Number:
      v.number = r.read_number();
      v.number.text = {};
      break;
    case Kind::String:
      v.string = r.read_string();
      break;
    case Kind::Array:
      r.begin_array();
      while (r.next_item()) v.items.push_back(parse_value(r));
      break;
    case Kind::Object: {
      r.begin_object();
      std::string key;
      while (r.next_member(key)) {
        Value item = parse_value(r);
        v.members.push_back(Member{std::move(key), std::move(item)});
      }
      break;
    }
  }
  return v;
}

}  // namespace

Value parse(std::string_view text, int max_depth) {
  Reader r(text, max_depth);
  Value v = parse_value(r);
  r.finish();
  return v;
}

bool is_valid_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    size_t n = utf8_sequence_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += fmt::format("\\u{:04x}", static_cast<unsigned char>(c));
        else
          out += c;
    }
  }
  return out;
}

std::string quote(std::string_view s) { return "\"" + escape(s) + "\""; }

}  // namespace gradc::json
