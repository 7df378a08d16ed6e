// Fusion through reshapes and recomputed comparisons: a reshape that only
// splits axes is a view its user evaluates inline (no copy kernel, no
// buffer), a ReLU's mask is recomputed by its readers instead of stored, and
// the bias and activation after a convolution run in its product's layout
// (the sink_views pass). Each against the interpreter.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cmath>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "compiler/codegen/fusion.h"
#include "gradc/session.h"
#include "tests/common/jit_agreement.h"
#include "tests/common/test_inputs.h"

using namespace gradc;

namespace {

using Coef = std::vector<std::vector<int64_t>>;

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// forward, grad and two train steps: JIT (on `threads`) = interpreter.
void agrees_with_interpreter(const Model& m, int threads) { test::jit_agrees_with_interpreter(m, threads, 2); }

// A train step on 1, 2 and 3 threads: the same params, bit for bit.
void same_bits_on_1_to_3_threads(const Model& m) {
  NamedTensors in = test::random_inputs(m.info(), 4);
  NamedTensors want;
  for (int threads : {1, 2, 3}) {
    SessionOptions o;
    o.seed = 3;
    o.threads = threads;
    Session s(m, o);
    s.train_step(in);
    NamedTensors got = s.params();
    if (want.empty()) want = got;
    for (size_t i = 0; i < want.size(); ++i)
      CHECK(std::memcmp(want[i].second.raw(), got[i].second.raw(), static_cast<size_t>(got[i].second.numel()) * 4) == 0);
  }
}

// The kernel lines of a loops dump (epilogues and bounds dropped).
std::vector<std::string> kernels(const std::string& loops) {
  std::vector<std::string> out;
  std::istringstream lines(loops);
  for (std::string line; std::getline(lines, line);)
    if (line.rfind("  k", 0) == 0) out.push_back(line);
  return out;
}

}  // namespace

TEST_CASE("split_reshape: a reshape that only splits axes is affine in the result's index", "[codegen][fusion]") {
  // [6] -> [2, 3]: i = 3 a + b
  CHECK(split_reshape({6}, {2, 3}) == Coef{{3, 1}});
  // [2, 12] -> [2, 3, 4]: the second axis splits into (3, 4)
  CHECK(split_reshape({2, 12}, {2, 3, 4}) == Coef{{1, 0, 0}, {0, 4, 1}});
  // axes of size 1 added and dropped: index 0, coefficient 0
  CHECK(split_reshape({1, 16, 1}, {16}) == Coef{{0}, {1}, {0}});
  CHECK(split_reshape({16}, {1, 16, 1}) == Coef{{0, 1, 0}});
  // a convolution's product [O, N*P] seen as [1, O, N, H, W]
  CHECK(split_reshape({16, 6272}, {1, 16, 32, 14, 14}) == Coef{{0, 1, 0, 0, 0}, {0, 0, 196, 14, 1}});
  // the same shape: the identity
  CHECK(split_reshape({3, 5}, {3, 5}) == Coef{{1, 0}, {0, 1}});
  // merges need a division: refused
  CHECK_FALSE(split_reshape({2, 3}, {6}).has_value());
  CHECK_FALSE(split_reshape({2, 2, 14}, {4, 14}).has_value());
  // a split and a merge in one: refused
  CHECK_FALSE(split_reshape({4, 6}, {2, 12}).has_value());
  CHECK_FALSE(split_reshape({6, 4}, {12, 2}).has_value());
}

TEST_CASE("a reshape that splits a fused value is read inline, with no copy kernel", "[codegen][fusion]") {
  // t = tanh(x) has one user, a reshape that splits its rows' 24 columns
  // into [4, 6]; the transpose and the sums read tanh(x) through it. The
  // reshape back to [B, 24] merges, so its operand gets a buffer.
  Model m = Model::compile_source(R"(dim B = 5
input x : [B, 24]
param w : [6, 4] ~ normal(0, 0.5)
t = reshape(tanh(x), [B, 4, 6])
u = transpose(t, [0, 2, 1]) * w          # [B, 6, 4]
v = reshape(u, [B, 24])
loss mean(square(v)) + mean(sum(t, axis=1))
output v
optimizer sgd(lr = 0.1)
)",
                                  "split.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  INFO(loops);
  // The first kernel computes u: tanh of x read through the split and the
  // transpose; the second copies u (a buffer, as v merges its axes) out.
  std::vector<std::string> ks = kernels(loops);
  REQUIRE(ks.size() == 2);
  CHECK(ks[0].find("tanh(b0[24*i0 + i1 + 6*i2])") != std::string::npos);
  CHECK(count(loops, "tanh(") == 1);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 3);
}

