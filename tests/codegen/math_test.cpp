// The f32 tanh and expm1 that the code generator writes inline
// (compiler/codegen/emit_math.cpp), and exp and sigmoid (glibc's expf),
// against libm in double over their whole useful range: a million points spread over the float bit patterns of each
// range, plus the edges (overflow, underflow to subnormals and 0, NaN, inf,
// signed zero). The error is in ulps of the float nearest the exact value.
#include <catch2/catch.hpp>
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace {

constexpr int64_t kN = 1 << 20;

// kN floats: bit patterns evenly spaced over [lo, hi] on each side of 0
// (lo, hi > 0; both signs when `both_signs`), then the edge cases.
std::vector<float> sweep(float lo, float hi, bool both_signs, const std::vector<float>& edges) {
  std::vector<float> v;
  const int64_t sides = both_signs ? 2 : 1, per = (kN - static_cast<int64_t>(edges.size())) / sides;
  const uint32_t a = std::bit_cast<uint32_t>(lo), b = std::bit_cast<uint32_t>(hi);
  for (int64_t s = 0; s < sides; ++s)
    for (int64_t i = 0; i < per; ++i) {
      float x = std::bit_cast<float>(static_cast<uint32_t>(a + (uint64_t(b - a) * uint64_t(i)) / uint64_t(per - 1)));
      v.push_back(s == 0 ? x : -x);
    }
  v.insert(v.end(), edges.begin(), edges.end());
  v.resize(kN, 0.0f);
  return v;
}

// |got - exact| in ulps of float at `exact` (the subnormal ulp below the
// normal range). An inf for a finite exact value stands for 2^128, one ulp
// past the largest float, as rounding treats it.
double ulps(float got, double exact) {
  if (std::isnan(exact)) return std::isnan(got) ? 0 : 1e9;
  if (std::isinf(static_cast<float>(exact))) return double(got) == double(static_cast<float>(exact)) ? 0 : 1e9;
  double g = std::isinf(got) ? std::copysign(std::ldexp(1.0, 128), double(got)) : double(got);
  int e = exact == 0 ? -126 : std::clamp(std::ilogb(exact), -126, 127);
  return std::fabs(g - exact) / std::ldexp(1.0, e - 23);
}

// The largest error of `expr` (of x) over `xs` against `exact`.
double worst(const std::string& expr, const std::vector<float>& xs, double (*exact)(double)) {
  gradc::Model m = gradc::Model::compile_source(
      "input x : [" + std::to_string(kN) + "]\ny = " + expr + "\noutput y\nparam w : []\nloss w * w\n", "math.grad", {});
  INFO(gradc::render_all(m.diagnostics()));
  REQUIRE(m.ok());
  gradc::SessionOptions opts;
  opts.threads = 1;
  gradc::Session s(m, opts);
  gradc::Tensor x(gradc::DType::F32, {kN});
  std::copy(xs.begin(), xs.end(), x.data<float>());
  gradc::NamedTensors out = s.forward({{"x", x}});
  const float* y = gradc::find_tensor(out, "out.y")->data<float>();
  double w = 0;
  float at = 0;
  for (int64_t i = 0; i < kN; ++i) {
    double u = ulps(y[i], exact(double(xs[size_t(i)])));
    if (u > w) w = u, at = xs[size_t(i)];
  }
  WARN(expr << ": at most " << w << " ulp (at x = " << at << ")");
  return w;
}

const float kInf = std::numeric_limits<float>::infinity(), kNaN = std::numeric_limits<float>::quiet_NaN();

}  // namespace

TEST_CASE("exp (glibc's expf and libmvec's): within 4 ulp, libmvec's bound, subnormal results and overflow included", "[codegen][math]") {
  auto xs = sweep(1e-30f, 104.0f, true, {0.0f, -0.0f, 88.7f, 88.73f, 89.0f, 1000.0f, -87.4f, -100.0f, -103.9f, -110.0f,
                                        kInf, -kInf, kNaN});
  CHECK(worst("exp(x)", xs, [](double v) { return std::exp(v); }) <= 4.0);
}

TEST_CASE("inline tanh: within 2 ulp of tanh, across the switch at 0.625 and into saturation", "[codegen][math]") {
  auto xs = sweep(1e-30f, 20.0f, true, {0.0f, -0.0f, 0.625f, -0.625f, 0.62499994f, 9.0f, 50.0f, kInf, -kInf, kNaN});
  CHECK(worst("tanh(x)", xs, [](double v) { return std::tanh(v); }) <= 2.0);
}

TEST_CASE("inline expm1 (elu's negative side): within 3 ulp of expm1", "[codegen][math]") {
  auto xs = sweep(1e-30f, 110.0f, false, {0.0f, -0.34657359f, -0.3465736f, -kInf});
  for (float& v : xs) v = -std::fabs(v);
  CHECK(worst("elu(x)", xs, [](double v) { return v > 0 ? v : std::expm1(v); }) <= 3.0);
}

// Below -88.72 exp(-x) overflows float and sigmoid is 0, as in PyTorch's float
// formula and in libm's expf; the sweep stops where that is not yet so.
TEST_CASE("sigmoid: within 5 ulp of 1 / (1 + exp(-x)) (libmvec's exp, an add and a division round)", "[codegen][math]") {
  auto xs = sweep(1e-30f, 88.0f, true, {0.0f, -0.0f, 88.0f, -88.0f, kInf, -kInf, kNaN});
  CHECK(worst("sigmoid(x)", xs, [](double v) { return 1 / (1 + std::exp(-v)); }) <= 5.0);
}
