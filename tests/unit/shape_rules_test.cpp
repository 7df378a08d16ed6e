// Shape and dtype rules of the operators and the shape builtins (SPEC 2.3,
// 2.4), checked end to end: a tiny model through compile_source, then the
// type of its output from info().
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::compile_error;
using test::expr_model;
using test::type_of;

// Declarations shared by most cases below.
const std::string kDecls =
    "dim B = 2\n"
    "input x : [2, 3, 4]\n"
    "input m : [3, 4]\n"
    "input v : [4]\n"
    "input w64 : f64[3, 4]\n";

TEST_CASE("shapes: matmul of matrices and vectors", "[shapes][matmul]") {
  const std::string d = "input a : [3, 4]\ninput b : [4, 5]\ninput k : [4]\ninput k3 : [3]\n";
  CHECK(type_of(d, "a @ b") == "f32[3, 5]");
  CHECK(type_of(d, "k @ b") == "f32[5]");
  CHECK(type_of(d, "a @ k") == "f32[3]");
  CHECK(type_of(d, "k @ k") == "f32[]");
  CHECK(type_of(d, "k3 @ a") == "f32[4]");
  CHECK(type_of(d, "a.T @ k3") == "f32[4]");
  CHECK(type_of("input a : f64[2, 2]", "a @ a") == "f64[2, 2]");
}

TEST_CASE("shapes: batched matmul broadcasts leading axes", "[shapes][matmul]") {
  CHECK(type_of("input a : [2, 1, 3, 4]\ninput b : [5, 4, 6]", "a @ b") == "f32[2, 5, 3, 6]");
  CHECK(type_of("input a : [7, 3, 4]\ninput b : [4, 6]", "a @ b") == "f32[7, 3, 6]");
  CHECK(type_of("input a : [3, 4]\ninput b : [7, 4, 6]", "a @ b") == "f32[7, 3, 6]");
  CHECK(type_of("input a : [7, 3, 4]\ninput k : [4]", "a @ k") == "f32[7, 3]");
  CHECK(type_of("input k : [4]\ninput b : [7, 4, 6]", "k @ b") == "f32[7, 6]");
}

TEST_CASE("shapes: matmul errors", "[shapes][matmul]") {
  compile_error(expr_model("input a : [3, 4]\ninput b : [5, 6]", "a @ b"), "inner dimensions 4 and 5 differ");
  compile_error(expr_model("input a : [2, 3, 4]\ninput b : [5, 4, 6]", "a @ b"), "do not broadcast");
  compile_error(expr_model("input a : [3, 4]\ninput s : []", "a @ s"), "rank >= 1");
  compile_error(expr_model("input a : [3, 4]", "a @ 2"), "'@' multiplies tensors");
  compile_error(expr_model("input a : [3, 4]\ninput b : f64[4, 2]", "a @ b"), "cannot matmul f32 and f64");
  auto d = compile_error(expr_model("input a : [3, 4]\ninput b : [5, 6]", "a @ b"), "[3, 4] and [5, 6]");
  // The caret is under the '@' ("y = a @ b" on line 3).
  REQUIRE_FALSE(d.empty());
  CHECK(d[0].line == 3);
  CHECK(d[0].column == 7);
}

