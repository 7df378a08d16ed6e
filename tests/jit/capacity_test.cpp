// Capacity compiles (SPEC 2.2, docs/internals.md "Dynamic dims"): one code
// for every size of a dynamic dim up to the capacity it was compiled at, the
// inputs padded and the results trimmed by the session, every reduction over
// the dim masked. The sweep takes every model file, makes each of its fixed
// dims dynamic in turn (those that may be), and checks that a session that
// compiled at a capacity C, called with n < C rows, gives what the model with
// the dim fixed to n gives: outputs, loss, metrics, gradients, a train step
// and the params, buffers and optimizer state after it.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <limits>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "gradc/session.h"
#include "tests/common/model_files.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Agreement to float rounding: the capacity compile sums padded zeros and
// may split a reduction differently.
void close(const NamedTensors& got, const NamedTensors& want, double tol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO(want[i].first);
    REQUIRE(got[i].first == want[i].first);
    REQUIRE(got[i].second.shape() == want[i].second.shape());
    for (int64_t k = 0; k < want[i].second.numel(); ++k) {
      double a = got[i].second.get(k), b = want[i].second.get(k);
      if (std::isnan(b)) {
        CHECK(std::isnan(a));
        continue;
      }
      INFO("element " << k << ": " << a << " vs " << b);
      CHECK(std::abs(a - b) <= tol * (1 + std::abs(b)));
    }
  }
}

struct Variant {
  std::string file, dim, source;
};

// Each model file with one of its fixed dims made dynamic, where the result compiles.
std::vector<Variant> dynamic_variants() {
  std::vector<Variant> out;
  std::regex fixed_dim(R"(^dim ([A-Za-z_][A-Za-z_0-9]*) = [0-9]+)");
  // (Under AddressSanitizer a quarter of them, to keep the sanitized run in
  // its time: the other sweeps compile every model sanitized.)
  // The recurrent examples too: a scan over T with B dynamic runs at a capacity.
  std::vector<std::string> files = test::model_files(), recurrent;
  for (const auto& e : std::filesystem::directory_iterator(GRADC_SOURCE_DIR "/examples/rnn"))
    if (e.path().extension() == ".grad") recurrent.push_back(e.path().string());
  std::sort(recurrent.begin(), recurrent.end());
  files.insert(files.end(), recurrent.begin(), recurrent.end());
  for (size_t i = 0; i < files.size(); ++i) {
    if (test::sanitized_build() && i % 4 != 1) continue;
    const std::string& path = files[i];
    std::string source = read(path);
    std::istringstream lines(source);
    std::string line;
    while (std::getline(lines, line)) {
      std::smatch m;
      if (!std::regex_search(line, m, fixed_dim)) continue;
      std::string dynamic = source;
      dynamic.replace(dynamic.find(line), m.length(0), "dim " + m[1].str());
      if (Model::compile_source(dynamic, path).ok()) out.push_back({path, m[1].str(), dynamic});
    }
  }
  return out;
}

}  // namespace

TEST_CASE("capacity: every model with a dim made dynamic gives, below its capacity, what the model with the dim fixed gives") {
  const int64_t capacity = 7, n = 4;
  int compared = 0, refused = 0;
  for (const Variant& v : dynamic_variants()) {
    INFO(v.file << " with `dim " << v.dim << "` dynamic");
    CompileOptions at_capacity;
    at_capacity.capacities = {{v.dim, capacity}};
    Model probe = Model::compile_source(v.source, v.file, at_capacity);
    if (!probe.ok()) {
      // Only a refusal of the capacity itself, never another error.
      INFO(render_all(probe.diagnostics()));
      CHECK(render_all(probe.diagnostics()).find("cannot run at a capacity") != std::string::npos);
      ++refused;
      continue;
    }
    CompileOptions at_n;
    at_n.dims = {{v.dim, n}};
    Model fixed = Model::compile_source(v.source, v.file, at_n);
    if (!fixed.ok()) continue;  // (a size the model does not take)
    ++compared;
    Model dynamic = Model::compile_source(v.source, v.file);
    REQUIRE(dynamic.ok());
    bool f64 = v.source.find("f64") != std::string::npos;
    double tol = f64 ? 1e-10 : 2e-5;
    Session s(dynamic, {Backend::Jit, 1});
    Session ref(fixed, {Backend::Jit, 1});
    ref.restore(s.checkpoint());
    // The first call compiles at the capacity; the next ones run n rows on it.
    s.forward(test::random_inputs(Model::compile_source(v.source, v.file, CompileOptions{{{v.dim, capacity}}}).info(), 9));
    NamedTensors in = test::random_inputs(fixed.info(), 1);
    close(s.forward(in), ref.forward(in), tol);
    close(s.grad(in), ref.grad(in), tol);
    double want = ref.train_step(in);
    double got = s.train_step(in);
    CHECK(std::abs(got - want) <= tol * (1 + std::abs(want)));
    close(s.checkpoint(), ref.checkpoint(), tol);
  }
  INFO(compared << " compared, " << refused << " refused");
  CHECK(compared >= (test::sanitized_build() ? 5 : 20));
}

