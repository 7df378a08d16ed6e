// Command-line parsing: verbs, options, --help texts. One table of options
// (option_table) gives each verb's usage line, its help and the options it
// accepts, so the three cannot disagree.
#include "compiler/driver/options.h"

#include "compiler/support/spelling.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string_view>

namespace gradc::driver {

const std::vector<VerbInfo>& verbs() {
  static const std::vector<VerbInfo> v = {
      {"check", "parse and check a model; print a summary", true, nullptr, nullptr},
      {"dump", "print a stage of the compilation", true, nullptr, nullptr},
      {"grad", "compute the loss, its gradient for every param, and the outputs", true, nullptr, nullptr},
      {"step", "run train_step N times on the same inputs", true, nullptr, nullptr},
      {"run", "run forward", true, nullptr, nullptr},
      {"train", "train on data in batches, evaluate every epoch, write checkpoints", true, nullptr,
       "The rows are shuffled each epoch (seeded); a last partial batch is dropped from training (it is\n"
       "trained when the batch dim is dynamic: `dim B` without a size, --batch default 32) and\n"
       "evaluated in full. A non-finite loss stops training with exit status 1; checkpoints already\n"
       "written stay, and none is written that holds NaN or infinity the training produced.\n"
       "SIGINT, SIGTERM or SIGHUP finishes the current step, writes CKPT, prints the command\n"
       "that resumes the run and exits with 128 + the signal's number; a second signal stops\n"
       "at once. A closed standard output (| head) stops the printing, not the training.\n"},
      {"gradcheck", "check gradients against central finite differences in f64", true, nullptr,
       "Compares every param element (params of more than 1000 elements: 16 random directions)\n"
       "with central differences, eps 1e-6, in f64 throughout; passes when\n"
       "|analytic - numeric| <= 1e-5 + 1e-3 * |numeric| everywhere. --mode forward checks\n"
       "forward mode's directional derivatives (jvp) along the same elements or directions.\n"
       "Exit status 1 on failure.\n"},
      {"bench", "measure compile latency and the steady-state time of train_step", true,
       "Reports the compile latency from source to a callable train_step, by stage (front end\n"
       "to optimized graph; LLVM set-up, kernel plan, LLVM IR, optimization, machine code, code\n"
       "cache, JIT link), then runs train_step on seeded random inputs: after a warm-up, for at\n"
       "least --seconds (default 1) it reports the median time per step and its spread (10th to\n"
       "90th percentile), steps/s, the arena bytes and the GFLOP/s of the matrix products.\n"
       "Timings are of this machine now: compare ratios in one run.\n",
       nullptr},
      {"predict", "write a trained model's outputs for new data to .csv, .npy or .safetensors", true, nullptr,
       "The data is read as `train --data` reads it, or from one safetensors file (--inputs), and the\n"
       "checkpoint's preprocessing (train --standardize) is applied to it. The rows run in chunks of\n"
       "the batch dim's size (--batch or --set change it); a last smaller chunk runs in a second\n"
       "specialization compiled for its size. A dynamic batch dim takes all rows in one call (at most\n"
       "65536, or --batch rows a call). A .csv output has a header row: an output NAME of\n"
       "shape [N] is column NAME, of shape [N, C] columns NAME_0 .. NAME_{C-1}. When the data also\n"
       "gives the inputs the loss and metrics read (labels), their means over all rows are printed.\n"},
      {"export", "write the entries as an object file and C header that need only libc and libm", true, nullptr,
       "Writes DIR/NAME.o (an ELF object for this machine's CPU, the JIT's code) and DIR/NAME.h\n"
       "(the ABI: structs of the tensors, one function per entry, the work area's size), NAME\n"
       "being the model's name. Link with `cc app.c NAME.o -lm`; results are bit-identical to\n"
       "the JIT's. The dims are those of the model file or --set. See docs/export.md.\n"},
      {"show", "print the tensors of a file: dtype, shape, statistics, metadata", true, nullptr,
       "FILE is a .safetensors file (a checkpoint, inputs, outputs), a .npy array or a .csv\n"
       "table (one tensor per column). For each tensor: min, max and mean of its finite\n"
       "values, and how many are NaN or infinite; for a checkpoint, its epoch, step, seed,\n"
       "batch and recorded preprocessing.\n",
       "FILE"},
      {"text", "turn a text file into windows of byte ids and next-byte targets for a language model", true,
       "Maps every byte of FILE to an id, its rank in the vocabulary (the byte values that occur in\n"
       "FILE, or in --vocab, sorted), and writes windows of T ids: window i holds the ids of\n"
       "bytes [i*S, i*S + T) as `ids` and of bytes [i*S + 1, i*S + T + 1) as `targets` (the byte\n"
       "after each position), both i32 [N, T], for a model's inputs ids : i32[B, T] and\n"
       "targets : i32[B, T] (gradc train --data ids=OUT --data targets=OUT). The vocabulary is\n"
       "stored in OUT's metadata as text.vocab (the byte value of each id, space-separated).\n",
       nullptr, "FILE"},
  };
  return v;
}

const VerbInfo* find_verb(const std::string& name) {
  for (const VerbInfo& v : verbs())
    if (name == v.name) return &v;
  return nullptr;
}

// Every option of every verb, in the order the usage lines and help texts
// list them. An option whose help differs between verbs (--inputs, -o) has a
// row per group of verbs; a verb accepts exactly the options that have a row
// naming it. To add an option: a row here, a field in Options and a branch in
// apply_option() below.
const std::vector<OptionRow>& option_table() {
  static const std::vector<OptionRow> t = {
      // dump
      {"--stage", "S", "dump",
       "ast (the syntax tree), graph (the checked graph) or grad (with the\n"
       "gradient of the loss for every param, by reverse mode) or opt (after the\n"
       "optimization passes, with node counts), and for one entry point:\n"
       "loops (kernels and memory plan), llvm (optimized LLVM IR),\n"
       "llvm-raw (LLVM IR before optimization), asm (host assembly)",
       kRequired, "ast|graph|grad|opt|loops|llvm|llvm-raw|asm"},
      {"--format", "F", "dump", "text (default) or dot (Graphviz)", 0, "text|dot"},
      {"--entry", "E", "dump",
       "forward, grad or train_step (default): the entry point of loops,\n"
       "llvm, llvm-raw and asm",
       0, "forward|grad|train_step"},
      // export
      {"--entry", "E,E", "export",
       "the entries to export, comma-separated: forward, grad, train_step\n"
       "(default: every one the model has)",
       0, "forward,grad,train_step"},
      {"-o", "DIR", "export", "the directory to write NAME.o and NAME.h into (made if missing)", kRequired},
      {"--target", "TRIPLE", "export",
       "compile for another machine, an LLVM target triple such as\n"
       "aarch64-linux-gnu or x86_64-linux-gnu (default: this machine)"},
      {"--cpu", "NAME", "export",
       "the CPU to compile for, as LLVM names it: x86-64, x86-64-v3, neoverse-n1...\n"
       "(default: this machine's CPU; with --target, the target's baseline)"},
      {"--annotate", nullptr, "dump", "llvm, llvm-raw and asm: each kernel's model lines above its code"},
      {"--print-after-all", nullptr, "dump",
       "print the stage after each of its steps (opt: every pass;\n"
       "loops: every step of the kernel planner)"},
      // train's data
      {"--data", "NAME=PATH[:COLUMNS]", "train",
       "training data for the input NAME: a .safetensors file (its tensor\n"
       "NAME), a .npy file, or a .csv file with a header line; COLUMNS picks CSV columns:\n"
       "names, 0-based indices, ranges a-b, or *, comma-separated; a leading ! means\n"
       "all but those (x=digits.csv:!label). Without COLUMNS, a CSV column named like\n"
       "the input, else every column but 'label'",
       kRequired | kRepeated},
      {"--eval", "NAME=PATH[:COLUMNS]", "train",
       "held-out data, evaluated after every epoch (loss and metrics);\n"
       "it must give every input that the loss and metrics read",
       kRepeated},
      {"--data", "NAME=PATH[:COLUMNS]", "predict",
       "data for the input NAME, read as train --data reads it; a label given\n"
       "too makes predict print the loss and metrics",
       kRepeated},
      {"--inputs", "FILE", "predict", "a safetensors file with a tensor for every input (instead of --data)"},
      {"--epochs", "N", "train", "passes over the training data (in all, counting those of --resume)", kRequired},
      {"--batch", "N", "train", "rows per step (sets the dim of the inputs' first axis; default: its size)"},
      {"--batch", "N", "predict", "rows per call (sets the dim of the inputs' first axis; default: its size)"},
      // inputs and params of the verbs that run the model once
      {"--inputs", "I", "grad", "safetensors file with a tensor for every input the loss and outputs need", kRequired},
      {"--inputs", "I", "step", "safetensors file with a tensor for every input", kRequired},
      {"--inputs", "I", "run", "safetensors file with the inputs the outputs need", kRequired},
      {"--inputs", "I", "gradcheck", "inputs to check at (default: seeded random values; class ids within range)"},
      {"--params", "P", "grad",
       "safetensors file with every param (default: the initializers, seeded); a\n"
       "checkpoint of train --standardize also standardizes the inputs"},
      {"--params", "P", "step",
       "params (and, when it has opt.step, the optimizer state) to start from\n"
       "(default: the initializers, seeded); a checkpoint of train --standardize\n"
       "also standardizes the inputs, and OUT keeps its statistics"},
      {"--params", "P", "run",
       "params (default: the initializers, seeded); a checkpoint of\n"
       "train --standardize also standardizes the inputs"},
      {"--params", "CKPT", "predict", "the trained params, and the preprocessing recorded with them", kRequired},
      {"--params", "P", "gradcheck", "params to check at (default: the initializers, seeded)"},
      {"--mode", "M", "gradcheck",
       "reverse: the gradient by back-propagation (default); forward: the\n"
       "directional derivatives by forward accumulation (jvp); both: each, and\n"
       "each against the other"},
      {"--steps", "N", "step", "number of train steps, each on the same inputs", kRequired},
      {"--lr", "X", "step train", "learning rate (default: the model file's)"},
      {"--lr-schedule", "SPEC", "train",
       "rate per epoch: --lr times step:EVERY:GAMMA, cosine[:T], warmup:W\n"
       "(comma-separated; see docs/cli.md)"},
      // train's outputs
      {"--seed", "S", "train", "seed of the initializers and of the shuffle (default 0)"},
      {"-o", "CKPT", "train",
       "final checkpoint: params, optimizer state, opt.step, train.epoch, train.seed,\n"
       "train.batch and the --standardize statistics (pre.standardize.NAME.mean, .std);\n"
       "stopped by a signal between two steps, also train.epoch_step and train.loss_sum",
       kRequired},
      {"-o", "OUT", "grad", "safetensors file to write: loss, grad.NAME, out.NAME", kRequired},
      {"-o", "OUT", "step",
       "safetensors file to write: every param by name, opt.SLOT.NAME, opt.step,\n"
       "and loss, a [N] tensor of the loss before each step",
       kRequired},
      {"-o", "OUT", "predict",
       "where to write every output: .csv (a header row, one row per data row),\n"
       ".npy (a model with one output) or .safetensors (out.NAME)",
       kRequired},
      {"--classes", nullptr, "predict", "add the argmax of every [N, C] output (NAME_class in .csv, out.NAME_class)"},
      {"-o", "OUT", "run",
       "safetensors file to write: out.NAME, and loss and metric.NAME when\n"
       "the inputs they need are given",
       kRequired},
      {"--resume", "CKPT", "train",
       "continue a run; ends exactly where the uninterrupted run would (a\n"
       "checkpoint already at --epochs is a finished run: nothing is written)"},
      {"--save-every", "N", "train", "also write CKPT every N epochs"},
      {"--keep-best", "METRIC", "train",
       "also write the best --eval epoch to CKPT with .best; METRIC is loss\n"
       "(lower is better) or a metric (higher), or add :min or :max"},
      {"--patience", "N", "train", "with --keep-best: stop after N epochs not better"},
      {"--log", "F.csv", "train", "one row per epoch"},
      {"--plot", "F.svg", "train", "a chart of losses and metrics per epoch"},
      {"--standardize", "NAME", "train",
       "scale the float input NAME to zero mean and unit variance (statistics\n"
       "of the training data, applied to the eval data too, stored in CKPT)",
       kRepeated},
      {"--no-progress", nullptr, "train predict", "no progress bar (it is shown only on a terminal anyway)"},
      {"--quiet", nullptr, "train", "print no epoch lines and notes, only the final line (and errors)"},
      {"--log-every", "N", "train", "print the epoch line every N epochs (and the last); --log still has every epoch"},
      {"--wrt", "NAME", "grad", "also the gradient for an input or named value NAME (repeatable)", kRepeated},
      {"--ad", "MODE", "dump grad step train",
       "how gradients are computed: reverse (back-propagation, the default) or\n"
       "forward (vector forward accumulation: one tangent per param element,\n"
       "the same gradient to rounding at a cost linear in the params)",
       0, "forward|reverse"},
      {"--ad", "MODES", "bench",
       "instead of train_step, time one gradient (the grad entry) by each of\n"
       "the comma-separated modes, forward and reverse, against one forward pass"},
      {"--seed", "S", "grad step run", "seed of the initializers (default 0)"},
      {"--seed", "S", "gradcheck bench", "seed (default 0)"},
      // bench
      {"--seconds", "X", "bench", "measure for at least X seconds (default 1)"},
      {"--profile", nullptr, "bench",
       "then time every kernel of train_step (as in `gradc dump --stage loops`)\n"
       "for as long again, and print where the time goes"},
      // how the code runs
      {"--backend", "B", "grad step run train bench predict",
       "jit (native code, the default) or interp (the reference interpreter)", 0, "jit|interp"},
      {"--threads", "N", "grad step run train bench predict",
       "threads for the large kernels (default 0: one per hardware thread; results\n"
       "are bit-identical for any N)"},
      // text
      {"--window", "T", "text", "ids per window (the T of the model's inputs [B, T])", kRequired},
      {"--stride", "S", "text", "bytes from one window's start to the next (default T: windows do not overlap)"},
      {"--vocab", "VOCAB", "text",
       "the vocabulary to use instead of FILE's own bytes: a file gradc text wrote (its\n"
       "text.vocab), or any other file, whose bytes make the vocabulary (so that\n"
       "parts of one text, training and held-out, get the same ids)"},
      {"-o", "OUT", "text", "safetensors file to write: ids and targets, i32 [N, T], and the vocabulary", kRequired},
      {"--tensor", "NAME", "show", "print the values of tensor NAME instead (one line per row of its last axis)"},
      {"--set", "D=N", "check dump grad step run train gradcheck bench predict export", "bind dim D to N instead of its declared size", kRepeated},
      {"--max", "D=N", "check dump grad step run export",
       "compile the dynamic dim D for every size up to N: one code that takes the\n"
       "size at each call (export: a run-time argument of the entries)", kRepeated},
      {"--check-numerics", nullptr, "grad step run train predict",
       "stop at the first NaN or infinity a call produces, naming the op and\n"
       "its line in the model (slower only when one appears)"},
      {"--cache-dir", "DIR", "grad step run train bench predict",
       "keep compiled code in DIR (default: $GRADC_CACHE_DIR, else\n"
       "$XDG_CACHE_HOME/gradc or ~/.cache/gradc); a second run skips code generation"},
      {"--no-cache", nullptr, "grad step run train bench predict", "neither read nor write the code cache"},
      {"--help", nullptr, "*", "print this help", kHidden},
  };
  return t;
}

bool OptionRow::accepts(std::string_view verb) const {
  std::string_view list = verbs;
  if (list == "*") return true;
  while (!list.empty()) {
    size_t space = list.find(' ');
    if (list.substr(0, space) == verb) return true;
    list = space == std::string_view::npos ? std::string_view() : list.substr(space + 1);
  }
  return false;
}

namespace {

// Other spellings of an option.
std::string_view canonical_name(std::string_view name) {
  if (name == "--output") return "-o";
  if (name == "-h") return "--help";
  return name;
}

// The row of `name` for `verb`; else (unknown) nullptr, with `known` telling
// whether some other verb accepts it.
const OptionRow* find_option(std::string_view name, std::string_view verb, bool& known) {
  known = false;
  for (const OptionRow& r : option_table())
    if (name == r.name) {
      known = true;
      if (r.accepts(verb)) return &r;
    }
  return nullptr;
}

// "--set D=N ...", "[--lr X]", "--stage ast|graph|...": one option in a usage line.
std::string usage_item(const OptionRow& r) {
  std::string s = r.name;
  if (r.arg) s += fmt::format(" {}", r.usage_arg ? r.usage_arg : r.arg);
  if (r.flags & kRepeated) s += " ...";
  return r.flags & kRequired ? s : "[" + s + "]";
}

}  // namespace

std::string verb_usage(const VerbInfo& v) {
  // Lines of at most 100 columns (counting "usage: "); continuation lines
  // start under "MODEL".
  std::string head = fmt::format("gradc {} ", v.name);
  size_t indent = 7 + head.size();  // 7: "usage: "
  std::string s = head + v.operand;
  size_t line = 7 + s.size();
  for (const OptionRow& r : option_table()) {
    if (!r.accepts(v.name) || (r.flags & kHidden)) continue;
    std::string item = usage_item(r);
    if (line + 1 + item.size() > 100) {
      s += "\n" + std::string(indent, ' ') + item;
      line = indent + item.size();
    } else {
      s += " " + item;
      line += 1 + item.size();
    }
  }
  return s;
}

std::string main_help() {
  std::string s =
      "gradc: a compiler for machine-learning models\n\n"
      "usage: gradc VERB MODEL [options]\n       gradc VERB --help\n\nverbs:\n";
  for (const VerbInfo& v : verbs())
    s += fmt::format("  {:<10} {}{}\n", v.name, v.summary, v.implemented ? "" : " (not in this version yet)");
  s += "\nexit status: 0 success, 1 the model or data is wrong, 2 the command line is wrong\n";
  return s;
}

std::string verb_help(const VerbInfo& v) {
  std::string s = fmt::format("usage: {}\n\n{}\n", verb_usage(v), v.summary);
  if (v.intro) s += fmt::format("\n{}", v.intro);
  std::string options;
  for (const OptionRow& r : option_table()) {
    if (!r.accepts(v.name) || (r.flags & kHidden)) continue;
    // The name column is 14 wide; a longer name is followed by two spaces.
    std::string name = r.arg ? fmt::format("{} {}", r.name, r.arg) : r.name;
    options += "  " + (name.size() <= 13 ? fmt::format("{:<14}", name) : name + "  ");
    for (char c : std::string_view(r.help)) options += c == '\n' ? std::string("\n") + std::string(16, ' ') : std::string(1, c);
    options += "\n";
  }
  if (!options.empty()) s += "\noptions:\n" + options;
  if (v.notes) s += fmt::format("\n{}", v.notes);
  if (!v.implemented) s += "\nThis verb is not implemented in this version of gradc yet.\n";
  return s;
}

namespace {

// Whether `text` is, as a whole, an integer in [lo, hi]; then it is stored in `out`.
template <class T>
bool whole_integer(std::string_view text, T lo, T hi, T& out) {
  T v{};
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || p != text.data() + text.size() || v < lo || v > hi) return false;
  out = v;
  return true;
}

// --set D=N or --max D=N (`flag`) into `dims` (a dim given both is the
// model pipeline's error: it knows the model's dims).
bool parse_set(const std::string& text, std::string& error, std::string_view flag,
               std::vector<std::pair<std::string, int64_t>>& dims) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    error = fmt::format("{} expects D=N (a dim name and a positive integer), got '{}'", flag, text);
    return false;
  }
  std::string name = text.substr(0, eq);
  std::string num = text.substr(eq + 1);
  int64_t v = 0;
  if (!whole_integer(num, int64_t{1}, std::numeric_limits<int64_t>::max(), v)) {
    error = fmt::format("{} {}: '{}' is not a positive integer", flag, name, num);
    return false;
  }
  for (auto& [k, val] : dims)
    if (k == name) {
      val = v;
      return true;
    }
  dims.emplace_back(name, v);
  return true;
}

