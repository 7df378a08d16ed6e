// Command-line parsing: verbs, options, --help texts.
#include "compiler/driver/options.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string_view>

namespace gradc::driver {

const std::vector<VerbInfo>& verbs() {
  static const std::vector<VerbInfo> v = {
      {"check", "gradc check MODEL [--set D=N ...]", "parse and check a model; print a summary", true},
      {"dump",
       "gradc dump MODEL --stage ast|graph|grad|opt|loops|llvm|llvm-raw|asm [--format text|dot] [--entry forward|grad|train_step] [--annotate] [--set D=N ...]",
       "print a stage of the compilation", true},
      {"grad",
       "gradc grad MODEL [--params P] --inputs I -o OUT [--wrt NAME ...] [--set D=N ...] [--seed S] [--backend jit|interp] [--threads N]",
       "compute the loss, its gradient for every param, and the outputs", true},
      {"step",
       "gradc step MODEL [--params P] --inputs I --steps N -o OUT [--lr X] [--set D=N ...] [--seed S] [--backend jit|interp] [--threads N]",
       "run train_step N times on the same inputs", true},
      {"run", "gradc run MODEL [--params P] --inputs I -o OUT [--set D=N ...] [--seed S] [--backend jit|interp] [--threads N]",
       "run forward", true},
      {"train",
       "gradc train MODEL --data NAME=PATH[:COLUMNS] ... [--eval NAME=PATH[:COLUMNS] ...] --epochs N [--batch N]\n"
       "                   [--lr X] [--seed S] -o CKPT [--resume CKPT] [--save-every N] [--log F.csv] [--plot F.svg]\n"
       "                   [--standardize NAME ...] [--set D=N ...] [--backend jit|interp] [--no-progress]",
       "train on data in batches, evaluate every epoch, write checkpoints", true},
      {"gradcheck", "gradc gradcheck MODEL [--set D=N ...] [--params P] [--inputs I] [--seed S]",
       "check gradients against central finite differences in f64", true},
      {"bench", "gradc bench MODEL [--set D=N ...] [--seed S] [--backend jit|interp] [--threads N] [--seconds X] [--profile] [--cache-dir DIR | --no-cache]",
       "measure compile latency and the steady-state time of train_step", true},
  };
  return v;
}

const VerbInfo* find_verb(const std::string& name) {
  for (const VerbInfo& v : verbs())
    if (name == v.name) return &v;
  return nullptr;
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

// The --threads line, shared by the verbs that run code.
#define THREADS_HELP                                                                            \
  "  --threads N   threads for the large kernels (default 0: one per hardware thread; results\n" \
  "                are bit-identical for any N)\n"

std::string verb_help(const VerbInfo& v) {
  std::string s = fmt::format("usage: {}\n\n{}\n", v.usage, v.summary);
  if (std::strcmp(v.name, "dump") == 0)
    s += "\noptions:\n"
         "  --stage S     ast (the syntax tree), graph (the checked graph) or grad (with the\n"
         "                gradient of the loss for every param, by reverse mode) or opt (after the\n"
         "                optimization passes, with node counts), and for one entry point:\n"
         "                loops (kernels and memory plan), llvm (optimized LLVM IR),\n"
         "                llvm-raw (LLVM IR before optimization), asm (host assembly)\n"
         "  --format F    text (default) or dot (Graphviz)\n"
         "  --entry E     forward, grad or train_step (default): the entry point of loops,\n"
         "                llvm, llvm-raw and asm\n"
         "  --annotate    llvm, llvm-raw and asm: each kernel's model lines above its code\n"
         "  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "check") == 0)
    s += "\noptions:\n  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "grad") == 0)
    s += "\noptions:\n"
         "  --inputs I    safetensors file with a tensor for every input the loss and outputs need\n"
         "  --params P    safetensors file with every param (default: the initializers, seeded)\n"
         "  -o OUT        safetensors file to write: loss, grad.NAME, out.NAME\n"
         "  --wrt NAME    also the gradient for an input or named value NAME (repeatable)\n"
         "  --seed S      seed of the initializers (default 0)\n"
         "  --backend B   jit (native code, the default) or interp (the reference interpreter)\n"
         THREADS_HELP
         "  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "step") == 0)
    s += "\noptions:\n"
         "  --inputs I    safetensors file with a tensor for every input\n"
         "  --params P    params (and, when it has opt.step, the optimizer state) to start from\n"
         "                (default: the initializers, seeded)\n"
         "  --steps N     number of train steps, each on the same inputs\n"
         "  --lr X        learning rate (default: the model file's)\n"
         "  -o OUT        safetensors file to write: every param by name, opt.SLOT.NAME, opt.step,\n"
         "                and loss, a [N] tensor of the loss before each step\n"
         "  --seed S      seed of the initializers (default 0)\n"
         "  --backend B   jit (default) or interp\n"
         THREADS_HELP
         "  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "run") == 0)
    s += "\noptions:\n"
         "  --inputs I    safetensors file with the inputs the outputs need\n"
         "  --params P    params (default: the initializers, seeded)\n"
         "  -o OUT        safetensors file to write: out.NAME, and loss and metric.NAME when\n"
         "                the inputs they need are given\n"
         "  --seed S      seed of the initializers (default 0)\n"
         "  --backend B   jit (default) or interp\n"
         THREADS_HELP
         "  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "train") == 0)
    s += "\noptions:\n"
         "  --data NAME=PATH[:COLUMNS]  training data for the input NAME: a .safetensors file (its tensor\n"
         "                NAME), a .npy file, or a .csv file with a header line; COLUMNS picks CSV columns:\n"
         "                names, 0-based indices, ranges a-b, or *, comma-separated; a leading ! means\n"
         "                all but those (x=digits.csv:!label). Without COLUMNS, a CSV column named like\n"
         "                the input, else every column but 'label'\n"
         "  --eval NAME=PATH[:COLUMNS]  held-out data, evaluated after every epoch (loss and metrics)\n"
         "  --epochs N    passes over the training data\n"
         "  --batch N     rows per step (sets the dim of the inputs' first axis; default: its size)\n"
         "  --lr X        learning rate (default: the model file's)\n"
         "  --seed S      seed of the initializers and of the shuffle (default 0)\n"
         "  -o CKPT       final checkpoint: params, optimizer state, opt.step, train.epoch, train.seed\n"
         "  --resume CKPT continue a run; ends exactly where the uninterrupted run would\n"
         "  --save-every N  also write CKPT every N epochs\n"
         "  --log F.csv   one row per epoch; --plot F.svg  a chart of losses and metrics per epoch\n"
         "  --standardize NAME  scale the float input NAME to zero mean and unit variance (statistics\n"
         "                of the training data, applied to the eval data too)\n"
         "  --no-progress no progress bar (it is shown only on a terminal anyway)\n"
         THREADS_HELP

         "\nThe rows are shuffled each epoch (seeded); a last partial batch is dropped from training and\n"
         "evaluated in full. A non-finite loss stops training with exit status 1; checkpoints already\n"
         "written stay.\n";
  else if (std::strcmp(v.name, "bench") == 0)
    s += "\nReports the compile latency from source to a callable train_step, by stage (front end\n"
         "to optimized graph; LLVM set-up, kernel plan, LLVM IR, optimization, machine code, code\n"
         "cache, JIT link), then runs train_step on seeded random inputs: after a warm-up, for at\n"
         "least --seconds (default 1) it reports the median time per step and its spread (10th to\n"
         "90th percentile), steps/s, the arena bytes and the GFLOP/s of the matrix products.\n"
         "Timings are of this machine now: compare ratios in one run.\n\noptions:\n"
         "  --seconds X   measure for at least X seconds (default 1)\n"
         "  --profile     then time every kernel of train_step (as in `gradc dump --stage loops`)\n"
         "                for as long again, and print where the time goes\n"
         THREADS_HELP

         "  --set D=N     bind dim D to N instead of its declared size\n";
  else if (std::strcmp(v.name, "gradcheck") == 0)
    s += "\noptions:\n"
         "  --inputs I    inputs to check at (default: seeded random values; class ids within range)\n"
         "  --params P    params to check at (default: the initializers, seeded)\n"
         "  --seed S      seed (default 0)\n"
         "  --set D=N     bind dim D to N instead of its declared size\n"
         "\nCompares every param element (params of more than 1000 elements: 16 random directions)\n"
         "with central differences, eps 1e-6, in f64 throughout; passes when\n"
         "|analytic - numeric| <= 1e-5 + 1e-3 * |numeric| everywhere. Exit status 1 on failure.\n";
  for (const char* n : {"grad", "step", "run", "train"})
    if (std::strcmp(v.name, n) == 0)
      s += "  --check-numerics  stop at the first NaN or infinity a call produces, naming the op and\n"
           "                its line in the model (slower only when one appears)\n";
  for (const char* n : {"grad", "step", "run", "train", "bench"})
    if (std::strcmp(v.name, n) == 0)
      s += "  --cache-dir DIR   keep compiled code in DIR (default: $GRADC_CACHE_DIR, else\n"
           "                $XDG_CACHE_HOME/gradc or ~/.cache/gradc); a second run skips code generation\n"
           "  --no-cache    neither read nor write the code cache\n";
  if (!v.implemented) s += "\nThis verb is not implemented in this version of gradc yet.\n";
  return s;
}
#undef THREADS_HELP

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

bool parse_set(const std::string& text, Options& o, std::string& error) {
  auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    error = fmt::format("--set expects D=N (a dim name and a positive integer), got '{}'", text);
    return false;
  }
  std::string name = text.substr(0, eq);
  std::string num = text.substr(eq + 1);
  int64_t v = 0;
  if (!whole_integer(num, int64_t{1}, std::numeric_limits<int64_t>::max(), v)) {
    error = fmt::format("--set {}: '{}' is not a positive integer", name, num);
    return false;
  }
  for (auto& [k, val] : o.dims)
    if (k == name) {
      val = v;
      return true;
    }
  o.dims.emplace_back(name, v);
  return true;
}

}  // namespace

