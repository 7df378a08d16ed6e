// Long sums in the JIT are accurate (issue 20, "Accuracy of large
// reductions"): means over 2^20 and 2^24 elements, sums along a
// non-innermost axis and over several axes agree with an f64 sum to 1e-6
// relative (one f32 accumulator was 5e-4 off at 2^20), and are bit-identical
// for 1 and 2 threads; a long sum into several outputs runs them on the
// thread pool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "gradc/session.h"

using namespace gradc;

namespace {

// Uniform in [0, 1) from a fixed linear congruential sequence.
void fill_uniform(Tensor& t, uint64_t seed) {
  float* p = t.data<float>();
  uint64_t s = seed * 6364136223846793005ULL + 1442695040888963407ULL;
  for (int64_t i = 0; i < t.numel(); ++i) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    p[i] = static_cast<float>(s >> 40) * 0x1p-24f;
  }
}

// out.NAME of forward() with `threads` threads.
NamedTensors run(const Model& m, const NamedTensors& in, int threads) {
  Session s(m, {Backend::Jit, 0, false, threads});
  return s.forward(in);
}

Model compile(const std::string& text, std::vector<std::pair<std::string, int64_t>> dims) {
  CompileOptions o;
  o.dims = std::move(dims);
  Model m = Model::compile_source(text, "reduction_accuracy.grad", o);
  REQUIRE(m.ok());
  return m;
}

// Both outputs bit for bit the same.
void check_identical(const NamedTensors& a, const NamedTensors& b) {
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    INFO(a[i].first);
    const Tensor &x = a[i].second, &y = b[i].second;
    REQUIRE(x.nbytes() == y.nbytes());
    CHECK(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0);
  }
}

double rel(double got, double want) { return std::fabs(got - want) / std::fabs(want); }

}  // namespace

TEST_CASE("a mean of 2^20 and 2^24 squared differences agrees with f64 to 1e-6", "[jit][reduce]") {
  for (int bits : {20, 24}) {
    SECTION("2^" + std::to_string(bits)) {
      int64_t n = int64_t{1} << bits;
      Model m = compile(R"(
dim N = 16
input x : [N]
input y : [N]
param w : [1]
m = mean(square(x - y))
loss m * sum(w)
output m
)", {{"N", n}});
      Tensor x(DType::F32, {n}), y(DType::F32, {n});
      fill_uniform(x, 1);
      fill_uniform(y, 2);
      double want = 0;
      for (int64_t i = 0; i < n; ++i) {
        double d = static_cast<double>(x.data<float>()[i]) - y.data<float>()[i];
        want += d * d;
      }
      want /= static_cast<double>(n);
      NamedTensors in = {{"x", x}, {"y", y}};
      NamedTensors one = run(m, in, 1), two = run(m, in, 2);
      double got = find_tensor(one, "out.m")->get(0);
      INFO("mean " << got << " against " << want);
      CHECK(rel(got, want) < 1e-6);
      check_identical(one, two);
    }
  }
}

