// gradc::Preprocessing: the standardization statistics a checkpoint carries
// as "pre.standardize.NAME.mean" / ".std" tensors, named in its metadata.
#include "gradc/preprocess.h"

#include <fmt/format.h>

#include <cmath>

#include "runtime/csv.h"
#include "runtime/tensor_io.h"

namespace gradc {
namespace {

constexpr std::string_view kPrefix = "pre.standardize.";

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

std::string formula(const std::string& input) {
  return fmt::format("({0} - pre.standardize.{0}.mean) / pre.standardize.{0}.std", input);
}

}  // namespace

const Standardization* Preprocessing::find(std::string_view input) const {
  for (const Standardization& s : standardize)
    if (s.input == input) return &s;
  return nullptr;
}

std::string Preprocessing::inputs_text() const {
  std::string s;
  for (const Standardization& st : standardize) s += (s.empty() ? "" : ",") + st.input;
  return s;
}

void Preprocessing::apply(NamedTensors& inputs) const {
  for (auto& [name, t] : inputs)
    if (const Standardization* s = find(name)) {
      try {
        apply_standardizer(Standardizer{s->mean, s->std}, t);
      } catch (const DataError& e) {
        throw DataError(fmt::format("input '{}': {} (the checkpoint standardizes it)", name, e.what()));
      }
    }
}

NamedTensors Preprocessing::tensors() const {
  NamedTensors out;
  for (const Standardization& s : standardize) {
    for (auto [suffix, values] : {std::pair{".mean", &s.mean}, std::pair{".std", &s.std}}) {
      Tensor t(DType::F64, {static_cast<int64_t>(values->size())});
      for (size_t i = 0; i < values->size(); ++i) t.set(static_cast<int64_t>(i), (*values)[i]);
      out.emplace_back(std::string(kPrefix) + s.input + suffix, std::move(t));
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> Preprocessing::metadata() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const Standardization& s : standardize) out.emplace_back(std::string(kPrefix) + s.input, formula(s.input));
  return out;
}

Preprocessing Preprocessing::from_tensors(const NamedTensors& tensors, const std::string& what) {
  Preprocessing p;
  for (const auto& [name, t] : tensors) {
    if (!starts_with(name, "pre.")) continue;
    if (!starts_with(name, kPrefix) || !(ends_with(name, ".mean") || ends_with(name, ".std")))
      throw DataError(fmt::format("{}: tensor '{}': a preprocessing this version of gradc does not know "
                                  "(it knows pre.standardize.NAME.mean and .std)", what, name));
    if (!ends_with(name, ".mean")) continue;
    std::string input = name.substr(kPrefix.size(), name.size() - kPrefix.size() - 5);
    std::string std_name = std::string(kPrefix) + input + ".std";
    const Tensor* sd = find_tensor(tensors, std_name);
    if (!sd) throw DataError(fmt::format("{}: tensor '{}' has no '{}' beside it", what, name, std_name));
    if (t.rank() != 1 || sd->rank() != 1 || t.numel() != sd->numel() || t.dtype() == DType::I32 ||
        sd->dtype() == DType::I32)
      throw DataError(fmt::format("{}: '{}' ({}) and '{}' ({}) must be float vectors of one length", what, name,
                                  t.type_string(), std_name, sd->type_string()));
    Standardization s{input, {}, {}};
    for (int64_t i = 0; i < t.numel(); ++i) {
      double m = t.get(i), d = sd->get(i);
      if (!std::isfinite(m) || !std::isfinite(d) || !(d > 0))
        throw DataError(fmt::format("{}: feature {} of '{}': mean {} and std {} (the std must be finite and > 0)",
                                    what, i, input, m, d));
      s.mean.push_back(m);
      s.std.push_back(d);
    }
    p.standardize.push_back(std::move(s));
  }
  for (const auto& [name, t] : tensors)
    if (starts_with(name, kPrefix) && ends_with(name, ".std") &&
        !p.find(name.substr(kPrefix.size(), name.size() - kPrefix.size() - 4)))
      throw DataError(fmt::format("{}: tensor '{}' has no '{}' beside it", what, name,
                                  name.substr(0, name.size() - 4) + ".mean"));
  return p;
}

Preprocessing Preprocessing::from_checkpoint(const NamedTensors& tensors,
                                             const std::vector<std::pair<std::string, std::string>>& metadata,
                                             const std::string& what) {
  Preprocessing p = from_tensors(tensors, what);
  for (const auto& [key, value] : metadata)
    if (starts_with(key, kPrefix) && !p.find(key.substr(kPrefix.size())))
      throw DataError(fmt::format("{}: the metadata names '{}' ({}), but its tensors are missing", what, key, value));
  return p;
}

Preprocessing read_preprocessing(const std::string& path) {
  TensorFileMetadata meta;
  NamedTensors ts = read_safetensors(path, &meta);
  return Preprocessing::from_checkpoint(ts, meta, path);
}

}  // namespace gradc
