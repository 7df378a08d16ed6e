// The gradc command-line driver. It parses the command line, calls the host
// API, prints diagnostics to stderr, and chooses the exit status:
// 0 success, 1 the model or data is wrong, 2 the command line is wrong.
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <fstream>
#include <functional>
#include <iterator>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <iostream>
#include <new>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <system_error>

#include "compiler/driver/data.h"
#include "compiler/driver/distributed.h"
#include "compiler/driver/options.h"
#include "compiler/driver/predict.h"
#include "compiler/driver/show.h"
#include "compiler/driver/text.h"
#include "compiler/driver/train.h"
#include "compiler/driver/train_guard.h"
#include "gradc/gradc.h"
#include "gradc/session.h"
#include "runtime/output_file.h"
#include "runtime/tensor_io.h"

namespace {

using namespace gradc;
using namespace gradc::driver;

int usage_error(const std::string& verb, const std::string& msg) {
  std::cerr << fmt::format("gradc{}: error: {}\n", verb.empty() ? "" : " " + verb, msg);
  std::cerr << (verb.empty() ? "run 'gradc --help' for usage\n" : fmt::format("run 'gradc {} --help' for usage\n", verb));
  return 2;
}

std::string shape_text(const TensorInfo& t) {
  std::string s = t.dtype + "[";
  for (size_t i = 0; i < t.shape.size(); ++i)
    s += fmt::format("{}{}", i ? ", " : "", t.shape[i] < 0 ? t.dim_names[i] : fmt::format("{}", t.shape[i]));
  return s + "]";
}

int cmd_check(const Options& o, const Model& m) {
  ModelInfo info = m.info();
  int64_t values = 0;
  for (const TensorInfo& p : info.params) {
    int64_t n = 1;
    for (int64_t d : p.shape) n *= d;
    values += n;
  }
  std::cout << fmt::format("{}: ok: model '{}'\n", o.model, info.name);
  auto list = [](const char* what, const std::vector<TensorInfo>& ts) {
    std::string s = fmt::format("  {:<8}", what);
    if (ts.empty()) s += " (none)";
    for (size_t i = 0; i < ts.size(); ++i) s += fmt::format("{} {} : {}", i ? "," : "", ts[i].name, shape_text(ts[i]));
    return s + "\n";
  };
  if (!info.dims.empty() || !info.dynamic_dims.empty()) {
    std::cout << "  dims    ";
    for (const auto& [k, v] : info.dims) std::cout << fmt::format(" {}={}", k, v);
    for (const std::string& d : info.dynamic_dims) {
      auto bound = std::find_if(o.capacities.begin(), o.capacities.end(), [&](const auto& c) { return c.first == d; });
      std::cout << (bound == o.capacities.end() ? fmt::format(" {} (dynamic)", d)
                                                : fmt::format(" {} (dynamic, up to {})", d, bound->second));
    }
    std::cout << "\n";
  }
  std::cout << list("inputs", info.inputs) << list("params", info.params);
  if (!info.buffers.empty()) std::cout << list("buffers", info.buffers);
  std::cout << list("outputs", info.outputs) << list("metrics", info.metrics);
  std::cout << fmt::format("  {} trainable values, optimizer {}, {} graph nodes\n", values, info.optimizer,
                           info.graph_nodes);
  return 0;
}

// The stages of `dump --stage`, by name.
constexpr std::pair<const char*, Stage> kStages[] = {
    {"ast", Stage::Ast},     {"graph", Stage::Graph}, {"grad", Stage::Grad},         {"opt", Stage::Opt},
    {"loops", Stage::Loops}, {"llvm", Stage::Llvm},   {"llvm-raw", Stage::LlvmRaw}, {"asm", Stage::Asm},
};

Stage stage_named(const std::string& name) {
  for (const auto& [n, s] : kStages)
    if (name == n) return s;
  return Stage::Graph;
}

// "--print-after-all works with --stage opt ... not with --stage S", naming
// the stages the API can print step by step.
std::string print_after_all_error(const std::string& stage) {
  std::string with;
  for (const auto& [n, s] : kStages)
    if (stage_has_steps(s)) with += fmt::format("{}--stage {}", with.empty() ? "" : " or ", n);
  return fmt::format("--print-after-all prints a stage after each of its steps and works with {}, not with --stage {}",
                     with, stage);
}

int cmd_dump(const Options& o, const Model& m) {
  DumpOptions d;
  Stage stage = stage_named(o.stage);
  d.entry = o.entry == "forward" ? Entry::Forward : o.entry == "grad" ? Entry::Grad : Entry::TrainStep;
  bool backend = stage == Stage::Loops || stage == Stage::Llvm || stage == Stage::LlvmRaw || stage == Stage::Asm;
  d.format = o.format == "dot" && !backend ? DumpFormat::Dot : DumpFormat::Text;
  if (o.annotate && backend) d.format = DumpFormat::Annotated;
  d.print_after_all = o.print_after_all;
  std::cout << m.dump(stage, d);
  return 0;
}

// For a verb that needs every size (bench, export): the usage error when the
// model has dynamic dims, which are bound by data it does not read (`bounded`:
// those that --max compiles for every size up to a capacity, which export
// takes as run-time arguments).
std::optional<std::string> unbound_dynamic_dims(const ModelInfo& info, std::string_view why,
                                                const std::vector<std::pair<std::string, int64_t>>* bounded = nullptr) {
  std::vector<std::string> unbound;
  for (const std::string& d : info.dynamic_dims)
    if (!bounded || std::none_of(bounded->begin(), bounded->end(), [&](const auto& b) { return b.first == d; }))
      unbound.push_back(d);
  if (unbound.empty()) return std::nullopt;
  std::string names, sets;
  for (const std::string& d : unbound) {
    names += fmt::format("{}{}", names.empty() ? "" : ", ", d);
    sets += fmt::format("{}--set {}=N", sets.empty() ? "" : " ", d);
  }
  std::string bound_them;
  if (bounded) {
    std::string maxes;
    for (const std::string& d : unbound) maxes += fmt::format("{}--max {}=N", maxes.empty() ? "" : " ", d);
    bound_them = fmt::format(", or compile {} for every size up to N with {}", unbound.size() == 1 ? "it" : "them", maxes);
  }
  return fmt::format("the model's dim{} {} {} dynamic, {}: give {} a size with {}{}", unbound.size() == 1 ? "" : "s",
                     names, unbound.size() == 1 ? "is" : "are", why, unbound.size() == 1 ? "it" : "each", sets,
                     bound_them);
}

// export: NAME.o and NAME.h into the directory -o, made if missing.
int cmd_export(const Options& o, const Model& m) {
  // A dynamic dim is a run-time argument of the entries when --max bounds it.
  if (auto why = unbound_dynamic_dims(m.info(), "and exported code needs a size or a bound", &o.capacities))
    return usage_error(o.verb, *why);
  ExportOptions eo;
  eo.target = o.target;
  eo.cpu = o.cpu;
  for (const std::string& e : o.entries)
    eo.entries.push_back(e == "forward" ? Entry::Forward : e == "grad" ? Entry::Grad : Entry::TrainStep);
  ExportedModel x = m.export_code(eo);
  std::error_code ec;
  std::filesystem::create_directories(o.output, ec);
  if (ec || !std::filesystem::is_directory(o.output))
    throw DataError(fmt::format("-o {}: cannot make the directory: {}", o.output,
                                ec ? ec.message() : "a file of that name exists"));
  std::string base = (std::filesystem::path(o.output) / x.name).string();
  write_output_file(base + ".o", x.object);
  write_output_file(base + ".h", x.header);
  std::cout << fmt::format("{}.o ({} bytes), {}.h  ->  {}\n", x.name, x.object.size(), x.name, o.output);
  return 0;
}

// A problem with the data the user gave: exit status 1.
int data_error(const std::string& verb, const std::string& msg) {
  std::cerr << fmt::format("gradc {}: error: {}\n", verb, msg);
  return 1;
}

// A run-time error that a model line explains renders as compile-time errors
// do (file:line:col, the source line, a caret); others name the verb.
int data_error(const std::string& verb, const DataError& e) {
  if (const auto* me = dynamic_cast<const ModelError*>(&e)) {
    std::cerr << me->diagnostic.render();
    return 1;
  }
  return data_error(verb, std::string(e.what()));
}

// A session with the backend, seed and params the options ask for. When
// --params is a checkpoint of `train --standardize`, `inputs` are raw data:
// the statistics it stores are applied to them, as training applied them.
Session make_session(const Options& o, const Model& m, NamedTensors& inputs) {
  Session s(m, {o.backend == "interp" ? Backend::Interpreter : Backend::Jit, o.seed, o.check_numerics, o.threads});
  if (!o.params.empty()) {
    check_safetensors_arg(o.verb, "--params", o.params);
    s.load(o.params);
  }
  s.preprocessing().apply(inputs);
  return s;
}

int cmd_grad(const Options& o, const Model& m) {
  NamedTensors inputs = read_inputs_arg(o.verb, o.inputs, m.info());
  Session s = make_session(o, m, inputs);
  NamedTensors out = s.grad(inputs);
  write_safetensors(o.output, out);
  std::cout << fmt::format("loss {}  ->  {} ({} tensors)\n", out.front().second.get(0), o.output, out.size());
  return 0;
}

int cmd_step(const Options& o, const Model& m) {
  NamedTensors inputs = read_inputs_arg(o.verb, o.inputs, m.info());
  Session s = make_session(o, m, inputs);
  // As train's checkpoints: a file that would hold a NaN or infinity the
  // steps produced is not written.
  driver::FiniteGuard finite(s.checkpoint());
  Tensor losses(DType::F64, {o.steps});
  for (int64_t i = 0; i < o.steps; ++i) {
    double loss = o.lr ? s.train_step(inputs, *o.lr) : s.train_step(inputs);
    losses.set(i, loss);
    if (!std::isfinite(loss))
      std::cerr << fmt::format("gradc step: warning: the loss is {} at step {}\n", loss, i + 1);
  }
  // The loss has the dtype of the model's loss.
  DType loss_dtype = DType::F32;
  for (const auto& [name, t] : s.grad(inputs))
    if (name == "loss") loss_dtype = t.dtype();
  Tensor loss_out(loss_dtype, {o.steps});
  for (int64_t i = 0; i < o.steps; ++i) loss_out.set(i, losses.get(i));
  NamedTensors out = s.checkpoint();
  if (std::optional<std::string> bad = finite.check(out)) {
    std::cerr << fmt::format("gradc step: error: after step {} {}, which no checkpoint may hold; {} not written "
                             "(a smaller --lr, or --check-numerics to find the op that first produces it)\n",
                             o.steps, *bad, o.output);
    return 1;
  }
  out.emplace_back("loss", std::move(loss_out));
  write_safetensors(o.output, out, s.preprocessing().metadata());
  std::cout << fmt::format("{} steps: loss {} -> {}  ->  {}\n", o.steps, losses.get(0), losses.get(o.steps - 1), o.output);
  return 0;
}

int cmd_run(const Options& o, const Model& m) {
  NamedTensors inputs = read_inputs_arg(o.verb, o.inputs, m.info());
  Session s = make_session(o, m, inputs);
  NamedTensors out = s.forward(inputs);
  write_safetensors(o.output, out);
  std::cout << fmt::format("{} tensors  ->  {}\n", out.size(), o.output);
  return 0;
}

// Seeded inputs of the model's declared types: floats uniform in [-1, 1),
// class ids uniform over the classes of what reads them (else 0). (All ids 0,
// as before 2026-12-06, taught a classifier one class within a few steps: its
// gradients then fell below FLT_MIN, and an Intel core spends ~100 cycles on
// each subnormal result, so W4's weight-gradient products timed 6 ms where
// they take 4 in training.)
NamedTensors bench_inputs(const ModelInfo& info, uint64_t seed) {
  NamedTensors ts;
  for (const TensorInfo& t : info.inputs) {
    DType dt = t.dtype == "f64" ? DType::F64 : t.dtype == "i32" ? DType::I32 : DType::F32;
    // Checked before allocating: a failed allocation is not a reliable error
    // (the sanitizers abort on it, Linux may overcommit and kill later).
    double bytes = static_cast<double>(dtype_size(dt));
    for (int64_t d : t.shape) bytes *= static_cast<double>(d);
    if (bytes > static_cast<double>(kMaxSessionBytes))
      throw DataError(fmt::format("cannot allocate a tensor of type {} ({:.0f} bytes) for input '{}': a session is "
                                  "limited to {} GiB (bind smaller dims with --set)",
                                  type_string(dt, t.shape), bytes, t.name, kMaxSessionBytes >> 30));
    Tensor x(dt, t.shape);
    uint64_t state = seed * 0x9e3779b97f4a7c15ULL + std::hash<std::string>{}(t.name);
    for (int64_t i = 0; i < x.numel(); ++i) {
      state = state * 6364136223846793005ULL + 1442695040888963407ULL;
      double u = static_cast<double>(state >> 11) * 0x1.0p-53;
      x.set(i, dt != DType::I32 ? 2 * u - 1 : t.classes > 0 ? std::floor(u * static_cast<double>(t.classes)) : 0.0);
    }
    ts.emplace_back(t.name, std::move(x));
  }
  return ts;
}

// bench --profile: train_step again with a timer around each kernel, for
// --seconds after a warm-up; the kernels that take 0.1 % of the time or more,
// slowest first.
void print_profile(const Model& m, const Options& o, const NamedTensors& inputs) {
  SessionOptions so{o.backend == "interp" ? Backend::Interpreter : Backend::Jit, o.seed, false, o.threads};
  so.profile = true;
  Session s(m, so);
  if (s.backend() == Backend::Interpreter) {
    std::cout << "profile: none with the interpreter\n";
    return;
  }
  for (int i = 0; i < 3; ++i) s.train_step(inputs);
  s.reset_profile();
  auto begin = std::chrono::steady_clock::now();
  int64_t steps = 0;
  while (steps < 5 || std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count() < o.seconds) {
    s.train_step(inputs);
    ++steps;
  }
  std::vector<KernelProfile> ks = s.profile(Entry::TrainStep);
  double total = s.profiled_seconds(Entry::TrainStep), in_kernels = 0;
  // (A loop's time includes its body's kernels, which are listed too.)
  for (const KernelProfile& k : ks)
    if (k.what.rfind("loop ", 0) != 0) in_kernels += k.seconds;
  std::stable_sort(ks.begin(), ks.end(), [](const KernelProfile& a, const KernelProfile& b) { return a.seconds > b.seconds; });
  std::cout << fmt::format("profile   train_step {:.4f} ms per step over {} steps ({:.1f} % in kernels); per kernel:\n",
                           1e3 * total / static_cast<double>(steps), steps, 100 * in_kernels / total);
  size_t shown = 0;
  for (const KernelProfile& k : ks) {
    if (k.seconds < 1e-3 * total) break;
    std::cout << fmt::format("  k{:<4} {:5.1f} % {:10.2f} us  {:<36} {}\n", k.index, 100 * k.seconds / total,
                             1e6 * k.seconds / static_cast<double>(steps), k.what, k.source);
    ++shown;
  }
  if (shown < ks.size()) std::cout << fmt::format("  ({} more kernels under 0.1 % each)\n", ks.size() - shown);
}

// The median time of f (and its 10th and 90th percentiles) in ms: a
// warm-up, then samples of at least 1 ms each for at least `seconds`.
struct Timing {
  double median = 0, p10 = 0, p90 = 0;
  size_t samples = 0;
  int per = 1;  // calls per sample
};

Timing measure(const std::function<void()>& f, double seconds) {
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  for (int i = 0; i < 3; ++i) f();
  Timing t;
  while (true) {
    auto a = Clock::now();
    for (int i = 0; i < t.per; ++i) f();
    if (ms(Clock::now() - a) >= 1.0 || t.per >= (1 << 20)) break;
    t.per *= 2;
  }
  std::vector<double> samples;
  auto begin = Clock::now();
  while (samples.size() < 5 || std::chrono::duration<double>(Clock::now() - begin).count() < seconds) {
    auto a = Clock::now();
    for (int i = 0; i < t.per; ++i) f();
    samples.push_back(ms(Clock::now() - a) / t.per);
  }
  std::sort(samples.begin(), samples.end());
  auto pct = [&](double q) { return samples[static_cast<size_t>(q * static_cast<double>(samples.size() - 1))]; };
  t.median = pct(0.5), t.p10 = pct(0.1), t.p90 = pct(0.9), t.samples = samples.size();
  return t;
}

// bench --ad forward,reverse: one gradient by each mode against one forward
// pass (docs/alternatives.md): reverse mode costs a small multiple of the
// forward pass whatever the number of params, forward mode one tangent per
// param element.
int cmd_bench_ad(const Options& o) {
  Backend backend = o.backend == "interp" ? Backend::Interpreter : Backend::Jit;
  bool first = true;
  double forward_ms = 0;
  for (const std::string& mode : o.ad_modes) {
    CompileOptions co;
    co.dims = o.dims;
    if (mode == "forward") co.ad = CompileOptions::Autodiff::Forward;
    Model m = Model::compile_file(o.model, co);
    if (!m.ok()) {
      std::cerr << render_all(m.diagnostics());
      return 1;
    }
    ModelInfo info = m.info();
    if (auto why = unbound_dynamic_dims(info, "and a benchmark runs one size")) return usage_error(o.verb, *why);
    NamedTensors inputs = bench_inputs(info, o.seed);
    Session s(m, {backend, o.seed, false, o.threads});
    if (first) {
      int64_t params = 0;
      for (const TensorInfo& p : info.params) {
        int64_t n = 1;
        for (int64_t d : p.shape) n *= d;
        params += n;
      }
      std::cout << fmt::format("model {} ({}), {} params, backend {}{}\n", info.name, o.model, params, o.backend,
                               backend == Backend::Jit ? fmt::format(", {} thread{}", s.threads(), s.threads() == 1 ? "" : "s") : "");
      s.prepare(Entry::Forward);
      Timing f = measure([&] { (void)s.forward(inputs); }, o.seconds);
      forward_ms = f.median;
      std::cout << fmt::format("forward           {:12.4f} ms  (p10 {:.4f}, p90 {:.4f})\n", f.median, f.p10, f.p90);
      first = false;
    }
    s.prepare(Entry::Grad);
    Timing g = measure([&] { (void)s.grad(inputs); }, o.seconds);
    std::cout << fmt::format("grad by {:<9} {:12.4f} ms  (p10 {:.4f}, p90 {:.4f}): {:.1f} x forward\n", mode, g.median,
                             g.p10, g.p90, g.median / forward_ms);
  }
  return 0;
}

int cmd_bench(const Options& o) {
  if (!o.ad_modes.empty()) return cmd_bench_ad(o);
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); };
  CompileOptions co;
  co.dims = o.dims;
  // Compile from the text with a unique last line, so the in-memory cache cannot answer
  // (and line numbers stay those of the file).
  std::ifstream in(o.model, std::ios::binary);
  if (!in) throw DataError(fmt::format("cannot read '{}'", o.model));
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto t0 = Clock::now();
  Model m = Model::compile_source(text + fmt::format("\n# bench {}\n", t0.time_since_epoch().count()), o.model, co);
  auto t1 = Clock::now();
  if (!m.ok()) {
    std::cerr << render_all(m.diagnostics());
    return 1;
  }
  ModelInfo info = m.info();
  if (auto why = unbound_dynamic_dims(info, "and a benchmark runs one size")) return usage_error(o.verb, *why);
  EntryCost cost = m.cost(Entry::TrainStep);
  NamedTensors inputs = bench_inputs(info, o.seed);
  Session s(m, {o.backend == "interp" ? Backend::Interpreter : Backend::Jit, o.seed, false, o.threads});
  CodeCacheStats before = code_cache_stats();
  auto t2 = Clock::now();
  s.prepare(Entry::TrainStep);  // plan, LLVM IR, optimization, machine code (or the code cache), link
  auto t3 = Clock::now();
  s.train_step(inputs);
  Timing timing = measure([&] { s.train_step(inputs); }, o.seconds);
  double median = timing.median;
  std::cout << fmt::format("model {} ({}), backend {}{}\n", info.name, o.model, o.backend,
                           o.backend == "jit" ? fmt::format(", {} thread{}", s.threads(), s.threads() == 1 ? "" : "s") : "");
  CompileTimes ct = s.compile_times(Entry::TrainStep);
  // A directory the cache refused (see set_code_cache_dir) is neither a hit
  // nor a miss: the cache was not looked at.
  CodeCacheStats after = code_cache_stats();
  bool looked = after.hits + after.misses > before.hits + before.misses;
  std::string cache = code_cache_dir().empty() ? "code cache off"
                      : ct.cache_hit           ? "code cache hit"
                      : looked                 ? "code cache miss"
                                               : "code cache not used";
  std::cout << fmt::format("compile   front end to optimized graph  {:9.2f} ms\n", ms(t1 - t0));
  if (ct.compiled) {
    std::cout << fmt::format("          train_step code               {:9.2f} ms  ({})\n", ms(t3 - t2), cache);
    std::cout << fmt::format("            LLVM set-up {:.2f}, plan {:.2f}, LLVM IR {:.2f}, optimize {:.2f}, machine code {:.2f},"
                             " cache {:.2f}, JIT link {:.2f} ms\n",
                             ct.setup_ms, ct.plan_ms, ct.emit_ms, ct.optimize_ms, ct.codegen_ms, ct.cache_ms, ct.link_ms);
    if (ct.parts > 1 && !ct.cache_hit)
      std::cout << fmt::format("            (optimized and compiled in {} parts on {} threads: optimize is the first"
                               " part's, machine code the rest)\n",
                               ct.parts, ct.parts);
  } else {
    std::cout << "          train_step code                    none  (the interpreter)\n";
  }
  std::cout << fmt::format("          source to callable train_step {:9.2f} ms\n", ms(t1 - t0) + ms(t3 - t2));
  std::cout << fmt::format("train_step median {:.4f} ms  (p10 {:.4f}, p90 {:.4f}; {} samples of {} steps)\n", median,
                           timing.p10, timing.p90, timing.samples, timing.per);
  std::cout << fmt::format("          {:.0f} steps/s, {} kernels, arena {} bytes (peak live {})\n", 1000.0 / median,
                           cost.kernels, cost.arena_bytes, cost.peak_bytes);
  if (cost.matmul_flops > 0)
    std::cout << fmt::format("          matrix products {:.3f} MFLOP per step, {:.2f} GFLOP/s\n", cost.matmul_flops / 1e6,
                             cost.matmul_flops / (median * 1e6));
  if (o.profile) print_profile(m, o, inputs);
  return 0;
}

