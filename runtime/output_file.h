// Every file gradc writes (checkpoints and -o outputs, --log, --plot) goes
// through write_output_file, so that one set of rules decides what a path
// means: a regular file is replaced atomically, a device or FIFO is written in
// place, a symbolic link is followed and kept. Without these rules `-o
// /dev/null` as root replaced the machine's /dev/null with a regular file.
#pragma once

#include <string>
#include <string_view>

namespace gradc {

// Where and how an output path is written.
struct OutputTarget {
  // The file to write: `path` with its symbolic links followed, so that
  // replacing it keeps the link and puts the temporary file next to the target.
  std::string path;
  // True for a character device, a FIFO, or a file reached through /proc (such
  // as /dev/stdout): opened and written where it is, nothing created or renamed.
  bool in_place = false;
};

// Resolves `path` for writing. Throws DataError naming `path` for an empty
// path, a directory, a socket or block device, a symbolic link loop, or a
// path that cannot be examined.
OutputTarget resolve_output(const std::string& path);

// Writes `bytes` to `path` following resolve_output. A regular file (or a
// path that does not exist yet) is written atomically: into a new, uniquely
// named temporary file `.NAME.tmp-PID-...` in the target's directory,
// fsync'ed, renamed over the target, then the directory fsync'ed; on failure
// the temporary file is removed and the target is left as it was. Temporary
// files of the same name left by writers that no longer run are removed
// first. Throws DataError naming the path and the system's reason.
void write_output_file(const std::string& path, std::string_view bytes);

// Removes `.NAME.tmp-PID-*` files in `dir` for the file name `name` whose
// process PID no longer exists (left by a killed writer). Best effort: an
// entry that cannot be removed is left. Returns how many were removed.
int remove_stale_temporaries(const std::string& dir, const std::string& name);

}  // namespace gradc
