// Large matrix products take the register-tiled path of the code generator
// (and run on the thread pool), with B packed into panels or read in place.
// These tests compare it with the reference interpreter on shapes with ragged
// edges in every dimension, transposed operands, f64, batch dims and fused
// epilogues, both ways of reading B, C kept in per-thread blocks, and check
// that results are bit-identical for every thread count.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <string>

#include "gradc/session.h"
#include "tests/common/jit_agreement.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

struct Case {
  int64_t m, k, n;
  const char* dtype = "";    // "" (f32) or "f64"
  bool a_transposed = false;  // the input is stored [K, M] and used as a.T
  bool w_transposed = false;  // the param is stored [N, K] and used as w.T
  int64_t batch = 0;          // > 0: the input has a leading batch dim
  bool b_in_place = false;    // expected: the forward product reads w in place (not packed)
};

std::string model_source(const Case& c) {
  std::string lead = c.batch > 0 ? fmt::format("{}, ", c.batch) : "";
  std::string a_shape = c.a_transposed ? lead + "K, M" : lead + "M, K";
  std::string w_shape = c.w_transposed ? "N, K" : "K, N";
  std::string a = c.a_transposed ? "a.T" : "a";
  if (c.a_transposed && c.batch > 0) a = "transpose(a, [0, 2, 1])";
  return fmt::format(R"(dim M = {}
dim K = {}
dim N = {}
input a : {}[{}]
input y : {}[{}M, N]
param w : {}[{}] ~ normal(0, 0.1)
param b : {}[N] ~ normal(0, 0.1)
h = relu({} @ {} + b)
output h
loss mean((h - y) * (h - y))
optimizer sgd(lr = 0.1)
)",
                     c.m, c.k, c.n, c.dtype, a_shape, c.dtype, lead, c.dtype, w_shape, c.dtype, a,
                     c.w_transposed ? "w.T" : "w");
}

using test::check_close;

// forward, grad and one train_step of the JIT (on `threads` threads, 0: all) against the interpreter.
void agrees_with_interpreter(const Model& m, int threads) { test::jit_agrees_with_interpreter(m, threads, 1); }

bool bit_identical(const NamedTensors& a, const NamedTensors& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const Tensor &x = a[i].second, &y = b[i].second;
    size_t bytes = static_cast<size_t>(x.numel()) * (x.dtype() == DType::F64 ? 8 : 4);
    if (x.shape() != y.shape() || std::memcmp(x.raw(), y.raw(), bytes) != 0) return false;
  }
  return true;
}

// The params after `steps` train steps on `threads` threads, and with
// `with_forward` the forward outputs after them.
NamedTensors after_steps(const Model& m, const NamedTensors& in, int threads, int steps, bool with_forward = false) {
  SessionOptions o;
  o.seed = 9;
  o.threads = threads;
  Session s(m, o);
  for (int step = 0; step < steps; ++step) s.train_step(in);
  NamedTensors result = s.params();
  if (with_forward)
    for (auto& t : s.forward(in)) result.push_back(t);
  return result;
}

// The same bits for every thread count in `counts`.
void same_for_every_thread_count(const Model& m, const NamedTensors& in, std::initializer_list<int> counts, int steps,
                                 bool with_forward = false) {
  NamedTensors reference;
  for (int threads : counts) {
    NamedTensors result = after_steps(m, in, threads, steps, with_forward);
    if (reference.empty()) reference = result;
    INFO("threads " << threads);
    CHECK(bit_identical(reference, result));
  }
}

}  // namespace

