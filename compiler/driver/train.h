// `gradc train`: training on data sets, epochs of shuffled batches,
// evaluation, progress, logs, plots and checkpoints that resume exactly.
#pragma once

#include "compiler/driver/options.h"

namespace gradc::driver {

// Returns the exit status (0, or 1 for bad data or a non-finite loss).
int cmd_train(const Options& o);

}  // namespace gradc::driver
