// The command line's data files (see data.h): safetensors-only inputs and their class ids,
// specializations for a number of rows, values as files print them.
#include "compiler/driver/data.h"

#include <fmt/format.h>

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

Model compile_for_rows(const Options& o, const std::string& dim, int64_t rows) {
  CompileOptions co;
  co.dims = o.dims;
  if (o.forward_ad) co.ad = CompileOptions::Autodiff::Forward;
  bool set = false;
  for (auto& [k, v] : co.dims)
    if (k == dim) v = rows, set = true;
  if (!set) co.dims.emplace_back(dim, rows);
  Model m = Model::compile_file(o.model, co);
  if (!m.ok()) throw DataError(render_all(m.diagnostics()));
  return m;
}

Model compile_dynamic(const Options& o) {
  CompileOptions co;
  co.dims = o.dims;
  if (o.forward_ad) co.ad = CompileOptions::Autodiff::Forward;
  Model m = Model::compile_file(o.model, co);
  if (!m.ok()) throw DataError(render_all(m.diagnostics()));
  return m;
}

std::string value_text(DType dtype, double v) {
  if (dtype == DType::I32) return fmt::format("{}", static_cast<int64_t>(v));
  return dtype == DType::F32 ? fmt::format("{:.9g}", v) : fmt::format("{:.17g}", v);
}

}  // namespace gradc::driver