TEST_CASE("packed matrix products agree with the interpreter", "[codegen]") {
  const Case cases[] = {
      {64, 784, 256, "", false, false, 0, true},   // a layer of the MNIST MLP: whole tiles, w read in place
      {37, 150, 53},                               // ragged in M, N and K
      {129, 65, 97},                               // one row and one column past a tile
      {37, 150, 128, "", false, false, 0, true},   // ragged M and K, w in place
      {32, 200, 1024, "", false, false, 0, true},  // 1024-column rows in place: at most two blocks of rows
      {300, 200, 1024},                            // the same rows read by three blocks of rows: packed
      {32, 200, 2048},                             // whole tiles, but rows too long to read in place
      {70, 300, 40, "", true},                     // A transposed (the weight-gradient shape)
      {70, 300, 64, "", true, false, 0, true},     // A transposed, w in place
      {50, 90, 130, "", false, true},              // B transposed (the input-gradient shape)
      {150, 90, 130, "", false, true},             // B transposed, too many rows to pack per block: packed whole
      {130, 70, 100, "f64", false, true},          // the same in f64
      {45, 120, 70, "f64"},                        // f64 tiles
      {45, 120, 128, "f64", false, false, 0, true},  // f64, w in place
      {24, 64, 200, "", false, false, 3},          // a batch dim, the weight broadcast over it
      {24, 64, 192, "", false, false, 3, true},    // the same with w in place
      {24, 64, 200, "", true, false, 2},           // batched and transposed
  };
  for (const Case& c : cases) {
    std::string src = model_source(c);
    SECTION(fmt::format("M={} K={} N={} {}{}{}{}{}", c.m, c.k, c.n, c.dtype, c.a_transposed ? " a.T" : "",
                        c.w_transposed ? " w.T" : "", c.batch ? " batched" : "", c.b_in_place ? " in place" : "")) {
      Model m = Model::compile_source(src, "packed.grad");
      INFO(src);
      REQUIRE(m.ok());
      std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
      INFO(loops);
      REQUIRE(loops.find("register-tiled") != std::string::npos);
      CHECK((loops.find("operands read in place") != std::string::npos) == c.b_in_place);
      // Only the bias-and-relu epilogue reads the product: its C stays in per-thread blocks,
      // and the pre-activation, read only by the relu, in registers.
      CHECK(loops.find("C in per-thread blocks") != std::string::npos);
      CHECK(loops.find("(epilogue, in registers)") != std::string::npos);
      agrees_with_interpreter(m, 0);  // every hardware thread
    }
  }
}

TEST_CASE("a transposed B packed whole goes through register transposes and not scatters", "[codegen]") {
  // w.T read along k: copied element by element, LLVM vectorized the copy
  // along k into scatters (each lane NR elements from the next), 1.5x the
  // time of W4's g @ W2^T on an AVX-512 core. pack_b copies vw x vw tiles
  // through registers, as B packed per block does.
  Case c{150, 96, 128, "", false, true};
  Model m = Model::compile_source(model_source(c), "packed_bt.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  INFO(loops);
  CHECK(loops.find("B packed into") != std::string::npos);
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Text, Entry::Forward);
  CHECK(ir.find("masked.scatter") == std::string::npos);
  agrees_with_interpreter(m, 0);
}

TEST_CASE("narrow products (N at most one vector) agree with the interpreter", "[codegen]") {
  // The "rows" form: a row of C in one register; A transposed takes 16 rows at
  // a time, row-major A 4; large ones run on the thread pool.
  const Case cases[] = {
      {1000, 300, 10, "", true},   // a classifier's weight gradient: parallel, 1000 = 62 * 16 + 8
      {300, 1000, 10},             // a classifier layer: parallel, 4 rows at a time
      {37, 50, 7, "", true},       // small: serial, a ragged last group
      {45, 120, 5, "f64", true},   // f64
      {24, 64, 9, "", true, false, 3},  // batched and transposed
  };
  for (const Case& c : cases) {
    SECTION(fmt::format("M={} K={} N={} {}{}{}", c.m, c.k, c.n, c.dtype, c.a_transposed ? " a.T" : "",
                        c.batch ? " batched" : "")) {
      Model m = Model::compile_source(model_source(c), "narrow.grad");
      REQUIRE(m.ok());
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
    }
  }
}

namespace {

// A matrix-vector model: the forward product a @ w is a dot product per row
// (A and B contiguous along k), w's gradient a.T @ g an axpy (A contiguous
// along m); with `columns` > 0 also a @ v.T, dot products with N > 1.
std::string matvec_source(int64_t m, int64_t k, const char* dtype, int64_t columns, const char* dim_m = nullptr) {
  std::string extra_param = columns > 0 ? fmt::format("param v : {}[{}, K] ~ normal(0, 0.1)\n", dtype, columns) : "";
  std::string extra_term = columns > 0 ? " + mean(a @ v.T)" : "";
  return fmt::format(R"({}
dim K = {}
input a : {}[M, K]
input y : {}[M]
param w : {}[K] ~ normal(0, 0.1)
param b : {}[] ~ normal(0, 0.1)
{}h = tanh(a @ w + b{})
output h
loss mean((h - y) * (h - y))
optimizer sgd(lr = 0.1)
)",
                     dim_m ? dim_m : fmt::format("dim M = {}", m), k, dtype, dtype, dtype, dtype, extra_param,
                     extra_term);
}