namespace {

const char* kModel =
    "dim B\n"
    "input x : [B, 3]\n"
    "input label : i32[B]\n"
    "param W : [3, 4] ~ normal(0, 1)\n"
    "param b : [4]\n"
    "logits = tanh(x @ W + b)\n"
    "output logits\n"
    "xt = transpose(x)\n"
    "output xt\n"
    "loss cross_entropy(logits, label) + mean(x) + sum(x * x) / B + max(x)\n"
    "metric accuracy = mean(argmax(logits, axis=1) == label)\n"
    "optimizer adam(lr = 0.05)\n";

NamedTensors rows(int64_t n, uint64_t seed) {
  Tensor x(DType::F32, {n, 3}), label(DType::I32, {n});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, std::sin(static_cast<double>(i * 7 + seed)) * 2);
  for (int64_t i = 0; i < n; ++i) label.set(i, static_cast<double>((i * 3 + seed) % 4));
  return {{"x", std::move(x)}, {"label", std::move(label)}};
}

Model compiled(const char* source, std::vector<std::pair<std::string, int64_t>> dims = {}) {
  CompileOptions o;
  o.dims = std::move(dims);
  o.wrt = {"x"};
  Model m = Model::compile_source(source, "cap.grad", o);
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  return m;
}

// Compiled for every size of B up to `capacity` (gradc --max B=N).
Model compiled_up_to(const char* source, int64_t capacity) {
  CompileOptions o;
  o.capacities = {{"B", capacity}};
  o.wrt = {"x"};
  Model m = Model::compile_source(source, "cap.grad", o);
  INFO(render_all(m.diagnostics()));
  REQUIRE(m.ok());
  return m;
}

using Capacities = std::vector<std::pair<std::string, int64_t>>;

}  // namespace

TEST_CASE("capacity: one code runs every size from a quarter of its capacity up to it, on both backends") {
  Model dyn = compiled(kModel);
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s(dyn, {backend, 2});
    CHECK(s.capacities().empty());  // nothing run yet
    s.forward(rows(16, 0));
    CHECK(s.capacities() == Capacities{{"B", 16}});
    NamedTensors ckpt = s.checkpoint();
    for (int64_t n : {9, 5, 16, 12}) {
      INFO("B = " << n);
      Session ref(compiled(kModel, {{"B", n}}), {backend, 2});
      ref.restore(ckpt);
      NamedTensors in = rows(n, static_cast<uint64_t>(n));
      NamedTensors out = s.forward(in);
      CHECK(s.capacities() == Capacities{{"B", 16}});
      close(out, ref.forward(in), 2e-6);
      REQUIRE(out[1].first == "out.xt");
      CHECK(out[1].second.shape() == std::vector<int64_t>{3, n});  // trimmed along its second axis
      NamedTensors g = s.grad(in);
      close(g, ref.grad(in), 2e-6);
      CHECK(find_tensor(g, "grad.x")->shape() == std::vector<int64_t>{n, 3});
      double want = ref.train_step(in);
      CHECK(std::abs(s.train_step(in) - want) <= 2e-6 * (1 + std::abs(want)));
      ckpt = ref.checkpoint();
      close(s.checkpoint(), ckpt, 2e-6);
    }
    // Below a quarter: code of its own; growing past it: twice the capacity
    // or the size; the smallest code that holds a size runs it.
    s.forward(rows(3, 1));
    CHECK(s.capacities() == Capacities{{"B", 3}});
    s.forward(rows(20, 1));
    CHECK(s.capacities() == Capacities{{"B", 32}});
    s.forward(rows(9, 1));
    CHECK(s.capacities() == Capacities{{"B", 16}});
    s.forward(rows(17, 1));
    CHECK(s.capacities() == Capacities{{"B", 32}});
  }
}

TEST_CASE("capacity: a model that cannot run at a capacity is compiled per size, and says why") {
  // A concat along B mixes rows by position; so does an output with B
  // merged into another axis, which could not be cut.
  for (std::string line : {"y = concat([x, x], axis=0)\nloss mean(y * y)\n", "flat = flatten(x, start=0)\noutput flat\nloss mean(x * x)\n"}) {
    std::string source = "dim B\ninput x : [B, 3]\n" + line;
    INFO(source);
    CompileOptions o;
    o.capacities = {{"B", 8}};
    Model probe = Model::compile_source(source, "cap.grad", o);
    CHECK(!probe.ok());
    CHECK(render_all(probe.diagnostics()).find("the model cannot run at a capacity") != std::string::npos);
    Model dyn = Model::compile_source(source, "cap.grad");
    REQUIRE(dyn.ok());
    Session s(dyn, {Backend::Jit, 1});
    Tensor x(DType::F32, {5, 3});
    for (int64_t i = 0; i < 15; ++i) x.set(i, static_cast<double>(i));
    NamedTensors out = s.forward({{"x", x}});
    CHECK(s.capacities().empty());
    Session ref(Model::compile_source(source, "cap.grad", CompileOptions{{{"B", 5}}}), {Backend::Jit, 1});
    close(out, ref.forward({{"x", x}}), 0);
  }
}

