// Command-line parsing for the gradc driver (SPEC section 3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace gradc::driver {

struct Options {
  std::string verb;
  std::string model;
  std::vector<std::pair<std::string, int64_t>> dims;  // --set D=N
  std::string stage;                                  // dump --stage
  std::string format = "text";                        // dump --format
  std::string entry = "train_step";                   // dump --entry
  bool annotate = false;                              // dump --annotate
  std::string params;                                 // --params P
  std::string inputs;                                 // --inputs I
  std::string output;                                 // -o OUT
  std::vector<std::string> wrt;                       // --wrt NAME
  uint64_t seed = 0;                                  // --seed S
  std::string backend = "jit";                        // --backend jit|interp
  int threads = 0;                                    // --threads N (0: one per hardware thread)
  int64_t steps = 0;                                  // step --steps N
  std::optional<double> lr;                           // step/train --lr X
  // train
  std::vector<std::pair<std::string, std::string>> data, eval;  // --data/--eval NAME=PATH[:COLUMNS]
  int64_t epochs = 0;
  std::optional<int64_t> batch;
  std::string resume, log, plot;
  int64_t save_every = 0;
  std::vector<std::string> standardize;
  bool progress = true;
  bool check_numerics = false;                        // --check-numerics
  double seconds = 1.0;                               // bench --seconds
  bool profile = false;                               // bench --profile
  std::string cache_dir;                              // --cache-dir DIR (the code cache)
  bool no_cache = false;                              // --no-cache
  bool help = false;
};

// The verbs of SPEC section 3 and whether this build implements them.
struct VerbInfo {
  const char* name;
  const char* usage;
  const char* summary;
  bool implemented;
};
const std::vector<VerbInfo>& verbs();
const VerbInfo* find_verb(const std::string& name);

// Parses argv; on a usage error returns nullopt and sets `error`.
std::optional<Options> parse_options(int argc, char** argv, std::string& error);

std::string main_help();
std::string verb_help(const VerbInfo& v);

}  // namespace gradc::driver
