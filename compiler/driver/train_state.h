// What a training checkpoint records about its run besides params and
// optimizer state: the epoch it reached, the seed and the batch size, which
// `gradc train --resume` reads back. The file comes from the user, so every
// field is checked (dtype, one element, a whole number within its range)
// before it sizes or steers anything; a bad one is a DataError naming the
// file and the field.
#pragma once

#include <cstdint>
#include <string>

#include "runtime/tensor_io.h"

namespace gradc::driver {

// The most epochs a run has (the range of --epochs, and of train.epoch).
inline constexpr int64_t kMaxEpochs = 1'000'000'000;
// The most epochs --log and --plot cover: their history is held in memory and
// rewritten every epoch.
inline constexpr int64_t kMaxLoggedEpochs = 1'000'000;

struct TrainState {
  int64_t epoch = 0;         // epochs done, [0, kMaxEpochs]
  uint64_t seed = 0;         // any 64-bit value
  bool seed_exact = true;    // false: only the f64 below is known (a checkpoint of an earlier version)
  double seed_f64 = 0;       // the seed rounded to f64, as the train.seed tensor holds it
  int64_t batch = 0;         // [1, kMaxEpochs]
  std::string seed_text() const;  // the seed in decimal, as --seed takes it
};

// Adds train.epoch (i32), train.seed (f64, rounded above 2^53) and train.batch
// (i32) to a checkpoint, and the seed's exact decimal digits to its metadata
// as "train.seed".
void add_train_state(const TrainState& s, NamedTensors& ckpt, TensorFileMetadata& meta);

// Reads them back from a checkpoint read from `path`. The seed comes from the
// metadata's "train.seed" when present (it must agree with the tensor), else
// from the f64 tensor (checkpoints of earlier versions), which must then hold
// a whole number in [0, 2^64]. Throws DataError "PATH: ..." naming the field
// when one is missing, not a number of one element, or out of its range.
TrainState read_train_state(const NamedTensors& ckpt, const TensorFileMetadata& meta, const std::string& path);

// Whether `seed` matches the one a checkpoint recorded as `stored`: exactly,
// or, for a checkpoint of an earlier version that kept only the f64 rounding,
// when the two round to the same f64.
bool same_seed(uint64_t seed, const TrainState& stored);

}  // namespace gradc::driver