TEST_CASE("capacity: padded rows stay out of results even when they overflow, on both backends") {
  // Row 2 of the capacity is padding when two rows are given: if it were
  // read, exp would overflow and the loss, the max and the gradient would be
  // infinite or NaN. The staging buffer keeps its rows past the call's size
  // from call to call, so after a call of three rows it still holds 1000
  // there. Nothing may read it, not even check_numerics.
  const char* source =
      "dim B\n"
      "input x : [B]\n"
      "param w : [] ~ constant(1)\n"
      "top = max(exp(x * w))\n"
      "output top\n"
      "loss mean(exp(x * w))\n"
      "optimizer sgd(lr = 0.001)\n";
  Model dyn = Model::compile_source(source, "cap.grad");
  REQUIRE(dyn.ok());
  Tensor big(DType::F32, {3}), two(DType::F32, {2});
  big.set(0, 1), big.set(1, 2), big.set(2, 1000);
  two.set(0, 1), two.set(1, 2);
  for (Backend backend : {Backend::Jit, Backend::Interpreter}) {
    INFO((backend == Backend::Jit ? "jit" : "interpreter"));
    Session s(dyn, {.backend = backend, .check_numerics = false, .threads = 1});
    CHECK(std::isinf(s.forward({{"x", big}})[1].second.get(0)));  // (its loss: exp(1000) overflows)
    Session checked(dyn, {.backend = backend, .check_numerics = true, .threads = 1});
    checked.set_params(s.params());
    CHECK_THROWS(checked.forward({{"x", big}}));  // exp(1000) overflows in a real row
    for (Session* t : {&s, &checked}) {
      NamedTensors out = t->forward({{"x", two}});
      CHECK(t->capacities() == Capacities{{"B", 3}});
      CHECK(out[0].second.get(0) == Approx(std::exp(2.0)));
      CHECK(out[1].second.get(0) == Approx((std::exp(1.0) + std::exp(2.0)) / 2));
      CHECK(find_tensor(t->grad({{"x", two}}), "grad.w")->get(0) == Approx((std::exp(1.0) + 2 * std::exp(2.0)) / 2));
      CHECK(t->train_step({{"x", two}}) == Approx((std::exp(1.0) + std::exp(2.0)) / 2));
      CHECK(std::isfinite(find_tensor(t->params(), "w")->get(0)));
    }
  }
}

TEST_CASE("capacity: an input with two dynamic dims is padded along both, its results cut along both") {
  const char* source =
      "dim T\n"
      "dim B\n"
      "input x : [T, B]\n"
      "input w : [B]\n"
      "param a : [] ~ constant(0.5)\n"
      "y = exp(x * a) * w\n"
      "output y\n"
      "loss mean(y) + max(sum(x, axis=0))\n";
  Model dyn = Model::compile_source(source, "cap2.grad");
  REQUIRE(dyn.ok());
  Session s(dyn, {Backend::Jit, 1});
  auto inputs = [](int64_t t, int64_t b) {
    Tensor x(DType::F32, {t, b}), w(DType::F32, {b});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, std::cos(static_cast<double>(i)));
    for (int64_t i = 0; i < b; ++i) w.set(i, 1 + static_cast<double>(i));
    return NamedTensors{{"x", x}, {"w", w}};
  };
  s.forward(inputs(6, 5));
  for (auto [t, b] : {std::pair<int64_t, int64_t>{4, 3}, {6, 2}, {2, 5}}) {
    INFO("T = " << t << ", B = " << b);
    NamedTensors out = s.forward(inputs(t, b));
    CHECK(s.capacities() == Capacities{{"T", 6}, {"B", 5}});
    Session ref(Model::compile_source(source, "cap2.grad", CompileOptions{{{"T", t}, {"B", b}}}), {Backend::Jit, 1});
    close(out, ref.forward(inputs(t, b)), 2e-6);
    close(s.grad(inputs(t, b)), ref.grad(inputs(t, b)), 2e-6);
  }
}

