// The optimizers of SPEC 2.5 against the SPEC's own update formulas, written
// out independently below in plain C++ double.
//
// The model has two params whose gradient is known in closed form:
//
//   param w : f64[3]      input x : f64[3]
//   param b : f64[2]      input y : f64[2]
//   loss sum(w * x) + 0.5 * sum(w * w * x) + 0.5 * sum(y * b * b) + sum(b)
//
// so that g_w = x + w*x and g_b = y*b + 1. Every optimizer and option
// combination runs 6 train steps on both back ends (JIT and interpreter), with
// different inputs at every step and a learning rate given at run time at
// steps 2, 4 and 5 (the file's lr at the others). After every step the test
// compares the returned loss (its value before the update), step(), every
// param and every optimizer state slot (with PyTorch's names, and no others)
// with the hand-computed values: to 1e-12 of each tensor's largest magnitude
// in f64, 1e-5 in f32. A resume test saves the session midway and continues
// in a new session on the other back end (Session::save / load).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "gradc/gradc.h"
#include "gradc/session.h"
#include "gradc/tensor.h"

using namespace gradc;

namespace {

using Vec = std::vector<double>;

// ---------------------------------------------------------------------------
// The configurations: optimizer name and options as written in the file.

struct Config {
  std::string name;                                       // sgd, adam, ...; "" = no optimizer line
  std::vector<std::pair<std::string, std::string>> opts;  // KEY = VALUE, as written
};

std::string label(const Config& c) {
  if (c.name.empty()) return "(no optimizer line)";
  std::string s = c.name + "(";
  for (size_t i = 0; i < c.opts.size(); ++i) s += (i ? ", " : "") + c.opts[i].first + "=" + c.opts[i].second;
  return s + ")";
}

// SPEC 2.5's defaults (the table), written out here independently.
std::map<std::string, double> spec_defaults(const std::string& name) {
  if (name == "sgd") return {{"lr", 0.01}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0}, {"nesterov", 0}};
  if (name == "adam") return {{"lr", 0.001}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0}};
  if (name == "adamw") return {{"lr", 0.001}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0.01}};
  if (name == "rmsprop")
    return {{"lr", 0.01}, {"alpha", 0.99}, {"eps", 1e-8}, {"weight_decay", 0}, {"momentum", 0}, {"centered", 0}};
  if (name == "adagrad")
    return {{"lr", 0.01}, {"lr_decay", 0}, {"weight_decay", 0}, {"initial_accumulator_value", 0}, {"eps", 1e-10}};
  FAIL("unknown optimizer " << name);
  return {};
}

struct Hyper {
  std::string name;
  std::map<std::string, double> h;
  double clip = -1;  // clip_grad_norm, < 0: none
  double operator[](const std::string& k) const {
    auto it = h.find(k);
    if (it == h.end()) FAIL("no hyperparameter " << k);
    return it->second;
  }
};

Hyper hyper(const Config& c) {
  Hyper r;
  r.name = c.name.empty() ? "sgd" : c.name;
  r.h = spec_defaults(r.name);
  for (const auto& [k, v] : c.opts) {
    double x = v == "true" ? 1.0 : v == "false" ? 0.0 : std::stod(v);
    if (k == "clip_grad_norm") {
      r.clip = x;
    } else {
      REQUIRE(r.h.count(k));
      r.h[k] = x;
    }
  }
  return r;
}

// PyTorch's state slot names for one param (besides `step`).
std::vector<std::string> torch_slots(const Hyper& hp) {
  if (hp.name == "sgd") return hp["momentum"] != 0 ? std::vector<std::string>{"momentum_buffer"} : std::vector<std::string>{};
  if (hp.name == "adam" || hp.name == "adamw") return {"exp_avg", "exp_avg_sq"};
  if (hp.name == "rmsprop") {
    std::vector<std::string> s{"square_avg"};
    if (hp["momentum"] != 0) s.push_back("momentum_buffer");
    if (hp["centered"] != 0) s.push_back("grad_avg");
    return s;
  }
  if (hp.name == "adagrad") return {"sum"};
  FAIL("unknown optimizer " << hp.name);
  return {};
}