int cmd_gradcheck(const Options& o, const Model& m) {
  GradcheckOptions go;
  go.seed = o.seed;
  go.mode = o.mode == "forward" ? GradcheckMode::Forward : o.mode == "both" ? GradcheckMode::Both : GradcheckMode::Reverse;
  NamedTensors inputs = o.inputs.empty() ? NamedTensors{} : read_inputs_arg(o.verb, o.inputs, m.info());
  NamedTensors params = o.params.empty() ? NamedTensors{} : read_safetensors_arg(o.verb, "--params", o.params);
  std::vector<GradcheckParam> report = m.gradcheck(go, inputs, params);
  bool ok = true;
  std::cout << fmt::format("{:<16} {:>9} {:>12} {:>12}  {}\n", "param", "checked", "max abs err", "max rel err", "result");
  for (const GradcheckParam& r : report) {
    ok = ok && r.ok;
    std::cout << fmt::format("{:<16} {:>8}{} {:>12.3g} {:>12.3g}  {}\n", r.name, r.checked, r.projected ? "d" : " ",
                             r.max_abs_error, r.max_rel_error, r.ok ? "ok" : "FAILED");
  }
  const char* what = o.mode == "forward" ? "the directional derivatives by forward mode disagree with finite differences"
                     : o.mode == "both"  ? "reverse mode, forward mode and finite differences disagree"
                                         : "the gradient disagrees with finite differences";
  std::cout << (ok ? "gradcheck passed\n" : fmt::format("gradcheck FAILED: {}\n", what));
  if (report.empty()) std::cout << "(the model has no params)\n";
  return ok ? 0 : 1;
}