TEST_CASE("the gradient of a tensor sliced into gates is written slice by slice", "[codegen][fusion]") {
  // g's gradient is the sum of three slices' gradients, zero-padded to g's
  // width: as pads, four fills of all of g and an add of them; as the
  // concatenation the optimizer makes of them (disjoint_pads), one kernel
  // per slice writes its columns, and one fills the column no slice reads.
  Model m = Model::compile_source(R"(dim B = 32
dim G = 200
input x : [B, 64]
param W : [64, G] ~ xavier_uniform
param v : [G]
g = x @ W + v
r = sigmoid(slice(g, axis=1, start=0, stop=64))
z = slice(g, axis=1, start=64, stop=128)
n = slice(g, axis=1, start=136, stop=200)
loss mean(r * n) + mean(tanh(z) * z)
optimizer sgd(lr = 0.1)
)",
                                  "gates.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Grad);
  INFO(loops);
  CHECK(count(loops, "] = 0\n") == 1);  // one fill: the gap's 8 columns
  CHECK(count(loops, "+ 128] = 0\n") == 1);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 3);
}

TEST_CASE("a ReLU's mask is recomputed by its readers, not stored", "[codegen][fusion]") {
  // relu(x @ w + b): the forward's where and the gradient's where each
  // compare the stored pre-activation with 0; no kernel or epilogue stores
  // the comparison.
  Model m = Model::compile_source(R"(dim B = 32
input x : [B, 64]
input y : [B, 48]
param w : [64, 48] ~ normal(0, 0.2)
param b : [48] ~ normal(0, 0.1)
h = relu(x @ w + b)
loss mean(square(h - y))
output h
optimizer adam(lr = 0.01)
)",
                                  "mask.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  CHECK(count(loops, "= gt(") == 0);
  CHECK(count(loops, "where(gt(") == 2);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 2);
}

TEST_CASE("a convolution's bias and activation run in its product's layout", "[codegen][fusion]") {
  // sink_views: the bias add (and the tanh's ops) move above the view from
  // the product's [O, N*P] to NCHW, so they are epilogues of the product;
  // the gradient reads the product's layout through the view. Groups, a
  // conv1d, a stride and a pool; f64 for a tight comparison with the graph
  // before the passes.
  const char* src = R"(dim B = 3
input x : f64[B, 4, 9, 9]
input s : f64[B, 6, 7]
input label : i32[B]
param K1 : f64[6, 2, 3, 3] ~ he_uniform
param c1 : f64[6]
param K2 : f64[6, 6, 3] ~ he_uniform
param c2 : f64[6]
param W : f64[66, 5] ~ xavier_uniform
a1 = max_pool2d(relu(conv2d(x, K1, groups=2, stride=2) + reshape(c1, [6, 1, 1])), 2)   # [B, 6, 2, 2]
a2 = tanh(conv1d(s, K2, padding=1) + reshape(c2, [6, 1]))                               # [B, 6, 7]
h = concat([flatten(a1), flatten(a2)], axis=1)                                           # [B, 24 + 42]
logits = h @ W
loss cross_entropy(logits, label)
output logits
optimizer adam(lr = 0.01)
)";
  CompileOptions plain;
  plain.optimize = false;
  Model before = Model::compile_source(src, "sink.grad", plain);
  Model after = Model::compile_source(src, "sink.grad");
  REQUIRE(before.ok());
  REQUIRE(after.ok());
  CHECK(after.dump(Stage::Opt).find("# after sink_views") != std::string::npos);
  std::string loops = after.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  // The conv1d's bias and tanh are an epilogue of its product. (The grouped
  // convolution's bias lies along two axes of its product, [G, O/G], and
  // stays after the view.)
  bool epilogue = false;
  std::istringstream lines(loops);
  for (std::string line; std::getline(lines, line);)
    epilogue = epilogue || (line.find("then per block: ") != std::string::npos &&
                            line.find(" = tanh(add(") != std::string::npos);
  CHECK(epilogue);
  CHECK(count(loops, "= gt(") == 0);
  NamedTensors inputs = test::random_inputs(after.info(), 5);
  NamedTensors params = after.initial_params(2);
  NamedTensors want = before.grad(inputs, params);
  for (Backend backend : {Backend::Interpreter, Backend::Jit}) {
    Session s(after, {backend, 5});
    s.set_params(params);
    test::check_close(want, s.grad(inputs), 1e-12);
  }
  agrees_with_interpreter(after, 2);
  // A transpose that moves only axes of size 1 (an optimizer's update of a
  // [1, H] weight) is not a layout view: the GRU example keeps its graph.
  Model gru = Model::compile_file(GRADC_SOURCE_DIR "/examples/rnn/gru.grad");
  REQUIRE(gru.ok());
  CHECK(gru.dump(Stage::Opt).find("sink_views") == std::string::npos);
}

