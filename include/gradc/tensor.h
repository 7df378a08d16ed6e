// Tensors as the host sees them: a dtype, a shape and owned, contiguous,
// row-major, little-endian storage. Plain C++; no compiler types.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gradc {

enum class DType : uint8_t { F32, F64, I32 };

// "f32", "f64", "i32". Inline, so that the compiler's IR needs no runtime library.
inline std::string_view dtype_name(DType t) {
  switch (t) {
    case DType::F32: return "f32";
    case DType::F64: return "f64";
    case DType::I32: return "i32";
  }
  return "?";
}
// Bytes per element.
inline size_t dtype_size(DType t) { return t == DType::F64 ? 8 : 4; }

// An error in data the user gave (a tensor file, a shape, a name): the message
// names the file and tensor involved. Distinct from compiler bugs.
struct DataError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// "f32[2, 3]": the type of a tensor of `dtype` and `shape`, without making one
// (a message about a shape of 2^34 elements must not allocate them).
std::string type_string(DType dtype, const std::vector<int64_t>& shape);

namespace detail {
// Tensor storage (runtime/page_pool.cpp): 64-byte aligned; sizes from 64 KiB
// on come from memory the kernel may back with 2 MiB pages, so that a fresh
// tensor of a few megabytes costs a few page faults instead of hundreds. Throws
// std::bad_alloc.
void* allocate_storage(size_t bytes);
void free_storage(void* p, size_t bytes) noexcept;
// Whether a block of `bytes` comes from the pool (false in sanitizer builds).
bool storage_is_pooled(size_t bytes);

template <class T>
struct StorageAllocator {
  using value_type = T;
  StorageAllocator() = default;
  template <class U>
  StorageAllocator(const StorageAllocator<U>&) noexcept {}
  T* allocate(size_t n) { return static_cast<T*>(allocate_storage(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { free_storage(p, n * sizeof(T)); }
  friend bool operator==(const StorageAllocator&, const StorageAllocator&) { return true; }
  friend bool operator!=(const StorageAllocator&, const StorageAllocator&) { return false; }
};
}  // namespace detail

class Tensor {
 public:
  Tensor() = default;
  // A zero-filled tensor. Throws DataError when a dim is negative, the element
  // count is above 2^40, or the memory cannot be allocated (the message names
  // the type and the bytes).
  Tensor(DType dtype, std::vector<int64_t> shape);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int rank() const { return static_cast<int>(shape_.size()); }
  int64_t numel() const { return numel_; }
  size_t nbytes() const { return static_cast<size_t>(numel_) * dtype_size(dtype_); }

  void* raw() { return storage_.data(); }
  const void* raw() const { return storage_.data(); }
  // Typed access; T must match the dtype (float, double or int32_t).
  template <class T> T* data() {
    check<T>();
    return reinterpret_cast<T*>(storage_.data());
  }
  template <class T> const T* data() const {
    check<T>();
    return reinterpret_cast<const T*>(storage_.data());
  }
  // Element i converted to or from double, whatever the dtype.
  double get(int64_t i) const;
  void set(int64_t i, double v);

  // "f32[2, 3]"
  std::string type_string() const;

 private:
  template <class T> void check() const {
    bool ok = (std::is_same_v<T, float> && dtype_ == DType::F32) || (std::is_same_v<T, double> && dtype_ == DType::F64) ||
              (std::is_same_v<T, int32_t> && dtype_ == DType::I32);
    if (!ok) throw std::logic_error("gradc::Tensor::data<T>(): T does not match the tensor's dtype " +
                                    std::string(dtype_name(dtype_)));
  }

  DType dtype_ = DType::F32;
  std::vector<int64_t> shape_;
  int64_t numel_ = 1;
  std::vector<uint64_t, detail::StorageAllocator<uint64_t>> storage_ =
      std::vector<uint64_t, detail::StorageAllocator<uint64_t>>(1);  // 64-byte aligned
};

// Tensors by name, in a stable order (file order when read).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// The tensor called `name`, or nullptr.
const Tensor* find_tensor(const NamedTensors& ts, std::string_view name);

}  // namespace gradc
