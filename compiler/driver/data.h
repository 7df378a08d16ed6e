// The data files of the command line: gradc/data.h for data sets, and the
// check that a verb reading safetensors only was given one.
#pragma once

#include <string>

#include "gradc/data.h"

namespace gradc::driver {

using data::batch_dim;
using data::Dataset;
using data::file_type;
using data::from_tensors;
using data::gather;
using data::load;
using data::lower_extension;

// Reads the safetensors file `path` given to `flag` of `verb`; a file of
// another type is an error that says so and which verb reads it, rather than
// what its first bytes mean as a safetensors header.
NamedTensors read_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);
// Only the check of read_safetensors_arg (for a file the library reads).
void check_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);

}  // namespace gradc::driver