TEST_CASE("shapes: reductions over all axes, one axis, negative axes, lists", "[shapes][reduce]") {
  CHECK(type_of(kDecls, "sum(x)") == "f32[]");
  CHECK(type_of(kDecls, "sum(x, axis=1)") == "f32[2, 4]");
  CHECK(type_of(kDecls, "sum(x, axis=-1)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "sum(x, axis=-3)") == "f32[3, 4]");
  CHECK(type_of(kDecls, "sum(x, axis=[0, 2])") == "f32[3]");
  CHECK(type_of(kDecls, "sum(x, axis=[2, 0])") == "f32[3]");
  CHECK(type_of(kDecls, "sum(x, axis=[-1, 0, 1])") == "f32[]");
  CHECK(type_of(kDecls, "mean(x, axis=0)") == "f32[3, 4]");
  CHECK(type_of(kDecls, "max(x, axis=2)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "min(x, axis=-2)") == "f32[2, 4]");
  CHECK(type_of(kDecls, "logsumexp(x, axis=-1)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "logsumexp(x)") == "f32[]");
  CHECK(type_of(kDecls, "sum(w64, axis=0)") == "f64[4]");
}

TEST_CASE("shapes: keepdims keeps reduced axes with size 1", "[shapes][reduce]") {
  CHECK(type_of(kDecls, "sum(x, axis=1, keepdims=true)") == "f32[2, 1, 4]");
  CHECK(type_of(kDecls, "mean(x, axis=[-1, 0], keepdims=true)") == "f32[1, 3, 1]");
  CHECK(type_of(kDecls, "max(x, axis=0, keepdims=true)") == "f32[1, 3, 4]");
  CHECK(type_of(kDecls, "logsumexp(x, axis=2, keepdims=true)") == "f32[2, 3, 1]");
  CHECK(type_of(kDecls, "sum(x, keepdims=true)") == "f32[1, 1, 1]");
  CHECK(type_of(kDecls, "sum(x, axis=1, keepdims=false)") == "f32[2, 4]");
}

TEST_CASE("shapes: reduction errors", "[shapes][reduce]") {
  compile_error(expr_model(kDecls, "sum(x, axis=3)"), "axis 3 is out of range");
  compile_error(expr_model(kDecls, "sum(x, axis=-4)"), "axis -4 is out of range");
  compile_error(expr_model(kDecls, "sum(x, axis=[1, -2])"), "axis 1 is given twice");
  compile_error(expr_model(kDecls, "sum(x, axis=1.5)"), "integer");
  compile_error(expr_model("input i : i32[3]", "sum(i)"), "float");
}

TEST_CASE("shapes: argmax gives i32", "[shapes][reduce]") {
  CHECK(type_of(kDecls, "argmax(x, axis=1)") == "i32[2, 4]");
  CHECK(type_of(kDecls, "argmax(x, axis=-1)") == "i32[2, 3]");
  CHECK(type_of(kDecls, "argmax(x, axis=-1, keepdims=true)") == "i32[2, 3, 1]");
  CHECK(type_of(kDecls, "argmax(w64, axis=0)") == "i32[4]");
  compile_error(expr_model(kDecls, "argmax(x)"), "missing its argument 'axis'");
}

TEST_CASE("shapes: reshape, with one -1 inferred", "[shapes][shape-ops]") {
  CHECK(type_of(kDecls, "reshape(x, [6, 4])") == "f32[6, 4]");
  CHECK(type_of(kDecls, "reshape(x, [6, -1])") == "f32[6, 4]");
  CHECK(type_of(kDecls, "reshape(x, [-1])") == "f32[24]");
  CHECK(type_of(kDecls, "reshape(x, [-1, 2, 3])") == "f32[4, 2, 3]");
  CHECK(type_of(kDecls, "reshape(x, [B, -1])") == "f32[2, 12]");
  CHECK(type_of(kDecls, "reshape(x, [1, 24, 1])") == "f32[1, 24, 1]");
  CHECK(type_of("input s : []", "reshape(s, [1, 1])") == "f32[1, 1]");
  CHECK(type_of("input s : [1, 1]", "reshape(s, [])") == "f32[]");
  compile_error(expr_model(kDecls, "reshape(x, [5, -1])"), "not a multiple of 5");
  compile_error(expr_model(kDecls, "reshape(x, [-1, -1])"), "at most one -1");
  compile_error(expr_model(kDecls, "reshape(x, [5, 5])"), "cannot reshape a tensor of shape [2, 3, 4]");
  compile_error(expr_model(kDecls, "reshape(x, [0, 24])"), "positive");
  compile_error(expr_model(kDecls, "reshape(x, [-2, 12])"), "positive");
  compile_error(expr_model(kDecls, "reshape(x, 24)"), "list of sizes");
}

TEST_CASE("shapes: transpose reverses axes by default, or permutes", "[shapes][shape-ops]") {
  CHECK(type_of(kDecls, "transpose(x)") == "f32[4, 3, 2]");
  CHECK(type_of(kDecls, "transpose(x, [0, 2, 1])") == "f32[2, 4, 3]");
  CHECK(type_of(kDecls, "transpose(x, [2, -3, 1])") == "f32[4, 2, 3]");
  CHECK(type_of(kDecls, "transpose(m)") == "f32[4, 3]");
  CHECK(type_of(kDecls, "transpose(v)") == "f32[4]");
  CHECK(type_of(kDecls, "x.T") == "f32[2, 4, 3]");
  CHECK(type_of(kDecls, "m.T.T") == "f32[3, 4]");
  compile_error(expr_model(kDecls, "transpose(x, [0, 0, 1])"), "not a permutation");
  compile_error(expr_model(kDecls, "transpose(x, [0, 1])"), "not a permutation");
  compile_error(expr_model(kDecls, "transpose(x, [0, 1, 3])"), "out of range");
  compile_error(expr_model(kDecls, "v.T"), "rank >= 2");
}

TEST_CASE("shapes: concat", "[shapes][shape-ops]") {
  const std::string d = "input a : [2, 3]\ninput b : [4, 3]\ninput c : [2, 5]\ninput d64 : f64[2, 3]\n";
  CHECK(type_of(d, "concat([a, b], axis=0)") == "f32[6, 3]");
  CHECK(type_of(d, "concat([a, b])") == "f32[6, 3]");  // axis 0 by default
  CHECK(type_of(d, "concat([a, c, a], axis=-1)") == "f32[2, 11]");
  CHECK(type_of(d, "concat([a], axis=1)") == "f32[2, 3]");
  compile_error(expr_model(d, "concat([a, b], axis=1)"), "differ in another axis");
  compile_error(expr_model(d, "concat([a, d64], axis=0)"), "dtype");
  compile_error(expr_model(d, "concat([a, b], axis=2)"), "out of range");
  compile_error(expr_model(d, "concat([], axis=0)"), "non-empty list");
}

TEST_CASE("shapes: slice, with negative start and stop", "[shapes][shape-ops]") {
  CHECK(type_of(kDecls, "slice(x, axis=1, start=-2)") == "f32[2, 2, 4]");
  CHECK(type_of(kDecls, "slice(x, axis=-1, start=1, stop=3)") == "f32[2, 3, 2]");
  CHECK(type_of(kDecls, "slice(x, axis=0, stop=-1)") == "f32[1, 3, 4]");
  CHECK(type_of(kDecls, "slice(x, axis=2)") == "f32[2, 3, 4]");
  CHECK(type_of(kDecls, "slice(v, axis=0, start=-4, stop=4)") == "f32[4]");
  compile_error(expr_model(kDecls, "slice(x, axis=1, start=2, stop=1)"), "empty");
  compile_error(expr_model(kDecls, "slice(x, axis=1, start=10)"), "outside axis 1 of size 3");
  compile_error(expr_model(kDecls, "slice(x, axis=1, start=-4)"), "outside axis 1 of size 3");
  compile_error(expr_model(kDecls, "slice(x, axis=3)"), "out of range");
}

TEST_CASE("shapes: broadcast_to", "[shapes][shape-ops]") {
  CHECK(type_of(kDecls, "broadcast_to(v, [3, 4])") == "f32[3, 4]");
  CHECK(type_of(kDecls, "broadcast_to(v, [B, 5, 4])") == "f32[2, 5, 4]");
  CHECK(type_of(kDecls, "broadcast_to(sum(v, keepdims=true), [2, 7])") == "f32[2, 7]");
  CHECK(type_of(kDecls, "broadcast_to(m, [3, 4])") == "f32[3, 4]");
  compile_error(expr_model(kDecls, "broadcast_to(v, [3, 5])"), "cannot broadcast a tensor of shape [4] to [3, 5]");
  compile_error(expr_model(kDecls, "broadcast_to(m, [4])"), "cannot broadcast");
}

TEST_CASE("shapes: one_hot and cast", "[shapes]") {
  const std::string d = "dim C = 7\ninput labels : i32[5]\ninput f : [5]\n";
  CHECK(type_of(d, "one_hot(labels, 10)") == "f32[5, 10]");
  CHECK(type_of(d, "one_hot(labels, C)") == "f32[5, 7]");
  compile_error(expr_model(d, "one_hot(f, 10)"), "one_hot needs i32 class ids");
  compile_error(expr_model(d, "one_hot(labels, 0)"), "positive class count");
  CHECK(type_of(d, "cast(f, f64)") == "f64[5]");
  CHECK(type_of(d, "cast(cast(f, f64), f32)") == "f32[5]");
  CHECK(type_of(d, "cast(labels, f32)") == "f32[5]");
  CHECK(type_of(d, "cast(labels, f64)") == "f64[5]");
  compile_error(expr_model(d, "cast(f, i32)"), "cast to i32 is not supported");
  compile_error(expr_model(d, "cast(f, f16)"), "target dtype");
}

TEST_CASE("shapes: softmax and log_softmax keep the shape", "[shapes][nn]") {
  CHECK(type_of(kDecls, "softmax(x)") == "f32[2, 3, 4]");
  CHECK(type_of(kDecls, "softmax(x, axis=0)") == "f32[2, 3, 4]");
  CHECK(type_of(kDecls, "log_softmax(x, axis=1)") == "f32[2, 3, 4]");
  CHECK(type_of(kDecls, "log_softmax(v)") == "f32[4]");
  CHECK(type_of(kDecls, "softmax(w64, axis=-1)") == "f64[3, 4]");
  compile_error(expr_model(kDecls, "softmax(x, axis=3)"), "out of range");
  compile_error(expr_model("input s : []", "softmax(s)"), "rank >= 1");
}

// ---- messages that name the right values (SPEC 5) ----

TEST_CASE("shapes: an axis of a scalar is reported without a nonsense range", "[shapes][messages]") {
  // A scalar has no axes; "(valid: 0 to -1)" names no valid axis.
  auto d = compile_error(expr_model("input s : []", "sum(s, axis=0)"), "axis 0 is out of range");
  for (const Diagnostic& e : d) CHECK(e.message.find("0 to -1") == std::string::npos);
}

TEST_CASE("shapes: concat of a literal and a tensor names the shapes", "[shapes][messages]") {
  // The literal becomes a scalar; the error must be about joining a scalar
  // with a [2, 3] tensor, not "axis out of range for rank 0".
  auto d = compile_error(expr_model("input a : [2, 3]", "concat([1, a])"), "concat");
  for (const Diagnostic& e : d) CHECK(e.message.find("axis out of range for rank 0") == std::string::npos);
}

TEST_CASE("shapes: reshape with a huge -1 product does not print an internal sentinel", "[shapes][messages]") {
  // 2^20 * 2^20 * 2^20 overflows the element limit; the message must not
  // claim "not a multiple of 1099511627777" (2^40 + 1, an internal value).
  auto d = compile_error(expr_model("dim C = 1048576\ninput a : [3]", "reshape(a, [C, C, C, -1])"),
                         "cannot reshape");
  for (const Diagnostic& e : d) CHECK(e.message.find("1099511627777") == std::string::npos);
}

}  // namespace
}  // namespace gradc