TEST_CASE("a max pool reads its windows in place: no copy, loops over the window's axes", "[codegen][fusion]") {
  // max_pool2d of a ReLU of a convolution: the pool's max and the argmax its
  // gradient needs each evaluate the ReLU through the windows, unrolled over
  // the window's two axes (2 x 2, overlapping 3 x 3 with padding, 2 x 3 with
  // a stride of 1, 3 x 3 and 4 x 4 that tile their input); a 5 x 5 window (25
  // elements, past the unrolled argmax's 16) keeps its copy. The gradients of
  // the pools that tile their input are permutations (KernelEmitter's
  // interleaved stores: 2, 3 and 4 elements of a row per window).
  // JIT = interpreter; the same bits on 1-3 threads.
  Model m = Model::compile_source(R"(dim B = 4
input x : [B, 3, 13, 13]
input label : i32[B]
param K : [6, 3, 3, 3] ~ he_uniform
param c : [6]
param K2 : [4, 3, 2, 2] ~ he_uniform
param W : [54, 5] ~ xavier_uniform
y = relu(conv2d(x, K, padding=1) + reshape(c, [6, 1, 1]))     # [B, 6, 13, 13]
p1 = max_pool2d(y, 2)                                          # [B, 6, 6, 6]
p2 = max_pool2d(p1, 3, stride=2, padding=1)                    # [B, 6, 3, 3]
p3 = max_pool2d(y, [2, 3], stride=1)                           # [B, 6, 12, 11]
p4 = max_pool2d(y, 5, stride=4)                                # [B, 6, 3, 3]
y2 = tanh(conv2d(x, K2))                                        # [B, 4, 12, 12]
p5 = max_pool2d(y2, 3)                                         # [B, 4, 4, 4]
p6 = max_pool2d(y2, 4)                                         # [B, 4, 3, 3]
logits = (flatten(p2) + flatten(p4)) @ W
loss cross_entropy(logits, label) + 0.01 * mean(p3) + 0.1 * mean(p5) + 0.1 * mean(p6)
output logits
optimizer sgd(lr = 0.1)
)",
                                  "pool.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  CHECK(count(loops, "argmax over i4, i5 of") == 5);
  CHECK(count(loops, "(over the window i2..i3, unrolled)") == 5);
  CHECK(count(loops, "argmax over i4 of") == 1);  // the 5 x 5 window's, over its copy
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 3);
  same_bits_on_1_to_3_threads(m);
}

TEST_CASE("a max pool of a convolution runs in the convolution's blocks, after its epilogues", "[codegen][fusion]") {
  // A pool whose windows lie in segments of the product's columns (whole
  // rows of windows: 2 rows of 26, 52 columns, for p1; 3 of 12, 36, for p2;
  // a whole 24 x 24 image, 576, for p4, whose windows overlap) runs its max
  // and argmax in each block of the product once the block's bias and
  // activation are stored (Kernel::per_block), the blocks cut into whole
  // segments: 52 columns take 624 (13 tiles of 48), and the last block is
  // ragged (3380 = 5 x 624 + 260), so is its last tile. p3's windows (3 x 3
  // over 26 rows, the last 2 rows unused) fit only whole images of 676
  // columns, too wide for a block: it keeps kernels of its own.
  // JIT = interpreter (forward, grad, train steps); the same bits on 1-3 threads.
  Model m = Model::compile_source(R"(dim B = 5
input x : [B, 2, 26, 26]
input label : i32[B]
param K : [20, 2, 3, 3] ~ he_uniform
param c : [20]
param K2 : [7, 20, 2, 2] ~ he_uniform
param c2 : [7]
param K3 : [8, 2, 3, 3] ~ he_uniform
param K4 : [6, 2, 3, 3] ~ he_uniform
param W : [112, 3] ~ xavier_uniform
y = relu(conv2d(x, K, padding=1) + reshape(c, [20, 1, 1]))    # [B, 20, 26, 26]
p1 = max_pool2d(y, 2)                                          # [B, 20, 13, 13]
y2 = relu(conv2d(p1, K2) + reshape(c2, [7, 1, 1]))             # [B, 7, 12, 12]
p2 = max_pool2d(y2, 3)                                         # [B, 7, 4, 4]
p3 = max_pool2d(relu(conv2d(x, K3, padding=1)), 3)             # [B, 8, 8, 8]
p4 = max_pool2d(tanh(conv2d(x, K4)), 2, stride=1)              # [B, 6, 23, 23]
logits = flatten(p2) @ W
loss cross_entropy(logits, label) + 0.1 * mean(p3) + 0.1 * mean(p4)
output logits
optimizer sgd(lr = 0.1)
)",
                                  "pool_blocks.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  for (int span : {52, 36, 576})
    CHECK(count(loops, fmt::format("over its windows   (pool epilogues; blocks of whole {}-column segments)", span)) == 1);
  CHECK(count(loops, "(pool epilogue)\n") == 6);     // p1's, p2's and p4's max and argmax
  CHECK(count(loops, "argmax over i4, i5 of") == 4);  // and p3's in kernels of their own
  std::string forward = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  CHECK(count(forward, "(pool epilogue)\n") == 2);   // p1's and p2's max
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 3);
  same_bits_on_1_to_3_threads(m);
}

