// Unit tests of the message catalog (compiler/support/messages.h): every text follows the
// house style (lowercase start, no trailing period, no stray whitespace), names are unique
// and carry their kind's prefix, and a message renders its arguments in order.
#include <catch2/catch.hpp>

#include <cctype>
#include <set>
#include <string>

#include "compiler/support/messages.h"

namespace gradc {
namespace {

TEST_CASE("messages: every catalog text is lowercase, without a trailing period", "[messages]") {
  REQUIRE(std::size(diag::kCatalog) > 0);
  for (const diag::CatalogEntry& e : diag::kCatalog) {
    INFO(e.name << ": \"" << e.text << "\"");
    REQUIRE(!e.text.empty());
    CHECK(!std::isupper(static_cast<unsigned char>(e.text.front())));
    CHECK(e.text.back() != '.');
    CHECK(!std::isspace(static_cast<unsigned char>(e.text.front())));
    CHECK(!std::isspace(static_cast<unsigned char>(e.text.back())));
    CHECK(e.text.find('\n') == std::string_view::npos);
  }
}

TEST_CASE("messages: names are unique and say their kind", "[messages]") {
  std::set<std::string_view> seen;
  for (const diag::CatalogEntry& e : diag::kCatalog) {
    INFO(e.name);
    CHECK(seen.insert(e.name).second);
    CHECK((e.name.starts_with("err_") || e.name.starts_with("warn_") || e.name.starts_with("note_") || e.name.starts_with("check_") ||
           e.name.starts_with("remark_")));
  }
}

TEST_CASE("messages: a message renders its typed arguments", "[messages]") {
  CHECK(diag::err_binary_shapes("add", std::string("[2, 3]"), "[4]") == "cannot add tensors of shapes [2, 3] and [4]");
  CHECK(diag::err_op_arity("add", 2, size_t{3}) == "'add' takes 2 operands, got 3");
  CHECK(diag::err_invalid_utf8(static_cast<unsigned char>(0xff)) == "invalid UTF-8 byte 0xff in model source");
  CHECK(diag::err_unexpected_char('$') == "unexpected character '$'");
  CHECK(diag::check_class_id_at(7.0, 1, 5) == "class id 7 at position 1 is outside [0, 5)");
  CHECK(diag::err_return_outside_fn() == "'return' outside of a fn block");
  CHECK(diag::err_return_outside_fn.name == "err_return_outside_fn");
}

}  // namespace
}  // namespace gradc