// ---------------------------------------------------------------------------
// The reference: SPEC 2.5 step by step, in double.

struct RefParam {
  std::string name;
  Vec p;
  std::map<std::string, Vec> slots;
};

struct Ref {
  Hyper hp;
  std::vector<RefParam> params;  // w, b
  int t = 0;

  Ref(const Hyper& h, const Vec& w, const Vec& b) : hp(h) {
    params = {{"w", w, {}}, {"b", b, {}}};
    for (RefParam& rp : params)
      for (const std::string& s : torch_slots(hp))
        rp.slots[s] = Vec(rp.p.size(), hp.name == "adagrad" && s == "sum" ? hp["initial_accumulator_value"] : 0.0);
  }

  // loss and gradients of the model at the current params
  double loss(const Vec& x, const Vec& y) const {
    const Vec &w = params[0].p, &b = params[1].p;
    double l1 = 0, l2 = 0, l3 = 0, l4 = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      l1 += w[i] * x[i];
      l2 += w[i] * w[i] * x[i];
    }
    for (size_t i = 0; i < b.size(); ++i) {
      l3 += y[i] * b[i] * b[i];
      l4 += b[i];
    }
    return l1 + 0.5 * l2 + 0.5 * l3 + l4;
  }
  std::vector<Vec> grads(const Vec& x, const Vec& y) const {
    const Vec &w = params[0].p, &b = params[1].p;
    Vec gw(w.size()), gb(b.size());
    for (size_t i = 0; i < w.size(); ++i) gw[i] = x[i] + w[i] * x[i];
    for (size_t i = 0; i < b.size(); ++i) gb[i] = y[i] * b[i] + 1.0;
    return {gw, gb};
  }

  // One step; returns the loss before it and (through *norm) the gradient norm.
  double step(const Vec& x, const Vec& y, double lr, double* norm = nullptr) {
    double l = loss(x, y);
    std::vector<Vec> g = grads(x, y);
    ++t;
    double sq = 0;
    for (const Vec& gi : g)
      for (double v : gi) sq += v * v;
    double n = std::sqrt(sq);
    if (norm) *norm = n;
    if (hp.clip >= 0) {
      double coef = std::min(1.0, hp.clip / (n + 1e-6));
      for (Vec& gi : g)
        for (double& v : gi) v *= coef;
    }
    for (size_t k = 0; k < params.size(); ++k) update(params[k], g[k], lr);
    return l;
  }

  void update(RefParam& rp, const Vec& grad, double lr) {
    const std::string& name = hp.name;
    double wd = hp["weight_decay"];
    Vec& p = rp.p;
    for (size_t i = 0; i < p.size(); ++i) {
      double g = grad[i];
      if (name == "sgd") {
        g += wd * p[i];
        double mom = hp["momentum"];
        if (mom != 0) {
          double& buf = rp.slots["momentum_buffer"][i];
          buf = t == 1 ? g : mom * buf + (1 - hp["dampening"]) * g;
          g = hp["nesterov"] != 0 ? g + mom * buf : buf;
        }
        p[i] -= lr * g;
      } else if (name == "adam" || name == "adamw") {
        double b1 = hp["beta1"], b2 = hp["beta2"], eps = hp["eps"];
        if (name == "adamw") p[i] *= 1 - lr * wd;
        else g += wd * p[i];
        double& m = rp.slots["exp_avg"][i];
        double& v = rp.slots["exp_avg_sq"][i];
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        p[i] -= (lr / (1 - std::pow(b1, t))) * m / (std::sqrt(v) / std::sqrt(1 - std::pow(b2, t)) + eps);
      } else if (name == "rmsprop") {
        double alpha = hp["alpha"], eps = hp["eps"], mom = hp["momentum"];
        g += wd * p[i];
        double& s = rp.slots["square_avg"][i];
        s = alpha * s + (1 - alpha) * g * g;
        double d;
        if (hp["centered"] != 0) {
          double& a = rp.slots["grad_avg"][i];
          a = alpha * a + (1 - alpha) * g;
          d = std::sqrt(s - a * a) + eps;
        } else {
          d = std::sqrt(s) + eps;
        }
        if (mom != 0) {
          double& buf = rp.slots["momentum_buffer"][i];
          buf = mom * buf + g / d;
          p[i] -= lr * buf;
        } else {
          p[i] -= lr * g / d;
        }
      } else if (name == "adagrad") {
        g += wd * p[i];
        double clr = lr / (1 + (t - 1) * hp["lr_decay"]);
        double& sum = rp.slots["sum"][i];
        sum += g * g;
        p[i] -= clr * g / (std::sqrt(sum) + hp["eps"]);
      } else {
        FAIL("unknown optimizer " << name);
      }
    }
  }
};

