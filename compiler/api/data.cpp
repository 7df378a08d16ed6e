// Data sets for a model's inputs and the files they come from (gradc/data.h).
#include "gradc/data.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <string_view>

#include "runtime/csv.h"
#include "runtime/tensor_io.h"

namespace gradc::data {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

DType parse_dtype_name(const std::string& s) { return s == "f64" ? DType::F64 : s == "i32" ? DType::I32 : DType::F32; }

// Converts to the model's dtype: between float dtypes, i32 to float, and
// float to i32 when every value is an integer in range (labels saved as floats).
Tensor convert(const Tensor& t, DType to, const std::string& what) {
  if (t.dtype() == to) return t;
  Tensor r(to, t.shape());
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.get(i);
    if (to == DType::I32 && !(v == std::floor(v) && std::fabs(v) < 2147483648.0))
      throw DataError(fmt::format("{}: element {} is {}, but the model declares i32 (class ids must be integers)", what,
                                  i, v));
    r.set(i, v);
  }
  return r;
}

// Where flat element i of a data tensor came from, for messages.
using Place = std::function<std::string(int64_t)>;

// "PATH: row 56" (after `prefix`, "PATH: ") for element i of a file's tensor
// of `per_row` elements a row; ", element 3" added when a row holds more than one.
Place row_place(const std::string& prefix, int64_t per_row) {
  return [prefix, per_row](int64_t i) {
    std::string s = fmt::format("{}row {}", prefix, i / per_row);
    return per_row > 1 ? s + fmt::format(", element {}", i % per_row) : s;
  };
}

// An input the model reads as class ids must have every id in [0, classes):
// the first that is not is an error at its place in the data (a run would
// only see it at the op, with no file, row or line to fix).
void check_ids(const TensorInfo& input, const Tensor& t, const Place& place) {
  if (input.classes <= 0 || t.dtype() != DType::I32) return;
  const int32_t* ids = t.data<int32_t>();
  for (int64_t i = 0; i < t.numel(); ++i)
    if (ids[i] < 0 || ids[i] >= input.classes) {
      std::string by = input.classes_read_at.empty() ? "" : fmt::format(" (read as class ids at {})", input.classes_read_at);
      throw DataError(fmt::format("{}: class id {} for input '{}' is out of range [0, {}){}", place(i), ids[i],
                                  input.name, input.classes, by));
    }
}

int64_t product(const std::vector<int64_t>& shape, size_t from) {
  int64_t n = 1;
  for (size_t k = from; k < shape.size(); ++k) n *= shape[k];
  return n;
}

// Adds `t` as the rows of `input`: its first axis counts rows, and the rest
// must be the input's per-row shape or hold as many elements, read in
// row-major order (IDX images [N, 28, 28] feed an input [B, 1, 28, 28]);
// the count of rows must be every other input's.
void add_rows(Dataset& ds, const TensorInfo& input, Tensor t, const std::string& what, const std::string& others,
              const Place& place) {
  DType dtype = parse_dtype_name(input.dtype);
  std::vector<int64_t> row(input.shape.begin() + 1, input.shape.end());
  // A dynamic dim after the first axis (a sequence's length) takes the
  // data's size; the data must then have the input's rank.
  for (size_t k = 0; k < row.size(); ++k)
    if (row[k] < 0) {
      if (static_cast<size_t>(t.rank()) != input.shape.size())
        throw DataError(fmt::format("{}: the data has shape {} but input '{}' has {} axes, one of them the dynamic dim "
                                    "{}: the data needs as many axes",
                                    what, t.type_string(), input.name, input.shape.size(), input.dim_names[k + 1]));
      row[k] = t.shape()[k + 1];
    }
  if (t.rank() == 0 || product(t.shape(), 1) != product(row, 0)) {
    throw DataError(fmt::format("{}: the data has shape {} but input '{}' is {}: every row must be {}{}", what,
                                t.type_string(), input.name, type_string(dtype, input.shape),
                                row.empty() ? std::string("a scalar") : type_string(dtype, row),
                                row.size() > 1 ? fmt::format(" (or hold its {} elements)", product(row, 0)) : ""));
  }
  if (std::vector<int64_t>(t.shape().begin() + 1, t.shape().end()) != row) {
    std::vector<int64_t> shape = row;
    shape.insert(shape.begin(), t.shape()[0]);
    Tensor reshaped(t.dtype(), shape);
    std::memcpy(reshaped.raw(), t.raw(), t.nbytes());
    t = std::move(reshaped);
  }
  if (ds.columns.empty()) ds.rows = t.shape()[0];
  else if (t.shape()[0] != ds.rows)
    throw DataError(fmt::format("{}: {} rows, but the other {} data has {}", what, t.shape()[0], others, ds.rows));
  check_ids(input, t, place);
  ds.columns.emplace_back(input.name, std::move(t));
}

}  // namespace

