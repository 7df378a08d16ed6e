// `gradc predict`: a trained model's outputs for new data, to .csv, .npy or
// .safetensors.
#pragma once

#include "compiler/driver/options.h"

namespace gradc::driver {

// Returns the exit status (0, 1 for a model or data error, 2 for a model
// that does not fit the command line); throws DataError.
int cmd_predict(const Options& o);

}  // namespace gradc::driver
