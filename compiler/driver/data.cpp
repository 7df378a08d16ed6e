// Input files of the verbs that read safetensors only (see data.h).
#include "compiler/driver/data.h"

#include <fmt/format.h>

#include <filesystem>

#include "runtime/tensor_io.h"

namespace gradc::driver {

void check_safetensors_arg(const std::string& verb, const char* flag, const std::string& path) {
  std::string type = file_type(path);
  std::error_code ec;
  if (type != ".safetensors" && std::filesystem::is_regular_file(path, ec)) {
    std::string looks = type == ".npy" ? "a NumPy .npy file" : type == ".csv" ? "a CSV file" : "";
    throw DataError(fmt::format("{} {}: not a safetensors file{}; `{}` reads .safetensors, `predict` reads "
                                ".csv/.npy/.safetensors",
                                flag, path, looks.empty() ? "" : " (it is " + looks + ")", verb));
  }
}

NamedTensors read_safetensors_arg(const std::string& verb, const char* flag, const std::string& path) {
  check_safetensors_arg(verb, flag, path);
  return read_safetensors(path);
}

}  // namespace gradc::driver