// `src` with its dim M dynamic: a session's first call compiles it at
// `capacity`; called then with n rows, it gives the interpreter's forward and
// grad for the model with M = n, on the capacity's code.
void agrees_below_capacity(const std::string& src, int64_t capacity, int64_t n) {
  INFO("capacity " << capacity << ", M = " << n);
  Model dynamic = Model::compile_source(src, "matvec.grad");
  REQUIRE(dynamic.ok());
  CompileOptions at_n, at_capacity;
  at_n.dims = {{"M", n}};
  at_capacity.dims = {{"M", capacity}};
  Model fixed = Model::compile_source(src, "matvec.grad", at_n);
  REQUIRE(fixed.ok());
  Session s(dynamic, {Backend::Jit, 1});
  Session ref(fixed, {Backend::Interpreter, 1});
  ref.restore(s.checkpoint());
  s.forward(test::random_inputs(Model::compile_source(src, "matvec.grad", at_capacity).info(), 9));
  NamedTensors in = test::random_inputs(fixed.info(), 1);
  check_close(ref.forward(in), s.forward(in), 2e-5);
  check_close(ref.grad(in), s.grad(in), 2e-5);
  CHECK(s.capacities() == std::vector<std::pair<std::string, int64_t>>{{"M", capacity}});
}

}  // namespace

TEST_CASE("matrix-vector products agree with the interpreter", "[codegen][threads]") {
  // Forward: dot products 8 rows at a time (4 with AVX2) in vector
  // accumulators along k, the last vector of k masked. Gradient: an axpy
  // keeping up to 8 vectors of C in registers over k, the last vector masked.
  struct MatVec {
    int64_t m, k;
    const char* dtype = "";
    int64_t columns = 0;
  };
  const MatVec cases[] = {
      {37, 100},          // a ragged last group of rows; k: 6 vectors and 4 masked; C of the axpy: 7 vectors
      {128, 16},          // k one whole vector, no masked one
      {9, 5},             // k shorter than a vector: a dot product per element; the axpy one masked vector
      {600, 500},         // both on the thread pool; the axpy in blocks of 128 rows and a last one of 116
      {45, 120, "f64"},   // f64 (8 lanes)
      {13, 10, "f64"},    // f64, k one whole vector of 8 and 2 masked
      {21, 70, "", 3},    // dot products with three columns (a @ v.T)
  };
  for (const MatVec& c : cases) {
    SECTION(fmt::format("M={} K={} {}{}", c.m, c.k, c.dtype, c.columns ? " with a @ v.T" : "")) {
      Model m = Model::compile_source(matvec_source(c.m, c.k, c.dtype, c.columns), "matvec.grad");
      REQUIRE(m.ok());
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
      same_for_every_thread_count(m, test::random_inputs(m.info(), 4), {1, 2, 3}, 2);
    }
  }
  SECTION("a dynamic M at a capacity: the dot products stop at the call's rows, the axpy's k too") {
    agrees_below_capacity(matvec_source(0, 100, "", 0, "dim M"), 64, 29);
  }
  SECTION("a dynamic M at a capacity with a stored [K, M]: the axpy stops at the call's rows") {
    // a.T @ w reads a along m: the axpy form, its blocks of 128 rows of C
    // stopping at the block that holds the call's last row (capacity 400:
    // three whole blocks and one of 16 rows).
    const std::string src = R"(dim M
dim K = 100
input a : [K, M]
input y : [M]
param w : [K] ~ normal(0, 0.1)
param b : [] ~ normal(0, 0.1)
h = tanh(a.T @ w + b)
output h
loss mean((h - y) * (h - y))
optimizer sgd(lr = 0.1)
)";
    for (int64_t n : {120, 300}) agrees_below_capacity(src, 400, n);
  }
}