TEST_CASE("a max pool takes the first largest or NaN and of ReLUs by one comparison", "[codegen][fusion]") {
  // A pool's maximum is the first largest of its window, a NaN winning, as
  // PyTorch's max_pool2d and the interpreter's fold of max: of -0 and +0 the
  // first (llvm.maximum, used before, took +0 where the interpreter gave -0).
  // A ReLU's values are never NaN or -0, so for its pool `>` alone picks: no
  // NaN test in the pool's value (forward) or its argmax (grad). The JIT
  // gives the interpreter's bits either way, on windows of NaN, -0, +0, ties.
  for (bool is_relu : {true, false}) {
    const std::string scaled = "x * reshape(s, [3, 1, 1])";
    Model m = Model::compile_source(fmt::format(R"(dim B = 2
input x : [B, 3, 8, 8]
param s : [3]
a = max_pool2d({}, 2)
output a
loss sum(a)
optimizer sgd(lr = 0.1)
)",
                                                is_relu ? "relu(" + scaled + ")" : scaled),
                                    is_relu ? "relu_pool.grad" : "plain_pool.grad");
    REQUIRE(m.ok());
    std::string forward = m.dump(Stage::Llvm, DumpFormat::Text, Entry::Forward);
    std::string grad = m.dump(Stage::Llvm, DumpFormat::Text, Entry::Grad);
    CHECK((count(forward, "fcmp uno") == 0) == is_relu);
    CHECK((count(grad, "fcmp uno") == 0) == is_relu);  // (the argmax for the pool's gradient)

    Tensor x(DType::F32, {2, 3, 8, 8});
    const float nan = std::nanf("");
    for (int64_t i = 0; i < x.numel(); ++i) {
      // Windows of 2 x 2: NaN first, last or alone; -0 beside +0 in either
      // order; ties; negatives only; and plain values.
      const float cycle[] = {nan, 1.0f, -0.0f, 0.0f, 0.0f, -0.0f, -0.0f, -0.0f, 2.0f, 2.0f, -3.0f, -1.0f, 0.5f, nan, -2.0f, 4.0f};
      x.data<float>()[i] = cycle[(i * 7 + i / 8) % 16];
    }
    Tensor sv(DType::F32, {3});
    for (int c = 0; c < 3; ++c) sv.data<float>()[c] = c == 1 ? -1.0f : 1.0f;
    NamedTensors in{{"x", x}};
    Session jit(m), interp(m, {Backend::Interpreter, 0});
    jit.set_params({{"s", sv}});
    interp.set_params({{"s", sv}});
    for (int entry = 0; entry < 2; ++entry) {
      NamedTensors want = entry == 0 ? interp.forward(in) : interp.grad(in);
      NamedTensors got = entry == 0 ? jit.forward(in) : jit.grad(in);
      REQUIRE(want.size() == got.size());
      for (size_t t = 0; t < want.size(); ++t) {
        INFO((is_relu ? "relu, " : "plain, ") << want[t].first);
        const Tensor &w = want[t].second, &g = got[t].second;
        REQUIRE(w.shape() == g.shape());
        int64_t differ = 0;
        for (int64_t j = 0; j < w.numel(); ++j) {
          const double a = w.get(j), b = g.get(j);
          const bool same = std::isnan(a) ? std::isnan(b) : a == b && std::signbit(a) == std::signbit(b);
          differ += same ? 0 : 1;
        }
        CHECK(differ == 0);
      }
    }
  }
}

