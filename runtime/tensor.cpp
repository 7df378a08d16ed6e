// gradc::Tensor: owned, contiguous storage.
#include "gradc/tensor.h"

#include <fmt/format.h>

#include <new>

namespace gradc {

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  constexpr int64_t kMax = int64_t{1} << 40;
  numel_ = 1;
  for (int64_t d : shape_) {
    if (d < 0 || (d > 0 && numel_ > kMax / d)) throw DataError(fmt::format("tensor shape is too large or negative"));
    numel_ *= d;
  }
  try {
    storage_.assign((nbytes() + 7) / 8 + 1, 0);
  } catch (const std::bad_alloc&) {
    // A size the user chose (--set B=..., a file's shape) that memory cannot
    // hold is the user's to fix, not a compiler bug.
    throw DataError(fmt::format("cannot allocate a tensor of type {} ({} bytes): not enough memory",
                                gradc::type_string(dtype_, shape_), nbytes()));
  }
}

double Tensor::get(int64_t i) const {
  switch (dtype_) {
    case DType::F32: return reinterpret_cast<const float*>(storage_.data())[i];
    case DType::F64: return reinterpret_cast<const double*>(storage_.data())[i];
    case DType::I32: return reinterpret_cast<const int32_t*>(storage_.data())[i];
  }
  return 0;
}

void Tensor::set(int64_t i, double v) {
  switch (dtype_) {
    case DType::F32: reinterpret_cast<float*>(storage_.data())[i] = static_cast<float>(v); break;
    case DType::F64: reinterpret_cast<double*>(storage_.data())[i] = v; break;
    case DType::I32: reinterpret_cast<int32_t*>(storage_.data())[i] = static_cast<int32_t>(v); break;
  }
}

std::string type_string(DType dtype, const std::vector<int64_t>& shape) {
  std::string s = std::string(dtype_name(dtype)) + "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

std::string Tensor::type_string() const { return gradc::type_string(dtype_, shape_); }

const Tensor* find_tensor(const NamedTensors& ts, std::string_view name) {
  for (const auto& [n, t] : ts)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace gradc