TEST_CASE("narrow register tiles and B packed block by block agree with the interpreter", "[codegen]") {
  // Products whose rows fit one block of C (a convolution's output channels,
  // a layer's inputs in a weight gradient) pack B per block; a transposed B
  // goes through registers in whole tiles of one vector width: K = 400 is
  // three chunks of 128 and one of 16, K = 150 one of 128 and one of 22 (a
  // whole tile and 6 rows element by element). Columns at most two vectors
  // wide take the narrow tiles (12 x 2 or 16 x 1 vectors with AVX-512), and
  // few rows 8 x 3 vectors when that pads less than 6 x 4.
  const Case cases[] = {
      {32, 400, 100, "", false, true},     // per block, transposed, ragged last panel
      {32, 150, 100, "", false, true},     // per block, a short last chunk
      {20, 140, 40, "f64", false, true},   // f64 through registers
      {40, 300, 32},                       // per block, narrow
      {100, 77, 16, "", false, true},      // per block, narrow, transposed
      {6, 129, 200},                       // one row tile
      {24, 64, 200, "", false, true, 3},   // batched (8 x 3 vector tiles)
      {32, 400, 400, "", false, true},     // 8 x 3 vector tiles, transposed (a convolution's weight gradient)
      {40, 200, 90},                       // 8 x 3 vector tiles, a ragged last panel
      {200, 100, 16},                      // narrow, B packed in advance (two blocks of rows)
      {150, 70, 25, "", false, true},      // narrow, transposed, packed in advance
  };
  for (const Case& c : cases) {
    SECTION(fmt::format("M={} K={} N={} {}{}{}", c.m, c.k, c.n, c.dtype, c.w_transposed ? " w.T" : "",
                        c.batch ? " batched" : "")) {
      Model m = Model::compile_source(model_source(c), "per_block.grad");
      REQUIRE(m.ok());
      std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
      INFO(loops);
      CHECK((loops.find("B packed per block") != std::string::npos) == (c.m <= 120));
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
      same_for_every_thread_count(m, test::random_inputs(m.info(), 4), {1, 3}, 1);
    }
  }
}

TEST_CASE("small products are cut into at least four blocks, with the same bits for every thread count", "[codegen][threads]") {
  // matmul_packed: a product of fewer than kMinBlocks blocks of C (a
  // recurrent step's 32 x 256 x 768 is one) is cut along its columns, and
  // along its rows where B is not packed per block.
  const Case cases[] = {
      {32, 768, 256},                    // one block: four of a column tile each
      {32, 768, 64},                     // one column tile: blocks of rows
      {40, 300, 100, "", false, true},   // B packed per block: columns only
      {130, 50, 200},                    // two blocks of rows: cut along the columns too
  };
  for (const Case& c : cases) {
    SECTION(fmt::format("M={} K={} N={}{}", c.m, c.k, c.n, c.w_transposed ? " w.T" : "")) {
      Model m = Model::compile_source(model_source(c), "small_blocks.grad");
      REQUIRE(m.ok());
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
      same_for_every_thread_count(m, test::random_inputs(m.info(), 4), {1, 2, 3, 4}, 2, true);
    }
  }
}

TEST_CASE("weight gradients that carry an optimizer's state run in blocks of whole rows", "[codegen][threads]") {
  // x.T @ g with x [B, D], D = 300 > 120 rows: B (g) packed whole. With
  // Adam's or momentum's update fused (two or three epilogues), blocks of C
  // are whole rows of the 520-column result, so the updates stream whole
  // rows of the weight and its state; plain SGD's one epilogue keeps the
  // usual blocks. The same bits for every thread count either way.
  // (Adam at lr 1e-3: its first update is lr * g / (|g| + eps), which turns
  // the rounding of a gradient near 0 into differences of up to lr.)
  for (const char* opt : {"adam(lr = 1e-3)", "sgd(lr = 0.1, momentum = 0.9)", "sgd(lr = 0.1)"}) {
    SECTION(opt) {
      std::string src = fmt::format(R"(dim B = 40
input x : [B, 300]
input t : [B, 520]
param W : [300, 520] ~ normal(0, 0.05)
loss mean(square(tanh(x @ W) - t))
optimizer {}
)",
                                    opt);
      Model m = Model::compile_source(src, "row_blocks.grad");
      REQUIRE(m.ok());
      std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
      INFO(loops);
      const bool state = std::string(opt).find("adam") != std::string::npos ||
                         std::string(opt).find("momentum") != std::string::npos;
      CHECK((loops.find("C in per-thread blocks of whole rows") != std::string::npos) == state);
      CHECK(loops.find("C in per-thread blocks") != std::string::npos);
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
      same_for_every_thread_count(m, test::random_inputs(m.info(), 4), {1, 2, 3, 4}, 3);
    }
  }
}

