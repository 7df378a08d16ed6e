// The command line's data files (see data.h): safetensors-only inputs and their class ids,
// specializations for a number of rows, values as files print them.
#include "compiler/driver/data.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>

#include "runtime/tensor_io.h"

namespace gradc::driver {

void check_safetensors_arg(const std::string& verb, const char* flag, const std::string& path) {
  std::string type = file_type(path);
  std::error_code ec;
  if (type != ".safetensors" && std::filesystem::is_regular_file(path, ec)) {
    std::string looks = type == ".npy" ? "a NumPy .npy file" : type == ".csv" ? "a CSV file" : type == ".idx" ? "an IDX file" : "";
    throw DataError(fmt::format("{} {}: not a safetensors file{}; `{}` reads .safetensors, `predict` reads "
                                ".csv/.npy/.safetensors/IDX",
                                flag, path, looks.empty() ? "" : " (it is " + looks + ")", verb));
  }
}

NamedTensors read_safetensors_arg(const std::string& verb, const char* flag, const std::string& path) {
  check_safetensors_arg(verb, flag, path);
  return read_safetensors(path);
}

NamedTensors read_inputs_arg(const std::string& verb, const std::string& path, const ModelInfo& info) {
  NamedTensors inputs = read_safetensors_arg(verb, "--inputs", path);
  check_class_ids(inputs, info, "--inputs " + path);
  return inputs;
}

namespace {

// The model of `o` (its --ad) with these dim overrides; DataError with the diagnostics when it does not compile.
Model compile_with_dims(const Options& o, std::vector<std::pair<std::string, int64_t>> dims) {
  CompileOptions co;
  co.dims = std::move(dims);
  if (o.forward_ad) co.ad = CompileOptions::Autodiff::Forward;
  Model m = Model::compile_file(o.model, co);
  if (!m.ok()) throw DataError(render_all(m.diagnostics()));
  return m;
}

}  // namespace

Model compile_dynamic(const Options& o) { return compile_with_dims(o, o.dims); }

Model compile_for_rows(const Options& o, const std::string& dim, int64_t rows) {
  std::vector<std::pair<std::string, int64_t>> dims = o.dims;
  auto it = std::find_if(dims.begin(), dims.end(), [&](const auto& d) { return d.first == dim; });
  if (it != dims.end()) it->second = rows;
  else dims.emplace_back(dim, rows);
  return compile_with_dims(o, std::move(dims));
}

std::string value_text(DType dtype, double v) {
  if (dtype == DType::I32) return fmt::format("{}", static_cast<int64_t>(v));
  return dtype == DType::F32 ? fmt::format("{:.9g}", v) : fmt::format("{:.17g}", v);
}

}  // namespace gradc::driver
