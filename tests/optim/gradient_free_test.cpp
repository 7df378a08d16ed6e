// The gradient-free optimizers of SPEC 2.5, genetic and es, against the
// SPEC's description of one step written out independently below in plain
// C++ double, with the random numbers drawn as gradient_free.h documents
// them (Philox streams from kOptimizerStream, runtime/philox.h; Box-Muller
// normals), on the JIT and on the interpreter.
//
// The model is formulas_test.cpp's, whose loss is known in closed form:
//
//   loss sum(w * x) + 0.5 * sum(w * w * x) + 0.5 * sum(y * b * b) + sum(b)
//
// Each test runs 4 train steps with inputs that change at every step and
// compares the returned loss, the params and every state tensor (the
// population and the fitness of genetic) with the reference after every step.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <numbers>
#include <string>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/session.h"
#include "gradc/tensor.h"
#include "runtime/philox.h"

using namespace gradc;

namespace {

using Vec = std::vector<double>;
constexpr uint32_t kFirstStream = 0x80000000u;  // gradient_free.h's kOptimizerStream
constexpr uint64_t kSeed = 0x1234'5678'9abcULL;

Vec inputs_x(int t) { return {0.7 + 0.05 * t, -1.1 + 0.03 * t, 1.9 - 0.02 * t}; }
Vec inputs_y(int t) { return {1.3 - 0.04 * t, 0.6 + 0.07 * t}; }

double loss_of(const Vec& w, const Vec& b, int t) {
  Vec x = inputs_x(t), y = inputs_y(t);
  double l = 0;
  for (int i = 0; i < 3; ++i) l += w[i] * x[i] + 0.5 * w[i] * w[i] * x[i];
  for (int i = 0; i < 2; ++i) l += 0.5 * y[i] * b[i] * b[i] + b[i];
  return l;
}

std::string source(const std::string& optimizer) {
  return "model gradient_free\n"
         "param w : f64[3]\n"
         "param b : f64[2]\n"
         "input x : f64[3]\n"
         "input y : f64[2]\n"
         "loss sum(w * x) + 0.5 * sum(w * w * x) + 0.5 * sum(y * b * b) + sum(b)\n"
         "optimizer " + optimizer + "\n";
}

Tensor make(const Vec& v, std::vector<int64_t> shape = {}) {
  if (shape.empty()) shape = {static_cast<int64_t>(v.size())};
  Tensor t(DType::F64, shape);
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

// The draws of one stream at step t.
double uniform(uint32_t stream, int t, uint64_t i) { return random_uniform(kSeed, static_cast<uint32_t>(t), stream, i); }
double normal(uint32_t stream, int t, uint64_t i) {
  double u1 = uniform(stream, t, i), u2 = uniform(stream + 1, t, i);
  return std::sqrt(-2 * std::log(1 - u1)) * std::cos(2 * std::numbers::pi * u2);
}

void check(const std::string& what, const Tensor* got, const Vec& want, double tol = 1e-12) {
  INFO(what);
  REQUIRE(got != nullptr);
  REQUIRE(got->numel() == static_cast<int64_t>(want.size()));
  double scale = 1e-300;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < want.size(); ++i) {
    INFO("element " << i << ": gradc " << got->get(static_cast<int64_t>(i)) << ", reference " << want[i]);
    CHECK(std::fabs(got->get(static_cast<int64_t>(i)) - want[i]) <= tol * scale);
  }
}

const Vec kW0 = {0.3, -0.45, 0.8};
const Vec kB0 = {-0.25, 0.6};

Session start(const Model& m, Backend backend) {
  Session s(m, {backend, kSeed});
  s.set_params({{"w", make(kW0)}, {"b", make(kB0)}});
  return s;
}

double step(Session& s, int t, double lr = 0) {
  NamedTensors in{{"x", make(inputs_x(t))}, {"y", make(inputs_y(t))}};
  return lr > 0 ? s.train_step(in, lr) : s.train_step(in);
}

}  // namespace

