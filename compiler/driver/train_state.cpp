// Training checkpoints' run fields (see train_state.h): written beside the
// params, read back and checked by `gradc train --resume`; and the two specs
// among them that come from the command line, --lr-schedule and --keep-best.
#include "compiler/driver/train_state.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <numbers>
#include <vector>

#include "compiler/support/spelling.h"

namespace gradc::driver {
namespace {

constexpr const char* kSeedKey = "train.seed";
constexpr const char* kLrKey = "train.lr";
constexpr const char* kScheduleKey = "train.lr_schedule";
constexpr const char* kKeepBestKey = "train.keep_best";
constexpr const char* kBestKey = "train.best";
constexpr const char* kBestEpochKey = "train.best_epoch";

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  for (size_t begin = 0;;) {
    size_t end = text.find(sep, begin);
    parts.push_back(text.substr(begin, end == std::string_view::npos ? std::string_view::npos : end - begin));
    if (end == std::string_view::npos) return parts;
    begin = end + 1;
  }
}

// Whether `text` is, as a whole, a whole number of epochs in [1, kMaxEpochs].
bool epoch_count(std::string_view text, int64_t& out) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < 1 || v > kMaxEpochs) return false;
  out = v;
  return true;
}

// Whether `text` is, as a whole, a finite number (as from_chars reads it: no
// sign other than '-', no spaces).
bool finite_number(std::string_view text, double& out) {
  double v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || !std::isfinite(v)) return false;
  out = v;
  return true;
}

// The shortest decimal text that reads back as the same double.
std::string exact_text(double v) { return fmt::format("{}", v); }

const std::string* find_entry(const TensorFileMetadata& meta, const char* key) {
  for (const auto& [k, v] : meta)
    if (k == key) return &v;
  return nullptr;
}

DataError bad_entry(const std::string& path, const char* key, const std::string& value, const std::string& expected) {
  return DataError(fmt::format("{}: metadata '{}' is '{}', expected {}", path, key, value.substr(0, 40), expected));
}

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

double LrSchedule::factor(int64_t epoch) const {
  int64_t done = epoch - 1;
  double f = 1;
  if (warmup) f *= std::min(1.0, static_cast<double>(epoch) / static_cast<double>(warmup));
  if (step_every) f *= std::pow(step_gamma, static_cast<double>(done / step_every));
  if (cosine) {  // as torch computes it: cos(pi * i / T)
    double i = static_cast<double>(std::min(done, cosine_epochs));
    f *= (1 + std::cos(std::numbers::pi * i / static_cast<double>(cosine_epochs))) / 2;
  }
  return f;
}

LrSchedule LrSchedule::resolved(int64_t epochs) const {
  LrSchedule s = *this;
  if (s.cosine && !s.cosine_epochs) s.cosine_epochs = epochs;
  return s;
}

std::string LrSchedule::text() const {
  std::vector<std::string> parts;
  if (warmup) parts.push_back(fmt::format("warmup:{}", warmup));
  if (step_every) parts.push_back(fmt::format("step:{}:{}", step_every, exact_text(step_gamma)));
  if (cosine) parts.push_back(cosine_epochs ? fmt::format("cosine:{}", cosine_epochs) : std::string("cosine"));
  if (parts.empty()) return "constant";
  std::string s;
  for (const std::string& p : parts) s += (s.empty() ? "" : ",") + p;
  return s;
}

std::optional<LrSchedule> parse_lr_schedule(std::string_view spec, std::string& error) {
  constexpr const char* kForms = "constant, cosine, cosine:T, step:EVERY:GAMMA, warmup:W";
  LrSchedule s;
  bool constant = false;
  std::vector<std::string_view> seen;
  for (std::string_view part : split(spec, ',')) {
    std::vector<std::string_view> f = split(part, ':');
    std::string_view kind = f[0];
    auto fail = [&](std::string why) {
      error = std::move(why);
      return std::nullopt;
    };
    if (part.empty())
      return fail(spec.empty() ? fmt::format("the schedule is empty; give one of {}", kForms)
                               : std::string("an empty part (two commas, or a comma at an end)"));
    if (std::find(seen.begin(), seen.end(), kind) != seen.end())
      return fail(fmt::format("'{}' is given twice", kind));
    seen.push_back(kind);
    if (kind == "constant") {
      if (f.size() != 1) return fail("'constant' takes no value");
      constant = true;
    } else if (kind == "warmup") {
      if (f.size() != 2) return fail("'warmup' takes one value: warmup:W, the epochs of the warmup (e.g. warmup:5)");
      if (!epoch_count(f[1], s.warmup))
        return fail(fmt::format("warmup:W: W must be a whole number of epochs >= 1, got '{}'", f[1]));
    } else if (kind == "step") {
      if (f.size() != 3)
        return fail("'step' takes two values: step:EVERY:GAMMA, multiply by GAMMA every EVERY epochs (e.g. step:30:0.1)");
      if (!epoch_count(f[1], s.step_every))
        return fail(fmt::format("step:EVERY:GAMMA: EVERY must be a whole number of epochs >= 1, got '{}'", f[1]));
      if (!finite_number(f[2], s.step_gamma) || !(s.step_gamma > 0))
        return fail(fmt::format("step:EVERY:GAMMA: GAMMA must be a finite number > 0, got '{}'", f[2]));
    } else if (kind == "cosine") {
      s.cosine = true;
      if (f.size() > 2) return fail("'cosine' takes at most one value: cosine:T, the epochs to anneal over");
      if (f.size() == 2 && !epoch_count(f[1], s.cosine_epochs))
        return fail(fmt::format("cosine:T: T must be a whole number of epochs >= 1, got '{}'", f[1]));
    } else {
      std::string_view best = closest_name(kind, {"constant", "cosine", "step", "warmup"});
      return fail(fmt::format("unknown schedule '{}'{}; the schedules are {}", kind,
                              best.empty() ? "" : fmt::format(" (did you mean '{}'?)", best), kForms));
    }
  }
  if (constant && !s.constant()) {
    error = "'constant' cannot be combined with another schedule";
    return std::nullopt;
  }
  return s;
}

