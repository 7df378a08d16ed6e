// `gradc show FILE`: the tensors, statistics and metadata of a tensor file.
#pragma once

#include "compiler/driver/options.h"

namespace gradc::driver {

// Returns the exit status; throws DataError for a file it cannot read.
int cmd_show(const Options& o);

}  // namespace gradc::driver
