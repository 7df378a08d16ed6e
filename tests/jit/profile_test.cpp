// SessionOptions::profile: a timer around every kernel of the JIT's entry
// points (docs/host_api.md, "Profiling"). The numbers are times, so only
// their structure is asserted: one entry per kernel of the plan, in order,
// with its summary and model line; calls counted; the kernels' sum within the
// calls' wall time; results the same as without timers.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

const char* kModel = R"(dim B = 32
input x : [B, 20]
input label : i32[B]
param W1 : [20, 64] ~ he_uniform
param b1 : [64]
param W2 : [64, 4] ~ xavier_uniform
h = relu(x @ W1 + b1)
loss cross_entropy(h @ W2, label)
optimizer adam(lr = 0.01)
)";

bool same_bits(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (std::memcmp(a[i].second.raw(), b[i].second.raw(), a[i].second.nbytes()) != 0) return false;
  return true;
}

}  // namespace

TEST_CASE("profile: one entry per kernel, with calls, times and model lines", "[jit][profile]") {
  Model m = Model::compile_source(kModel, "prof.grad");
  REQUIRE(m.ok());
  NamedTensors in = test::random_inputs(m.info(), 1);
  SessionOptions timed;
  timed.profile = true;
  Session s(m, timed), plain(m);
  CHECK(s.profile(Entry::TrainStep).empty());  // before the first call
  for (int i = 0; i < 5; ++i) CHECK(s.train_step(in) == plain.train_step(in));
  CHECK(same_bits(s.params(), plain.params()));  // timers do not change results

  std::vector<KernelProfile> ks = s.profile(Entry::TrainStep);
  REQUIRE(static_cast<int64_t>(ks.size()) == m.cost(Entry::TrainStep).kernels);
  double sum = 0;
  bool product_on_its_line = false;
  for (size_t i = 0; i < ks.size(); ++i) {
    INFO("k" << i << " " << ks[i].what << " " << ks[i].source);
    CHECK(ks[i].index == static_cast<int>(i));
    CHECK(ks[i].calls == 5);
    CHECK(ks[i].seconds >= 0);
    CHECK(!ks[i].what.empty());
    sum += ks[i].seconds;
    // The first product (x @ W1): its operator is on line 7, column 12.
    if (ks[i].what.rfind("matmul 32x64x20", 0) == 0) product_on_its_line = ks[i].source == "prof.grad:7:12";
  }
  CHECK(product_on_its_line);
  CHECK(sum > 0);
  CHECK(sum <= s.profiled_seconds(Entry::TrainStep) * 1.01);

  s.reset_profile();
  CHECK(s.profile(Entry::TrainStep).empty());
  s.train_step(in);
  CHECK(s.profile(Entry::TrainStep).at(0).calls == 1);
  CHECK(s.profile(Entry::Grad).empty());  // not called

  // Without the option, and with the interpreter: no profile.
  plain.train_step(in);
  CHECK(plain.profile(Entry::TrainStep).empty());
  SessionOptions interp_timed = timed;
  interp_timed.backend = Backend::Interpreter;
  Session interp(m, interp_timed);
  interp.train_step(in);
  CHECK(interp.profile(Entry::TrainStep).empty());
}
