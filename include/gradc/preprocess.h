// The preprocessing a checkpoint records, so that a trained model can be given
// the same raw data it was trained on (SPEC 3). `gradc train --standardize x`
// fits per-feature statistics on the training data, trains on
// (x - mean) / std, and stores mean and std in the checkpoint; `gradc run`,
// `grad`, `step`, `train --resume` and host programs apply them again:
//
//   gradc::Session s(model);
//   s.load("iris.safetensors");                 // params, optimizer state, preprocessing
//   gradc::NamedTensors in = {{"x", raw_x}};
//   s.preprocessing().apply(in);                // x = (x - mean) / std, per feature
//   gradc::NamedTensors out = s.forward(in);
//
// In the checkpoint, standardizing input NAME is two f64 tensors of shape
// [features] (one per element of a row): "pre.standardize.NAME.mean" and
// "pre.standardize.NAME.std" (the population standard deviation; 1 for a
// constant feature). The safetensors metadata names them, one entry per
// input: "pre.standardize.NAME" -> "(NAME - pre.standardize.NAME.mean) / pre.standardize.NAME.std".
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradc/tensor.h"

namespace gradc {

struct Standardization {
  std::string input;         // the model input it applies to
  std::vector<double> mean;  // one per feature
  std::vector<double> std;   // one per feature, each > 0
};

struct Preprocessing {
  std::vector<Standardization> standardize;  // at most one per input

  bool empty() const { return standardize.empty(); }
  // The standardization of `input`, or nullptr.
  const Standardization* find(std::string_view input) const;
  // The names of the standardized inputs, comma-separated ("x,y"), for messages.
  std::string inputs_text() const;

  // Applies every step to the inputs it names that `inputs` holds (others are
  // left alone): x = (x - mean) / std per feature. Throws DataError when such
  // an input is not f32 or f64, or has another number of features per row.
  void apply(NamedTensors& inputs) const;

  // The checkpoint tensors ("pre.standardize.NAME.mean", ".std") and the
  // safetensors metadata entries that name them.
  NamedTensors tensors() const;
  std::vector<std::pair<std::string, std::string>> metadata() const;

  // From a checkpoint's tensors (those not named "pre.*" are ignored); empty
  // when it records none. Throws DataError, naming `what`, for a mean without
  // its std (or the reverse), unequal lengths, non-finite values, a std <= 0,
  // or another "pre.*" tensor (a preprocessing this version does not know).
  static Preprocessing from_tensors(const NamedTensors& tensors, const std::string& what = "checkpoint");
  // The same, also checking that every metadata entry "pre.standardize.NAME"
  // has its tensors (a file whose tensors were stripped is an error).
  static Preprocessing from_checkpoint(const NamedTensors& tensors,
                                       const std::vector<std::pair<std::string, std::string>>& metadata,
                                       const std::string& what);
};

// The preprocessing recorded in the safetensors checkpoint at `path`: its
// "pre.*" tensors, checked against the metadata entries that name them.
Preprocessing read_preprocessing(const std::string& path);

}  // namespace gradc