TEST_CASE("capacity: a model compiled at capacities the user chose runs every size up to them on its own code") {
  // CompileOptions::capacities (gradc --max B=N): no quarter rule below it;
  // past it, the session's own capacities as for any dynamic model.
  Model bounded = compiled_up_to(kModel, 16);
  Session s(bounded, {Backend::Jit, 1});
  NamedTensors ckpt = s.checkpoint();
  for (int64_t n : {1, 3, 16}) {
    INFO("B = " << n);
    Session ref(compiled(kModel, {{"B", n}}), {Backend::Jit, 1});
    ref.restore(ckpt);
    NamedTensors in = rows(n, static_cast<uint64_t>(n));
    close(s.forward(in), ref.forward(in), 2e-6);
    CHECK(s.capacities() == Capacities{{"B", 16}});
    close(s.grad(in), ref.grad(in), 2e-6);
  }
  s.forward(rows(20, 1));
  CHECK(s.capacities() == Capacities{{"B", 32}});
  // Capacities name dynamic dims only.
  for (auto [caps, text] : {std::pair<Capacities, std::string>{{{"Q", 4}}, "--max Q=4: the model declares no dim 'Q'"},
                            {{{"B", 0}}, "--max B=0: dims must be positive"}}) {
    CompileOptions bad;
    bad.capacities = caps;
    Model m = Model::compile_source(kModel, "cap.grad", bad);
    CHECK(!m.ok());
    CHECK(render_all(m.diagnostics()).find(text) != std::string::npos);
  }
  CompileOptions both;  // a size and a bound for one dim
  both.dims = {{"B", 4}};
  both.capacities = {{"B", 8}};
  Model twice = Model::compile_source(kModel, "cap.grad", both);
  CHECK(twice.options_error());
  CHECK(render_all(twice.diagnostics()).find("--set B=4 and --max B=8 together") != std::string::npos);
  CompileOptions fixed;
  fixed.capacities = {{"N", 4}};
  Model m = Model::compile_source("dim N = 3\ninput x : [N]\noutput x\n", "fixed.grad", fixed);
  CHECK(render_all(m.diagnostics()).find("--max bounds a dynamic dim") != std::string::npos);
}

namespace {

// Products large enough for the register-tiled kernel (256 x 64 x 32), a
// classifier of few columns (the "rows" form) and their gradients; log(u * u)
// is -inf where u is 0, so padded rows of u filled with zeros rather than
// copies of row 0 would give W3 a NaN gradient (0 / 0 in those rows, summed).
const char* kWide =
    "dim B\n"
    "input x : [B, 32]\n"
    "input label : i32[B]\n"
    "param W1 : [32, 64] ~ normal(0, 0.3)\n"
    "param b1 : [64]\n"
    "param W2 : [64, 10] ~ normal(0, 0.3)\n"
    "param W3 : [32, 16] ~ normal(0, 0.3)\n"
    "h = relu(x @ W1 + b1)\n"
    "logits = h @ W2\n"
    "output logits\n"
    "u = x @ W3\n"
    "loss cross_entropy(logits, label) + 0.001 * mean(log(u * u))\n"
    "metric accuracy = mean(argmax(logits, axis=1) == label)\n"
    "optimizer adam(lr = 0.01)\n";

NamedTensors wide_rows(int64_t n) {
  Tensor x(DType::F32, {n, 32}), label(DType::I32, {n});
  for (int64_t i = 0; i < x.numel(); ++i) x.set(i, std::sin(static_cast<double>(i) * 0.37) * 1.5);
  for (int64_t i = 0; i < n; ++i) label.set(i, static_cast<double>((i * 7) % 10));
  return {{"x", std::move(x)}, {"label", std::move(label)}};
}

size_t count(const std::string& text, const std::string& what) {
  size_t k = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++k;
  return k;
}

}  // namespace