TEST_CASE("es: one step is the antithetic estimate of SPEC 2.5 and an SGD step", "[gradient_free]") {
  const int n = 5;
  const double sigma = 0.1, file_lr = 0.05;
  Model model = Model::compile_source(source("es(population = 5, sigma = 0.1, lr = 0.05)"), "m.grad");
  INFO(render_all(model.diagnostics()));
  REQUIRE(model.ok());
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s = start(model, backend);
    CHECK(s.optimizer_state().empty());  // es keeps no state beyond the step counter
    Vec w = kW0, b = kB0;
    for (int t = 1; t <= 4; ++t) {
      INFO("step " << t);
      double lr = t == 3 ? 0.2 : file_lr;  // a run-time rate at step 3
      // e_i for w from streams first, first+1; for b from first+2, first+3 (param order).
      Vec ew(n * 3), eb(n * 2);
      for (size_t i = 0; i < ew.size(); ++i) ew[i] = normal(kFirstStream, t, i);
      for (size_t i = 0; i < eb.size(); ++i) eb[i] = normal(kFirstStream + 2, t, i);
      Vec gw(3, 0.0), gb(2, 0.0);
      for (int k = 0; k < n; ++k) {
        Vec wu(3), wd(3), bu(2), bd(2);
        for (int j = 0; j < 3; ++j) wu[j] = w[j] + sigma * ew[k * 3 + j], wd[j] = w[j] - sigma * ew[k * 3 + j];
        for (int j = 0; j < 2; ++j) bu[j] = b[j] + sigma * eb[k * 2 + j], bd[j] = b[j] - sigma * eb[k * 2 + j];
        double d = loss_of(wu, bu, t) - loss_of(wd, bd, t);
        for (int j = 0; j < 3; ++j) gw[j] += d * ew[k * 3 + j] / (2 * sigma * n);
        for (int j = 0; j < 2; ++j) gb[j] += d * eb[k * 2 + j] / (2 * sigma * n);
      }
      double want_loss = loss_of(w, b, t);
      for (int j = 0; j < 3; ++j) w[j] -= lr * gw[j];
      for (int j = 0; j < 2; ++j) b[j] -= lr * gb[j];
      double got = step(s, t, t == 3 ? lr : 0);
      CHECK(std::fabs(got - want_loss) <= 1e-12 * std::fabs(want_loss));
      check("w", find_tensor(s.params(), "w"), w);
      check("b", find_tensor(s.params(), "b"), b);
      CHECK(s.step() == t);
    }
  }
}

// The genetic algorithm's step, as SPEC 2.5 words it.
struct Genetic {
  int P, E, T;
  double std_dev, rate, crossover;
  std::vector<Vec> pw, pb;  // the population, per param: P rows
  Vec fitness;

  // Streams in the order gradient_free.cpp draws them: the initial noise of
  // each param (2), the two tournaments (1 each), then per param crossover
  // (1), mutation (1) and its noise (2).
  static constexpr uint32_t kInitW = kFirstStream, kInitB = kFirstStream + 2, kFirstTour = kFirstStream + 4,
                            kSecondTour = kFirstStream + 5, kW = kFirstStream + 6, kB = kFirstStream + 10;

  // Returns the loss at (w, b) before the step; updates w and b to the best member.
  double step(Vec& w, Vec& b, int t) {
    double before = loss_of(w, b, t);
    if (t == 1) {
      pw.assign(P, w), pb.assign(P, b);
      for (int r = 1; r < P; ++r) {
        for (int j = 0; j < 3; ++j) pw[r][j] += std_dev * normal(kInitW, t, (r - 1) * 3 + j);
        for (int j = 0; j < 2; ++j) pb[r][j] += std_dev * normal(kInitB, t, (r - 1) * 2 + j);
      }
    }
    fitness.assign(P, 0);
    for (int r = 0; r < P; ++r) fitness[r] = loss_of(pw[r], pb[r], t);
    std::vector<int> order(P);
    for (int r = 0; r < P; ++r) order[r] = r;
    std::stable_sort(order.begin(), order.end(), [&](int a, int c) { return fitness[a] < fitness[c]; });
    const int C = P - E;
    auto tournament = [&](uint32_t stream, int c) {
      int best = -1;
      for (int k = 0; k < T; ++k) {
        int drawn = static_cast<int>(std::floor(uniform(stream, t, static_cast<uint64_t>(c * T + k)) * P));
        if (best < 0 || fitness[drawn] < fitness[best]) best = drawn;
      }
      return best;
    };
    std::vector<Vec> nw, nb;
    for (int e = 0; e < E; ++e) nw.push_back(pw[order[e]]), nb.push_back(pb[order[e]]);
    for (int c = 0; c < C; ++c) {
      int first = tournament(kFirstTour, c), second = tournament(kSecondTour, c);
      auto child = [&](const std::vector<Vec>& pop, uint32_t streams, int N) {
        Vec out(N);
        for (int j = 0; j < N; ++j) {
          uint64_t i = static_cast<uint64_t>(c * N + j);
          out[j] = uniform(streams, t, i) < crossover ? pop[second][j] : pop[first][j];
          if (uniform(streams + 1, t, i) < rate) out[j] += std_dev * normal(streams + 2, t, i);
        }
        return out;
      };
      nw.push_back(child(pw, kW, 3)), nb.push_back(child(pb, kB, 2));
    }
    w = pw[order[0]], b = pb[order[0]];
    pw = nw, pb = nb;
    return before;
  }
};

