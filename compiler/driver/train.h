// `gradc train`: training on data sets, epochs of shuffled batches,
// evaluation, progress, logs, plots and checkpoints that resume exactly.
#pragma once

#include "compiler/driver/options.h"

namespace gradc::driver {

// Returns the exit status (0, or 1 for bad data or a non-finite loss).
int cmd_train(const Options& o);

// Checks that a file can be written at `path` the way write_output_file
// writes it (a new file in the target's directory, renamed over the target;
// a device or FIFO written in place), so that a mistyped output path fails
// before the work rather than after it. A probe file is created and removed;
// an existing file at `path` is not touched, and a FIFO is not opened (that
// would end its reader's input). Throws DataError "FLAG PATH: cannot write
// the file: WHY".
void check_writable(const std::string& path, const char* flag);

}  // namespace gradc::driver