std::optional<Options> parse_options(int argc, char** argv, std::string& error) {
  Options o;
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
    error = fmt::format("unknown verb '{}'", o.verb);
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
    if (arg == "-h" || arg == "--help") {
      o.help = true;
    } else if (arg == "--set") {
      if (!take("D=N") || !parse_set(value, o, error)) return std::nullopt;
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
    } else if (arg == "--data" || arg == "--eval") {
      if (!take("NAME=PATH")) return std::nullopt;
      auto eq = value.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
        error = fmt::format("{} expects NAME=PATH[:COLUMNS], got '{}'", arg, value);
        return std::nullopt;
      }
      (arg == "--data" ? o.data : o.eval).emplace_back(value.substr(0, eq), value.substr(eq + 1));
    } else if (arg == "--epochs" || arg == "--batch" || arg == "--save-every") {
      if (!take("a positive integer")) return std::nullopt;
      int64_t n = 0;
      if (!whole_integer(value, int64_t{1}, int64_t{1000000000}, n)) {
        error = fmt::format("{} must be a positive integer, got '{}'", arg, value);
        return std::nullopt;
      }
      if (arg == "--epochs") o.epochs = n;
      else if (arg == "--batch") o.batch = n;
      else o.save_every = n;
    } else if (arg == "--seconds") {
      if (!take("a number")) return std::nullopt;
      char* end = nullptr;
      o.seconds = std::strtod(value.c_str(), &end);
      if (value.empty() || *end != 0 || !(o.seconds > 0 && o.seconds <= 3600)) {
        error = fmt::format("--seconds must be a number in (0, 3600], got '{}'", value);
        return std::nullopt;
      }
    } else if (arg == "--resume" || arg == "--log" || arg == "--plot") {
      if (!take("a file path")) return std::nullopt;
      (arg == "--resume" ? o.resume : arg == "--log" ? o.log : o.plot) = value;
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
    } else if (arg == "--profile") {
      o.profile = true;
    } else if (arg == "--check-numerics") {
      o.check_numerics = true;
    } else if (arg == "--no-progress") {
      o.progress = false;
    } else if (arg.size() > 1 && arg[0] == '-') {
      error = fmt::format("unknown option '{}'", arg);
      return std::nullopt;
    } else if (o.model.empty()) {
      o.model = arg;
    } else {
      error = fmt::format("unexpected argument '{}' (one model file per call)", arg);
      return std::nullopt;
    }
  }
  if (!o.help && o.model.empty()) {
    error = "no model file given";
    return std::nullopt;
  }
  return o;
}

}  // namespace gradc::driver