// Loads NAME=PATH[:COLUMNS] sources for the model's inputs.
Dataset load(const std::vector<std::pair<std::string, std::string>>& specs, const ModelInfo& info, const std::string& flag) {
  Dataset ds;
  std::map<std::string, CsvTable> csv_cache;
  for (const auto& [name, source] : specs) {
    const TensorInfo* input = nullptr;
    for (const TensorInfo& t : info.inputs)
      if (t.name == name) input = &t;
    if (!input) {
      std::string names;
      for (const TensorInfo& t : info.inputs) names += (names.empty() ? "" : ", ") + t.name;
      throw DataError(fmt::format("{} {}=...: the model has no input '{}' (its inputs: {})", flag, name, name, names));
    }
    if (find_tensor(ds.columns, name)) throw DataError(fmt::format("{}: input '{}' is given twice", flag, name));
    DType dtype = parse_dtype_name(input->dtype);
    std::string path = source, columns;
    if (auto colon = source.rfind(':'); colon != std::string::npos && ends_with(source.substr(0, colon), ".csv")) {
      path = source.substr(0, colon);
      columns = source.substr(colon + 1);
    }
    std::string what = fmt::format("{} {}={}", flag, name, source);
    Tensor t;
    Place place;
    if (ends_with(path, ".csv")) {
      auto it = csv_cache.find(path);
      if (it == csv_cache.end()) it = csv_cache.emplace(path, ::gradc::read_csv(path)).first;
      const CsvTable& table = it->second;
      bool chosen = !columns.empty();
      if (!chosen) {
        bool named = std::find(table.header.begin(), table.header.end(), name) != table.header.end();
        columns = named ? name : "!label";
      }
      try {
        t = csv_columns(table, columns, dtype, input->shape.size() == 1);
      } catch (const DataError& e) {
        if (chosen) throw;
        // The user typed no selection: say which one was applied and how to choose.
        throw DataError(fmt::format("{}\n  note: no columns were given, so {} {}={} used the default '{}' ({}); choose them "
                                    "with {} {}={}:COLUMNS (names, 0-based indices, ranges a-b, or a leading ! for all but those)",
                                    e.what(), flag, name, path, columns,
                                    columns == "!label" ? "every column but 'label'" : "the column named like the input",
                                    flag, name, path));
      }
      // A cell as "PATH:LINE:COL", its line counted in the file.
      place = [&table, selected = select_columns(table, columns)](int64_t i) {
        auto n = static_cast<int64_t>(selected.size());
        return table.where(static_cast<size_t>(i / n), selected[static_cast<size_t>(i % n)]);
      };
    } else {
      std::string ext = file_type(path);
      if (ext != ".safetensors" && ext != ".npy" && ext != ".idx")
        throw DataError(fmt::format("{}: unsupported file type '{}'; {} reads .csv, .npy, .safetensors and IDX files "
                                    "(train-images-idx3-ubyte, optionally .gz)",
                                    what, ext.empty() ? "(no extension)" : ext, flag));
      NamedTensors file;
      if (ext == ".npy") file.emplace_back(name, ::gradc::read_npy(path));
      else if (ext == ".idx") file.emplace_back(name, ::gradc::read_idx(path));
      else file = ::gradc::read_safetensors(path);
      const Tensor* found = find_tensor(file, name);
      if (!found) throw DataError(fmt::format("{}: '{}' has no tensor named '{}'", what, path, name));
      t = convert(*found, dtype, what);
      std::string prefix = ext == ".safetensors" ? fmt::format("{}: tensor '{}', ", path, name) : path + ": ";
      place = row_place(prefix, found->rank() ? product(found->shape(), 1) : 1);
    }
    add_rows(ds, *input, std::move(t), what, flag, place);
  }
  return ds;
}