TEST_CASE("capacity: kernels along the dim compute the call's rows only, and fill the rest where a later kernel reads it") {
  Model bounded = compiled_up_to(kWide, 256);
  // The plan of train_step: every product, elementwise kernel and reduction
  // along B stops at the call's size (x's transposed copy for W3's gradient,
  // B in its columns, too). No kernel reads the products' padded
  // rows (they feed kernels that stop there too), so none is filled; the
  // weight gradients contract B and stop there (their cotangent is 0 past it);
  // the sums over B stop there (what they add past it is 0).
  std::string step = bounded.dump(Stage::Loops);
  CHECK(count(step, "rows past it not computed   (row bound)") == 14);
  CHECK(count(step, "what it adds past it is 0   (row bound)") == 3);
  CHECK(count(step, "rows past it copies of row 0") == 0);
  CHECK(count(step, "(k bound)") == 3);
  // forward: the hidden layer's rows past the size are not computed; the
  // logits', a result, are copies of row 0 (check_numerics reads them all).
  std::string forward = bounded.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  CHECK(count(forward, "rows past it not computed   (row bound)") == 1);
  CHECK(count(forward, "rows past it copies of row 0   (row bound)") == 1);
  // grad: the gradient for x (a result: wrt x) is 0 past the size, so its
  // product fills those rows with zeros; the logits, with copies of row 0.
  std::string grad = bounded.dump(Stage::Loops, DumpFormat::Text, Entry::Grad);
  CHECK(count(grad, "rows past it set to 0   (row bound)") == 1);
  CHECK(count(grad, "rows past it copies of row 0   (row bound)") == 1);
  CompileOptions plain;  // a model without capacities has no bound
  plain.dims = {{"B", 256}};
  CHECK(count(Model::compile_source(kWide, "wide.grad", plain).dump(Stage::Loops), "(row bound)") == 0);
  // Sizes around the tile heights (6, 8, 12, 16 rows), a block (128) and the
  // capacity; fewer under the sanitizers, where each size's reference compile is slow.
  const bool sanitized = test::sanitized_build();
  const std::vector<int64_t> sizes = sanitized ? std::vector<int64_t>{1, 13, 129}
                                               : std::vector<int64_t>{1, 5, 7, 13, 100, 129, 255, 256};
  // Inputs that overflow everything first: the rows no kernel computes then
  // hold infinities and NaNs from that call, which would show in any result
  // that read them.
  NamedTensors poison = wide_rows(256);
  for (int64_t i = 0; i < poison[0].second.numel(); ++i) poison[0].second.set(i, 1e30 * poison[0].second.get(i));
  for (int threads : sanitized ? std::vector<int>{3} : std::vector<int>{1, 3}) {
    const SessionOptions options{.backend = Backend::Jit, .threads = threads};
    Session s(bounded, options);
    NamedTensors ckpt = s.checkpoint();
    for (int64_t n : sizes) {
      INFO(threads << " threads, B = " << n);
      Session ref(compiled(kWide, {{"B", n}}), options);
      // (Each entry's own poison, right before it: the entries place their buffers differently.)
      s.train_step(poison);
      s.restore(ckpt);
      ref.restore(ckpt);
      s.forward(poison);
      NamedTensors in = wide_rows(n);
      close(s.forward(in), ref.forward(in), 2e-6);
      NamedTensors x_only{in[0]};
      s.forward(poison);
      close(s.forward(x_only), ref.forward(x_only), 2e-6);
      s.grad(poison);
      close(s.grad(in), ref.grad(in), 2e-6);
      double want = ref.train_step(in);
      CHECK(std::abs(s.train_step(in) - want) <= 2e-6 * (1 + std::abs(want)));
      close(s.checkpoint(), ref.checkpoint(), 2e-6);
      CHECK(s.capacities() == Capacities{{"B", 256}});
    }
  }
}

TEST_CASE("capacity: an embedding's gradient adds the call's rows only") {
  // The embedding's gradient adds rows of its cotangent, a product's result,
  // into the table: the rows past the size would add nothing (the cotangent
  // is 0 there), so the scatter stops at the size and the product computes
  // only the call's rows, filling nothing. (Until 2026-12-04 the scatter
  // read every row, and the product set the rows past the size to 0 for it:
  // copies of row 0 there would have added row 0's gradient again for each
  // padded row.)
  const char* embed =
      "dim B\n"
      "input ids : i32[B]\n"
      "input x : [B, 4]\n"
      "param E : [20, 8] ~ normal(0, 0.3)\n"
      "param W : [8, 4] ~ normal(0, 0.3)\n"
      "e = embedding(ids, E)\n"
      "loss mean((e @ W - x)^2)\n"
      "optimizer sgd(lr = 0.1)\n";
  Model bounded = compiled_up_to(embed, 64);
  std::string step = bounded.dump(Stage::Loops);
  CHECK(count(step, "(in loop order)\n      i0 < b0 (the call's size) only; what it adds past it is 0   (row bound)") == 1);
  CHECK(count(step, "rows past it set to 0") + count(step, "rows past it copies of row 0") == 0);
  auto rows = [](int64_t n) {
    Tensor ids(DType::I32, {n}), x(DType::F32, {n, 4});
    for (int64_t i = 0; i < n; ++i) ids.set(i, static_cast<double>((i * 7 + 3) % 20));
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, std::cos(static_cast<double>(i) * 0.3));
    return NamedTensors{{"ids", std::move(ids)}, {"x", std::move(x)}};
  };
  // NaN in every row of x first: a cotangent row past the size that the
  // scatter added would carry it into the table's gradient.
  NamedTensors poison = rows(64);
  for (int64_t i = 0; i < poison[1].second.numel(); ++i) poison[1].second.set(i, std::numeric_limits<double>::quiet_NaN());
  Session s(bounded, {Backend::Jit, 2});
  NamedTensors ckpt = s.checkpoint();
  for (int64_t n : {1, 5, 33, 64}) {
    INFO("B = " << n);
    Session ref(compiled(embed, {{"B", n}}), {Backend::Jit, 2});
    s.restore(ckpt);
    ref.restore(ckpt);
    s.grad(poison);
    close(s.grad(rows(n)), ref.grad(rows(n)), 2e-6);
    s.train_step(poison);
    s.restore(ckpt);
    double want = ref.train_step(rows(n));
    CHECK(std::abs(s.train_step(rows(n)) - want) <= 2e-6 * (1 + std::abs(want)));
    close(s.checkpoint(), ref.checkpoint(), 2e-6);
  }
}

