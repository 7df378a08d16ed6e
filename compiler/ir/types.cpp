// Dtypes, shapes and broadcasting.
#include "compiler/ir/types.h"

#include <fmt/format.h>

#include "compiler/support/diagnostics.h"

namespace gradc {

std::optional<DType> parse_dtype(std::string_view s) {
  if (s == "f32") return DType::F32;
  if (s == "f64") return DType::F64;
  if (s == "i32") return DType::I32;
  return std::nullopt;
}

Shape make_shape(std::initializer_list<int64_t> sizes) {
  Shape s;
  for (int64_t v : sizes) s.push_back({v, {}});
  return s;
}

std::vector<int64_t> sizes(const Shape& s) {
  std::vector<int64_t> v;
  for (const Dim& d : s) v.push_back(d.size);
  return v;
}

std::optional<int64_t> element_count(const Shape& s) {
  int64_t n = 1;
  for (const Dim& d : s) {
    if (d.size < 0 || (d.size > 0 && n > kMaxElements / d.size)) return std::nullopt;
    n *= d.size;
  }
  return n;
}

int64_t numel(const Shape& s) {
  auto n = element_count(s);
  GRADC_ASSERT(n.has_value(), "element count overflow in " + shape_str(s));
  return *n;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i].name.empty() ? fmt::format("{}", s[i].size)
         : s[i].dynamic    ? s[i].name
                           : fmt::format("{}={}", s[i].name, s[i].size);
  }
  return r + "]";
}

std::string type_str(DType t, const Shape& s) { return std::string(dtype_name(t)) + shape_str(s); }

std::optional<Shape> broadcast_shapes(const Shape& a, const Shape& b) {
  size_t n = std::max(a.size(), b.size());
  Shape r(n);
  for (size_t i = 0; i < n; ++i) {
    const Dim* da = i < a.size() ? &a[a.size() - 1 - i] : nullptr;
    const Dim* db = i < b.size() ? &b[b.size() - 1 - i] : nullptr;
    Dim& out = r[n - 1 - i];
    if (!da) out = *db;
    else if (!db) out = *da;
    else if (da->size == db->size) out = da->name.empty() ? *db : *da;
    else if (da->size == 1) out = *db;
    else if (db->size == 1) out = *da;
    else return std::nullopt;
  }
  return r;
}

std::optional<int> normalize_axis(int64_t axis, int rank) {
  if (axis < -rank || axis >= rank) return std::nullopt;
  return static_cast<int>(axis < 0 ? axis + rank : axis);
}

std::vector<int64_t> row_major_strides(const std::vector<int64_t>& sizes) {
  std::vector<int64_t> s(sizes.size(), 1);
  for (int i = static_cast<int>(sizes.size()) - 2; i >= 0; --i) s[i] = s[i + 1] * sizes[i + 1];
  return s;
}

}  // namespace gradc