std::string BestMetric::text() const { return name + (higher_is_better ? ":max" : ":min"); }

std::optional<BestMetric> parse_best_metric(std::string_view text, std::string& error) {
  BestMetric m;
  size_t colon = text.rfind(':');
  m.name = std::string(text.substr(0, colon));
  if (m.name.empty() || m.name.find(':') != std::string::npos) {
    error = "expected METRIC or METRIC:min or METRIC:max (loss, or a metric of the model)";
    return std::nullopt;
  }
  m.higher_is_better = m.name != "loss";
  if (colon != std::string_view::npos) {
    std::string_view way = text.substr(colon + 1);
    if (way != "min" && way != "max") {
      error = fmt::format("the direction after ':' must be min (lower is better) or max (higher is better), got '{}'", way);
      return std::nullopt;
    }
    m.higher_is_better = way == "max";
  }
  return m;
}

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
  if (s.lr) meta.emplace_back(kLrKey, exact_text(*s.lr));
  if (s.schedule) meta.emplace_back(kScheduleKey, s.schedule->text());
  if (s.keep_best) {
    meta.emplace_back(kKeepBestKey, s.keep_best->text());
    meta.emplace_back(kBestKey, exact_text(s.best));
    meta.emplace_back(kBestEpochKey, std::to_string(s.best_epoch));
  }
}

namespace {

// The seed: from the metadata's exact digits, else (an earlier version's
// checkpoint) the f64 tensor alone, exact below 2^53.
void read_seed(TrainState& s, const TensorFileMetadata& meta, const std::string& path) {
  const std::string* text = find_entry(meta, kSeedKey);
  if (!text) {
    s.seed_exact = s.seed_f64 <= 0x1p53;
    s.seed = s.seed_exact ? static_cast<uint64_t>(s.seed_f64) : 0;
    return;
  }
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (text->empty() || ec != std::errc() || p != text->data() + text->size())
    throw bad_entry(path, kSeedKey, *text, fmt::format("a whole number in [0, {}]", UINT64_MAX));
  if (static_cast<double>(v) != s.seed_f64)
    throw DataError(fmt::format("{}: metadata '{}' is {}, but tensor 'train.seed' is {:.0f}; the two must agree", path,
                                kSeedKey, v, s.seed_f64));
  s.seed = v;
}

// The learning rate and its schedule, when recorded.
void read_lr(TrainState& s, const TensorFileMetadata& meta, const std::string& path) {
  if (const std::string* text = find_entry(meta, kLrKey)) {
    double lr = 0;
    if (!finite_number(*text, lr) || !(lr >= 0)) throw bad_entry(path, kLrKey, *text, "a finite number >= 0");
    s.lr = lr;
  }
  if (const std::string* text = find_entry(meta, kScheduleKey)) {
    std::string why;
    s.schedule = parse_lr_schedule(*text, why);
    if (!s.schedule) throw bad_entry(path, kScheduleKey, *text, fmt::format("a schedule as --lr-schedule takes ({})", why));
    if (s.schedule->cosine && !s.schedule->cosine_epochs)
      throw bad_entry(path, kScheduleKey, *text, "cosine with its epochs (cosine:T)");
  }
}

// --keep-best's record, when there is one: all three entries, consistent.
void read_best(TrainState& s, const TensorFileMetadata& meta, const std::string& path) {
  const std::string* watched = find_entry(meta, kKeepBestKey);
  const std::string* best = find_entry(meta, kBestKey);
  const std::string* epoch = find_entry(meta, kBestEpochKey);
  if (!watched && !best && !epoch) return;
  if (!watched || !best || !epoch)
    throw DataError(fmt::format("{}: the metadata entries '{}', '{}' and '{}' go together; some are missing", path,
                                kKeepBestKey, kBestKey, kBestEpochKey));
  std::string why;
  s.keep_best = parse_best_metric(*watched, why);
  if (!s.keep_best) throw bad_entry(path, kKeepBestKey, *watched, "METRIC:min or METRIC:max");
  if (!finite_number(*best, s.best)) throw bad_entry(path, kBestKey, *best, "a finite number");
  int64_t e = 0;
  if (*epoch == "0") s.best_epoch = 0;
  else if (epoch_count(*epoch, e) && e <= s.epoch) s.best_epoch = e;
  else throw bad_entry(path, kBestEpochKey, *epoch, fmt::format("a whole number in [0, {}] (train.epoch)", s.epoch));
}

}  // namespace

TrainState read_train_state(const NamedTensors& ckpt, const TensorFileMetadata& meta, const std::string& path) {
  TrainState s;
  s.epoch = static_cast<int64_t>(whole_field(ckpt, "train.epoch", 0, static_cast<double>(kMaxEpochs), path));
  s.batch = static_cast<int64_t>(whole_field(ckpt, "train.batch", 1, static_cast<double>(kMaxEpochs), path));
  s.seed_f64 = whole_field(ckpt, "train.seed", 0, 0x1p64, path);
  read_seed(s, meta, path);
  read_lr(s, meta, path);
  read_best(s, meta, path);
  return s;
}

bool same_seed(uint64_t seed, const TrainState& stored) {
  return stored.seed_exact ? seed == stored.seed : static_cast<double>(seed) == stored.seed_f64;
}

}  // namespace gradc::driver
