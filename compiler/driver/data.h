// Data sets for a model's inputs, as `gradc train --data/--eval` and
// `gradc predict --data` read them (SPEC 3 and 4): NAME=PATH[:COLUMNS] for
// each input, from .safetensors, .npy or .csv files, with the same number of
// rows along every input's first axis.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gradc/gradc.h"

namespace gradc::driver {

// A data set: one tensor per model input, all with the same number of rows.
struct Dataset {
  int64_t rows = 0;
  NamedTensors columns;
};

// Reads NAME=PATH[:COLUMNS] sources for the model's inputs; `flag` (--data,
// --eval) starts every message. Throws DataError.
Dataset load(const std::vector<std::pair<std::string, std::string>>& specs, const ModelInfo& info, const char* flag);

// The tensors of `file` (a safetensors file's, by name) that are inputs of
// the model, converted to their declared dtypes, with the same row checks as
// load(); other tensors are ignored.
Dataset from_tensors(const NamedTensors& file, const ModelInfo& info, const std::string& what);

// Rows `order[begin, begin + n)` of every column, as a batch.
NamedTensors gather(const Dataset& ds, const std::vector<int64_t>& order, int64_t begin, int64_t n);

// The extension of the file name in `path`, lowercase, with its dot (".csv"),
// or "" when it has none.
std::string lower_extension(const std::string& path);

// ".safetensors" or ".npy" when the first bytes of a regular file say so
// (checkpoints are often named .st or .ckpt), else lower_extension(path).
std::string sniff_file_type(const std::string& path);

// Reads the safetensors file `path` given to `flag` of `verb`; a file of
// another type is an error that says so and which verb reads it, rather than
// what its first bytes mean as a safetensors header.
NamedTensors read_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);
// Only the check of read_safetensors_arg (for a file the library reads).
void check_safetensors_arg(const std::string& verb, const char* flag, const std::string& path);

// The dim of the inputs' first axis: every data input must share it.
std::string batch_dim(const ModelInfo& info, const Dataset& ds);

}  // namespace gradc::driver
