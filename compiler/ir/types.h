// Element types and shapes, with NumPy broadcasting.
//
// A dimension remembers the `dim` name it came from (when it did), only so
// that messages and printouts read "[B=64, 8]"; equality and hashing look at
// sizes alone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gradc/tensor.h"

namespace gradc {

// DType, dtype_name and dtype_size come from the public tensor header.
std::optional<DType> parse_dtype(std::string_view s);
inline bool is_float(DType t) { return t != DType::I32; }

struct Dim {
  int64_t size = 1;
  std::string name;  // the `dim` this size came from, or empty
  // A dynamic dim (SPEC 2.2) checked at a stand-in size: printed as its
  // name alone, since the size is bound at each call.
  bool dynamic = false;

  bool operator==(const Dim& o) const { return size == o.size; }
};

using Shape = std::vector<Dim>;

// Largest number of elements a tensor may have (2^40); dims products are
// overflow-checked against it.
inline constexpr int64_t kMaxElements = int64_t{1} << 40;

Shape make_shape(std::initializer_list<int64_t> sizes);
std::vector<int64_t> sizes(const Shape& s);
// Element strides of a contiguous row-major tensor of these sizes (the last
// axis 1), as the interpreter and the code generator index buffers.
std::vector<int64_t> row_major_strides(const std::vector<int64_t>& sizes);
// Number of elements, or nullopt when it exceeds kMaxElements.
std::optional<int64_t> element_count(const Shape& s);
int64_t numel(const Shape& s);  // element_count that asserts it fits

// "[B=64, 8]" (a named dim shows its name and size), "[]" for a scalar.
std::string shape_str(const Shape& s);
// "f32[B=64, 8]"
std::string type_str(DType t, const Shape& s);

// NumPy broadcasting: nullopt when the shapes are incompatible.
std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b);

// Normalizes a possibly negative axis for a tensor of `rank`; nullopt when out of range.
std::optional<int> normalize_axis(int64_t axis, int rank);

}  // namespace gradc
