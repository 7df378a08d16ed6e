// `gradc predict` (SPEC 3): a trained model's outputs for new data. The data
// is read as `train --data` reads it (or from one safetensors file), the
// checkpoint's preprocessing is applied, `forward` runs over every row, and
// every output is written to a .csv, .npy or .safetensors file.
//
// Rows go through the model in chunks of the batch dim's size; a last,
// smaller chunk runs in a second specialization compiled for its size (as
// `train` evaluates). A dynamic batch dim takes all rows in one call (up to
// kPredictRowsPerCall, or --batch rows a call; the rest in the last). Every
// row's result is exact and the loss and metrics, printed when the data gives
// the inputs they need (labels), are means over exactly the given rows.
#include "compiler/driver/predict.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <iostream>
#include <numeric>
#include <optional>

#include "compiler/driver/data.h"
#include "gradc/gradc.h"
#include "gradc/session.h"
#include "runtime/output_file.h"
#include "runtime/tensor_io.h"

namespace gradc::driver {
namespace {

enum class OutFormat { Csv, Npy, Safetensors };

// The results of every row: each output with the data's row count as its
// first axis, and the loss and metrics summed over rows (when computable).
struct Predictions {
  NamedTensors outputs;  // by output name
  std::optional<double> loss;
  std::vector<std::pair<std::string, double>> metrics;
};

// Copies the first `n` rows of each output of one call into `p` at row `at`.
void collect(Predictions& p, const NamedTensors& out, const ModelInfo& info, int64_t at, int64_t n, int64_t rows) {
  for (const auto& [name, t] : out) {
    if (name == "loss") p.loss = p.loss.value_or(0) + t.get(0) * static_cast<double>(n);
    for (const TensorInfo& m : info.metrics)
      if (name == "metric." + m.name) {
        auto it = std::find_if(p.metrics.begin(), p.metrics.end(), [&](const auto& e) { return e.first == m.name; });
        if (it == p.metrics.end()) it = p.metrics.insert(p.metrics.end(), {m.name, 0.0});
        it->second += t.get(0) * static_cast<double>(n);
      }
    if (!name.starts_with("out.")) continue;
    std::string output = name.substr(4);
    Tensor* dst = nullptr;
    for (auto& [k, v] : p.outputs)
      if (k == output) dst = &v;
    if (!dst) {
      std::vector<int64_t> shape = t.shape();
      shape[0] = rows;
      p.outputs.emplace_back(output, Tensor(t.dtype(), shape));
      dst = &p.outputs.back().second;
    }
    size_t row_bytes = t.nbytes() / static_cast<size_t>(t.shape()[0]);
    std::memcpy(static_cast<char*>(dst->raw()) + static_cast<size_t>(at) * row_bytes, t.raw(),
                static_cast<size_t>(n) * row_bytes);
  }
}

// Argmax of each row of an [N, C] output, as i32 [N] (the first maximum wins).
Tensor row_argmax(const Tensor& t) {
  int64_t n = t.shape()[0], c = t.numel() / std::max<int64_t>(n, 1);
  Tensor r(DType::I32, {n});
  for (int64_t i = 0; i < n; ++i) {
    int64_t best = 0;
    for (int64_t j = 1; j < c; ++j)
      if (t.get(i * c + j) > t.get(i * c + best)) best = j;
    r.set(i, static_cast<double>(best));
  }
  return r;
}

// SPEC 3: an output NAME of shape [N] is column NAME, of shape [N, C]
// columns NAME_0 .. NAME_{C-1} (a larger row flattened in row-major order);
// --classes adds NAME_class after them.
std::string csv_text(const NamedTensors& outputs, const NamedTensors& classes, int64_t rows) {
  std::string s;
  auto sep = [&] { if (!s.empty() && s.back() != '\n') s += ','; };
  for (const auto& [name, t] : outputs) {
    int64_t per_row = t.numel() / std::max<int64_t>(rows, 1);
    if (t.rank() == 1) {
      sep();
      s += name;
    } else {
      for (int64_t j = 0; j < per_row; ++j) sep(), s += fmt::format("{}_{}", name, j);
    }
    for (const auto& [cname, c] : classes)
      if (cname == name) sep(), s += name + "_class";
  }
  s += '\n';
  for (int64_t i = 0; i < rows; ++i) {
    for (const auto& [name, t] : outputs) {
      int64_t per_row = t.numel() / std::max<int64_t>(rows, 1);
      for (int64_t j = 0; j < per_row; ++j) sep(), s += value_text(t.dtype(), t.get(i * per_row + j));
      for (const auto& [cname, c] : classes)
        if (cname == name) sep(), s += value_text(c.dtype(), c.get(i));
    }
    s += '\n';
  }
  return s;
}

}  // namespace

// A dynamic batch dim's rows per call without --batch: every row of most
// data sets in one call, and working memory bounded for the largest.
constexpr int64_t kPredictRowsPerCall = 65536;

int cmd_predict(const Options& o) {
  std::string ext = lower_extension(o.output);
  OutFormat format = ext == ".csv" ? OutFormat::Csv : ext == ".npy" ? OutFormat::Npy : OutFormat::Safetensors;
  // A first compile for the model's interface; the batch size is bound below.
  CompileOptions probe_opts;
  probe_opts.dims = o.dims;
  Model probe = Model::compile_file(o.model, probe_opts);
  if (!probe.diagnostics().empty()) std::cerr << render_all(probe.diagnostics());  // errors or warnings
  if (!probe.ok()) return probe.options_error() ? 2 : 1;
  ModelInfo info = probe.info();
  Dataset ds = o.inputs.empty() ? load(o.data, info, "--data")
                                : from_tensors(read_safetensors_arg("predict", "--inputs", o.inputs), info, fmt::format("--inputs {}", o.inputs));
  if (ds.columns.empty()) {
    std::string names;
    for (const TensorInfo& t : info.inputs) names += (names.empty() ? "" : ", ") + t.name;
    throw DataError(fmt::format("--inputs {}: no tensor named like an input of the model (its inputs: {})", o.inputs,
                                names));
  }
  if (ds.rows == 0) throw DataError("the data has no rows");
  std::string dim = batch_dim(info, ds);
  for (const TensorInfo& out : info.outputs)
    if (out.dim_names.empty() || out.dim_names[0] != dim)
      throw DataError(fmt::format("output '{}' is {}[{}], which has no row per row of the data (its first axis is not "
                                  "the batch dim {}): predict writes per-row outputs",
                                  out.name, out.dtype, fmt::join(out.shape, ", "), dim));
  if (format == OutFormat::Npy && info.outputs.size() != 1)
    throw DataError(fmt::format("-o {}: a .npy file holds one array and the model has {} outputs; write .csv or "
                                ".safetensors",
                                o.output, info.outputs.size()));
  if (format == OutFormat::Npy && o.classes)
    throw DataError(fmt::format("-o {}: --classes adds a column; write .csv or .safetensors", o.output));
  // A dynamic batch dim takes every row in one call (or --batch rows a call,
  // the last call the rest, with the same model); a static one is run in
  // chunks of its size, the last chunk in a model compiled for the rest.
  bool dynamic = std::find(info.dynamic_dims.begin(), info.dynamic_dims.end(), dim) != info.dynamic_dims.end();
  int64_t batch = o.batch.value_or(dynamic ? std::min(ds.rows, kPredictRowsPerCall) : 0);
  if (!o.batch)
    for (const auto& [k, v] : info.dims)
      if (k == dim) batch = v;
  batch = std::min(batch, ds.rows);

  Model model = dynamic ? compile_dynamic(o) : compile_for_rows(o, dim, batch);
  SessionOptions so{o.backend == "interp" ? Backend::Interpreter : Backend::Jit, o.seed, o.check_numerics, o.threads};
  Session full(model, so);
  check_safetensors_arg("predict", "--params", o.params);
  full.load(o.params);
  full.preprocessing().apply(ds.columns);
  std::vector<int64_t> order(static_cast<size_t>(ds.rows));
  std::iota(order.begin(), order.end(), 0);
  Predictions p;
  bool progress = o.progress && isatty(STDERR_FILENO) && ds.rows >= 10000;
  int64_t begin = 0;
  for (; begin + batch <= ds.rows; begin += batch) {
    collect(p, full.forward(gather(ds, order, begin, batch)), info, begin, batch, ds.rows);
    if (progress && (begin / batch) % 16 == 0) std::cerr << fmt::format("\rpredict: {}/{} rows", begin + batch, ds.rows);
  }
  if (begin < ds.rows && dynamic) {
    collect(p, full.forward(gather(ds, order, begin, ds.rows - begin)), info, begin, ds.rows - begin, ds.rows);
  } else if (begin < ds.rows) {
    Model rest_model = compile_for_rows(o, dim, ds.rows - begin);
    Session rest(rest_model, so);
    rest.load(o.params);
    collect(p, rest.forward(gather(ds, order, begin, ds.rows - begin)), info, begin, ds.rows - begin, ds.rows);
  }
  if (progress) std::cerr << "\r\033[K";

  NamedTensors classes;
  if (o.classes)
    for (const auto& [name, t] : p.outputs)
      if (t.rank() == 2) classes.emplace_back(name, row_argmax(t));
  if (o.classes && classes.empty())
    throw DataError("--classes: no output has shape [N, C] (one score per class) to take the argmax of");
  if (format == OutFormat::Csv) {
    write_output_file(o.output, csv_text(p.outputs, classes, ds.rows));
  } else if (format == OutFormat::Npy) {
    write_npy(o.output, p.outputs.front().second);
  } else {
    NamedTensors out;
    for (auto& [name, t] : p.outputs) out.emplace_back("out." + name, std::move(t));
    for (auto& [name, t] : classes) out.emplace_back("out." + name + "_class", std::move(t));
    write_safetensors(o.output, out);
  }
  std::string summary = fmt::format("{} rows", ds.rows);
  double n = static_cast<double>(ds.rows);
  if (p.loss) summary += fmt::format(", loss {:.6g}", *p.loss / n);
  for (const auto& [name, v] : p.metrics) summary += fmt::format(", {} {:.6g}", name, v / n);
  std::cout << fmt::format("predicted {}  ->  {}\n", summary, o.output);
  return 0;
}

}  // namespace gradc::driver
