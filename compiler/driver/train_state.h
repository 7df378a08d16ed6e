// What a training checkpoint records about its run besides params and
// optimizer state: the epoch it reached, the seed and the batch size, the
// learning rate and its schedule (--lr-schedule), and the best eval value so
// far (--keep-best), which `gradc train --resume` reads back. The file comes from the user, so every
// field is checked (dtype, one element, a whole number within its range)
// before it sizes or steers anything; a bad one is a DataError naming the
// file and the field.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "runtime/tensor_io.h"

namespace gradc::driver {

// The most epochs a run has (the range of --epochs, and of train.epoch).
inline constexpr int64_t kMaxEpochs = 1'000'000'000;
// The most epochs --log and --plot cover: their history is held in memory and
// rewritten every epoch.
inline constexpr int64_t kMaxLoggedEpochs = 1'000'000;

// A learning-rate schedule (--lr-schedule): the rate of epoch e (1-based) is
// the base rate times the product of the factors below, so a resumed run,
// which knows its epoch, continues it exactly. i = e - 1 epochs are done
// before epoch e.
struct LrSchedule {
  int64_t warmup = 0;         // warmup:W: min(1, e / W); 0: none
  int64_t step_every = 0;     // step:EVERY:GAMMA: GAMMA^floor(i / EVERY); 0: none
  double step_gamma = 1;
  bool cosine = false;        // cosine[:T]: (1 + cos(pi * min(i, T) / T)) / 2
  int64_t cosine_epochs = 0;  // T; 0 until resolved to --epochs

  bool constant() const { return !warmup && !step_every && !cosine; }
  // The factor of the base rate in epoch `epoch` (1-based).
  double factor(int64_t epoch) const;
  // The schedule with cosine's T bound to `epochs` where the spec left it out.
  LrSchedule resolved(int64_t epochs) const;
  // "warmup:5,cosine:20", the components in this order; "constant" for none.
  // parse_lr_schedule reads it back as the same schedule.
  std::string text() const;
};

// Parses --lr-schedule's SPEC: comma-separated components "constant",
// "warmup:W", "step:EVERY:GAMMA", "cosine" or "cosine:T" (W, EVERY, T whole
// numbers of epochs >= 1, GAMMA a finite number > 0), each at most once. On
// a malformed spec returns nullopt and sets `error` to what is wrong.
std::optional<LrSchedule> parse_lr_schedule(std::string_view spec, std::string& error);

// What --keep-best watches: the eval loss or a metric, and which way is better.
struct BestMetric {
  std::string name;         // "loss" or a metric's name
  bool higher_is_better = false;
  std::string text() const;  // "accuracy:max", "loss:min"
};

// Parses --keep-best's METRIC[:min|:max]; without a suffix, loss is lower-is-better
// and every metric higher-is-better. On a malformed one returns nullopt and sets `error`.
std::optional<BestMetric> parse_best_metric(std::string_view text, std::string& error);

struct TrainState {
  int64_t epoch = 0;         // epochs done, [0, kMaxEpochs]
  uint64_t seed = 0;         // any 64-bit value
  bool seed_exact = true;    // false: only the f64 below is known (a checkpoint of an earlier version)
  double seed_f64 = 0;       // the seed rounded to f64, as the train.seed tensor holds it
  int64_t batch = 0;         // [1, kMaxEpochs]
  // The base learning rate and its schedule; absent in checkpoints of earlier versions.
  std::optional<double> lr;
  std::optional<LrSchedule> schedule;
  // --keep-best: what was watched, the best value and its epoch ([1, epoch];
  // 0 when no epoch had a finite value yet). Absent without --keep-best.
  std::optional<BestMetric> keep_best;
  double best = 0;
  int64_t best_epoch = 0;
  std::string seed_text() const;  // the seed in decimal, as --seed takes it
};

// Adds train.epoch (i32), train.seed (f64, rounded above 2^53) and train.batch
// (i32) to a checkpoint, and to its metadata the seed's exact decimal digits
// as "train.seed", the learning rate as "train.lr" and "train.lr_schedule"
// (when known), and --keep-best's "train.keep_best", "train.best" and
// "train.best_epoch" (when watched). Numbers are written in the shortest form
// that reads back as the same double.
void add_train_state(const TrainState& s, NamedTensors& ckpt, TensorFileMetadata& meta);

// Reads them back from a checkpoint read from `path`. The seed comes from the
// metadata's "train.seed" when present (it must agree with the tensor), else
// from the f64 tensor (checkpoints of earlier versions), which must then hold
// a whole number in [0, 2^64]. Throws DataError "PATH: ..." naming the field
// when one is missing, not a number of one element, or out of its range, and
// naming the metadata entry when one of the others is malformed.
TrainState read_train_state(const NamedTensors& ckpt, const TensorFileMetadata& meta, const std::string& path);

// Whether `seed` matches the one a checkpoint recorded as `stored`: exactly,
// or, for a checkpoint of an earlier version that kept only the f64 rounding,
// when the two round to the same f64.
bool same_seed(uint64_t seed, const TrainState& stored);

}  // namespace gradc::driver
