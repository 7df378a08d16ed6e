// gradc::Tensor: owned, contiguous storage.
#include "gradc/tensor.h"

#include <fmt/format.h>

namespace gradc {

Tensor::Tensor(DType dtype, std::vector<int64_t> shape) : dtype_(dtype), shape_(std::move(shape)) {
  constexpr int64_t kMax = int64_t{1} << 40;
  numel_ = 1;
  for (int64_t d : shape_) {
    if (d < 0 || (d > 0 && numel_ > kMax / d)) throw DataError(fmt::format("tensor shape is too large or negative"));
    numel_ *= d;
  }
  storage_.assign((nbytes() + 7) / 8 + 1, 0);
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

std::string Tensor::type_string() const {
  std::string s = std::string(dtype_name(dtype_)) + "[";
  for (size_t i = 0; i < shape_.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape_[i]);
  return s + "]";
}

const Tensor* find_tensor(const NamedTensors& ts, std::string_view name) {
  for (const auto& [n, t] : ts)
    if (n == name) return &t;
  return nullptr;
}

}  // namespace gradc