TEST_CASE("sums along a non-innermost axis and over several axes agree with f64 to 1e-6", "[jit][reduce]") {
  // cols: down the rows of a [2^20, 3] matrix; both: the first two axes of
  // [512, 1024, 2] (merged into one run of 2^19); unit: a [2^20, 1] column,
  // whose unit axis is reduced too (the shape of a regression loss); rows:
  // [2^17, 10] times a per-row factor, which reads the rows at stride 0 so the
  // axes cannot be merged (the shape of a classification loss).
  Model m = compile(R"(
dim R = 1048576
dim P = 512
dim Q = 1024
input a : [R, 3]
input b : [P, Q, 2]
input c : [R, 1]
input e : [131072, 10]
input f : [131072, 1]
param w : [1]
cols = sum(a, axis=0)
both = sum(b, axis=[0, 1])
unit = mean(c)
rows = sum(e * f)
loss (sum(cols) + sum(both) + unit + rows) * sum(w)
output cols, both, unit, rows
)", {});
  Tensor a(DType::F32, {1 << 20, 3}), b(DType::F32, {512, 1024, 2}), c(DType::F32, {1 << 20, 1});
  fill_uniform(a, 3);
  fill_uniform(b, 4);
  fill_uniform(c, 5);
  Tensor e(DType::F32, {131072, 10}), f(DType::F32, {131072, 1});
  fill_uniform(e, 6);
  fill_uniform(f, 7);
  std::vector<double> cols(3, 0), both(2, 0);
  double unit = 0, rows = 0;
  for (int64_t i = 0; i < a.numel(); ++i) cols[i % 3] += a.get(i);
  for (int64_t i = 0; i < b.numel(); ++i) both[i % 2] += b.get(i);
  for (int64_t i = 0; i < c.numel(); ++i) unit += c.get(i);
  unit /= static_cast<double>(c.numel());
  for (int64_t i = 0; i < e.numel(); ++i) rows += e.get(i) * f.get(i / 10);
  NamedTensors in = {{"a", a}, {"b", b}, {"c", c}, {"e", e}, {"f", f}};
  NamedTensors one = run(m, in, 1), two = run(m, in, 2);
  const Tensor& got_cols = *find_tensor(one, "out.cols");
  const Tensor& got_both = *find_tensor(one, "out.both");
  for (int j = 0; j < 3; ++j) {
    INFO("column " << j << ": " << got_cols.get(j) << " against " << cols[j]);
    CHECK(rel(got_cols.get(j), cols[j]) < 1e-6);
  }
  for (int j = 0; j < 2; ++j) {
    INFO("both, " << j << ": " << got_both.get(j) << " against " << both[j]);
    CHECK(rel(got_both.get(j), both[j]) < 1e-6);
  }
  CHECK(rel(find_tensor(one, "out.unit")->get(0), unit) < 1e-6);
  CHECK(rel(find_tensor(one, "out.rows")->get(0), rows) < 1e-6);
  check_identical(one, two);
}

TEST_CASE("sums down the columns of wide matrices agree with f64 to 1e-6", "[jit][reduce]") {
  // wide: [2^17, 40] over its rows (the shape of a bias gradient over a large
  // batch); tiles: [8192, 300], one tile of 256 columns and one of 44; bcast:
  // [2048, 100, 24] times a [1, 100, 24] factor, over both leading axes (not
  // mergeable, so blocks are whole rows of the second axis).
  Model m = compile(R"(
input g : [131072, 40]
input h : [8192, 300]
input u : [2048, 100, 24]
input v : [1, 100, 24]
param w : [1]
wide = sum(g, axis=0)
tiles = sum(h, axis=0)
bcast = sum(u * v, axis=[0, 1])
loss (sum(wide) + sum(tiles) + sum(bcast)) * sum(w)
output wide, tiles, bcast
)", {});
  Tensor g(DType::F32, {131072, 40}), h(DType::F32, {8192, 300}), u(DType::F32, {2048, 100, 24}),
      v(DType::F32, {1, 100, 24});
  fill_uniform(g, 8);
  fill_uniform(h, 9);
  fill_uniform(u, 10);
  fill_uniform(v, 11);
  std::vector<double> wide(40, 0), tiles(300, 0), bcast(24, 0);
  for (int64_t i = 0; i < g.numel(); ++i) wide[i % 40] += g.get(i);
  for (int64_t i = 0; i < h.numel(); ++i) tiles[i % 300] += h.get(i);
  for (int64_t i = 0; i < u.numel(); ++i) bcast[i % 24] += u.get(i) * v.get(i % 2400);
  NamedTensors in = {{"g", g}, {"h", h}, {"u", u}, {"v", v}};
  NamedTensors one = run(m, in, 1), two = run(m, in, 2);
  auto check_all = [&](const char* name, const std::vector<double>& want) {
    const Tensor& got = *find_tensor(one, std::string("out.") + name);
    REQUIRE(got.numel() == static_cast<int64_t>(want.size()));
    double worst = 0;
    for (size_t j = 0; j < want.size(); ++j) worst = std::max(worst, rel(got.get(static_cast<int64_t>(j)), want[j]));
    INFO(name << ": worst relative error " << worst);
    CHECK(worst < 1e-6);
  };
  check_all("wide", wide);
  check_all("tiles", tiles);
  check_all("bcast", bcast);
  check_identical(one, two);
}

