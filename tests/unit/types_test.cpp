// Unit tests of dtypes and shapes (compiler/ir/types.h): NumPy broadcasting,
// printing with dim names, element counts with overflow, axis normalization.
#include <catch2/catch.hpp>

#include <cstdint>
#include <limits>

#include "compiler/ir/types.h"
#include "compiler/support/diagnostics.h"

namespace gradc {
namespace {

// A shape with some named dims: named("B", 64) etc.
Dim named(const char* name, int64_t size) { return Dim{size, name}; }

std::optional<std::vector<int64_t>> bcast(std::initializer_list<int64_t> a, std::initializer_list<int64_t> b) {
  auto r = broadcast_shapes(make_shape(a), make_shape(b));
  if (!r) return std::nullopt;
  return sizes(*r);
}

using V = std::vector<int64_t>;

TEST_CASE("broadcast: scalars", "[types]") {
  CHECK(bcast({}, {}) == V{});
  CHECK(bcast({}, {3, 4}) == V{3, 4});
  CHECK(bcast({3, 4}, {}) == V{3, 4});
  CHECK(bcast({}, {1}) == V{1});
}

TEST_CASE("broadcast: equal shapes", "[types]") {
  CHECK(bcast({5}, {5}) == V{5});
  CHECK(bcast({2, 3, 4}, {2, 3, 4}) == V{2, 3, 4});
}

TEST_CASE("broadcast: size-1 axes stretch", "[types]") {
  CHECK(bcast({1}, {5}) == V{5});
  CHECK(bcast({5}, {1}) == V{5});
  CHECK(bcast({3, 1}, {1, 4}) == V{3, 4});
  CHECK(bcast({15, 3, 5}, {15, 1, 5}) == V{15, 3, 5});
  CHECK(bcast({1, 1}, {1, 1}) == V{1, 1});
  CHECK(bcast({0}, {1}) == V{0});  // NumPy: a size-1 axis stretches to 0 too
}

TEST_CASE("broadcast: missing leading axes are added", "[types]") {
  CHECK(bcast({4}, {3, 4}) == V{3, 4});
  CHECK(bcast({5, 4}, {1}) == V{5, 4});
  CHECK(bcast({15, 3, 5}, {3, 1}) == V{15, 3, 5});
  CHECK(bcast({8, 1, 6, 1}, {7, 1, 5}) == V{8, 7, 6, 5});  // NumPy's documented example
  CHECK(bcast({2, 1, 3}, {4, 1}) == V{2, 4, 3});
  CHECK(bcast({256, 256, 3}, {3}) == V{256, 256, 3});
}

TEST_CASE("broadcast: incompatible shapes", "[types]") {
  CHECK_FALSE(bcast({3}, {4}));
  CHECK_FALSE(bcast({2, 1}, {8, 4, 3}));  // NumPy's documented failure
  CHECK_FALSE(bcast({3, 4}, {4, 3}));
  CHECK_FALSE(bcast({0}, {3}));
  CHECK_FALSE(bcast({2, 3}, {3, 3, 2}));
}

TEST_CASE("broadcast: symmetric", "[types]") {
  const std::vector<std::pair<Shape, Shape>> pairs = {
      {make_shape({}), make_shape({2, 3})},       {make_shape({3, 1}), make_shape({1, 4})},
      {make_shape({8, 1, 6, 1}), make_shape({7, 1, 5})}, {make_shape({3}), make_shape({4})},
      {make_shape({2, 1}), make_shape({8, 4, 3})}};
  for (const auto& [a, b] : pairs) {
    INFO(shape_str(a) << " and " << shape_str(b));
    auto ab = broadcast_shapes(a, b);
    auto ba = broadcast_shapes(b, a);
    REQUIRE(ab.has_value() == ba.has_value());
    if (ab) CHECK(sizes(*ab) == sizes(*ba));
  }
}

TEST_CASE("broadcast: dim names survive", "[types]") {
  Shape bx = {named("B", 64), Dim{8, {}}};
  CHECK(shape_str(*broadcast_shapes(bx, make_shape({8}))) == "[B=64, 8]");
  CHECK(shape_str(*broadcast_shapes(make_shape({8}), bx)) == "[B=64, 8]");
  // A stretched size-1 axis takes the other operand's name.
  CHECK(shape_str(*broadcast_shapes(make_shape({1, 8}), bx)) == "[B=64, 8]");
  // Equal sizes, one named: the name is kept whichever side it is on.
  CHECK(shape_str(*broadcast_shapes(make_shape({64, 8}), bx)) == "[B=64, 8]");
  CHECK(shape_str(*broadcast_shapes(bx, make_shape({64, 8}))) == "[B=64, 8]");
}

TEST_CASE("dims compare by size only", "[types]") {
  CHECK(named("B", 4) == Dim{4, {}});
  CHECK_FALSE(named("B", 4) == named("B", 5));
  Shape a = {named("N", 3)};
  CHECK(a == make_shape({3}));
}

TEST_CASE("shape_str and type_str", "[types]") {
  CHECK(shape_str({}) == "[]");
  CHECK(shape_str(make_shape({3})) == "[3]");
  CHECK(shape_str(make_shape({2, 3, 4})) == "[2, 3, 4]");
  CHECK(shape_str({named("B", 64), Dim{8, {}}}) == "[B=64, 8]");
  CHECK(shape_str({named("B", 64), named("C", 10)}) == "[B=64, C=10]");
  CHECK(type_str(DType::F64, {named("B", 64), Dim{8, {}}}) == "f64[B=64, 8]");
  CHECK(type_str(DType::I32, {}) == "i32[]");
  CHECK(type_str(DType::F32, make_shape({1})) == "f32[1]");
}

TEST_CASE("element_count", "[types]") {
  CHECK(element_count({}) == int64_t{1});
  CHECK(element_count(make_shape({2, 3, 4})) == int64_t{24});
  CHECK(element_count(make_shape({0, 5})) == int64_t{0});
  CHECK(element_count(make_shape({5, 0})) == int64_t{0});
  CHECK(numel(make_shape({7, 6})) == 42);
}

TEST_CASE("element_count: the 2^40 limit and overflow", "[types]") {
  const int64_t big = int64_t{1} << 20;
  CHECK(element_count(make_shape({big, big})) == kMaxElements);  // exactly the limit fits
  CHECK_FALSE(element_count(make_shape({big, big, 2})));
  CHECK_FALSE(element_count(make_shape({kMaxElements + 1})));
  CHECK_FALSE(element_count(make_shape({kMaxElements, 2})));
  // Products that would overflow int64 are caught before they wrap around.
  const int64_t huge = std::numeric_limits<int64_t>::max();
  CHECK_FALSE(element_count(make_shape({huge, huge})));
  CHECK_FALSE(element_count(make_shape({int64_t{1} << 32, int64_t{1} << 32})));
  CHECK_FALSE(element_count(make_shape({3, int64_t{1} << 62, 4})));
  CHECK_FALSE(element_count(make_shape({-1})));
  CHECK_FALSE(element_count(make_shape({4, -2})));
  // numel is for shapes already checked: an overflow there is a compiler bug.
  CHECK_THROWS_AS(numel(make_shape({huge, 2})), InternalError);
}

TEST_CASE("normalize_axis", "[types]") {
  CHECK(normalize_axis(0, 3) == 0);
  CHECK(normalize_axis(2, 3) == 2);
  CHECK(normalize_axis(-1, 3) == 2);
  CHECK(normalize_axis(-3, 3) == 0);
  CHECK(normalize_axis(0, 1) == 0);
  CHECK(normalize_axis(-1, 1) == 0);
  CHECK_FALSE(normalize_axis(3, 3));
  CHECK_FALSE(normalize_axis(-4, 3));
  CHECK_FALSE(normalize_axis(0, 0));  // a scalar has no axes
  CHECK_FALSE(normalize_axis(-1, 0));
  CHECK_FALSE(normalize_axis(std::numeric_limits<int64_t>::min(), 3));
  CHECK_FALSE(normalize_axis(std::numeric_limits<int64_t>::max(), 3));
  CHECK_FALSE(normalize_axis(int64_t{1} << 32, 3));  // must not truncate to 0
}

TEST_CASE("dtypes", "[types]") {
  CHECK(dtype_name(DType::F32) == "f32");
  CHECK(dtype_name(DType::F64) == "f64");
  CHECK(dtype_name(DType::I32) == "i32");
  CHECK(parse_dtype("f32") == DType::F32);
  CHECK(parse_dtype("f64") == DType::F64);
  CHECK(parse_dtype("i32") == DType::I32);
  CHECK_FALSE(parse_dtype("f16"));
  CHECK_FALSE(parse_dtype("F32"));
  CHECK_FALSE(parse_dtype(""));
  CHECK(is_float(DType::F32));
  CHECK(is_float(DType::F64));
  CHECK_FALSE(is_float(DType::I32));
  CHECK(dtype_size(DType::F32) == 4);
  CHECK(dtype_size(DType::F64) == 8);
  CHECK(dtype_size(DType::I32) == 4);
}

TEST_CASE("make_shape and sizes round-trip", "[types]") {
  CHECK(sizes(make_shape({})) == V{});
  CHECK(sizes(make_shape({4, 1, 7})) == V{4, 1, 7});
  Shape s = make_shape({2, 3});
  CHECK(s[0].name.empty());
  CHECK(s.size() == 2);
}

}  // namespace
}  // namespace gradc