TEST_CASE("capacity: kernels large enough for the thread pool, and argmax, stop at the call's size too") {
  // [256, 256] at the capacity: the elementwise kernels and the max's sums run
  // in ranges of rows on the thread pool; the max's gradient takes an argmax;
  // the gradient of s is a sum of 65536 elements over B and the columns, in
  // blocks (each cut at the call's size).
  const char* big =
      "dim B\n"
      "input x : [B, 256]\n"
      "param s : [] ~ normal(1, 0.1)\n"
      "param w : [256] ~ normal(0, 0.3)\n"
      "param v : [256] ~ normal(0, 0.3)\n"
      "h = tanh(s * x * w + v)\n"
      "m = max(reshape(h, [B, 64, 4]), axis=2)\n"
      "loss mean(square(h - 0.5)) + mean(m) + mean(sum(h, axis=0))\n"
      "optimizer sgd(lr = 0.1)\n";
  Model bounded = compiled_up_to(big, 256);
  std::string step = bounded.dump(Stage::Loops);
  CHECK(count(step, "(row bound)") == 14);
  CHECK(count(step, "argmax over i2 of") == 1);
  CHECK(count(step, "rows past it copies of row 0") + count(step, "rows past it set to 0") == 0);
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {n, 256});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.11));
    return NamedTensors{{"x", std::move(x)}};
  };
  // NaN in every row first: whatever a kernel leaves uncomputed holds NaN.
  NamedTensors poison = rows(256, std::numeric_limits<double>::quiet_NaN());
  Session s(bounded, {Backend::Jit, 3});
  NamedTensors ckpt = s.checkpoint();
  for (int64_t n : test::sanitized_build() ? std::vector<int64_t>{77} : std::vector<int64_t>{1, 77, 200, 256}) {
    INFO("B = " << n);
    Session ref(compiled(big, {{"B", n}}), {Backend::Jit, 3});
    s.restore(ckpt);
    ref.restore(ckpt);
    s.grad(poison);
    close(s.grad(rows(n, 1.5)), ref.grad(rows(n, 1.5)), 2e-6);
    s.train_step(poison);
    s.restore(ckpt);
    double want = ref.train_step(rows(n, 1.5));
    CHECK(std::abs(s.train_step(rows(n, 1.5)) - want) <= 2e-6 * (1 + std::abs(want)));
    close(s.checkpoint(), ref.checkpoint(), 2e-6);
  }
}

namespace {

// `bounded` (code for `capacity` rows of `source`) against the model fixed at
// each of `sizes`: forward, grad, a train step and the state after it, each
// call right after one whose every row is NaN (whatever a kernel leaves
// uncomputed then holds NaN), on 1 and 3 threads (under the sanitizers on 2,
// at the second size only).
void same_as_fixed(const Model& bounded, const char* source, int64_t capacity,
                   const std::function<NamedTensors(int64_t n, double scale)>& rows, std::vector<int64_t> sizes) {
  NamedTensors poison = rows(capacity, std::numeric_limits<double>::quiet_NaN());
  if (test::sanitized_build()) sizes = {sizes.at(1)};
  // Seed 1: with seed 0, one of the GRU's W_hh gradients is a sum that
  // cancels to about Adam's eps (1e-8), where rounding moves its first
  // update, lr * g / (|g| + eps), by 1e-5. (Until 2026-12-06 these sessions
  // were made as {Backend::Jit, threads}, which set the seed to the thread
  // count and left the threads at their default.)
  for (int threads : test::sanitized_build() ? std::vector<int>{2} : std::vector<int>{1, 3}) {
    const SessionOptions options{.backend = Backend::Jit, .seed = 1, .threads = threads};
    Session s(bounded, options);
    NamedTensors ckpt = s.checkpoint();
    for (int64_t n : sizes) {
      INFO(threads << " threads, B = " << n);
      Session ref(compiled(source, {{"B", n}}), options);
      s.restore(ckpt);
      ref.restore(ckpt);
      s.forward(poison);
      close(s.forward(rows(n, 1.0)), ref.forward(rows(n, 1.0)), 2e-6);
      s.grad(poison);
      close(s.grad(rows(n, 1.0)), ref.grad(rows(n, 1.0)), 2e-6);
      s.train_step(poison);
      s.restore(ckpt);
      double want = ref.train_step(rows(n, 1.0));
      CHECK(std::abs(s.train_step(rows(n, 1.0)) - want) <= 2e-6 * (1 + std::abs(want)));
      close(s.checkpoint(), ref.checkpoint(), 2e-6);
    }
  }
}

}  // namespace

