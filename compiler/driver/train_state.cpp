// Training checkpoints' run fields (see train_state.h): written beside the
// params, read back and checked by `gradc train --resume`.
#include "compiler/driver/train_state.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace gradc::driver {
namespace {

constexpr const char* kSeedKey = "train.seed";

// The one element of checkpoint tensor `name`, a finite whole number in
// [lo, hi] (bounds exactly representable as f64).
double whole_field(const NamedTensors& ckpt, const char* name, double lo, double hi, const std::string& path) {
  const Tensor* t = find_tensor(ckpt, name);
  if (!t) throw DataError(fmt::format("{}: not a training checkpoint (no tensor '{}')", path, name));
  if (t->numel() != 1)
    throw DataError(fmt::format("{}: tensor '{}' is {}, expected a single number", path, name, t->type_string()));
  double v = t->get(0);
  if (!std::isfinite(v) || v != std::trunc(v) || v < lo || v > hi)
    throw DataError(fmt::format("{}: tensor '{}' is {}, expected a whole number in [{:.0f}, {:.0f}]", path, name, v, lo, hi));
  return v;
}

}  // namespace

std::string TrainState::seed_text() const { return seed_exact ? std::to_string(seed) : fmt::format("{:.0f}", seed_f64); }

void add_train_state(const TrainState& s, NamedTensors& ckpt, TensorFileMetadata& meta) {
  Tensor e(DType::I32, {}), seed(DType::F64, {}), b(DType::I32, {});
  e.set(0, static_cast<double>(s.epoch));
  seed.set(0, static_cast<double>(s.seed));  // kept for earlier versions; rounded above 2^53
  b.set(0, static_cast<double>(s.batch));
  ckpt.emplace_back("train.epoch", std::move(e));
  ckpt.emplace_back("train.seed", std::move(seed));
  ckpt.emplace_back("train.batch", std::move(b));
  meta.emplace_back(kSeedKey, std::to_string(s.seed));  // exact
}

TrainState read_train_state(const NamedTensors& ckpt, const TensorFileMetadata& meta, const std::string& path) {
  TrainState s;
  s.epoch = static_cast<int64_t>(whole_field(ckpt, "train.epoch", 0, static_cast<double>(kMaxEpochs), path));
  s.batch = static_cast<int64_t>(whole_field(ckpt, "train.batch", 1, static_cast<double>(kMaxEpochs), path));
  s.seed_f64 = whole_field(ckpt, "train.seed", 0, 0x1p64, path);
  const std::string* text = nullptr;
  for (const auto& [key, value] : meta)
    if (key == kSeedKey) text = &value;
  if (!text) {
    // An earlier version's checkpoint: the f64 alone, exact below 2^53.
    s.seed_exact = s.seed_f64 <= 0x1p53;
    s.seed = s.seed_exact ? static_cast<uint64_t>(s.seed_f64) : 0;
    return s;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (text->empty() || ec != std::errc() || p != text->data() + text->size())
    throw DataError(fmt::format("{}: metadata '{}' is '{}', expected a whole number in [0, {}]", path, kSeedKey,
                                text->substr(0, 40), UINT64_MAX));
  if (static_cast<double>(v) != s.seed_f64)
    throw DataError(fmt::format("{}: metadata '{}' is {}, but tensor 'train.seed' is {:.0f}; the two must agree", path,
                                kSeedKey, v, s.seed_f64));
  s.seed = v;
  return s;
}

bool same_seed(uint64_t seed, const TrainState& stored) {
  return stored.seed_exact ? seed == stored.seed : static_cast<double>(seed) == stored.seed_f64;
}

}  // namespace gradc::driver
