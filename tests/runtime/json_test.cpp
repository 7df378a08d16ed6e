// The strict JSON reader behind safetensors headers: every value kind, escapes
// and surrogates, exact int64, the nesting limit, byte offsets in errors.
#include "runtime/json.h"

#include <catch2/catch.hpp>
#include <string>

namespace gradc::json {
namespace {

// The ParseError that parsing `text` throws (offset and message), or fails.
ParseError parse_error(std::string_view text) {
  try {
    (void)parse(text);
  } catch (const ParseError& e) {
    return e;
  }
  FAIL("no ParseError for: " << text);
  return ParseError(0, "");
}

TEST_CASE("json: every kind of value, members in text order") {
  Value v = parse(R"( {"n": null, "t": true, "f": false, "i": -12, "x": 2.5e1, "s": "hi", "a": [1, [], {}], "o": {"k": "v"}} )");
  REQUIRE(v.kind == Kind::Object);
  REQUIRE(v.members.size() == 8);
  CHECK(v.members[0].key == "n");
  CHECK(v.members[7].key == "o");
  CHECK(v.find("n")->kind == Kind::Null);
  CHECK(v.find("t")->boolean);
  CHECK_FALSE(v.find("f")->boolean);
  CHECK(v.find("f")->kind == Kind::Bool);
  const Number& i = v.find("i")->number;
  CHECK(i.integral);
  CHECK(i.in_range);
  CHECK(i.integer == -12);
  CHECK(v.find("x")->number.real == 25.0);
  CHECK_FALSE(v.find("x")->number.integral);
  CHECK(v.find("s")->string == "hi");
  const Value* a = v.find("a");
  REQUIRE(a->items.size() == 3);
  CHECK(a->items[1].kind == Kind::Array);
  CHECK(a->items[2].kind == Kind::Object);
  CHECK(v.find("o")->find("k")->string == "v");
  CHECK(v.find("missing") == nullptr);
  CHECK(v.find("o")->offset == 92);
}

TEST_CASE("json: duplicate keys are kept for the caller to judge") {
  Value v = parse(R"({"a": 1, "a": 2})");
  REQUIRE(v.members.size() == 2);
  CHECK(v.find("a")->number.integer == 1);
}

TEST_CASE("json: string escapes, \\u escapes and surrogate pairs") {
  CHECK(parse(R"("a\"b\\c\/d\b\f\n\r\t")").string == "a\"b\\c/d\b\f\n\r\t");
  CHECK(parse(R"("\u00e9\u20AC")").string == "\xc3\xa9\xe2\x82\xac");
  CHECK(parse(R"("\ud83d\ude00")").string == "\xf0\x9f\x98\x80");
  CHECK(parse(R"("\u0000")").string == std::string(1, '\0'));
  CHECK(parse("\"caf\xc3\xa9 \xf0\x9f\x98\x80\"").string == "caf\xc3\xa9 \xf0\x9f\x98\x80");

  CHECK_THAT(parse_error(R"("\ud83d")").what(), Catch::Contains("high surrogate"));
  CHECK_THAT(parse_error(R"("\ud83d\u0041")").what(), Catch::Contains("high surrogate"));
  CHECK_THAT(parse_error(R"("\ude00")").what(), Catch::Contains("lone low surrogate"));
  CHECK_THAT(parse_error(R"("\u12g4")").what(), Catch::Contains("hex digit"));
  CHECK_THAT(parse_error(R"("\x")").what(), Catch::Contains("invalid escape"));
  CHECK_THAT(parse_error("\"a\nb\"").what(), Catch::Contains("control character"));
  CHECK_THAT(parse_error("\"abc").what(), Catch::Contains("unterminated string"));
  CHECK_THAT(parse_error("\"\\u12").what(), Catch::Contains("end of input"));
}

TEST_CASE("json: strings must be valid utf-8") {
  for (const char* bad : {"\"\xff\"", "\"\xc0\x80\"", "\"\xed\xa0\x80\"", "\"\xf4\x90\x80\x80\"", "\"\xe2\x82\"", "\"\x80\""}) {
    INFO("input: " << bad);
    ParseError e = parse_error(bad);
    CHECK(e.offset() == 1);
    CHECK_THAT(e.what(), Catch::Contains("invalid utf-8"));
  }
  CHECK(is_valid_utf8("plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"));
  CHECK_FALSE(is_valid_utf8("\xc0\x80"));          // overlong
  CHECK_FALSE(is_valid_utf8("\xe0\x80\xaf"));      // overlong
  CHECK_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(is_valid_utf8("ab\xe2\x82"));        // truncated
}

TEST_CASE("json: integers are exact int64 with overflow noted") {
  Number max = parse("9223372036854775807").number;
  CHECK(max.in_range);
  CHECK(max.integer == INT64_MAX);
  Number min = parse("-9223372036854775808").number;
  CHECK(min.in_range);
  CHECK(min.integer == INT64_MIN);
  CHECK_FALSE(parse("9223372036854775808").number.in_range);
  CHECK_FALSE(parse("-9223372036854775809").number.in_range);
  CHECK(parse("9007199254740993").number.integer == 9007199254740993);  // not representable as a double
  Number huge = parse("123456789012345678901234567890").number;
  CHECK(huge.integral);
  CHECK_FALSE(huge.in_range);
  CHECK(parse("-0").number.integer == 0);
  CHECK(parse("1e2").number.real == 100.0);
  CHECK_FALSE(parse("1e2").number.integral);
  CHECK(parse("-0.5E-1").number.real == -0.05);
}

TEST_CASE("json: malformed numbers and literals") {
  CHECK_THAT(parse_error("01").what(), Catch::Contains("leading zeros"));
  CHECK_THAT(parse_error("-").what(), Catch::Contains("expected a digit after '-'"));
  CHECK_THAT(parse_error("1.").what(), Catch::Contains("after '.'"));
  CHECK_THAT(parse_error("1e").what(), Catch::Contains("exponent"));
  CHECK_THAT(parse_error(".5").what(), Catch::Contains("expected a value"));
  CHECK_THAT(parse_error("+1").what(), Catch::Contains("expected a value"));
  CHECK_THAT(parse_error("1e999").what(), Catch::Contains("out of the range of a double"));
  CHECK_THAT(parse_error("NaN").what(), Catch::Contains("expected a value"));
  CHECK_THAT(parse_error("tru").what(), Catch::Contains("'true' or 'false'"));
  CHECK_THAT(parse_error("nul").what(), Catch::Contains("'null'"));
  CHECK_THAT(parse_error("truex").what(), Catch::Contains("after the json value"));
}

TEST_CASE("json: structure errors carry the byte offset") {
  ParseError e = parse_error(R"({"a" 1})");
  CHECK(e.offset() == 5);
  CHECK(std::string(e.what()) == "byte 5: expected ':' after an object key, found '1'");
  CHECK(e.detail() == "expected ':' after an object key, found '1'");
  CHECK(parse_error("[1, 2,]").offset() == 6);
  CHECK_THAT(parse_error("[1, 2,]").what(), Catch::Contains("trailing comma"));
  CHECK_THAT(parse_error(R"({"a": 1,})").what(), Catch::Contains("trailing comma"));
  CHECK_THAT(parse_error("[1 2]").what(), Catch::Contains("expected ',' or ']'"));
  CHECK_THAT(parse_error(R"({"a": 1 "b": 2})").what(), Catch::Contains("expected ',' or '}'"));
  CHECK_THAT(parse_error("{1: 2}").what(), Catch::Contains("expected a string key"));
  CHECK_THAT(parse_error("[1").what(), Catch::Contains("end of input inside an array"));
  CHECK_THAT(parse_error(R"({"a": 1)").what(), Catch::Contains("end of input inside an object"));
  CHECK(parse_error("{} x").offset() == 3);
  CHECK(parse_error("").offset() == 0);
  CHECK(parse_error("   ").offset() == 3);
  CHECK_THAT(parse_error("// c\n1").what(), Catch::Contains("expected a value"));
  CHECK_THAT(parse_error("\x01").what(), Catch::Contains("byte 0x01"));
}

TEST_CASE("json: the nesting limit stops deep input without deep recursion") {
  std::string ok = std::string(64, '[') + std::string(64, ']');
  CHECK(parse(ok).kind == Kind::Array);
  std::string deep = std::string(65, '[') + std::string(65, ']');
  CHECK_THAT(parse_error(deep).what(), Catch::Contains("nesting is deeper than 64 levels"));
  CHECK(parse_error(deep).offset() == 64);
  // A million brackets: rejected at depth 65, by parse() and by skip().
  std::string huge(1'000'000, '[');
  CHECK_THAT(parse_error(huge).what(), Catch::Contains("nesting"));
  Reader r(huge);
  CHECK_THROWS_AS(r.skip(), ParseError);
  CHECK(parse("[[1]]", 2).kind == Kind::Array);
  CHECK_THROWS_AS(parse("[[1]]", 1), ParseError);
}

TEST_CASE("json: the pull reader walks and skips values") {
  Reader r(R"({"skip": {"x": [1, "two", {"3": null}], "y": true}, "keep": [7, 8], "s": "z"})");
  REQUIRE(r.peek() == Kind::Object);
  r.begin_object();
  std::string key;
  REQUIRE(r.next_member(key));
  CHECK(key == "skip");
  r.skip();
  REQUIRE(r.next_member(key));
  CHECK(key == "keep");
  r.begin_array();
  std::vector<int64_t> items;
  while (r.next_item()) items.push_back(r.read_number().integer);
  CHECK(items == std::vector<int64_t>{7, 8});
  REQUIRE(r.next_member(key));
  CHECK(r.read_string() == "z");
  CHECK_FALSE(r.next_member(key));
  r.finish();

  Reader bad(R"([1, {"a": [}])");
  CHECK_THROWS_AS(bad.skip(), ParseError);
  Reader trailing("1 2");
  trailing.skip();
  CHECK_THROWS_AS(trailing.finish(), ParseError);
}

TEST_CASE("json: escape and quote write what the reader reads back") {
  std::string tricky = std::string("q\"b\\s/n\nt\tc\x01\x7f") + '\0' + "\xc3\xa9";
  CHECK(quote("a\"b") == R"("a\"b")");
  CHECK(escape("\n\x01") == "\\n\\u0001");
  CHECK(parse(quote(tricky)).string == tricky);
}

}  // namespace
}  // namespace gradc::json
