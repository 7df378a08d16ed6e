// Data for a model's inputs, read the way `gradc train --data` and
// `gradc predict --data` read it (SPEC 3 and 4), for host programs:
//
//   gradc::Model m = gradc::Model::compile_file("digits_mlp.grad");
//   gradc::data::Dataset train = gradc::data::load(
//       {{"x", "digits_train.csv"}, {"label", "digits_train.csv"}}, m.info());
//   gradc::Session s(m);
//   for (int64_t b = 0; b + 64 <= train.rows; b += 64)
//     s.train_step(gradc::data::rows(train, b, 64));
//
// A source is PATH or PATH:COLUMNS for a .csv file, with a header line;
// COLUMNS picks columns by name, 0-based index, range a-b or *, and a leading
// ! means all but those. Without COLUMNS, the column named like the input is
// used if there is one, else every column but `label`. .npy files hold one
// array; a .safetensors file gives its tensor named like the input; an IDX
// file (MNIST's train-images-idx3-ubyte, t10k-labels-idx1-ubyte, plain or
// .gz) holds one array, its bytes read as numbers without rescaling. The file
// type comes from the file's first bytes (a checkpoint named .st reads, a
// gzip file that holds IDX data), else its name. Every row of a data set is
// one slice along the first axis; the rest of each tensor must be the
// input's per-row shape or hold as many elements, which are then read into
// it in row-major order (IDX images [N, 28, 28] feed an input [B, 1, 28, 28]
// or [B, 784]). An input the model reads as class ids (TensorInfo::classes)
// must have every id in [0, classes). Every problem is a DataError naming
// the file (and line and column for CSV cells, the row for other files).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/preprocess.h"
#include "gradc/tensor.h"

namespace gradc::data {

// One tensor per model input given, all with `rows` rows along the first
// axis, converted to the dtypes the model declares (float labels that are
// whole numbers become i32 class ids).
struct Dataset {
  int64_t rows = 0;
  NamedTensors columns;
};

// Reads (input name, source) pairs for the model's inputs; `flag` starts
// messages ("--data x=digits.csv: ...").
Dataset load(const std::vector<std::pair<std::string, std::string>>& sources, const ModelInfo& info,
             const std::string& flag = "--data");

// The tensors of `file` that are inputs of the model (others are ignored),
// checked and converted as load() does; `what` starts messages.
Dataset from_tensors(const NamedTensors& file, const ModelInfo& info, const std::string& what);

// Checks the inputs the model reads as class ids, as load() does, for inputs
// made another way: the first id outside [0, classes) is a DataError
// "WHAT: tensor 'label', element 57: class id 12 for input 'label' is out of
// range [0, 10) (read as class ids at model.grad:9:6)".
void check_class_ids(const NamedTensors& inputs, const ModelInfo& info, const std::string& what);

// Rows [begin, begin + n) of every input, as one call's inputs.
NamedTensors rows(const Dataset& ds, int64_t begin, int64_t n);
// Rows order[begin, begin + n) of every input (a shuffled batch).
NamedTensors gather(const Dataset& ds, const std::vector<int64_t>& order, int64_t begin, int64_t n);

// The dim of the given inputs' first axis (the batch dim); a DataError when
// an input has none or two inputs differ.
std::string batch_dim(const ModelInfo& info, const Dataset& ds);

// Single files.
NamedTensors read_safetensors(const std::string& path);
void write_safetensors(const std::string& path, const NamedTensors& tensors);  // atomically
Tensor read_npy(const std::string& path);
void write_npy(const std::string& path, const Tensor& t);  // atomically
// An IDX file, plain or gzip-compressed: unsigned and signed bytes, i16 and
// f32 data as f32, i32 data as i32, f64 data as f64, with the file's shape.
Tensor read_idx(const std::string& path);
// The selected columns of a CSV file as a [rows, columns] tensor.
Tensor read_csv(const std::string& path, const std::string& columns = "*", DType dtype = DType::F32);

// ".safetensors", ".npy" or ".idx" when a regular file's first bytes say so
// (".idx" also for a name like train-images-idx3-ubyte.gz), else the
// extension, lowercase with its dot ("" when none).
std::string file_type(const std::string& path);
std::string lower_extension(const std::string& path);

// Per-feature mean and population standard deviation (1 for a constant
// feature) of `x` ([rows, ...], f32 or f64), as `gradc train --standardize
// input` fits them; Preprocessing{{s}}.apply(inputs) standardizes with them.
Standardization fit_standardization(const std::string& input, const Tensor& x);

}  // namespace gradc::data