TEST_CASE("transposing kernels agree with the interpreter", "[codegen]") {
  // Copies that transpose go through registers a tile at a time, other
  // transposing kernels element by element in tiles; ragged edges (37, 50),
  // whole tiles, a kernel large enough for the thread pool, an outer dim
  // around the tiles, f64.
  for (const char* dtype : {"", "f64"}) {
    std::string src = fmt::format(R"(dim R = 37
dim C = 50
input a : {0}[R, C]
input big : {0}[300, 400]
input a3 : {0}[5, 40, 33]
input sq : {0}[64, 48]
param w : {0}[C, R] ~ normal(0, 1)
t = a.T
u = a.T * 2 + 1
v = big.T
p = transpose(a3, [0, 2, 1])
q = sq.T
output t, u, v, p, q
loss mean((t * w - u) * (t * w - u)) + sum(v) * 0 + sum(p) * 0 + sum(q) * 0
)",
                                  dtype);
    SECTION(dtype[0] ? dtype : "f32") {
      Model m = Model::compile_source(src, "transpose.grad");
      INFO(src);
      REQUIRE(m.ok());
      for (int threads : {1, 2}) agrees_with_interpreter(m, threads);
      NamedTensors in = test::random_inputs(m.info(), 6);
      Session jit(m, {});
      NamedTensors out = jit.forward(in);
      // The copies are exact.
      const Tensor& a = in[0].second;
      const Tensor& t = out[0].second;
      bool exact = true;
      for (int64_t r = 0; r < 37; ++r)
        for (int64_t c = 0; c < 50; ++c) exact = exact && t.get(c * 37 + r) == a.get(r * 50 + c);
      CHECK(exact);
    }
  }
}

TEST_CASE("a reshape is a view of its operand's buffer, not a copy", "[codegen]") {
  // x @ w with w a vector multiplies by w reshaped to [D, 1] (and the gradient
  // by a reshape of dlogits): both read the same buffers, with no copy kernel.
  Model m = Model::compile_source(R"(dim B = 16
dim D = 12
input x : [B, D]
input y : [B]
param w : [D] ~ normal(0, 0.5)
param b : []
logits = x @ w + b
loss bce_with_logits(logits, y)
optimizer sgd(lr = 0.1)
)",
                                  "view.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  // A copy kernel would read one buffer and write another element for element: "bN[i0 + i1] = bM[i0 + i1]".
  CHECK(loops.find("] = b2[i0 + i1]") == std::string::npos);
  // w still updated in place (by an epilogue of its gradient's product, at the flat index)
  CHECK(loops.find("'w' (not used: updated in place in b2)") != std::string::npos);
  CHECK(loops.find("then per block: b2[i0 + i1] = sub(b2[i0 + i1]") != std::string::npos);
  agrees_with_interpreter(m, 1);
}

TEST_CASE("results are bit-identical for every thread count", "[codegen][threads]") {
  // Packed products and large elementwise kernels (the update of a 512 x 300 weight).
  Model m = Model::compile_source(model_source({96, 512, 300}), "threads.grad");
  REQUIRE(m.ok());
  same_for_every_thread_count(m, test::random_inputs(m.info(), 5), {1, 2, 3, 0}, 3, /*with_forward=*/true);
}

