// run_bench: the gradc benchmark suite (issue 6). For each workload it compiles
// the gradc model (bench/models/), runs it next to hand-written C++ baselines
// (bench/baselines/: plain loops, loops + OpenBLAS) from identical params and
// data, checks that all of them compute the same steps, then times them
// interleaved in one run and prints the ratios. Also: gradc's matrix product
// against cblas_sgemm, W4 on 1 and 2 threads, W3's compile latency.
//
// Uses gradc's public API only (gradc::Model, gradc::Session).
//
//   run_bench [--quick] [--only W1,W3] [--seconds X] [--json FILE] [--models DIR]
//
// Exit status: 0 when every implementation agrees, 1 on a correctness
// mismatch (or a model that does not compile), 2 on a bad command line.
// Missed speed targets are reported, never a failure.
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "baselines/baseline.h"
#include "timing.h"

#ifndef GRADC_BENCH_MODELS
#define GRADC_BENCH_MODELS "bench/models"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using gradc::DType;
using gradc::NamedTensors;
using gradc::Tensor;

double ms_since(Clock::time_point a) { return std::chrono::duration<double, std::milli>(Clock::now() - a).count(); }

struct Options {
  bool quick = false;
  double seconds = 1.0;
  std::set<std::string> only;  // empty: all
  std::string json;
  std::string models = GRADC_BENCH_MODELS;
  int check_steps = 0;  // 0: each workload's own (5; W4 2)
  double tolerance = 1e-4;
  double lr_scale = 1.0;  // --baseline-lr-scale: a wrong baseline, to see the check fail
};

// ---- seeded data (own generator: identical on every platform) ----