// The train options that only make sense together.
bool training_options_fit(const Options& o, std::string& error) {
  if (o.keep_best && o.eval.empty())
    error = fmt::format("--keep-best {} needs --eval data: it watches the evaluation after each epoch",
                        o.keep_best->name);
  else if (o.patience && !o.keep_best)
    error = "--patience needs --keep-best METRIC: the value whose improvement it waits for";
  else if (o.lr_schedule && o.lr_schedule->cosine_epochs && o.lr_schedule->cosine_epochs < o.epochs)
    error = fmt::format("--lr-schedule: cosine:{} brings the learning rate to 0 after epoch {}, but --epochs is {}; "
                        "use cosine (over --epochs) or cosine:T with T >= {}",
                        o.lr_schedule->cosine_epochs, o.lr_schedule->cosine_epochs, o.epochs, o.epochs);
  return error.empty();
}

}  // namespace

std::optional<Options> parse_options(int argc, char** argv, std::string& error) {
  Options o;
  o.argv.assign(argv, argv + argc);
  if (argc < 2) {
    error = "no verb given";
    return std::nullopt;
  }
  o.verb = argv[1];
  if (o.verb == "-h" || o.verb == "--help" || o.verb == "help") {
    o.help = true;
    o.verb.clear();
    return o;
  }
  if (!find_verb(o.verb)) {
    std::vector<std::string_view> names;
    for (const VerbInfo& v : verbs()) names.push_back(v.name);
    std::string_view best = closest_name(o.verb, names);
    error = fmt::format("unknown verb '{}'{}", o.verb, best.empty() ? "" : fmt::format("; did you mean '{}'?", best));
    return std::nullopt;
  }
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_inline = false;
    if (arg.rfind("--", 0) == 0) {
      auto eq = arg.find('=');
      if (eq != std::string::npos) {
        value = arg.substr(eq + 1);
        arg = arg.substr(0, eq);
        has_inline = true;
      }
    }
    auto take = [&](const char* what) -> bool {
      if (has_inline) return true;
      if (i + 1 >= argc) {
        error = fmt::format("{} needs {}", arg, what);
        return false;
      }
      value = argv[++i];
      return true;
    };
    // The table decides which options the verb accepts; the branches below
    // read their values.
    if (arg.size() > 1 && arg[0] == '-') {
      bool known = false;
      std::string_view name = canonical_name(arg);
      if (!find_option(name, o.verb, known)) {
        if (!known) {
          // The verb's own options first, then any verb's.
          std::vector<std::string_view> own, all;
          for (const OptionRow& r : option_table())
            if (!(r.flags & kHidden)) (r.accepts(o.verb) ? own : all).push_back(r.name);
          std::string_view best = closest_name(name, own);
          if (best.empty()) best = closest_name(name, all);
          error = fmt::format("unknown option '{}'{}", arg, best.empty() ? "" : fmt::format("; did you mean '{}'?", best));
        } else {
          std::string takers;
          for (const VerbInfo& v : verbs())
            for (const OptionRow& r : option_table())
              if (name == r.name && r.accepts(v.name)) {
                takers += fmt::format("{}{}", takers.empty() ? "" : ", ", v.name);
                break;
              }
          error = fmt::format("option '{}' does not apply to 'gradc {}' (it does to: {})", arg, o.verb, takers);
        }
        return std::nullopt;
      }
    }
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "--set") {
      if (!take("D=N") || !parse_set(value, error, "--set", o.dims)) return std::nullopt;
    } else if (arg == "--max") {
      if (!take("D=N") || !parse_set(value, error, "--max", o.capacities)) return std::nullopt;
    } else if (arg == "--stage") {
      if (!take("a stage")) return std::nullopt;
      o.stage = value;
    } else if (arg == "--format") {
      if (!take("text or dot")) return std::nullopt;
      o.format = value;
      if (o.format != "text" && o.format != "dot") {
        error = fmt::format("--format must be text or dot, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--entry" && o.verb == "export") {
      if (!take("entries, comma-separated")) return std::nullopt;
      std::string_view list = value;
      while (true) {
        std::string item(list.substr(0, list.find(',')));
        if (item != "forward" && item != "grad" && item != "train_step") {
          error = fmt::format("--entry takes forward, grad and train_step, comma-separated; got '{}'", item);
          return std::nullopt;
        }
        o.entries.push_back(item);
        if (list.find(',') == std::string_view::npos) break;
        list.remove_prefix(list.find(',') + 1);
      }
    } else if (arg == "--entry") {
      if (!take("forward, grad or train_step")) return std::nullopt;
      o.entry = value;
      if (o.entry != "forward" && o.entry != "grad" && o.entry != "train_step") {
        error = fmt::format("--entry must be forward, grad or train_step, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--params" || arg == "--inputs" || arg == "-o" || arg == "--output") {
      if (!take("a file path")) return std::nullopt;
      (arg == "--params" ? o.params : arg == "--inputs" ? o.inputs : o.output) = value;
    } else if (arg == "--mode") {
      if (!take("forward, reverse or both")) return std::nullopt;
      o.mode = value;
      if (o.mode != "forward" && o.mode != "reverse" && o.mode != "both") {
        error = fmt::format("--mode must be forward, reverse or both, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--target" || arg == "--cpu") {
      if (!take(arg == "--target" ? "a target triple" : "a CPU name")) return std::nullopt;
      (arg == "--target" ? o.target : o.cpu) = value;
    } else if (arg == "--tensor") {
      if (!take("a tensor name")) return std::nullopt;
      o.tensor = value;
    } else if (arg == "--ad") {
      if (!take("forward or reverse")) return std::nullopt;
      o.ad_modes.clear();
      for (size_t start = 0;;) {
        size_t comma = value.find(',', start);
        std::string mode = value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
        if (mode != "forward" && mode != "reverse") {
          error = fmt::format("--ad takes forward or reverse{}, got '{}'", o.verb == "bench" ? " (or both, comma-separated)" : "",
                              value);
          return std::nullopt;
        }
        o.ad_modes.push_back(mode);
        if (comma == std::string::npos) break;
        start = comma + 1;
      }
      if (o.ad_modes.size() > 1 && o.verb != "bench") {
        error = fmt::format("--ad takes one mode for {}, got '{}'", o.verb, value);
        return std::nullopt;
      }
      o.forward_ad = o.ad_modes.front() == "forward";
    } else if (arg == "--wrt") {
      if (!take("a name")) return std::nullopt;
      o.wrt.push_back(value);
    } else if (arg == "--seed") {
      if (!take("an integer")) return std::nullopt;
      uint64_t s = 0;
      if (!whole_integer(value, uint64_t{0}, std::numeric_limits<uint64_t>::max(), s)) {
        error = fmt::format("--seed must be a non-negative integer, got '{}'", value);
        return std::nullopt;
      }
      o.seed = s;
    } else if (arg == "--threads") {
      if (!take("a count")) return std::nullopt;
      if (!whole_integer(value, 0, 1024, o.threads)) {
        error = fmt::format("--threads must be an integer in [0, 1024] (0: one per hardware thread), got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--backend") {
      if (!take("jit or interp")) return std::nullopt;
      o.backend = value;
      if (o.backend != "interp" && o.backend != "jit") {
        error = fmt::format("--backend must be jit or interp, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--steps") {
      if (!take("a count")) return std::nullopt;
      if (!whole_integer(value, int64_t{1}, int64_t{100000000}, o.steps)) {
        error = fmt::format("--steps must be a positive integer, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--lr") {
      if (!take("a number")) return std::nullopt;
      char* end = nullptr;
      double lr = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != 0 || !(lr >= 0) || !std::isfinite(lr)) {
        error = fmt::format("--lr must be a non-negative number, got '{}'", value);
        return std::nullopt;
      }
      o.lr = lr;
    } else if (arg == "--lr-schedule") {
      if (!take("a schedule")) return std::nullopt;
      std::string why;
      o.lr_schedule = parse_lr_schedule(value, why);
      if (!o.lr_schedule) {
        error = value.empty() ? "--lr-schedule: " + why : fmt::format("--lr-schedule {}: {}", value, why);
        return std::nullopt;
      }
    } else if (arg == "--keep-best") {
      if (!take("a metric")) return std::nullopt;
      std::string why;
      o.keep_best = parse_best_metric(value, why);
      if (!o.keep_best) {
        error = fmt::format("--keep-best {}: {}", value, why);
        return std::nullopt;
      }
    } else if (arg == "--data" || arg == "--eval") {
      if (!take("NAME=PATH")) return std::nullopt;
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
        error = fmt::format("{} expects NAME=PATH[:COLUMNS], got '{}'", arg, value);
        return std::nullopt;
      }
      (arg == "--data" ? o.data : o.eval).emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (arg == "--epochs" || arg == "--batch" || arg == "--save-every" || arg == "--patience" ||
               arg == "--window" || arg == "--stride") {
      if (!take("a positive integer")) return std::nullopt;
      int64_t n = 0;
      if (!whole_integer(value, int64_t{1}, int64_t{1000000000}, n)) {
        error = fmt::format("{} must be a positive integer, got '{}'", arg, value);
        return std::nullopt;
      }
      if (arg == "--epochs") o.epochs = n;
      else if (arg == "--batch") o.batch = n;
      else if (arg == "--patience") o.patience = n;
      else if (arg == "--window") o.window = n;
      else if (arg == "--stride") o.stride = n;
      else o.save_every = n;
    } else if (arg == "--seconds") {
      if (!take("a number")) return std::nullopt;
      char* end = nullptr;
      o.seconds = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != 0 || !(o.seconds > 0 && o.seconds <= 3600)) {
        error = fmt::format("--seconds must be a number in (0, 3600], got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--resume" || arg == "--log" || arg == "--plot" || arg == "--vocab") {
      if (!take("a file path")) return std::nullopt;
      (arg == "--resume" ? o.resume : arg == "--log" ? o.log : arg == "--plot" ? o.plot : o.vocab) = value;
    } else if (arg == "--standardize") {
      if (!take("an input name")) return std::nullopt;
      o.standardize.push_back(value);
    } else if (arg == "--cache-dir") {
      if (!take("a directory")) return std::nullopt;
      if (value.empty()) {
        error = "--cache-dir needs a directory (use --no-cache to turn the code cache off)";
        return std::nullopt;
      }
      o.cache_dir = value;
    } else if (arg == "--no-cache") {
      o.no_cache = true;
    } else if (arg == "--annotate") {
      o.annotate = true;
    } else if (arg == "--print-after-all") {
      o.print_after_all = true;
    } else if (arg == "--profile") {
      o.profile = true;
    } else if (arg == "--check-numerics") {
      o.check_numerics = true;
    } else if (arg == "--classes") {
      o.classes = true;
    } else if (arg == "--quiet") {
      o.quiet = true;
    } else if (arg == "--log-every") {
      if (!take("a positive integer")) return std::nullopt;
      if (!whole_integer(value, int64_t{1}, int64_t{1000000000}, o.log_every)) {
        error = fmt::format("--log-every must be a positive integer, got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--no-progress") {
      o.progress = false;
    } else if (arg.size() > 1 && arg[0] == '-') {
      error = fmt::format("unknown option '{}'", arg);
      return std::nullopt;
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      error = fmt::format("unexpected argument '{}' (one {} per call)", arg,
                          o.verb == "show" || o.verb == "text" ? "file" : "model file");
      return std::nullopt;
    }
  }
  if (!o.help && o.model.empty()) {
    error = o.verb == "show" || o.verb == "text" ? "no file given" : "no model file given";
    return std::nullopt;
  }
  if (!o.help && !training_options_fit(o, error)) return std::nullopt;
  return o;
}

}  // namespace gradc::driver
