// NumPy arrays and gradc tensors: which dtypes map to each other, results
// handed to NumPy without a copy, and the checks that turn a wrong array into
// a Python TypeError or ValueError naming the input, never a crash.
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/tensor.h"

namespace gradc_python {

namespace py = pybind11;

// float32, float64, int32 for f32, f64, i32.
py::dtype numpy_dtype(gradc::DType dtype);
py::dtype numpy_dtype(std::string_view gradc_dtype);  // "f32", "f64" or "i32"

// gradc's name of a NumPy dtype's tensors: "f32" -> DType::F32.
gradc::DType gradc_dtype(std::string_view name);

// A NumPy array over `data`, a row-major tensor of `dtype` and `shape` (no
// copy); `owner` is its base object and keeps that memory alive as long as
// the array is.
py::array view(gradc::DType dtype, const std::vector<int64_t>& shape, void* data, py::handle owner, bool writeable);
// A NumPy array that takes `t` over: it owns the tensor, so no copy is made.
py::array adopt(gradc::Tensor&& t);
py::dict adopt_all(gradc::NamedTensors&& tensors);

// `value` once checked to be a C-contiguous NumPy array of `spec`'s dtype
// and shape: TypeError for a wrong type or dtype, ValueError for a wrong
// shape or layout, the message starting "WHERE: KIND 'NAME'" ("train_step:
// input 'x' must be float32, got float64 ...").
py::array checked(std::string_view where, std::string_view kind, const gradc::TensorInfo& spec, py::handle value);

}  // namespace gradc_python
