// The op table (compiler/ir/ops.def) and the front end's builtin table agree:
// every row the language reaches by name has exactly one builtin of that
// name that lowers to it, and every other builtin is a composite.
#include <catch2/catch.hpp>

#include <set>
#include <string>

#include "compiler/frontend/sema_impl.h"
#include "compiler/ir/ops.h"

namespace gradc {
namespace {

TEST_CASE("op table: rows are in enum order with their facts", "[ops]") {
  size_t i = 0;
  for (const OpInfo& row : all_ops()) {
    INFO(row.spelling);
    CHECK(static_cast<size_t>(row.op) == i++);
    CHECK(&op_info(row.op) == &row);
    CHECK(!row.spelling.empty());
    CHECK((row.kind == OpKind::Leaf) == (row.arity == 0));
  }
}

TEST_CASE("op table: each row named in the language is one builtin", "[ops][builtins]") {
  for (const OpInfo& row : all_ops()) {
    INFO(row.spelling);
    const BuiltinSpec* b = row.dsl_name.empty() ? nullptr : find_builtin(row.dsl_name);
    if (row.dsl == OpDsl::None) {
      CHECK(b == nullptr);
      continue;
    }
    REQUIRE(b != nullptr);
    CHECK(b->row == &row);
    if (row.dsl == OpDsl::Fn) CHECK(static_cast<int>(b->params.size()) == row.arity);
  }
}

TEST_CASE("op table: builtins without a row are composites, each named once", "[ops][builtins]") {
  std::set<std::string_view> seen;
  for (std::string_view name : builtin_names()) {
    INFO(name);
    CHECK(seen.insert(name).second);
    const BuiltinSpec* b = find_builtin(name);
    REQUIRE(b != nullptr);
    if (b->row) CHECK(b->row->dsl_name == name);
  }
}

}  // namespace
}  // namespace gradc