TEST_CASE("capacity: a convolutional network's kernels stop at the call's images, B inside the columns of its products") {
  // A padded convolution (a zero border, then the interior: two writers of
  // one buffer), im2col buffers [C*R*S, B*P] with B inside their columns,
  // products that stop at the call's columns, weight gradients whose k
  // (B*P) stops at the call's images, a max pool and its argmax, the input
  // gradient of the second convolution (a convolution of its padded output
  // gradient, passes/conv_input_grad.cpp).
  const char* cnn =
      "dim B\n"
      "input x : [B, 2, 7, 7]\n"
      "input label : i32[B]\n"
      "param k1 : [8, 2, 3, 3] ~ normal(0, 0.3)\n"
      "param b1 : [8]\n"
      "param k2 : [12, 8, 3, 3] ~ normal(0, 0.2)\n"
      "param W : [48, 5] ~ normal(0, 0.2)\n"
      "h1 = tanh(conv2d(x, k1, padding=1) + reshape(b1, [8, 1, 1]))\n"
      "h2 = relu(conv2d(h1, k2, stride=1))\n"
      "p = max_pool2d(h2, 2)\n"
      "logits = flatten(p) @ W\n"
      "output logits\n"
      "loss cross_entropy(logits, label)\n"
      "optimizer adam(lr = 0.01)\n";
  Model bounded = compiled_up_to(cnn, 48);
  std::string step = bounded.dump(Stage::Loops);
  // Every kernel along B has a bound: no product fills padded rows.
  CHECK(count(step, "(column bound)") == 3);
  CHECK(count(step, "per row of the call's size) only; an operand is 0 past it   (k bound)") == 2);
  CHECK(count(step, "rows past it copies of row 0") + count(step, "rows past it set to 0") == 0);
  // Both layers' forward products and weight gradients gather their windows
  // from the padded input (docs/internals.md), and the second's input
  // gradient from the padded output gradient, reading only the call's
  // images of it: the kernels that pad it stop there too, as does every
  // kernel whose outer loop walks B over more dims than one.
  CHECK(count(step, "B gathered per block") == 5);
  // (No buffer holds the second layer's windows' gradient [8*3*3, 48*5*5].)
  CHECK(count(step, " x 86400 ") == 0);
  size_t unbounded = 0;
  std::istringstream lines(step);
  std::string kernel;
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  k", 0) == 0) {
      unbounded += kernel.find(" for i0 < 48,") != std::string::npos;
      kernel = line;
    } else if (line.find("bound)") != std::string::npos) {
      kernel.clear();
    }
  }
  unbounded += kernel.find(" for i0 < 48,") != std::string::npos;
  CHECK(unbounded == 0);
  std::string forward = bounded.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  CHECK(count(forward, "(column bound)") == 2);
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {n, 2, 7, 7}), label(DType::I32, {n});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.23));
    for (int64_t i = 0; i < n; ++i) label.set(i, static_cast<double>((i * 3) % 5));
    return NamedTensors{{"x", std::move(x)}, {"label", std::move(label)}};
  };
  same_as_fixed(bounded, cnn, 48, rows, {1, 5, 17, 48});
}

TEST_CASE("capacity: a max pool runs in the blocks of its convolution's product, its windows stopped at the call's images") {
  // The pooled maps tile the image (8x8 in 2x2 windows), so the pool and its
  // argmax run per block of the product (pool epilogues) in the capacity
  // compile too, each block's windows ending at the call's columns.
  const char* cnn =
      "dim B\n"
      "input x : [B, 3, 8, 8]\n"
      "input label : i32[B]\n"
      "param k1 : [16, 3, 3, 3] ~ normal(0, 0.3)\n"
      "param b1 : [16]\n"
      "param W : [256, 5] ~ normal(0, 0.2)\n"
      "h = relu(conv2d(x, k1, padding=1) + reshape(b1, [16, 1, 1]))\n"
      "p = max_pool2d(h, 2)\n"
      "logits = flatten(p) @ W\n"
      "output logits\n"
      "loss cross_entropy(logits, label)\n"
      "optimizer adam(lr = 0.01)\n";
  Model bounded = compiled_up_to(cnn, 48);
  for (Entry entry : {Entry::TrainStep, Entry::Forward}) {
    std::string loops = bounded.dump(Stage::Loops, DumpFormat::Text, entry);
    INFO(loops);
    CHECK(count(loops, "over its windows   (pool epilogues") == 1);
    // The pool and, for the gradient, its argmax: "in kN's blocks, after its epilogues".
    CHECK(count(loops, "(pool epilogue)") == (entry == Entry::TrainStep ? 2 : 1));
  }
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {n, 3, 8, 8}), label(DType::I32, {n});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.37));
    for (int64_t i = 0; i < n; ++i) label.set(i, static_cast<double>((i * 2) % 5));
    return NamedTensors{{"x", std::move(x)}, {"label", std::move(label)}};
  };
  same_as_fixed(bounded, cnn, 48, rows, {1, 7, 30, 48});
}