// Rows `order[begin, begin + n)` of every column, as a batch.
NamedTensors gather(const Dataset& ds, const std::vector<int64_t>& order, int64_t begin, int64_t n) {
  NamedTensors batch;
  for (const auto& [name, t] : ds.columns) {
    std::vector<int64_t> shape = t.shape();
    shape[0] = n;
    Tensor b(t.dtype(), shape);
    size_t row_bytes = t.nbytes() / static_cast<size_t>(ds.rows);
    const char* src = static_cast<const char*>(t.raw());
    char* dst = static_cast<char*>(b.raw());
    for (int64_t i = 0; i < n; ++i) std::memcpy(dst + i * row_bytes, src + order[begin + i] * row_bytes, row_bytes);
    batch.emplace_back(name, std::move(b));
  }
  return batch;
}

// The dim of the inputs' first axis: every data input must share it.
std::string batch_dim(const ModelInfo& info, const Dataset& ds) {
  std::string dim;
  for (const auto& [name, t] : ds.columns)
    for (const TensorInfo& in : info.inputs)
      if (in.name == name) {
        std::string d = in.dim_names.empty() ? "" : in.dim_names[0];
        if (d.empty())
          throw DataError(fmt::format("input '{}' must have a dim as its first axis (for example [B, ...]) to be "
                                      "sliced into batches", name));
        if (!dim.empty() && d != dim)
          throw DataError(fmt::format("inputs batch along different dims ('{}' and '{}')", dim, d));
        dim = d;
      }
  return dim;
}


std::string lower_extension(const std::string& path) {
  size_t slash = path.find_last_of('/');
  size_t dot = path.find_last_of('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string ext = path.substr(dot);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

std::string file_type(const std::string& path) {
  std::string head = read_file_head(path, 4096);  // a gzip header may hold a long file name
  if (head.size() >= 6 && std::string_view(head).substr(0, 6) == "\x93NUMPY") return ".npy";
  if (head.size() >= 9 && head[8] == '{') return ".safetensors";
  if (!head.empty() && head[0] == '{') return ".json";
  if (is_idx(path, head)) return ".idx";
  return lower_extension(path);
}

void check_class_ids(const NamedTensors& inputs, const ModelInfo& info, const std::string& what) {
  for (const TensorInfo& input : info.inputs)
    if (const Tensor* t = find_tensor(inputs, input.name))
      check_ids(input, *t, [&](int64_t i) { return fmt::format("{}: tensor '{}', element {}", what, input.name, i); });
}

Dataset from_tensors(const NamedTensors& file, const ModelInfo& info, const std::string& what) {
  Dataset ds;
  for (const TensorInfo& input : info.inputs)
    if (const Tensor* t = find_tensor(file, input.name)) {
      std::string where = fmt::format("{}: tensor '{}'", what, input.name);
      add_rows(ds, input, convert(*t, parse_dtype_name(input.dtype), where), where, what,
               row_place(where + ", ", t->rank() ? product(t->shape(), 1) : 1));
    }
  return ds;
}

}  // namespace gradc::data

namespace gradc::data {

NamedTensors rows(const Dataset& ds, int64_t begin, int64_t n) {
  if (begin < 0 || n < 0 || begin + n > ds.rows)
    throw DataError(fmt::format("rows [{}, {}) of a data set of {} rows", begin, begin + n, ds.rows));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = begin + i;
  return gather(ds, order, 0, n);
}

NamedTensors read_safetensors(const std::string& path) { return ::gradc::read_safetensors(path); }
void write_safetensors(const std::string& path, const NamedTensors& tensors) { ::gradc::write_safetensors(path, tensors); }
Tensor read_npy(const std::string& path) { return ::gradc::read_npy(path); }
Tensor read_idx(const std::string& path) { return ::gradc::read_idx(path); }
void write_npy(const std::string& path, const Tensor& t) { ::gradc::write_npy(path, t); }

Tensor read_csv(const std::string& path, const std::string& columns, DType dtype) {
  return csv_columns(::gradc::read_csv(path), columns, dtype, false);
}

Standardization fit_standardization(const std::string& input, const Tensor& x) {
  Standardizer s = fit_standardizer(x);
  return {input, s.mean, s.std};
}

}  // namespace gradc::data
