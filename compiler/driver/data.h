// The data files of the command line: gradc/data.h for data sets, the
// check that a verb reading safetensors only was given one, the
// specialization for a number of rows, and values as files print them.
#pragma once

#include <string>

#include "compiler/driver/options.h"
#include "gradc/data.h"

namespace gradc::driver {

using data::batch_dim;
using data::check_class_ids;
using data::Dataset;
using data::file_type;
using data::from_tensors;
using data::gather;
using data::load;
using data::lower_extension;

// The model compiled with its batch dim `dim` bound to `rows` (over any
// --set of it): the specialization a chunk of that many rows runs in. Throws
// DataError with the diagnostics when it does not compile.
Model compile_for_rows(const Options& o, const std::string& dim, int64_t rows);
// The model with only the --set dims fixed: a dynamic batch dim stays dynamic
// and every call binds it (SPEC 2.2).
Model compile_dynamic(const Options& o);
// The batch of `train` when the batch dim is dynamic and --batch is not given.
inline constexpr int64_t kDefaultDynamicBatch = 32;

// A value as its dtype holds it: integers exactly, floats with the digits that
// read back to the same value (9 for f32, 17 for f64).
std::string value_text(DType dtype, double v);

// Reads the safetensors file `path` given to `flag` of `verb`; a file of
// another type is an error that says so and which verb reads it, rather than
// what its first bytes mean as a safetensors header.
NamedTensors read_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);
// The --inputs file of `verb` (read_safetensors_arg), with every class id
// the model reads checked up front (data::check_class_ids), so that a bad
// label names the file, the tensor and the element.
NamedTensors read_inputs_arg(const std::string& verb, const std::string& path, const ModelInfo& info);
// Only the check of read_safetensors_arg (for a file the library reads).
void check_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);

}  // namespace gradc::driver