TEST_CASE("capacity: long sums per row and per channel stop at the call's rows") {
  // Blocked sums (more than 1024 terms an output) with the dynamic dim kept
  // (a row's sum) and summed over (a channel's), the second large enough for
  // the thread pool in a model of fixed size.
  const char* sums =
      "dim B\n"
      "input x : [B, 4, 2048]\n"
      "param w : [4, 2048] ~ normal(0, 0.5)\n"
      "y = x * w\n"
      "rows = sum(y, axis=[1, 2])\n"
      "channels = sum(y, axis=[0, 2])\n"
      "output rows, channels\n"
      "loss mean(rows * rows) + mean(channels)\n"
      "optimizer sgd(lr = 0.01)\n";
  Model bounded = compiled_up_to(sums, 48);
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {n, 4, 2048});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.011));
    return NamedTensors{{"x", std::move(x)}};
  };
  same_as_fixed(bounded, sums, 48, rows, {1, 13, 48});
  // In the fixed model, the channels' sum runs on the pool.
  const std::string ir = compiled(sums, {{"B", 48}}).dump(Stage::Llvm, DumpFormat::Text, Entry::Forward);
  const size_t outlined = ir.find("define internal void @gradc_forward.par");
  REQUIRE(outlined != std::string::npos);
  CHECK(ir.find("%sum.levels = alloca", outlined) != std::string::npos);
  CHECK(ir.find("%sum.levels = alloca") > outlined);  // (none in the calling function)
}

TEST_CASE("capacity: a recurrent model's scan bodies, forward and backward, stop at the call's rows") {
  // examples/rnn/gru.grad: B dynamic, a GRU scanned over T = 16. The
  // forward body's products and gates, the backward body's (its carry, the
  // state's cotangent, is zero past n, as are the stacked gate gradients)
  // and the weight gradients over the T*B rows of the time-major stacks
  // (B inside each of the T blocks of k) all stop at the call's rows.
  const std::string gru = read(GRADC_SOURCE_DIR "/examples/rnn/gru.grad");
  Model bounded = compiled_up_to(gru.c_str(), 32);
  std::string step = bounded.dump(Stage::Loops);
  INFO(step);
  // The bounds of the kernels in the loops' bodies (indented one level
  // more): 19 of their 21 kernels (the other two copy a bias gradient, [3H]).
  // (The gates' gradients are written slice by slice into one [B, 3H]
  // buffer each: simplify's disjoint_pads.)
  size_t body_bounds = 0;
  bool in_body = false;
  std::istringstream lines(step);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("  k", 0) == 0) in_body = false;
    if (line.rfind("    k", 0) == 0) in_body = true;
    if (in_body && line.find("(row bound)") != std::string::npos) ++body_bounds;
  }
  CHECK(body_bounds == 19);
  CHECK(count(step, "in each block of 32 only; an operand is 0 past it   (k bound)") == 2);
  CHECK(count(step, "rows past it copies of row 0") + count(step, "rows past it set to 0") == 0);
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {n, 16}), y(DType::F32, {n});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.29));
    for (int64_t i = 0; i < n; ++i) y.set(i, scale * std::cos(static_cast<double>(i) * 0.7));
    return NamedTensors{{"x", std::move(x)}, {"y", std::move(y)}};
  };
  same_as_fixed(bounded, gru.c_str(), 32, rows, {1, 9, 20, 32});
}

TEST_CASE("capacity: a time-major sequence model's kernels stop where B is inside blocks of its rows") {
  // A scan over T of a [T, B, 3] input, its stacked states [T, B, 8] read
  // as [T*B, 8] rows: B inside each of T blocks. The classifier's products
  // over those rows run every row (no emitter stops a dim in blocks), but
  // each row of theirs reads only its own row, so what feeds them need not
  // compute the rows past n in each block: the loss's cotangent, the
  // backward scan's body; the weight gradients over T*B stop in each block.
  const char* tm =
      "dim B\n"
      "dim T = 5\n"
      "input x : [T, B, 3]\n"
      "input y : [T, B]\n"
      "param Wx : [3, 8] ~ normal(0, 0.3)\n"
      "param Wh : [8, 8] ~ normal(0, 0.3)\n"
      "param Wo : [8, 1] ~ normal(0, 0.3)\n"
      "fn cell(h, xt) = tanh(xt @ Wx + h @ Wh)\n"
      "hs = scan(cell, broadcast_to(0, [B, 8]), x)\n"
      "pred = reshape(reshape(hs, [-1, 8]) @ Wo, [T, B])\n"
      "loss mse(pred, y)\n"
      "optimizer sgd(lr = 0.1)\n";
  Model bounded = compiled_up_to(tm, 16);
  std::string step = bounded.dump(Stage::Loops);
  CHECK(count(step, "in each block of 16 only; an operand is 0 past it   (k bound)") == 3);
  // The loss's cotangent (2 kernels), the copies of the shifted states and
  // the backward body's kernels (4) stop at n.
  CHECK(count(step, "rows past it not computed   (row bound)") == 11);
  auto rows = [](int64_t n, double scale) {
    Tensor x(DType::F32, {5, n, 3}), y(DType::F32, {5, n});
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, scale * std::sin(static_cast<double>(i) * 0.31));
    for (int64_t i = 0; i < y.numel(); ++i) y.set(i, scale * std::cos(static_cast<double>(i) * 0.43));
    return NamedTensors{{"x", std::move(x)}, {"y", std::move(y)}};
  };
  same_as_fixed(bounded, tm, 16, rows, {1, 6, 16});
}
