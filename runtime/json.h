// A small, strict JSON reader and writer helpers, for the headers of tensor
// files (safetensors). Strict means RFC 8259 exactly: no comments, no trailing
// commas, no NaN, strings must be valid UTF-8 (escapes included: a lone
// surrogate is an error), and nesting is limited so that a hostile file cannot
// exhaust the stack. Integers are kept exact as int64 (with overflow noted, not
// rounded); numbers with a fraction or exponent are doubles.
//
// Two interfaces: a pull Reader, which lets a caller walk a large header
// without building a tree (and report errors in its own words), and parse(),
// which builds a Value tree for small documents. Syntax errors throw
// ParseError, whose message starts with the byte offset.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradc/tensor.h"

namespace gradc::json {

// A syntax error at byte offset() of the text: what() is "byte N: DETAIL".
class ParseError : public DataError {
 public:
  ParseError(size_t offset, const std::string& detail);
  size_t offset() const { return offset_; }
  // The message without the "byte N: " prefix.
  const std::string& detail() const { return detail_; }

 private:
  size_t offset_;
  std::string detail_;
};

enum class Kind { Null, Bool, Number, String, Array, Object };

// "null", "a boolean", "a number", "a string", "an array", "an object"
std::string_view kind_name(Kind k);

// A number as written. `integral`: no fraction and no exponent. For integral
// numbers `in_range` says whether `integer` holds the exact value (else it
// overflowed int64). `real` is the nearest double, for every number.
struct Number {
  bool integral = false;
  bool in_range = false;
  int64_t integer = 0;
  double real = 0;
  std::string_view text;  // the spelling, a view into the parsed text
};

inline constexpr int kDefaultMaxDepth = 64;

// A pull parser. Usage for an object:
//   r.begin_object(); std::string k; while (r.next_member(k)) { ...read one value... }
// and for an array: r.begin_array(); while (r.next_item()) { ...read one value... }
// Every value must be consumed (read_* or skip) before the next call to
// next_member/next_item. finish() checks that only whitespace remains.
class Reader {
 public:
  explicit Reader(std::string_view text, int max_depth = kDefaultMaxDepth);

  // The kind of the next value; throws at the end of input or on a character
  // that cannot start a value.
  Kind peek();
  // The byte offset of the next non-whitespace character.
  size_t offset();

  void begin_object();
  // Reads the next key and its ':' into `key`; false (and the '}' consumed) at the end.
  bool next_member(std::string& key);
  void begin_array();
  // True when another item follows; false (and the ']' consumed) at the end.
  bool next_item();

  std::string read_string();
  Number read_number();
  bool read_bool();
  void read_null();
  // Consumes (and validates) the next value, whatever it is, without recursion.
  void skip();
  // Throws unless only whitespace remains.
  void finish();

  [[noreturn]] void fail(size_t offset, const std::string& detail) const;

 private:
  struct Level {
    bool object;
    bool first;
  };
  void skip_ws();
  void expect(char c, const char* what);
  void open(char c, bool object, const char* what);
  uint32_t read_hex4();
  void read_string_into(std::string& out);

  std::string_view text_;
  size_t pos_ = 0;
  int max_depth_;
  std::vector<Level> stack_;
};

struct Member;

// A parsed document. Objects keep their members in text order, duplicates
// included (callers decide whether a duplicate key is an error).
struct Value {
  Kind kind = Kind::Null;
  size_t offset = 0;  // where the value starts in the text
  bool boolean = false;
  Number number;  // number.text is cleared: it would outlive the text
  std::string string;
  std::vector<Value> items;
  std::vector<Member> members;

  // The first member called `key`, or nullptr (also for non-objects).
  const Value* find(std::string_view key) const;
};

struct Member {
  std::string key;
  Value value;
};

// Parses a whole document (one value, surrounded only by whitespace).
Value parse(std::string_view text, int max_depth = kDefaultMaxDepth);

// --- writing ---

// True when `s` is well-formed UTF-8 (no overlong forms, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view s);
// `s` with '"', '\\' and control characters escaped as JSON requires (no quotes
// around it). Bytes >= 0x80 are copied as they are: the caller checks UTF-8.
std::string escape(std::string_view s);
// `s` escaped and in double quotes: a JSON string literal.
std::string quote(std::string_view s);

}  // namespace gradc::json
