// What keeps the result of `gradc train` safe when something other than the
// training goes wrong: a signal (Ctrl-C, a scheduler's SIGTERM, a closed
// terminal's SIGHUP) ends the run with a checkpoint rather than none; a reader
// that closes standard output (`gradc train ... | head -1`) ends the printing,
// not the run; and a checkpoint is never written holding NaN or infinity that
// the training produced (it would replace a good one, and resume from it
// trains nothing).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gradc/tensor.h"

namespace gradc::driver {

// While it lives: SIGINT, SIGTERM and SIGHUP are caught by a handler that only
// records the signal (async-signal-safe) and gives all three their default
// action back, so that a second signal ends the process at once; the training
// loop polls received() between steps. A signal that was ignored when it was
// created (nohup's SIGHUP, SIGINT of a background job in a script) stays
// ignored. SIGPIPE is ignored, so a closed standard output is an EPIPE error
// that Progress handles. The destructor restores what was there.
class StopSignals {
 public:
  StopSignals();
  ~StopSignals();
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;
  // The first signal received, or 0.
  int received() const;
};

// "SIGINT", "SIGTERM", "SIGHUP".
std::string signal_name(int signo);

// Progress lines on standard output. When the reader has gone (EPIPE), the
// printing stops and standard output is pointed at /dev/null, so the run goes
// on and nothing later (the C library's buffer included) fails on it. Other
// errors (a full disk) are left to the driver's final check of stdout.
class Progress {
 public:
  void print(std::string_view text);
  bool closed() const { return closed_; }

 private:
  bool closed_ = false;
};

// The non-finite values a checkpoint must not hold. Values that were already
// NaN or infinite when the run started (from the initializers or the resumed
// checkpoint) are the user's and are allowed to stay; any other is a value
// the training produced.
class FiniteGuard {
 public:
  explicit FiniteGuard(const NamedTensors& start);
  // The first value of `tensors` that is non-finite and was not at the start,
  // described: "the tensor 'W' holds inf (element 0 of f32[2, 1])".
  std::optional<std::string> check(const NamedTensors& tensors) const;

 private:
  // Per tensor that held non-finite values at the start: which elements.
  std::vector<std::pair<std::string, std::vector<bool>>> allowed_;
};

// The command line that continues the run of `argv` from `checkpoint`: the
// same words, without any --resume, with `--resume CHECKPOINT` at the end,
// quoted for a POSIX shell where needed.
std::string resume_command(const std::vector<std::string>& argv, const std::string& checkpoint);

}  // namespace gradc::driver