TEST_CASE("gathered windows are read in runs of a row where rows are long enough, by vector gathers elsewhere",
          "[codegen][threads]") {
  // B of a convolution's products is packed from the input a vector at a
  // time, along k or n: where the windows hold runs of at least 8
  // contiguous elements (a row of positions), a masked load per run the
  // vector touches; elsewhere (a stride of 2, rows of 3 taps) a gather.
  // Runs of 20 (2 pieces a vector) and of 8 (up to 3), both ways, and ragged
  // panels, against the interpreter, for every thread count.
  Model m = Model::compile_source(R"(dim B = 3
input x : [B, 2, 12, 20]
input label : i32[B]
param K1 : [10, 2, 3, 3] ~ he_uniform
param K2 : [17, 10, 3, 3] ~ he_uniform
param K3 : [20, 17, 2, 2] ~ he_uniform
param W : [640, 5] ~ xavier_uniform
a1 = relu(conv2d(x, K1, padding=1))          # [B, 10, 12, 20]
a2 = tanh(conv2d(a1, K2, stride=2))          # [B, 17, 5, 9]
a3 = relu(conv2d(a2, K3))                    # [B, 20, 4, 8]
logits = flatten(a3) @ W
loss cross_entropy(logits, label)
output logits
optimizer sgd(lr = 0.1)
)",
                                  "gather_runs.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  for (const char* how : {"along n in runs of 20", "along k in runs of 20", "along n in runs of 8", "along k in runs of 8",
                          "along k by vector gathers", "along n by vector gathers"})
    CHECK(loops.find(fmt::format("B gathered per block {}, parallel blocks", how)) != std::string::npos);
  agrees_with_interpreter(m, 2);
  same_for_every_thread_count(m, test::random_inputs(m.info(), 4), {1, 2, 3, 0}, 2, /*with_forward=*/true);
}

TEST_CASE("a long k over few blocks of C is cut into k segments", "[codegen][threads]") {
  // The weight gradient a.T @ g [33, 20] sums over 4100 rows: one block of C,
  // 33 chunks of k in 4 segments (9, 9, 9 and 6 chunks), each a task of its
  // own, then summed in order. In train_step the update is its epilogue (C
  // in per-thread blocks); grad stores the gradient itself. The interpreter
  // agrees, and every thread count gives the same bits.
  Model m = Model::compile_source(model_source({4100, 33, 20}), "segments.grad");
  REQUIRE(m.ok());
  std::string step = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  std::string grad = m.dump(Stage::Loops, DumpFormat::Text, Entry::Grad);
  INFO(step << grad);
  CHECK(step.find("for i0 < 33, i1 < 20, i2 < 4100") != std::string::npos);
  // (the line of the segmented product)
  auto segmented_line = [](const std::string& dump) {
    size_t at = dump.find("k segments");
    if (at == std::string::npos) return std::string();
    size_t begin = dump.rfind('\n', at) + 1;
    return dump.substr(begin, dump.find('\n', at) - begin);
  };
  CHECK(segmented_line(step).find("parallel blocks x 4 k segments summed from b") != std::string::npos);
  CHECK(segmented_line(step).find("C in per-thread blocks") != std::string::npos);
  CHECK(segmented_line(grad).find("parallel blocks x 4 k segments summed from b") != std::string::npos);
  CHECK(segmented_line(grad).find("C in per-thread blocks") == std::string::npos);
  // The forward product (4100 rows: 33 blocks) is not cut.
  CHECK(step.find("i0 < 4100, i1 < 20, i2 < 33") != std::string::npos);
  size_t segmented = 0;
  for (size_t at = step.find("k segments"); at != std::string::npos; at = step.find("k segments", at + 1)) ++segmented;
  CHECK(segmented == 1);
  agrees_with_interpreter(m, 2);
  same_for_every_thread_count(m, test::random_inputs(m.info(), 6), {1, 2, 3, 0}, 2, /*with_forward=*/true);
}

TEST_CASE("a max pool's argmax runs right after the kernel that writes its windows", "[codegen]") {
  // Autodiff makes the argmax in the backward part; the plan runs it as soon
  // as the buffer its expression reads is written (fusion.cpp, order_nodes),
  // next to the pool's max, so that it reads the windows while they are in
  // cache, and their buffer is free before the backward part.
  Model m = Model::compile_source(R"(dim B = 8
input x : [B, 3, 12, 12]
input label : i32[B]
param K : [6, 3, 3, 3] ~ he_uniform
param W : [216, 4] ~ xavier_uniform
a = max_pool2d(relu(conv2d(x, K, padding=1)), 2)     # [B, 6, 6, 6]
loss cross_entropy(flatten(a) @ W, label)
optimizer sgd(lr = 0.1)
)",
                                  "pool_order.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  // The kernels in order: the windows (with ReLU), the argmax, the max.
  size_t argmax = loops.find("= argmax over");
  size_t max = loops.find(" max= ");
  size_t classifier = loops.find("for i0 < 8, i1 < 4, i2 < 216");
  REQUIRE(argmax != std::string::npos);
  REQUIRE(max != std::string::npos);
  REQUIRE(classifier != std::string::npos);
  CHECK(argmax < max);
  CHECK(max < classifier);
  agrees_with_interpreter(m, 2);
}

