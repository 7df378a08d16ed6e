// `gradc show FILE`: what a tensor file holds, for a person. A checkpoint,
// an inputs file or a data set: each tensor's name, dtype, shape and
// statistics (min, max, mean of the finite values, and how many are NaN or
// infinite), then what the file records beyond its tensors (the safetensors
// metadata; for a training checkpoint the epoch, step, seed, batch and the
// preprocessing). `--tensor NAME` prints one tensor's values instead.
#include "compiler/driver/show.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <iostream>
#include <limits>

#include "compiler/driver/data.h"
#include "runtime/csv.h"
#include "runtime/tensor_io.h"

namespace gradc::driver {

namespace {

std::string stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find_last_of('.');
  return dot == std::string::npos || dot == 0 ? base : base.substr(0, dot);
}

std::string shape_text(const Tensor& t) {
  std::string s = "[";
  for (int i = 0; i < t.rank(); ++i) s += fmt::format("{}{}", i ? ", " : "", t.shape()[static_cast<size_t>(i)]);
  return s + "]";
}

struct Stats {
  double min = std::numeric_limits<double>::infinity(), max = -min, mean = 0;
  int64_t finite = 0, nan = 0, inf = 0;
};

Stats stats_of(const Tensor& t) {
  Stats s;
  double sum = 0;
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = t.get(i);
    if (std::isnan(v)) ++s.nan;
    else if (std::isinf(v)) ++s.inf;
    else {
      ++s.finite;
      s.min = std::min(s.min, v);
      s.max = std::max(s.max, v);
      sum += v;
    }
  }
  s.mean = s.finite ? sum / static_cast<double>(s.finite) : 0;
  return s;
}

// The tensors of a file: a safetensors file's own names, a .npy or IDX
// file's array under the file's stem, a CSV file's columns.
NamedTensors read_any(const std::string& path, TensorFileMetadata& metadata, std::string& kind) {
  std::string ext = file_type(path);
  if (ext == ".safetensors") {
    kind = "safetensors";
    return read_safetensors(path, &metadata);
  }
  if (ext == ".npy") {
    kind = "npy";
    return {{stem(path), read_npy(path)}};
  }
  if (ext == ".idx") {
    kind = "idx";
    return {{stem(path), read_idx(path)}};
  }
  if (ext == ".csv") {
    kind = "csv";
    CsvTable t = read_csv(path);
    NamedTensors cols;
    for (size_t c = 0; c < t.cols(); ++c) {
      Tensor col(DType::F64, {static_cast<int64_t>(t.rows())});
      for (size_t r = 0; r < t.rows(); ++r) col.set(static_cast<int64_t>(r), t.at(r, c));
      cols.emplace_back(t.header[c].empty() ? fmt::format("column {}", c) : t.header[c], std::move(col));
    }
    return cols;
  }
  throw DataError(fmt::format("{}: unsupported file type '{}'; `show` reads .safetensors, .npy, .csv and IDX", path,
                              ext.empty() ? "(no extension)" : ext));
}

// "epoch 12, step 360, seed 7, batch 32": the training state of a checkpoint
// (train.*, opt.step), or "" for another file.
std::string training_state(const NamedTensors& ts, const TensorFileMetadata& metadata) {
  std::string s;
  auto add = [&](const char* label, const char* name) {
    // The seed is exact in the metadata (the f64 tensor rounds above 2^53).
    for (const auto& [k, v] : metadata)
      if (k == name) return void(s += fmt::format("{}{} {}", s.empty() ? "" : ", ", label, v));
    if (const Tensor* t = find_tensor(ts, name); t && t->numel() == 1)
      s += fmt::format("{}{} {}", s.empty() ? "" : ", ", label, value_text(DType::I32, t->get(0)));
  };
  add("epoch", "train.epoch");
  add("step", "opt.step");
  add("seed", "train.seed");
  add("batch", "train.batch");
  return s;
}

// Prints every element, one line per row of the last axis, each row led by
// its index ("[2, 0]:"); a rank-0 tensor is one value.
void print_values(const std::string& name, const Tensor& t) {
  std::cout << fmt::format("{}: {} {}\n", name, dtype_name(t.dtype()), shape_text(t));
  if (t.rank() == 0) {
    std::cout << value_text(t.dtype(), t.get(0)) << "\n";
    return;
  }
  int64_t row = t.shape().back();
  if (row == 0 || t.numel() == 0) return;
  std::vector<int64_t> index(static_cast<size_t>(t.rank() - 1), 0);
  for (int64_t start = 0; start < t.numel(); start += row) {
    std::string line;
    if (!index.empty()) {
      line = "[";
      for (size_t i = 0; i < index.size(); ++i) line += fmt::format("{}{}", i ? ", " : "", index[i]);
      line += "]: ";
    }
    for (int64_t j = 0; j < row; ++j) line += (j ? " " : "") + value_text(t.dtype(), t.get(start + j));
    std::cout << line << "\n";
    for (size_t i = index.size(); i-- > 0;) {
      if (++index[i] < t.shape()[i]) break;
      index[i] = 0;
    }
  }
}

}  // namespace

int cmd_show(const Options& o) {
  TensorFileMetadata metadata;
  std::string kind;
  NamedTensors ts = read_any(o.model, metadata, kind);
  if (!o.tensor.empty()) {
    const Tensor* t = find_tensor(ts, o.tensor);
    if (!t) {
      std::string names;
      for (const auto& [n, x] : ts) names += fmt::format("{}{}", names.empty() ? "" : ", ", n);
      throw DataError(fmt::format("{}: no tensor '{}' (the file holds: {})", o.model, o.tensor,
                                  names.empty() ? "no tensors" : names));
    }
    print_values(o.tensor, *t);
    return 0;
  }
  std::cout << fmt::format("{}: {}, {} tensor{}\n", o.model, kind, ts.size(), ts.size() == 1 ? "" : "s");
  size_t width = 4, shape_width = 5;
  for (const auto& [n, t] : ts) width = std::max(width, n.size()), shape_width = std::max(shape_width, shape_text(t).size());
  std::cout << fmt::format("  {:<{}}  {:<5}  {:<{}}  {:>12}  {:>12}  {:>12}  {:>5}  {:>5}\n", "name", width, "dtype", "shape",
                           shape_width, "min", "max", "mean", "nan", "inf");
  for (const auto& [n, t] : ts) {
    Stats s = stats_of(t);
    auto num = [&](double v) { return s.finite ? fmt::format("{:.6g}", v) : std::string("-"); };
    std::cout << fmt::format("  {:<{}}  {:<5}  {:<{}}  {:>12}  {:>12}  {:>12}  {:>5}  {:>5}\n", n, width,
                             dtype_name(t.dtype()), shape_text(t), shape_width, num(s.min), num(s.max), num(s.mean), s.nan,
                             s.inf);
  }
  std::string state = training_state(ts, metadata);
  if (!state.empty()) std::cout << "training checkpoint: " << state << "\n";
  if (!metadata.empty()) {
    std::cout << "metadata:\n";
    for (const auto& [k, v] : metadata) std::cout << fmt::format("  {} = {}\n", k, v);
  }
  return 0;
}

}  // namespace gradc::driver
