// Command-line parsing for the gradc driver (SPEC section 3).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "compiler/driver/train_state.h"

namespace gradc::driver {

struct Options {
  std::string verb;
  std::string model;
  std::vector<std::pair<std::string, int64_t>> dims;  // --set D=N
  std::vector<std::pair<std::string, int64_t>> capacities;  // --max D=N
  std::string stage;                                  // dump --stage
  std::string format = "text";                        // dump --format
  std::string entry = "train_step";                   // dump --entry
  std::vector<std::string> entries;                   // export --entry E,E
  std::string target, cpu;                            // export --target TRIPLE, --cpu NAME
  bool print_after_all = false;                       // dump --print-after-all
  bool annotate = false;                              // dump --annotate
  std::string params;                                 // --params P
  std::string inputs;                                 // --inputs I
  std::string output;                                 // -o OUT
  std::vector<std::string> wrt;                       // --wrt NAME
  bool forward_ad = false;                            // --ad forward (default reverse)
  std::vector<std::string> ad_modes;                  // bench --ad forward,reverse: the modes compared
  uint64_t seed = 0;                                  // --seed S
  std::string backend = "jit";                        // --backend jit|interp
  int threads = 0;                                    // --threads N (0: one per hardware thread)
  int64_t steps = 0;                                  // step --steps N
  std::optional<double> lr;                           // step/train --lr X
  std::optional<LrSchedule> lr_schedule;              // train --lr-schedule SPEC (cosine's T not yet resolved)
  std::optional<BestMetric> keep_best;                // train --keep-best METRIC[:min|:max]
  int64_t patience = 0;                               // train --patience N (0: none)
  // train
  std::vector<std::pair<std::string, std::string>> data, eval;  // --data/--eval NAME=PATH[:COLUMNS]
  int64_t epochs = 0;
  std::optional<int64_t> batch;
  std::string resume, log, plot;
  int64_t save_every = 0;
  std::vector<std::string> standardize;
  bool progress = true;
  bool quiet = false;                                 // train --quiet
  int64_t log_every = 1;                              // train --log-every N
  bool check_numerics = false;                        // --check-numerics
  double seconds = 1.0;                               // bench --seconds
  bool profile = false;                               // bench --profile
  std::string tensor;                                 // show --tensor NAME
  int64_t window = 0, stride = 0;                     // text --window T, --stride S (0: T)
  std::string vocab;                                  // text --vocab FILE
  std::string mode = "reverse";                       // gradcheck --mode forward|reverse|both
  bool classes = false;                               // predict --classes
  std::string cache_dir;                              // --cache-dir DIR (the code cache)
  bool no_cache = false;                              // --no-cache
  bool help = false;
  std::vector<std::string> argv;                      // the command line as given (train's resume hint)
};

// The verbs of SPEC section 3 and whether this build implements them.
struct VerbInfo {
  const char* name;
  const char* summary;
  bool implemented;
  const char* intro;  // help text before the options, or nullptr
  const char* notes;  // help text after the options, or nullptr
  const char* operand = "MODEL";  // what the one positional argument is
};
const std::vector<VerbInfo>& verbs();
const VerbInfo* find_verb(const std::string& name);

// OptionRow::flags
inline constexpr unsigned kRequired = 1;  // the verb needs it (shown without brackets in the usage line)
inline constexpr unsigned kRepeated = 2;  // may be given more than once ("..." in the usage line)
inline constexpr unsigned kHidden = 4;    // in neither the usage line nor the help

// One row of the option table: the usage lines, the help texts and the check
// of which verb accepts which option all come from it.
struct OptionRow {
  const char* name;   // "--set", "-o"
  const char* arg;    // its value as the help names it ("D=N"), or nullptr for a flag
  const char* verbs;  // the verbs that accept it (and show this help), space-separated; "*": every verb
  const char* help;   // lines after the name column, '\n' between them
  unsigned flags = 0;
  const char* usage_arg = nullptr;  // its value in the usage line, when not `arg` ("jit|interp")
  bool accepts(std::string_view verb) const;
};
const std::vector<OptionRow>& option_table();

// Parses argv; on a usage error returns nullopt and sets `error`.
std::optional<Options> parse_options(int argc, char** argv, std::string& error);

std::string main_help();
// "gradc VERB MODEL --opt X [--opt Y] ...", wrapped (without "usage: ").
std::string verb_usage(const VerbInfo& v);
std::string verb_help(const VerbInfo& v);

}  // namespace gradc::driver