// ---------------------------------------------------------------------------
// Running gradc and comparing.

std::string model_source(const Config& c, const char* dt) {
  std::ostringstream s;
  s << "model formulas\n"
    << "param w : " << dt << "[3]\n"
    << "param b : " << dt << "[2]\n"
    << "input x : " << dt << "[3]\n"
    << "input y : " << dt << "[2]\n"
    << "loss sum(w * x) + 0.5 * sum(w * w * x) + 0.5 * sum(y * b * b) + sum(b)\n";
  if (!c.name.empty()) {
    s << "optimizer " << c.name << "(";
    for (size_t i = 0; i < c.opts.size(); ++i) s << (i ? ", " : "") << c.opts[i].first << " = " << c.opts[i].second;
    s << ")\n";
  }
  return s.str();
}

Tensor make(DType dt, const Vec& v) {
  Tensor t(dt, {static_cast<int64_t>(v.size())});
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

// Rounds to the dtype (so that the reference starts from exactly gradc's values).
Vec rounded(DType dt, const Vec& v) {
  Vec r = v;
  if (dt == DType::F32)
    for (double& x : r) x = static_cast<float>(x);
  return r;
}

// |got - want| <= tol * max |want| over the tensor, element by element.
void check_tensor(const std::string& what, const Tensor* got, const Vec& want, DType dt, double tol) {
  INFO("tensor " << what);
  REQUIRE(got != nullptr);
  REQUIRE(got->dtype() == dt);
  REQUIRE(got->shape() == std::vector<int64_t>{static_cast<int64_t>(want.size())});
  double scale = 0;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < want.size(); ++i) {
    double g = got->get(static_cast<int64_t>(i));
    INFO("element " << i << ": gradc " << g << ", formula " << want[i] << ", difference " << std::fabs(g - want[i])
                    << ", allowed " << tol * scale);
    CHECK(std::isfinite(g));
    CHECK(std::fabs(g - want[i]) <= tol * scale);
  }
}

// The inputs of step t (1-based): they change at every step.
Vec inputs_x(int t) { return {0.7 + 0.05 * t, -1.1 + 0.03 * t, 1.9 - 0.02 * t}; }
Vec inputs_y(int t) { return {1.3 - 0.04 * t, 0.6 + 0.07 * t}; }

// The learning rate given at run time at step t, as a multiple of the file's
// lr; 0: none given (train_step(inputs), the file's lr).
double lr_factor(int t) {
  switch (t) {
    case 2: return 0.5;
    case 4: return 2.0;
    case 5: return 0.1;
    default: return 0.0;
  }
}

const Vec kW0 = {0.3, -0.45, 0.8};
const Vec kB0 = {-0.25, 0.6};

const char* backend_name(Backend b) { return b == Backend::Jit ? "jit" : "interpreter"; }

