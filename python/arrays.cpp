// NumPy arrays and gradc tensors (arrays.h).
#include "arrays.h"

#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace gradc_python {

py::dtype numpy_dtype(gradc::DType dtype) {
  switch (dtype) {
    case gradc::DType::F32: return py::dtype::of<float>();
    case gradc::DType::F64: return py::dtype::of<double>();
    case gradc::DType::I32: return py::dtype::of<int32_t>();
  }
  throw std::logic_error("numpy_dtype: unknown dtype");
}

py::dtype numpy_dtype(std::string_view name) { return numpy_dtype(gradc_dtype(name)); }

gradc::DType gradc_dtype(std::string_view name) {
  if (name == "f64") return gradc::DType::F64;
  if (name == "i32") return gradc::DType::I32;
  return gradc::DType::F32;
}

py::array view(gradc::DType dtype, const std::vector<int64_t>& dims, void* data, py::handle owner, bool writeable) {
  std::vector<py::ssize_t> shape(dims.begin(), dims.end());
  std::vector<py::ssize_t> strides(shape.size());
  py::ssize_t stride = static_cast<py::ssize_t>(gradc::dtype_size(dtype));
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= shape[i];
  }
  py::array a(numpy_dtype(dtype), shape, strides, data, owner);
  if (!writeable) a.attr("setflags")(py::arg("write") = false);
  return a;
}

py::array adopt(gradc::Tensor&& t) {
  auto owned = std::make_unique<gradc::Tensor>(std::move(t));
  py::capsule owner(owned.get(), [](void* p) { delete static_cast<gradc::Tensor*>(p); });
  gradc::Tensor* kept = owned.release();  // the capsule deletes it with the array
  return view(kept->dtype(), kept->shape(), kept->raw(), owner, true);
}

py::dict adopt_all(gradc::NamedTensors&& tensors) {
  py::dict out;
  for (auto& [name, t] : tensors) out[py::str(name)] = adopt(std::move(t));
  return out;
}

namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return fmt::format("({},)", shape[0]);
  return fmt::format("({})", fmt::join(shape, ", "));
}

// " (the dim B is 4 in this model; load it with dims={'B': 3})" when the
// shapes differ in the size of one named dim only: most likely a batch of
// another size than the model was compiled for.
std::string dim_hint(const gradc::TensorInfo& spec, const std::vector<int64_t>& got) {
  if (got.size() != spec.shape.size()) return "";
  std::string hint;
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == spec.shape[i] || spec.shape[i] < 0) continue;  // (-1: a dynamic dim takes any size)
    const std::string& dim = spec.dim_names[i];
    if (dim.empty() || !hint.empty()) return "";
    hint = fmt::format(" (the dim {} is {} in this model; load it with dims={{'{}': {}}})", dim, spec.shape[i], dim,
                       got[i]);
  }
  return hint;
}

}  // namespace

py::array checked(std::string_view where, std::string_view kind, const gradc::TensorInfo& spec, py::handle value) {
  // The names for messages are made on the error paths only: this runs for every input of every call.
  py::dtype want = numpy_dtype(spec.dtype);
  auto name_of = [](py::handle h) { return std::string(py::str(h)); };
  if (!py::isinstance<py::array>(value))
    throw py::type_error(fmt::format("{}: {} '{}' must be a numpy.ndarray of {}, got {}", where, kind, spec.name,
                                     name_of(want), name_of(value.get_type().attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(value);
  if (!py::detail::npy_api::get().PyArray_EquivTypes_(want.ptr(), a.dtype().ptr()))
    throw py::type_error(fmt::format("{}: {} '{}' must be {}, got {} (convert it with .astype(numpy.{}))", where, kind,
                                     spec.name, name_of(want), name_of(a.dtype()), name_of(want)));
  // -1: a dynamic dim (any size; the session checks that the inputs agree).
  bool same_shape = a.ndim() == static_cast<py::ssize_t>(spec.shape.size()) &&
                    std::equal(spec.shape.begin(), spec.shape.end(), a.shape(),
                               [](int64_t want, py::ssize_t got) { return want < 0 || want == got; });
  if (!same_shape) {
    std::vector<int64_t> shape(a.shape(), a.shape() + a.ndim());
    std::string want = "(";
    for (size_t i = 0; i < spec.shape.size(); ++i)
      want += fmt::format("{}{}", i ? ", " : "", spec.shape[i] < 0 ? spec.dim_names[i] : fmt::format("{}", spec.shape[i]));
    want += spec.shape.size() == 1 ? ",)" : ")";
    throw py::value_error(fmt::format("{}: {} '{}' must have shape {}, got {}{}", where, kind, spec.name,
                                      want, shape_text(shape), dim_hint(spec, shape)));
  }
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(fmt::format("{}: {} '{}' is not C-contiguous (a transposed or strided view?); pass "
                                      "numpy.ascontiguousarray() of it",
                                      where, kind, spec.name));
  return a;
}

}  // namespace gradc_python