TEST_CASE("a convolution's padding along both axes is one buffer, zeroed once", "[codegen][fusion]") {
  // padding=[1, 2] pads H, then W: the inner pad is the outer one's, so each
  // padded input is one zero fill and one copy into its middle, at the sum
  // of the two offsets (1 row of 9 columns, 2 columns: 11). The second
  // convolution pads its input's gradient for its own input gradient.
  Model m = Model::compile_source(R"(dim B = 3
input x : [B, 2, 6, 5]
param K : [4, 2, 3, 3] ~ he_uniform
param K2 : [3, 4, 3, 3] ~ he_uniform
y = tanh(conv2d(x, K, padding=[1, 2]))                         # [B, 4, 6, 7]
z = conv2d(y, K2, padding=1)                                   # [B, 3, 6, 7]
loss mean(square(z))
output z
optimizer sgd(lr = 0.1)
)",
                                  "pads.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  INFO(loops);
  size_t fills = 0;
  for (const std::string& k : kernels(loops))
    if (k.size() > 5 && k.compare(k.size() - 5, 5, "] = 0") == 0) ++fills;
  CHECK(fills == 2);  // x's and y's padded copies
  CHECK(count(loops, " + 11] = ") == 1);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 2);
}

TEST_CASE("elementwise loops are marked as touching memory independently", "[codegen][fusion]") {
  // Buffers are offsets into one arena, so LLVM cannot prove that a loop's
  // loads and stores do not overlap and versions every vectorized loop with
  // run-time checks, or leaves it scalar where the strides differ. Loops
  // whose iterations each write their own element and read no other element
  // of the output carry an access group named by llvm.loop.parallel_accesses.
  Model m = Model::compile_source(R"(dim B = 8
input x : [B, 40]
param w : [40] ~ normal(0, 0.5)
h = tanh(x * w) + transpose(reshape(x, [40, B]), [1, 0]) * 0.5
loss mean(square(h))
output h
optimizer adam(lr = 0.01)
)",
                                  "independent.grad");
  REQUIRE(m.ok());
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Text, Entry::TrainStep);
  CHECK(count(ir, "llvm.loop.parallel_accesses") >= 3);
  CHECK(count(ir, "!llvm.access.group") >= 6);
  agrees_with_interpreter(m, 1);
}

TEST_CASE("a batched product with one B for every matrix runs as one product over all their rows", "[codegen][fusion]") {
  // x @ W with x [T, B, E]: T products of B rows, each with the same W,
  // become one of T*B rows that packs W once (24 rows a matrix would have
  // packed it block by block, T times); x @ V with V [T, E, H] (a B per
  // matrix) stays batched.
  Model m = Model::compile_source(R"(dim T = 8
dim B = 24
dim E = 40
dim H = 72
input x : [T, B, E]
input y : [T, B, H]
param W : [E, H] ~ he_uniform
param b : [H] ~ normal(0, 0.1)
param V : [T, E, H] ~ normal(0, 0.2)
h = relu(x @ W + b)
g = tanh(x @ V)
loss mean(square(h - y)) + mean(square(g))
output h
output g
optimizer sgd(lr = 0.1)
)",
                                  "rows.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward);
  INFO(loops);
  CHECK(count(loops, "for i0 < 192, i1 < 72, i2 < 40: ") == 1);  // x @ W
  CHECK(count(loops, "for i0 < 8, i1 < 24, i2 < 72, i3 < 40: ") == 1);  // x @ V
  CHECK(count(loops, "B packed into") == 1);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 2);
  same_bits_on_1_to_3_threads(m);
}

TEST_CASE("a loop's product packs a weight the loop does not change once, at the loop's first step", "[codegen][fusion]") {
  // h @ Wh in a scan's body: Wh is captured, so it is packed at t = 0 only
  // in the forward loop and at t = T - 1 only in the backward loop (reversed,
  // where the product reads Wh.T), not at every step. 72 columns: not whole
  // tiles, so B is packed at all. (xt @ Wx runs before the loop, for all t.)
  Model m = Model::compile_source(R"(dim T = 6
dim B = 16
dim E = 24
dim H = 72
input xs : [T, B, E]
input y : [T, B, H]
param Wx : [E, H] ~ normal(0, 0.3)
param Wh : [H, H] ~ normal(0, 0.15)
fn cell(h, xt) {
    return tanh(xt @ Wx + h @ Wh)
}
hs = scan(cell, broadcast_to(0, [B, H]), xs)
loss mean(square(hs - y))
output hs
optimizer sgd(lr = 0.1)
)",
                                  "rnn.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  CHECK(count(loops, "at the loop's first step") == 2);
  agrees_with_interpreter(m, 1);
  agrees_with_interpreter(m, 2);
  same_bits_on_1_to_3_threads(m);
}