Vec flat(const std::vector<Vec>& rows) {
  Vec out;
  for (const Vec& r : rows) out.insert(out.end(), r.begin(), r.end());
  return out;
}

TEST_CASE("genetic: elites, tournaments, crossover and mutation as SPEC 2.5 words them", "[gradient_free]") {
  struct Case {
    const char* options;
    Genetic g;
  };
  for (Case c : {Case{"population = 7, elite = 2, mutation_std = 0.1, mutation_rate = 0.6, crossover = 0.3, tournament = 3",
                      {7, 2, 3, 0.1, 0.6, 0.3, {}, {}, {}}},
                 Case{"population = 5, elite = 0, mutation_std = 0.05, tournament = 2", {5, 0, 2, 0.05, 1, 0.5, {}, {}, {}}}}) {
    INFO("genetic(" << c.options << ")");
    Model model = Model::compile_source(source(std::string("genetic(") + c.options + ")"), "m.grad");
    INFO(render_all(model.diagnostics()));
    REQUIRE(model.ok());
    for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
      INFO((backend == Backend::Jit ? "jit" : "interpreter"));
      Session s = start(model, backend);
      Genetic ref = c.g;
      Vec w = kW0, b = kB0;
      for (int t = 1; t <= 4; ++t) {
        INFO("step " << t);
        double want_loss = ref.step(w, b, t);
        double got = step(s, t);
        CHECK(std::fabs(got - want_loss) <= 1e-12 * std::fabs(want_loss));
        check("w", find_tensor(s.params(), "w"), w);
        check("b", find_tensor(s.params(), "b"), b);
        check("opt.population.w", find_tensor(s.optimizer_state(), "opt.population.w"), flat(ref.pw));
        check("opt.population.b", find_tensor(s.optimizer_state(), "opt.population.b"), flat(ref.pb));
        check("opt.fitness", find_tensor(s.optimizer_state(), "opt.fitness"), ref.fitness);
        REQUIRE(find_tensor(s.optimizer_state(), "opt.population.w")->shape() == std::vector<int64_t>{c.g.P, 3});
      }
    }
  }
}

TEST_CASE("the gradient-free optimizers' options are checked", "[gradient_free]") {
  struct Bad {
    const char* optimizer;
    const char* message;
  };
  for (Bad bad : {Bad{"genetic(population = 0)", "option 'population' of 'genetic' must be a whole number from 1"},
                  Bad{"genetic(population = 2.5)", "must be a whole number"},
                  Bad{"genetic(population = 4, elite = 5)", "genetic keeps at most `population` elites"},
                  Bad{"genetic(crossover = 1.5)", "must be in [0, 1]"},
                  Bad{"genetic(lr = 0.1)", "optimizer 'genetic' has no option 'lr' (its options: population, elite, mutation_std, mutation_rate, crossover, tournament)"},
                  Bad{"es(clip_grad_norm = 1)", "optimizer 'es' has no option 'clip_grad_norm' (its options: population, sigma, lr)"},
                  Bad{"es(sigma = 0)", "es needs sigma > 0"},
                  Bad{"es(population = -3)", "must be a whole number"}}) {
    INFO(bad.optimizer);
    Model m = Model::compile_source(source(bad.optimizer), "m.grad");
    REQUIRE_FALSE(m.ok());
    std::string text = render_all(m.diagnostics());
    CHECK_THAT(text, Catch::Contains(bad.message));
    CHECK_THAT(text, Catch::Contains("m.grad:7:"));
  }
}