// Runs the 6 steps of `c` on `backend`. With resume_after = k > 0, the session
// is saved after step k (Session::save) and the remaining steps run in a new
// session on the other back end that loads the file (Session::load): the
// optimizer state and step count must carry over exactly.
void run_config(const Config& c, DType dt, Backend backend, int resume_after = 0) {
  const char* dts = dt == DType::F64 ? "f64" : "f32";
  const double tol = dt == DType::F64 ? 1e-12 : 1e-5;
  INFO("optimizer " << label(c) << ", " << dts << ", backend " << backend_name(backend));
  std::string src = model_source(c, dts);
  Model model = Model::compile_source(src, "m.grad");
  INFO(src << render_all(model.diagnostics()));
  REQUIRE(model.ok());

  Hyper hp = hyper(c);
  Ref ref(hp, rounded(dt, kW0), rounded(dt, kB0));

  auto session = std::make_unique<Session>(model, SessionOptions{backend, 0});
  Session& s0 = *session;
  s0.set_params({{"w", make(dt, kW0)}, {"b", make(dt, kB0)}});
  CHECK(s0.step() == 0);

  // The state slots: exactly PyTorch's, at their initial values.
  std::set<std::string> want_names;
  for (const std::string& slot : torch_slots(hp))
    for (const char* p : {"w", "b"}) want_names.insert("opt." + slot + "." + p);
  std::set<std::string> got_names;
  for (const auto& [name, t] : s0.optimizer_state()) got_names.insert(name);
  CHECK(got_names == want_names);
  for (const RefParam& rp : ref.params)
    for (const auto& [slot, v] : rp.slots)
      check_tensor("initial opt." + slot + "." + rp.name, find_tensor(s0.optimizer_state(), "opt." + slot + "." + rp.name),
                   v, dt, tol);

  bool clipped = false;
  std::string running_on = backend_name(backend);
  for (int t = 1; t <= 6; ++t) {
    INFO("step " << t);
    if (resume_after > 0 && t == resume_after + 1) {
      Backend other = backend == Backend::Jit ? Backend::Interpreter : Backend::Jit;
      std::string path = (std::filesystem::temp_directory_path() /
                          ("gradc_optim_" + std::to_string(::getpid()) + "_resume.safetensors"))
                             .string();
      session->save(path);
      session = std::make_unique<Session>(model, SessionOptions{other, 0});
      session->load(path);
      std::filesystem::remove(path);
      running_on = std::string(backend_name(other)) + ", resumed from the checkpoint saved after step " +
                   std::to_string(resume_after);
      CHECK(session->step() == resume_after);
    }
    INFO("session: " << running_on);
    Session& s = *session;
    Vec x = rounded(dt, inputs_x(t)), y = rounded(dt, inputs_y(t));
    NamedTensors in{{"x", make(dt, x)}, {"y", make(dt, y)}};
    double f = lr_factor(t);
    double lr = f == 0 ? hp["lr"] : f * hp["lr"];
    double norm = 0;
    double want_loss = ref.step(x, y, lr, &norm);
    if (hp.clip >= 0 && norm > hp.clip) clipped = true;
    double got_loss = f == 0 ? s.train_step(in) : s.train_step(in, lr);
    INFO("loss: gradc " << got_loss << ", formula " << want_loss);
    CHECK(std::fabs(got_loss - want_loss) <= tol * std::max(1.0, std::fabs(want_loss)));
    CHECK(s.step() == t);
    for (const RefParam& rp : ref.params) {
      check_tensor(rp.name, find_tensor(s.params(), rp.name), rp.p, dt, tol);
      for (const auto& [slot, v] : rp.slots) {
        std::string name = "opt." + slot + "." + rp.name;
        check_tensor(name, find_tensor(s.optimizer_state(), name), v, dt, tol);
      }
    }
    // The checkpoint carries the same, plus opt.step (i32).
    NamedTensors ck = s.checkpoint();
    const Tensor* st = find_tensor(ck, "opt.step");
    REQUIRE(st != nullptr);
    CHECK(st->dtype() == DType::I32);
    CHECK(st->numel() == 1);
    CHECK(st->get(0) == t);
    for (const auto& [name, tensor] : s.optimizer_state()) CHECK(find_tensor(ck, name) != nullptr);
  }
  // A clip_grad_norm below 4 must actually clip (the norm is about 3.9 at
  // step 1); the one of 10 never does.
  if (hp.clip >= 0) CHECK(clipped == (hp.clip < 4));
}

void run_all(const std::vector<Config>& configs, DType dt = DType::F64) {
  for (const Config& c : configs)
    for (Backend b : {Backend::Jit, Backend::Interpreter}) run_config(c, dt, b);
}

}  // namespace