// The code cache: --no-cache, --cache-dir, $GRADC_CACHE_DIR ("" turns it
// off), else $XDG_CACHE_HOME/gradc or ~/.cache/gradc. A cache that cannot be
// written is skipped without an error.
void configure_code_cache(const Options& o) {
  if (o.no_cache) return set_code_cache_dir("");
  if (!o.cache_dir.empty()) return set_code_cache_dir(o.cache_dir);
  if (std::getenv("GRADC_CACHE_DIR")) return;  // the library reads it
  const char* xdg = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  if (xdg && *xdg == '/') set_code_cache_dir(std::string(xdg) + "/gradc");
  else if (home && *home == '/') set_code_cache_dir(std::string(home) + "/.cache/gradc");
  else set_code_cache_dir("");
}

int run(int argc, char** argv) {
  std::string error;
  auto opts = parse_options(argc, argv, error);
  std::string verb = argc >= 2 && find_verb(argv[1]) ? argv[1] : "";
  if (!opts) return usage_error(verb, error);
  if (opts->help) {
    const VerbInfo* v = opts->verb.empty() ? nullptr : find_verb(opts->verb);
    std::cout << (v ? verb_help(*v) : main_help());
    return 0;
  }
  const VerbInfo& v = *find_verb(opts->verb);
  configure_code_cache(*opts);
  if (!v.implemented)
    return usage_error(opts->verb, fmt::format("'{}' is not implemented in this version of gradc yet", opts->verb));
  if (opts->verb == "dump") {
    if (opts->stage.empty()) return usage_error("dump", "--stage is required (ast, graph, grad, opt, loops, llvm, llvm-raw or asm)");
    if (std::none_of(std::begin(kStages), std::end(kStages), [&](const auto& st) { return opts->stage == st.first; }))
      return usage_error("dump", fmt::format("unknown stage '{}' (expected ast, graph, grad, opt, loops, llvm, llvm-raw or asm)",
                                             opts->stage));
    Stage st = stage_named(opts->stage);
    if (opts->format == "dot" && (st == Stage::Loops || st == Stage::Llvm || st == Stage::LlvmRaw || st == Stage::Asm))
      return usage_error("dump", fmt::format("--format dot: the {} stage has no DOT form (dot works with --stage ast, "
                                             "graph, grad and opt)",
                                             opts->stage));
    if (opts->print_after_all && !stage_has_steps(stage_named(opts->stage)))
      return usage_error("dump", print_after_all_error(opts->stage));
  }
  if ((opts->verb == "grad" || opts->verb == "step" || opts->verb == "run") &&
      (opts->inputs.empty() || opts->output.empty()))
    return usage_error(opts->verb, "--inputs I and -o OUT are required");
  if (opts->verb == "grad" || opts->verb == "step" || opts->verb == "run") {
    // These write safetensors whatever the name says: refuse a name that
    // promises another format rather than writing safetensors into it.
    std::string ext = lower_extension(opts->output);
    for (const char* other : {".csv", ".npy", ".npz", ".txt", ".json", ".tsv", ".grad", ".svg"})
      if (ext == other)
        return usage_error(opts->verb,
                           fmt::format("-o {}: `{}` writes a safetensors file, not {}; name it .safetensors{}",
                                       opts->output, opts->verb, ext,
                                       opts->verb == "run" && (ext == ".csv" || ext == ".npy")
                                           ? fmt::format(", or use `gradc predict` to write {}", ext)
                                           : ""));
  }
  if (opts->verb == "step" && opts->steps < 1) return usage_error("step", "--steps N is required");
  if (opts->verb == "export" && opts->output.empty()) return usage_error("export", "-o DIR is required");
  if (opts->verb == "predict") {
    std::string ext = lower_extension(opts->output);
    if (opts->params.empty() || opts->output.empty())
      return usage_error("predict", "--params CKPT and -o OUT are required");
    if (ext != ".csv" && ext != ".npy" && ext != ".safetensors")
      return usage_error("predict", fmt::format("-o {}: predict writes .csv, .npy (one output) or .safetensors files; "
                                                "the name must end in one of them",
                                                opts->output));
    if (opts->data.empty() && opts->inputs.empty())
      return usage_error("predict", "no data: give --data NAME=PATH for each input, or --inputs FILE");
    if (!opts->data.empty() && !opts->inputs.empty())
      return usage_error("predict", "give the data as --data NAME=PATH or as --inputs FILE, not both");
    try {
      return cmd_predict(*opts);
    } catch (const DataError& e) {
      return data_error("predict", e);
    }
  }
  if (opts->verb == "show") {
    try {
      return cmd_show(*opts);
    } catch (const DataError& e) {
      return data_error("show", e);
    }
  }
  if (opts->verb == "text") {
    if (opts->window < 1 || opts->output.empty()) return usage_error("text", "--window T and -o OUT are required");
    std::string ext = lower_extension(opts->output);
    for (const char* other : {".csv", ".npy", ".npz", ".txt", ".json", ".tsv", ".grad", ".svg"})
      if (ext == other)
        return usage_error("text", fmt::format("-o {}: `text` writes a safetensors file, not {}; name it .safetensors",
                                               opts->output, ext));
    try {
      return cmd_text(*opts);
    } catch (const DataError& e) {
      return data_error("text", e);
    }
  }
  if (opts->verb == "bench") {
    try {
      return cmd_bench(*opts);
    } catch (const DataError& e) {
      return data_error("bench", e);
    }
  }
  if (opts->verb == "train") {
    if (opts->data.empty() || opts->epochs < 1 || opts->output.empty())
      return usage_error("train", "--data NAME=PATH, --epochs N and -o CKPT are required");
    try {
      return cmd_train(*opts);
    } catch (const DataError& e) {
      return data_error("train", e);
    }
  }
  CompileOptions co;
  co.dims = opts->dims;
  co.capacities = opts->capacities;
  co.wrt = opts->wrt;
  if (opts->forward_ad) co.ad = CompileOptions::Autodiff::Forward;
  Model m = Model::compile_file(opts->model, co);
  if (!m.diagnostics().empty()) std::cerr << render_all(m.diagnostics());
  if (m.options_error()) return usage_error(opts->verb, "the command line does not fit the model (see above)");
  // The AST can be printed even when later stages fail, as long as the file parsed.
  if (opts->verb == "dump" && opts->stage == "ast") {
    std::string ast = m.dump(Stage::Ast, opts->format == "dot" ? DumpFormat::Dot : DumpFormat::Text);
    std::cout << ast;
    bool syntax_ok = true;
    for (const Diagnostic& d : m.diagnostics()) syntax_ok = false, (void)d;
    return syntax_ok || m.ok() ? 0 : 1;
  }
  if (!m.ok()) {
    size_t n = 0;
    for (const Diagnostic& d : m.diagnostics()) n += d.severity == Severity::Error;
    std::cerr << fmt::format("{} error{} generated.\n", n, n == 1 ? "" : "s");
    return 1;
  }
  try {
    if (opts->verb == "grad") return cmd_grad(*opts, m);
    if (opts->verb == "gradcheck") return cmd_gradcheck(*opts, m);
    if (opts->verb == "step") return cmd_step(*opts, m);
    if (opts->verb == "run") return cmd_run(*opts, m);
    if (opts->verb == "export") {
      try {
        return cmd_export(*opts, m);
      } catch (const std::invalid_argument& e) {  // --target, --cpu
        return usage_error("export", e.what());
      }
    }
  } catch (const DataError& e) {
    return data_error(opts->verb, e);
  }
  return opts->verb == "check" ? cmd_check(*opts, m) : cmd_dump(*opts, m);
}