TEST_CASE("convolutions and pools are bit-identical for every thread count", "[codegen][threads]") {
  // The products of both layers, the folds of the windows' gradients and the
  // pools' reductions run on the thread pool (each image its own slab of a
  // fold's output); the interpreter agrees and every thread count gives the
  // same bits.
  Model m = Model::compile_source(R"(dim B = 32
input x : [B, 3, 20, 20]
input label : i32[B]
param K1 : [8, 3, 3, 3] ~ he_uniform
param K2 : [16, 8, 5, 5] ~ he_uniform
param W : [400, 4] ~ xavier_uniform
a1 = max_pool2d(relu(conv2d(x, K1, padding=1)), 2)
a2 = avg_pool2d(relu(conv2d(a1, K2, padding=2)), 2)
loss cross_entropy(flatten(a2) @ W, label)
optimizer adam(lr = 0.01)
)",
                                  "conv_threads.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  CHECK(loops.find("B gathered per block") != std::string::npos);
  // The second layer's weight gradient [16, 200] is read only by adam's
  // update of K2 [16, 8, 5, 5] (through a reshape): the update is its
  // epilogue, at the flat index, and C stays in per-thread blocks. Both
  // weight gradients, one block of C each, sum over 32 images in k segments
  // (8 for 12800 positions, 3 for 3200).
  CHECK(loops.find("B gathered per block along k in runs of 10, parallel blocks x 3 k segments summed from b") !=
        std::string::npos);
  CHECK(loops.find("B gathered per block along k in runs of 20, parallel blocks x 8 k segments summed from b") !=
        std::string::npos);
  CHECK(loops.find(", C in per-thread blocks") != std::string::npos);
  agrees_with_interpreter(m, 2);
  same_for_every_thread_count(m, test::random_inputs(m.info(), 8), {1, 2, 3, 0}, 2);
}

TEST_CASE("a convolution's products gather its windows from the padded input", "[codegen][threads]") {
  // Implicit im2col (Fusion::gathered): the windows [C*R*S, B*P] are never
  // written; the forward product gathers them as it packs B (per block with
  // 12 output channels, into a packed copy with 130), and so does the
  // weight gradient, reading them transposed. Strides, dilations, padding
  // and ragged panels (324 and 252 columns) against the interpreter.
  Model m = Model::compile_source(R"(dim B = 4
input x : [B, 3, 17, 11]
input label : i32[B]
param K1 : [12, 3, 3, 2] ~ he_uniform
param K2 : [130, 12, 3, 3] ~ he_uniform
param W : [8190, 3] ~ xavier_uniform
a1 = relu(conv2d(x, K1, stride=[2, 1], padding=[1, 0], dilation=[1, 2]))    # [B, 12, 9, 9]
a2 = tanh(conv2d(a1, K2, padding=1, dilation=[2, 1]))                       # [B, 130, 7, 9]
logits = flatten(a2) @ W
loss cross_entropy(logits, label)
output logits
optimizer sgd(lr = 0.1)
)",
                                  "gathered_windows.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  CHECK(loops.find("B gathered per block") != std::string::npos);
  CHECK(loops.find("B gathered into") != std::string::npos);
  // No buffer holds the first layer's windows [3*3*2, 4*9*9] or the
  // second's [12*3*3, 4*7*9]; nor the second's windows' gradient: its input
  // gradient is a convolution of its padded output gradient (dilated, the
  // windows of 130 channels gathered, passes/conv_input_grad.cpp).
  std::string forward = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  CHECK(forward.find(" x 5832 ") == std::string::npos);
  CHECK(forward.find(" x 27216 ") == std::string::npos);
  CHECK(forward.find("B gathered") != std::string::npos);
  CHECK(loops.find(" x 5832 ") == std::string::npos);
  CHECK(loops.find(" x 27216 ") == std::string::npos);
  CHECK(loops.find("for i0 < 12, i1 < 324, i2 < 1170:") != std::string::npos);
  agrees_with_interpreter(m, 2);
  same_for_every_thread_count(m, test::random_inputs(m.info(), 8), {1, 2, 3, 0}, 2);
}