struct Rng {
  uint64_t s;
  uint64_t next() {  // splitmix64
    uint64_t z = (s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  float uniform(float lo, float hi) { return lo + (hi - lo) * static_cast<float>(next() >> 40) * 0x1p-24f; }
};

Tensor f32(std::vector<int64_t> shape, const std::vector<float>& v) {
  Tensor t(DType::F32, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

Tensor i32(std::vector<int64_t> shape, const std::vector<int32_t>& v) {
  Tensor t(DType::I32, std::move(shape));
  std::copy(v.begin(), v.end(), t.data<int32_t>());
  return t;
}

std::vector<float> uniform(Rng& r, int64_t n, float lo, float hi) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = r.uniform(lo, hi);
  return v;
}

std::vector<int32_t> labels(Rng& r, int64_t n, int classes) {
  std::vector<int32_t> v(static_cast<size_t>(n));
  for (int32_t& x : v) x = static_cast<int32_t>(r.next() % static_cast<uint64_t>(classes));
  return v;
}

// ---- the model's interface ----

int64_t dim(const gradc::ModelInfo& info, const std::string& name) {
  for (const auto& [n, v] : info.dims)
    if (n == name) return v;
  throw std::runtime_error(fmt::format("model '{}' has no dim '{}'", info.name, name));
}

// An optimizer option from ModelInfo::optimizer, e.g. "sgd(lr=0.5, momentum=0, ...)".
double opt_value(const gradc::ModelInfo& info, const std::string& key) {
  const std::string& s = info.optimizer;
  size_t at = s.find("(" + key + "=");
  if (at == std::string::npos) at = s.find(" " + key + "=");
  if (at == std::string::npos) throw std::runtime_error(fmt::format("optimizer '{}' has no option '{}'", s, key));
  return std::stod(s.substr(at + key.size() + 2));
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(fmt::format("cannot read '{}' (use --models DIR)", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Compiles a model from its text with a unique first line, so that the
// in-memory cache of an earlier compilation cannot answer (a cold compile).
gradc::Model compile_cold(const std::string& path, const std::string& text) {
  static int counter = 0;
  std::string src = fmt::format("# run_bench {} {}\n", Clock::now().time_since_epoch().count(), ++counter) + text;
  gradc::Model m = gradc::Model::compile_source(src, path);
  if (!m.ok()) throw std::runtime_error(fmt::format("{} does not compile:\n{}", path, gradc::render_all(m.diagnostics())));
  return m;
}

std::vector<bench::Buffer> to_buffers(const NamedTensors& ts) {
  std::vector<bench::Buffer> out;
  for (const auto& [name, t] : ts) {
    const float* p = t.data<float>();
    out.push_back({name, std::vector<float>(p, p + t.numel())});
  }
  return out;
}

// How far `got` is from `want` after the same steps from `start`, per param:
// ||got - want|| / ||want - start|| (2-norms), the difference relative to the
// update the steps made, worst over all params. A wrong learning rate, loss or
// gradient shows as a large number however small the steps are. (Not the
// largest element: Adam divides by sqrt(v), so an element whose gradient is
// near zero turns rounding noise into an update of up to lr; max_abs shows it.)
struct Diff {
  double max_abs = 0;  // max |got - want| over every element
  double rel = 0;      // see above
  std::string worst;   // the param where rel is largest
  int64_t far = 0;     // elements of that param off by more than 10 % of its largest change
  std::string example; // the first of them: index, got, want, start
};

// True when `a` is a worse difference than `cur` (NaN is the worst of all).
bool worse(double a, double cur) { return std::isnan(a) ? !std::isnan(cur) : a > cur; }

Diff compare(const std::vector<bench::Buffer>& got, const NamedTensors& want, const NamedTensors& start) {
  Diff d;
  for (const auto& [name, w] : want) {
    const gradc::Tensor* s = gradc::find_tensor(start, name);
    const bench::Buffer* g = nullptr;
    for (const bench::Buffer& b : got)
      if (b.name == name) g = &b;
    if (!g || !s || static_cast<int64_t>(g->data.size()) != w.numel()) {
      d.rel = d.max_abs = INFINITY;
      d.worst = name + " (missing)";
      continue;
    }
    double diff2 = 0, change2 = 0, max_abs = 0, max_change = 0;
    for (int64_t i = 0; i < w.numel(); ++i) max_change = std::max(max_change, std::fabs(double(w.data<float>()[i]) - s->data<float>()[i]));
    int64_t far = 0;
    std::string example;
    for (int64_t i = 0; i < w.numel(); ++i) {
      double e = double(g->data[size_t(i)]) - w.data<float>()[i], c = double(w.data<float>()[i]) - s->data<float>()[i];
      diff2 += e * e;
      change2 += c * c;
      if (worse(std::fabs(e), max_abs)) max_abs = std::fabs(e);
      if (!(std::fabs(e) <= 0.1 * max_change) && far++ == 0)
        example = fmt::format("{}[{}]: {:.8g} vs gradc {:.8g}, initially {:.8g}", name, i, g->data[size_t(i)],
                              w.data<float>()[i], s->data<float>()[i]);
    }
    double rel = diff2 == 0 ? 0 : std::sqrt(diff2) / std::max(std::sqrt(change2), 1e-30);
    if (worse(max_abs, d.max_abs)) d.max_abs = max_abs;
    if (worse(rel, d.rel)) d.rel = rel, d.worst = name, d.far = far, d.example = example;
  }
  return d;
}

std::string fmt_time(double ms) {
  if (ms < 1e-3) return fmt::format("{:.1f} ns", ms * 1e6);
  if (ms < 1.0) return fmt::format("{:.2f} us", ms * 1e3);
  if (ms < 1e3) return fmt::format("{:.3f} ms", ms);
  return fmt::format("{:.2f} s", ms / 1e3);
}

std::string fmt_timing(const bench::Timing& t) {
  return fmt::format("{} (p10 {}, p90 {}; {}x{})", fmt_time(t.median_ms), fmt_time(t.p10_ms), fmt_time(t.p90_ms),
                     t.samples, t.per);
}

// ---- the workloads ----

struct Problem {
  NamedTensors inputs;                                     // for gradc
  std::function<std::unique_ptr<bench::Baseline>(bench::Kind)> baseline;  // same data, same hyper-parameters
};

struct Workload {
  std::string id, name, file, what;
  double target;              // ratio gradc / reference at or below which the target is met
  bool vs_blas;               // reference: the OpenBLAS baseline (else the best baseline)
  // The check: steps compared and a factor on --tolerance. Adam divides by
  // sqrt(v): an element whose gradient is near zero turns rounding noise into
  // an update of up to lr, and the next steps amplify it (two correct
  // implementations, the loop and OpenBLAS baselines, differ by 5e-5 after 2
  // steps and 2e-3 after 5), so W4 compares 2 steps with 10x the tolerance.
  int check_steps;
  double tolerance_factor;
  // lr_scale multiplies the baselines' learning rate (1; else a test of the check itself)
  std::function<Problem(const gradc::ModelInfo&, double lr_scale)> make;
};

std::vector<Workload> workloads() {
  std::vector<Workload> w;
  w.push_back({"W1", "xor", "w1_xor.grad", "2-8-1 tanh/sigmoid, mse, sgd, batch 4", 1.5, false, 5, 1,
               [](const gradc::ModelInfo& info, double lr_scale) {
                 std::vector<float> x = {0, 0, 0, 1, 1, 0, 1, 1}, y = {0, 1, 1, 0};
                 if (dim(info, "B") != 4 || dim(info, "D") != 2 || dim(info, "H") != 8)
                   throw std::runtime_error("w1_xor.grad: the xor baseline is written for B=4, D=2, H=8");
                 float lr = float(opt_value(info, "lr") * lr_scale);
                 return Problem{{{"x", f32({4, 2}, x)}, {"y", f32({4, 1}, y)}},
                                [=](bench::Kind k) { return bench::make_xor(k, x, y, lr); }};
               }});
  w.push_back({"W2", "logreg", "w2_logreg.grad", "100 features, bce_with_logits, sgd, batch 128", 1.5, false, 5, 1,
               [](const gradc::ModelInfo& info, double lr_scale) {
                 int B = int(dim(info, "B")), D = int(dim(info, "D"));
                 Rng r{2};
                 std::vector<float> x = uniform(r, int64_t(B) * D, -1, 1), teacher = uniform(r, D, -1, 1);
                 std::vector<float> y(size_t(B), 0.0f);
                 for (int i = 0; i < B; ++i) {  // labels from a random linear teacher, 10 % flipped
                   float s = 0;
                   for (int j = 0; j < D; ++j) s += x[size_t(i) * D + j] * teacher[size_t(j)];
                   y[size_t(i)] = (s > 0) != (r.uniform(0, 1) < 0.1f) ? 1.0f : 0.0f;
                 }
                 float lr = float(opt_value(info, "lr") * lr_scale);
                 return Problem{{{"x", f32({B, D}, x)}, {"y", f32({B}, y)}},
                                [=](bench::Kind k) { return bench::make_logreg(k, B, D, x, y, lr); }};
               }});
  w.push_back({"W3", "mnist_mlp", "w3_mnist_mlp.grad", "784-256-10 relu, cross_entropy, sgd momentum, batch 64", 1.0,
               true, 5, 1, [](const gradc::ModelInfo& info, double lr_scale) {
                 int B = int(dim(info, "B")), D = int(dim(info, "D")), H = int(dim(info, "H")), C = int(dim(info, "C"));
                 Rng r{3};
                 std::vector<float> x = uniform(r, int64_t(B) * D, 0, 1);
                 std::vector<int32_t> l = labels(r, B, C);
                 float lr = float(opt_value(info, "lr") * lr_scale), mom = float(opt_value(info, "momentum"));
                 return Problem{{{"x", f32({B, D}, x)}, {"label", i32({B}, l)}},
                                [=](bench::Kind k) { return bench::make_mnist_mlp(k, B, D, H, C, x, l, lr, mom); }};
               }});
  w.push_back({"W4", "wide_mlp", "w4_wide_mlp.grad", "1024-1024-1024-10 relu, cross_entropy, adam, batch 256", 1.0, true, 2, 10,
               [](const gradc::ModelInfo& info, double lr_scale) {
                 int B = int(dim(info, "B")), D = int(dim(info, "D")), H = int(dim(info, "H")), C = int(dim(info, "C"));
                 Rng r{4};
                 std::vector<float> x = uniform(r, int64_t(B) * D, -1, 1);
                 std::vector<int32_t> l = labels(r, B, C);
                 float lr = float(opt_value(info, "lr") * lr_scale);
                 return Problem{{{"x", f32({B, D}, x)}, {"label", i32({B}, l)}},
                                [=](bench::Kind k) { return bench::make_wide_mlp(k, B, D, H, C, x, l, lr); }};
               }});
  return w;
}

// ---- results ----

struct Result {
  std::string id, name;
  double target = 0;
  bool vs_blas = false;
  double compile_ms = 0;
  bench::Timing gradc, plain, blas;
  Diff diff_plain, diff_blas;
  double loss_diff = 0;  // largest relative difference of the per-step losses
  bool correct = true;
  double ratio_plain() const { return gradc.median_ms / plain.median_ms; }
  double ratio_best() const { return gradc.median_ms / std::min(plain.median_ms, blas.median_ms); }
  double ratio_target() const { return vs_blas ? gradc.median_ms / blas.median_ms : ratio_best(); }
};

}  // namespace

namespace {

bench::TimingOptions timing_options(const Options& o) {
  bench::TimingOptions t;
  t.seconds = o.seconds;
  if (o.quick) {
    t.sample_ms = 1.0;
    t.warmup = 1;
    t.min_samples = 3;
  }
  return t;
}

gradc::SessionOptions one_thread() {
  gradc::SessionOptions so;
  so.threads = 1;
  return so;
}

// Runs `steps` train steps; returns the losses.
template <class Step> std::vector<double> run_steps(int steps, Step&& step) {
  std::vector<double> losses;
  for (int i = 0; i < steps; ++i) losses.push_back(step());
  return losses;
}

double loss_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    double r = std::fabs(a[i] - b[i]) / std::max(std::fabs(b[i]), 1e-3);
    if (worse(r, d)) d = r;
  }
  return d;
}

struct ThreadsResult {
  bool measured = false;
  bench::Timing one, two;
  double max_abs_diff = 0;  // params after the same steps, threads 1 vs 2 (documented bit-identical)
};

// W4 with SessionOptions::threads 1 and 2, from the same state, interleaved.
ThreadsResult measure_threads(const gradc::Model& m, const NamedTensors& inputs, const Options& o) {
  ThreadsResult r;
  gradc::SessionOptions two = one_thread();
  two.threads = 2;
  gradc::Session s1(m, one_thread()), s2(m, two);
  for (int i = 0; i < 2; ++i) s1.train_step(inputs), s2.train_step(inputs);
  for (const auto& [name, t] : s1.params()) {
    const Tensor* u = gradc::find_tensor(s2.params(), name);
    for (int64_t i = 0; i < t.numel(); ++i)
      r.max_abs_diff = std::max(r.max_abs_diff, double(std::fabs(t.data<float>()[i] - u->data<float>()[i])));
  }
  NamedTensors c1 = s1.checkpoint(), c2 = s2.checkpoint();
  std::vector<bench::Runner> runners = {
      {"threads=1", [&] { s1.train_step(inputs); }, [&] { s1.restore(c1); }},
      {"threads=2", [&] { s2.train_step(inputs); }, [&] { s2.restore(c2); }},
  };
  std::vector<bench::Timing> t = bench::time_interleaved(runners, timing_options(o));
  r.measured = true;
  r.one = t[0];
  r.two = t[1];
  return r;
}

Result run_workload(const Workload& w, const Options& o, ThreadsResult* threads) {
  Result res;
  res.id = w.id;
  res.name = w.name;
  res.target = w.target;
  res.vs_blas = w.vs_blas;
  const std::string path = o.models + "/" + w.file;
  const std::string text = read_file(path);

  auto t0 = Clock::now();
  gradc::Model m = compile_cold(path, text);
  Problem prob = w.make(m.info(), o.lr_scale);
  gradc::Session s(m, one_thread());
  NamedTensors start = s.checkpoint();  // params from the initializers, optimizer state at zero, step 0
  s.train_step(prob.inputs);            // generates train_step's code, then runs it once
  res.compile_ms = ms_since(t0);
  s.restore(start);

  // Correctness: the same steps from the same params on the same batch.
  const int steps = o.check_steps > 0 ? o.check_steps : w.check_steps;
  const double tol = o.tolerance * w.tolerance_factor;
  NamedTensors p0 = s.params();
  std::vector<double> lg = run_steps(steps, [&] { return s.train_step(prob.inputs); });
  const NamedTensors& want = s.params();
  std::unique_ptr<bench::Baseline> plain = prob.baseline(bench::Kind::Loops), blas = prob.baseline(bench::Kind::Blas);
  std::vector<bench::Buffer> init = to_buffers(p0);
  plain->set_params(init);
  blas->set_params(init);
  std::vector<double> lp = run_steps(steps, [&] { return plain->step(); });
  std::vector<double> lb = run_steps(steps, [&] { return blas->step(); });
  res.diff_plain = compare(plain->params(), want, p0);
  res.diff_blas = compare(blas->params(), want, p0);
  res.loss_diff = std::max(loss_diff(lp, lg), loss_diff(lb, lg));
  res.correct = res.diff_plain.rel <= tol && res.diff_blas.rel <= tol && res.loss_diff <= tol;
  std::cerr << fmt::format("{} {}: compiled in {:.1f} ms; after {} steps, params vs gradc: plain {:.2e} ({:.2e} abs), "
                           "openblas {:.2e} ({:.2e} abs) of the update; losses {:.2e}  {}\n",
                           w.id, w.name, res.compile_ms, steps, res.diff_plain.rel, res.diff_plain.max_abs,
                           res.diff_blas.rel, res.diff_blas.max_abs, res.loss_diff, res.correct ? "ok" : "MISMATCH");
  if (!res.correct) {
    std::cerr << fmt::format("  MISMATCH: tolerance {:.0e} (worst param: plain '{}', openblas '{}')\n", tol,
                             res.diff_plain.worst, res.diff_blas.worst);
    for (const Diff* d : {&res.diff_plain, &res.diff_blas})
      if (d->far > 0)
        std::cerr << fmt::format("  {} elements of '{}' off by more than 10 % of its largest update, e.g. {}\n", d->far,
                                 d->worst, d->example);
    for (int i = 0; i < steps; ++i)
      std::cerr << fmt::format("  step {} loss: gradc {:.9g}, plain {:.9g}, openblas {:.9g}\n", i + 1, lg[size_t(i)],
                               lp[size_t(i)], lb[size_t(i)]);
    // A third opinion on the first step: gradc's reference interpreter (in f64; slow for W4).
    NamedTensors ref = m.grad(prob.inputs, p0);
    std::cerr << fmt::format("  step 1 loss from gradc's reference interpreter (Model::grad): {:.9g}\n",
                             gradc::find_tensor(ref, "loss")->get(0));
  }

  // Timing, every sample from the state after the check steps.
  NamedTensors ck = s.checkpoint();
  plain->snapshot();
  blas->snapshot();
  std::vector<bench::Runner> runners = {
      {"gradc", [&] { s.train_step(prob.inputs); }, [&] { s.restore(ck); }},
      {"plain", [&] { plain->step(); }, [&] { plain->restore(); }},
      {"openblas", [&] { blas->step(); }, [&] { blas->restore(); }},
  };
  std::vector<bench::Timing> t = bench::time_interleaved(runners, timing_options(o));
  res.gradc = t[0];
  res.plain = t[1];
  res.blas = t[2];
  std::cerr << fmt::format("  gradc    {}\n  plain    {}\n  openblas {}\n", fmt_timing(res.gradc), fmt_timing(res.plain),
                           fmt_timing(res.blas));
  if (threads) *threads = measure_threads(m, prob.inputs, o);
  return res;
}

// ---- the GEMM line: gradc's C = A @ W (forward of bench/models/gemm.grad) vs cblas_sgemm ----

struct GemmResult {
  bool measured = false;
  int64_t M = 0, N = 0, K = 0;
  bench::Timing gradc, plain, blas;
  double diff = 0;  // max |C_gradc - C_blas| / max |C_blas|
  bool correct = true;
  double gflops(const bench::Timing& t) const { return 2.0 * double(M) * double(N) * double(K) / (t.median_ms * 1e6); }
};

GemmResult run_gemm(const Options& o) {
  GemmResult g;
  const std::string path = o.models + "/gemm.grad";
  gradc::Model m = compile_cold(path, read_file(path));
  gradc::ModelInfo info = m.info();
  g.M = dim(info, "M"), g.N = dim(info, "N"), g.K = dim(info, "K");
  gradc::Session s(m, one_thread());
  Rng r{5};
  NamedTensors in = {{"A", f32({g.M, g.K}, uniform(r, g.M * g.K, -1, 1))}};
  const float* A = in[0].second.data<float>();
  const float* W = gradc::find_tensor(s.params(), "W")->data<float>();
  std::vector<float> cb(size_t(g.M * g.N)), cp(size_t(g.M * g.N));
  NamedTensors out = s.forward(in);
  const float* cg = gradc::find_tensor(out, "out.C")->data<float>();
  bench::matmul(bench::Kind::Blas, int(g.M), int(g.N), int(g.K), A, W, cb.data());
  bench::matmul(bench::Kind::Loops, int(g.M), int(g.N), int(g.K), A, W, cp.data());
  double scale = 0, dg = 0, dp = 0;
  for (size_t i = 0; i < cb.size(); ++i) {
    scale = std::max(scale, double(std::fabs(cb[i])));
    if (worse(std::fabs(double(cg[i]) - cb[i]), dg)) dg = std::fabs(double(cg[i]) - cb[i]);
    if (worse(std::fabs(double(cp[i]) - cb[i]), dp)) dp = std::fabs(double(cp[i]) - cb[i]);
  }
  g.diff = (worse(dg, dp) ? dg : dp) / scale;
  g.correct = g.diff <= o.tolerance;
  std::vector<bench::Runner> runners = {
      {"gradc", [&] { s.forward(in); }, [] {}},
      {"plain", [&] { bench::matmul(bench::Kind::Loops, int(g.M), int(g.N), int(g.K), A, W, cp.data()); }, [] {}},
      {"openblas", [&] { bench::matmul(bench::Kind::Blas, int(g.M), int(g.N), int(g.K), A, W, cb.data()); }, [] {}},
  };
  std::vector<bench::Timing> t = bench::time_interleaved(runners, timing_options(o));
  g.gradc = t[0], g.plain = t[1], g.blas = t[2];
  g.measured = true;
  std::cerr << fmt::format("GEMM {}x{}x{}: C vs cblas_sgemm {:.2e} of max |C|  {}\n  gradc    {}\n  plain    {}\n  openblas {}\n",
                           g.M, g.K, g.N, g.diff, g.correct ? "ok" : "MISMATCH", fmt_timing(g.gradc),
                           fmt_timing(g.plain), fmt_timing(g.blas));
  return g;
}

// ---- W3's compile latency, first thing in the process ----

struct CompileResult {
  bool measured = false;
  double front_ms = 0, session_ms = 0, first_call_ms = 0, step_ms = 0, cold_ms = 0, cached_ms = 0;
};

CompileResult measure_compile(const Workload& w3, const Options& o) {
  CompileResult c;
  const std::string path = o.models + "/" + w3.file;
  const std::string src = fmt::format("# run_bench cold {}\n", Clock::now().time_since_epoch().count()) + read_file(path);
  auto t0 = Clock::now();
  gradc::Model m = gradc::Model::compile_source(src, path);
  c.front_ms = ms_since(t0);
  if (!m.ok()) throw std::runtime_error(fmt::format("{} does not compile:\n{}", path, gradc::render_all(m.diagnostics())));
  Problem prob = w3.make(m.info(), 1.0);
  auto t1 = Clock::now();
  gradc::Session s(m, one_thread());
  c.session_ms = ms_since(t1);
  auto t2 = Clock::now();
  s.train_step(prob.inputs);
  c.first_call_ms = ms_since(t2);
  c.cold_ms = ms_since(t0);
  std::vector<double> steps;
  for (int i = 0; i < 5; ++i) {
    auto a = Clock::now();
    s.train_step(prob.inputs);
    steps.push_back(ms_since(a));
  }
  std::sort(steps.begin(), steps.end());
  c.step_ms = steps[2];
  // The same source again while the first is alive: the compile cache answers.
  auto t3 = Clock::now();
  gradc::Model m2 = gradc::Model::compile_source(src, path);
  gradc::Session s2(m2, one_thread());
  s2.train_step(prob.inputs);
  c.cached_ms = ms_since(t3);
  c.measured = true;
  std::cerr << fmt::format("W3 compile: cold {:.1f} ms (front end {:.1f}, session {:.1f}, first train_step {:.1f} of "
                           "which one step ~{:.2f}); again from the cache {:.2f} ms\n",
                           c.cold_ms, c.front_ms, c.session_ms, c.first_call_ms, c.step_ms, c.cached_ms);
  return c;
}

// ---- output ----

std::string status(bool met) { return met ? "ok" : "MISSED"; }

void print_table(const std::vector<Result>& rs, const GemmResult& g, const ThreadsResult& th, const CompileResult& c,
                 const std::string& blas) {
  std::cout << "\ngradc benchmark suite: time per train_step, median of interleaved samples; ratios < 1 mean gradc is "
               "faster\n";
  std::cout << "(one thread; baselines: hand-written C++ -O3 -march=native, plain loops or loops + OpenBLAS: " << blas
            << ")\n\n";
  std::cout << fmt::format("{:<14} {:>11} {:>11} {:>11} {:>12} {:>11}  {:<18} {}\n", "workload", "gradc", "plain",
                           "openblas", "gradc/plain", "gradc/best", "target", "status");
  for (const Result& r : rs) {
    std::string target = fmt::format("<= {:.1f} vs {}", r.target, r.vs_blas ? "openblas" : "best");
    std::string st = !r.correct ? "WRONG" : status(r.ratio_target() <= r.target);
    std::cout << fmt::format("{:<14} {:>11} {:>11} {:>11} {:>12.2f} {:>11.2f}  {:<18} {}\n", r.id + " " + r.name,
                             fmt_time(r.gradc.median_ms), fmt_time(r.plain.median_ms), fmt_time(r.blas.median_ms),
                             r.ratio_plain(), r.ratio_best(), target, st);
  }
  if (g.measured) {
    double ratio = g.gflops(g.gradc) / g.gflops(g.blas);
    std::cout << fmt::format("\nGEMM {}x{}x{} (C = A @ W, forward): gradc {:.1f} GFLOP/s, plain loops {:.1f}, "
                             "cblas_sgemm {:.1f}; gradc/openblas {:.2f} (target >= 0.90) {}\n",
                             g.M, g.K, g.N, g.gflops(g.gradc), g.gflops(g.plain), g.gflops(g.blas), ratio,
                             !g.correct ? "WRONG" : status(ratio >= 0.9));
  }
  if (th.measured) {
    double sp = th.one.median_ms / th.two.median_ms;
    std::cout << fmt::format("W4 threads: 1 thread {}, 2 threads {}: speedup {:.2f} (target >= 1.70) {}; params after "
                             "2 steps differ by {:.2g}\n",
                             fmt_time(th.one.median_ms), fmt_time(th.two.median_ms), sp, status(sp >= 1.7),
                             th.max_abs_diff);
  }
  if (c.measured)
    std::cout << fmt::format("W3 compile latency: cold {:.1f} ms (target < 150) {}; from the cache {:.2f} ms (target "
                             "< 10) {}\n",
                             c.cold_ms, status(c.cold_ms < 150), c.cached_ms, status(c.cached_ms < 10));
}

std::string json_timing(const bench::Timing& t) {
  return fmt::format("{{\"median_ms\": {:.6g}, \"p10_ms\": {:.6g}, \"p90_ms\": {:.6g}, \"samples\": {}, \"steps_per_sample\": {}}}",
                     t.median_ms, t.p10_ms, t.p90_ms, t.samples, t.per);
}

void write_json(const std::string& file, const std::vector<Result>& rs, const GemmResult& g, const ThreadsResult& th,
                const CompileResult& c) {
  std::ofstream out(file);
  out << "{\n  \"workloads\": [\n";
  for (size_t i = 0; i < rs.size(); ++i) {
    const Result& r = rs[i];
    out << fmt::format("    {{\"id\": \"{}\", \"name\": \"{}\", \"compile_ms\": {:.6g}, \"correct\": {}, "
                       "\"diff_plain\": {:.3g}, \"diff_openblas\": {:.3g},\n     \"gradc\": {},\n     \"plain\": {},\n"
                       "     \"openblas\": {},\n     \"gradc_over_plain\": {:.4g}, \"gradc_over_best\": {:.4g}, "
                       "\"target\": {}, \"target_vs\": \"{}\"}}{}\n",
                       r.id, r.name, r.compile_ms, r.correct, r.diff_plain.rel, r.diff_blas.rel, json_timing(r.gradc),
                       json_timing(r.plain), json_timing(r.blas), r.ratio_plain(), r.ratio_best(), r.target,
                       r.vs_blas ? "openblas" : "best", i + 1 < rs.size() ? "," : "");
  }
  out << "  ]";
  if (g.measured)
    out << fmt::format(",\n  \"gemm\": {{\"M\": {}, \"K\": {}, \"N\": {}, \"gradc_gflops\": {:.4g}, \"plain_gflops\": {:.4g}, "
                       "\"openblas_gflops\": {:.4g}, \"diff\": {:.3g}}}",
                       g.M, g.K, g.N, g.gflops(g.gradc), g.gflops(g.plain), g.gflops(g.blas), g.diff);
  if (th.measured)
    out << fmt::format(",\n  \"w4_threads\": {{\"one\": {}, \"two\": {}, \"speedup\": {:.4g}}}", json_timing(th.one),
                       json_timing(th.two), th.one.median_ms / th.two.median_ms);
  if (c.measured)
    out << fmt::format(",\n  \"w3_compile\": {{\"cold_ms\": {:.6g}, \"front_end_ms\": {:.6g}, \"first_call_ms\": {:.6g}, "
                       "\"cached_ms\": {:.6g}}}",
                       c.cold_ms, c.front_ms, c.first_call_ms, c.cached_ms);
  out << "\n}\n";
  if (!out) throw std::runtime_error(fmt::format("cannot write '{}'", file));
}

const char* kUsage =
    "usage: run_bench [--quick] [--only W1,W3,...] [--seconds X] [--json FILE] [--models DIR] [--steps N] [--tolerance T]\n"
    "  --quick        short timing (a smoke test: correctness of every workload, rough numbers)\n"
    "  --only LIST    workloads to run (W1 W2 W3 W4, or their names; GEMM is measured with W4, compile latency with W3)\n"
    "  --seconds X    time each implementation for at least X seconds (default 1; --quick: 0.05)\n"
    "  --json FILE    also write the results as JSON\n"
    "  --models DIR   where the .grad files are (default: the source tree's bench/models)\n"
    "  --steps N      train steps compared between gradc and the baselines (default 5; W4 2)\n"
    "  --tolerance T  largest relative difference accepted (default 1e-4; W4 10x)\n"
    "  --baseline-lr-scale X  multiply the baselines' learning rate by X (tests that the check fails)\n";

int run(int argc, char** argv) {
  Options o;
  bool seconds_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--quick") o.quick = true;
    else if (a == "--seconds") o.seconds = std::stod(value()), seconds_given = true;
    else if (a == "--json") o.json = value();
    else if (a == "--models") o.models = value();
    else if (a == "--steps") o.check_steps = std::stoi(value());
    else if (a == "--tolerance") o.tolerance = std::stod(value());
    else if (a == "--baseline-lr-scale") o.lr_scale = std::stod(value());
    else if (a == "--only") {
      std::stringstream ss(value());
      for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) o.only.insert(item);
    } else if (a == "--help" || a == "-h") {
      std::cout << kUsage;
      return 0;
    } else throw std::invalid_argument("unknown option '" + a + "'");
  }
  if (o.quick && !seconds_given) o.seconds = 0.05;
  if (o.check_steps < 0 || !(o.seconds > 0)) throw std::invalid_argument("--steps and --seconds must be positive");
  std::vector<Workload> all = workloads();
  for (const std::string& name : o.only) {
    bool known = false;
    for (const Workload& w : all) known = known || name == w.id || name == w.name;
    if (!known) throw std::invalid_argument("--only: unknown workload '" + name + "'");
  }
  auto selected = [&](const Workload& w) { return o.only.empty() || o.only.count(w.id) || o.only.count(w.name); };

  bench::blas_single_thread();
  const std::string blas = bench::blas_config();
  CompileResult compile;
  if (selected(all[2])) compile = measure_compile(all[2], o);  // first: nothing compiled in this process yet
  std::vector<Result> results;
  ThreadsResult threads;
  GemmResult gemm;
  for (const Workload& w : all) {
    if (!selected(w)) continue;
    results.push_back(run_workload(w, o, w.id == "W4" ? &threads : nullptr));
    if (w.id == "W4") gemm = run_gemm(o);
  }
  print_table(results, gemm, threads, compile, blas);
  if (!o.json.empty()) write_json(o.json, results, gemm, threads, compile);
  bool ok = gemm.correct;
  for (const Result& r : results) ok = ok && r.correct;
  if (!ok) {
    std::cout << "\nFAILED: gradc and a hand-written baseline compute different steps (details above); the timings of "
                 "that workload compare different computations\n";
    return 1;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::invalid_argument& e) {
    std::cerr << "run_bench: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "run_bench: " << e.what() << "\n";
    return 1;
  }
}