TEST_CASE("sgd follows the SPEC 2.5 formulas (f64)", "[optim][sgd]") {
  run_all({
      {"", {}},  // the default optimizer: sgd(lr = 0.01)
      {"sgd", {}},
      {"sgd", {{"lr", "0.1"}}},
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}}},
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}, {"dampening", "0.3"}}},
      {"sgd", {{"lr", "0.05"}, {"momentum", "0.8"}, {"nesterov", "true"}}},
      {"sgd", {{"lr", "0.05"}, {"momentum", "0.7"}, {"nesterov", "1"}, {"weight_decay", "0.2"}}},
      {"sgd", {{"lr", "0.1"}, {"weight_decay", "0.3"}}},
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.6"}, {"dampening", "0.5"}, {"weight_decay", "0.1"}, {"nesterov", "false"}}},
  });
}

TEST_CASE("adam follows the SPEC 2.5 formulas (f64)", "[optim][adam]") {
  run_all({
      {"adam", {}},
      {"adam", {{"lr", "0.1"}}},
      {"adam", {{"lr", "0.1"}, {"beta1", "0.8"}, {"beta2", "0.95"}, {"eps", "1e-3"}}},
      {"adam", {{"lr", "0.1"}, {"weight_decay", "0.1"}}},
      {"adam", {{"lr", "0.05"}, {"beta1", "0.5"}, {"beta2", "0.9"}, {"eps", "1e-6"}, {"weight_decay", "0.3"}}},
  });
}

TEST_CASE("adamw follows the SPEC 2.5 formulas (f64)", "[optim][adamw]") {
  run_all({
      {"adamw", {}},
      {"adamw", {{"lr", "0.1"}}},  // weight_decay 0.01 by default
      {"adamw", {{"lr", "0.1"}, {"weight_decay", "0.2"}, {"beta1", "0.85"}, {"beta2", "0.99"}, {"eps", "1e-4"}}},
      {"adamw", {{"lr", "0.1"}, {"weight_decay", "0"}}},
  });
}

TEST_CASE("rmsprop follows the SPEC 2.5 formulas (f64)", "[optim][rmsprop]") {
  run_all({
      {"rmsprop", {}},
      {"rmsprop", {{"lr", "0.02"}, {"alpha", "0.9"}, {"eps", "1e-4"}}},
      {"rmsprop", {{"lr", "0.01"}, {"momentum", "0.9"}}},
      {"rmsprop", {{"lr", "0.01"}, {"centered", "true"}}},
      {"rmsprop", {{"lr", "0.01"}, {"centered", "1"}, {"momentum", "0.5"}, {"alpha", "0.8"}}},
      {"rmsprop", {{"lr", "0.01"}, {"weight_decay", "0.1"}}},
      {"rmsprop", {{"lr", "0.01"}, {"weight_decay", "0.2"}, {"momentum", "0.3"}, {"centered", "true"}, {"eps", "1e-3"}}},
  });
}

TEST_CASE("adagrad follows the SPEC 2.5 formulas (f64)", "[optim][adagrad]") {
  run_all({
      {"adagrad", {}},
      {"adagrad", {{"lr", "0.1"}, {"lr_decay", "0.5"}}},
      {"adagrad", {{"lr", "0.1"}, {"initial_accumulator_value", "0.5"}}},
      {"adagrad", {{"lr", "0.1"}, {"weight_decay", "0.1"}, {"eps", "1e-3"}}},
      {"adagrad",
       {{"lr", "0.2"}, {"lr_decay", "0.1"}, {"initial_accumulator_value", "0.25"}, {"weight_decay", "0.05"}}},
  });
}