// Output that did not reach standard output (a full disk, `> /dev/full`, a
// closed pipe's EIO) is an error: the user would otherwise take a truncated
// printout for the whole one. Returns the exit status to use.
int check_stdout(int rc) {
  std::cout.flush();
  errno = 0;
  bool flushed = std::fflush(stdout) == 0;
  int err = errno;
  if (flushed && std::cout.good() && !std::ferror(stdout)) return rc;
  // The reason is known only when the last flush failed; an earlier failed
  // write leaves just the stream's error flag.
  std::string why = err != 0 ? ": " + std::error_code(err, std::generic_category()).message() : "";
  if (why.size() > 2) why[2] = static_cast<char>(std::tolower(static_cast<unsigned char>(why[2])));
  std::cerr << "gradc: error: cannot write to standard output" << why << "\n";
  return rc != 0 ? rc : 1;
}

}  // namespace

int main(int argc, char** argv) {
  int rc;
  try {
    rc = run(argc, argv);
  } catch (const std::bad_alloc&) {
    // Memory ran out where no size check named the culprit (the sizes that
    // users choose are checked and named where tensors are made): still the
    // machine's limit, not a compiler bug.
    std::cerr << "gradc: error: out of memory (an allocation failed; smaller dims (--set) or data may fit)\n";
    rc = 1;
  } catch (const std::exception& e) {
    // A bug in gradc. The library's InternalError (compiler/support/diagnostics.h, which
    // the CLI cannot see) already reads "internal compiler error: ..."; anything else
    // escaping the driver gets the same wording, once.
    constexpr std::string_view kPrefix = "internal compiler error: ";
    std::string_view what = e.what();
    std::cerr << "gradc: " << (what.starts_with(kPrefix) ? "" : kPrefix) << what << "\n";
    rc = 1;
  }
  // A rank of a data-parallel run that failed stops the whole job (distributed.h).
  return Distributed::finish(check_stdout(rc));
}