TEST_CASE("a short sum into one element adds term i in lane i mod 16, the lanes pairwise, at any length", "[jit][reduce]") {
  // emit_reduce.cpp short_total: the order depends on the terms' positions
  // only, so the bits are those of this emulation for a model compiled at n
  // and for one compiled at a capacity and called with n.
  const char* text = R"(
dim N
input x : [N]
param w : [1]
s = sum(x)
loss s * sum(w)
output s
)";
  auto lanes = [](const float* x, int64_t n) {
    float lane[16] = {};
    for (int64_t i = 0; i < n; ++i) lane[i % 16] += x[i];
    for (int width = 16; width > 1; width /= 2)
      for (int j = 0; j < width / 2; ++j) lane[j] = lane[2 * j] + lane[2 * j + 1];
    return lane[0];
  };
  CompileOptions at_capacity;
  at_capacity.capacities = {{"N", 1024}};
  Model dynamic = Model::compile_source(text, "short_sum.grad", at_capacity);
  REQUIRE(dynamic.ok());
  Session capacity(dynamic, {Backend::Jit, 0, false, 1});
  for (int64_t n : {1, 5, 16, 17, 100, 1000, 1024}) {
    INFO("n = " << n);
    Tensor x(DType::F32, {n});
    fill_uniform(x, static_cast<uint64_t>(n));
    for (int64_t i = 0; i < n; i += 3) x.data<float>()[i] *= -1e4f;  // (so that the order shows in the bits)
    float want = lanes(x.data<float>(), n);
    NamedTensors in = {{"x", x}};
    float fixed = static_cast<float>(find_tensor(run(compile(text, {{"N", n}}), in, 1), "out.s")->get(0));
    float at_n = static_cast<float>(find_tensor(capacity.forward(in), "out.s")->get(0));
    CHECK(std::memcmp(&fixed, &want, sizeof want) == 0);
    CHECK(std::memcmp(&at_n, &want, sizeof want) == 0);
    INFO(fixed << " and " << at_n << " against " << want);
  }
}

TEST_CASE("a long sum into several outputs runs them on the thread pool, each as on one thread", "[jit][reduce]") {
  // A convolution's bias gradient: 16 channels, each 64 x 28 x 28 terms
  // along non-adjacent axes. The channels are the tasks of the pool (the
  // sum's frame slots in the outlined function); each channel's terms are
  // added in one order, so 1, 2 and 3 threads give the same bits.
  Model m = compile(R"(
dim B = 64
input g : [B, 16, 28, 28]
param w : [1]
s = sum(g, axis=[0, 2, 3])
loss sum(s) * sum(w)
output s
)", {});
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Text, Entry::Forward);
  size_t outlined = ir.find("define internal void @gradc_forward.par");
  REQUIRE(outlined != std::string::npos);
  CHECK(ir.find("%sum.levels = alloca", outlined) != std::string::npos);
  CHECK(ir.find("%sum.levels = alloca") > outlined);  // (none in the calling function)
  Tensor g(DType::F32, {64, 16, 28, 28});
  fill_uniform(g, 9);
  std::vector<double> want(16, 0);
  for (int64_t i = 0; i < g.numel(); ++i) want[static_cast<size_t>((i / 784) % 16)] += g.get(i);
  NamedTensors in = {{"g", g}};
  NamedTensors one = run(m, in, 1);
  const Tensor& got = *find_tensor(one, "out.s");
  for (int c = 0; c < 16; ++c) {
    INFO("channel " << c << ": " << got.get(c) << " against " << want[static_cast<size_t>(c)]);
    CHECK(rel(got.get(c), want[static_cast<size_t>(c)]) < 1e-6);
  }
  check_identical(one, run(m, in, 2));
  check_identical(one, run(m, in, 3));
}