TEST_CASE("clip_grad_norm follows the SPEC 2.5 formula (f64)", "[optim][clip]") {
  // The gradient norm is about 3.9 at step 1, so every max below 4 clips
  // (checked); the last one (10) never clips.
  run_all({
      {"sgd", {{"lr", "0.1"}, {"clip_grad_norm", "0.5"}}},
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}, {"nesterov", "true"}, {"clip_grad_norm", "1"}}},
      {"adam", {{"lr", "0.1"}, {"clip_grad_norm", "0.1"}}},
      {"adam", {{"lr", "0.1"}, {"weight_decay", "0.1"}, {"clip_grad_norm", "2"}}},
      {"adamw", {{"lr", "0.1"}, {"clip_grad_norm", "0.3"}}},
      {"rmsprop", {{"lr", "0.01"}, {"centered", "true"}, {"clip_grad_norm", "0.2"}}},
      {"adagrad", {{"lr", "0.1"}, {"lr_decay", "0.2"}, {"clip_grad_norm", "0.4"}}},
      {"sgd", {{"lr", "0.1"}, {"clip_grad_norm", "10"}}},
  });
}

TEST_CASE("optimizers in f32 follow the SPEC 2.5 formulas to 1e-5", "[optim][f32]") {
  run_all(
      {
          {"sgd", {{"lr", "0.05"}, {"momentum", "0.8"}, {"nesterov", "true"}, {"weight_decay", "0.1"}}},
          {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}, {"dampening", "0.3"}, {"clip_grad_norm", "0.5"}}},
          {"adam", {{"lr", "0.1"}, {"weight_decay", "0.1"}, {"clip_grad_norm", "1"}}},
          {"adamw", {{"lr", "0.1"}, {"weight_decay", "0.2"}}},
          {"rmsprop", {{"lr", "0.01"}, {"centered", "true"}, {"momentum", "0.5"}, {"weight_decay", "0.1"}}},
          {"adagrad", {{"lr", "0.1"}, {"lr_decay", "0.3"}, {"initial_accumulator_value", "0.1"}}},
      },
      DType::F32);
}

TEST_CASE("optimizer state and step survive a checkpoint (save, load on the other back end)", "[optim][resume]") {
  std::vector<Config> configs = {
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}, {"dampening", "0.3"}}},
      {"sgd", {{"lr", "0.1"}, {"momentum", "0.9"}, {"nesterov", "true"}, {"weight_decay", "0.1"}}},
      {"adam", {{"lr", "0.1"}, {"weight_decay", "0.1"}, {"clip_grad_norm", "2"}}},
      {"adamw", {{"lr", "0.1"}, {"weight_decay", "0.2"}}},
      {"rmsprop", {{"lr", "0.01"}, {"centered", "true"}, {"momentum", "0.5"}}},
      {"adagrad", {{"lr", "0.1"}, {"lr_decay", "0.5"}, {"initial_accumulator_value", "0.3"}}},
  };
  for (const Config& c : configs)
    for (Backend b : {Backend::Jit, Backend::Interpreter})
      for (int k : {1, 3}) run_config(c, DType::F64, b, k);
}

// The checks themselves can fail: a reference with a deliberately wrong
// formula (adam without bias correction) must disagree with gradc.
TEST_CASE("the formula comparison detects a wrong update", "[optim][self]") {
  Config c{"adam", {{"lr", "0.1"}}};
  Model model = Model::compile_source(model_source(c, "f64"), "m.grad");
  REQUIRE(model.ok());
  Session s(model, {Backend::Interpreter, 0});
  s.set_params({{"w", make(DType::F64, kW0)}, {"b", make(DType::F64, kB0)}});
  s.train_step({{"x", make(DType::F64, inputs_x(1))}, {"y", make(DType::F64, inputs_y(1))}});
  // Without bias correction, step 1 moves w by lr * m / (sqrt(v) + eps) with
  // m = 0.1 g, sqrt(v) = sqrt(0.001) |g|: about 0.316 lr instead of lr.
  Vec g = {inputs_x(1)[0] * (1 + kW0[0])};
  double wrong = kW0[0] - 0.1 * (0.1 * g[0]) / (std::sqrt(0.001) * std::fabs(g[0]) + 1e-8);
  double right = kW0[0] - 0.1 * (g[0] > 0 ? 1 : -1);
  const Tensor* w = find_tensor(s.params(), "w");
  REQUIRE(w != nullptr);
  CHECK(std::fabs(w->get(0) - right) < 1e-6);
  CHECK(std::fabs(w->get(0) - wrong) > 1e-3);
}
