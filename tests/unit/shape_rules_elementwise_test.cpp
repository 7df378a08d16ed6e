// Shape and dtype rules of elementwise operators, comparisons, literals,
// losses, and dims (SPEC 2.2-2.4), checked end to end through compile_source.
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::compile;
using test::compile_error;
using test::compile_ok;
using test::expr_model;
using test::output_type;
using test::type_of;

const std::string kDecls =
    "input a : [2, 3]\n"
    "input r : [3]\n"
    "input c : [2, 1]\n"
    "input s : []\n"
    "input w : f64[3]\n"
    "input i : i32[3]\n"
    "input j : i32[2, 1]\n";

TEST_CASE("elementwise: NumPy broadcasting", "[shapes][elementwise]") {
  CHECK(type_of(kDecls, "a + r") == "f32[2, 3]");
  CHECK(type_of(kDecls, "r * a") == "f32[2, 3]");
  CHECK(type_of(kDecls, "c - r") == "f32[2, 3]");
  CHECK(type_of(kDecls, "a / s") == "f32[2, 3]");
  CHECK(type_of(kDecls, "s ^ s") == "f32[]");
  CHECK(type_of(kDecls, "-c") == "f32[2, 1]");
  CHECK(type_of(kDecls, "maximum(a, c)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "minimum(r, s)") == "f32[3]");
  CHECK(type_of(kDecls, "where(c > 0, a, r)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "where(r, c, s)") == "f32[2, 3]");
}

TEST_CASE("elementwise: unary builtins keep shape and dtype", "[shapes][elementwise]") {
  for (std::string f : {"exp", "log", "log1p", "sqrt", "rsqrt", "abs", "sign", "square", "sin", "cos", "tanh",
                        "sigmoid", "relu", "silu", "softplus", "gelu", "leaky_relu", "elu", "stop_gradient"}) {
    INFO(f);
    CHECK(type_of(kDecls, f + "(a)") == "f32[2, 3]");
    CHECK(type_of(kDecls, f + "(w)") == "f64[3]");
  }
  CHECK(type_of(kDecls, "leaky_relu(a, slope=0.2)") == "f32[2, 3]");
  CHECK(type_of(kDecls, "elu(a, alpha=0.5)") == "f32[2, 3]");
  compile_error(expr_model(kDecls, "exp(i)"), "float");
}

TEST_CASE("elementwise: incompatible shapes name both shapes", "[shapes][elementwise]") {
  auto d = compile_error(expr_model("input p : [2, 3]\ninput q : [4]", "p + q"), "cannot add tensors of shapes [2, 3] and [4]");
  REQUIRE_FALSE(d.empty());
  CHECK(d[0].line == 3);
  CHECK(d[0].column == 7);  // "y = p + q": the '+'
  // Notes say where each named operand was declared, with its shape.
  REQUIRE(d[0].notes.size() == 2);
  CHECK(d[0].notes[0].message == "'p' declared here with shape [2, 3]");
  CHECK(d[0].notes[1].line == 2);
  compile_error(expr_model(kDecls, "a * c.T"), "cannot multiply tensors of shapes [2, 3] and [1, 2]");
}

TEST_CASE("elementwise: named dims show in messages", "[shapes][elementwise]") {
  compile_error(expr_model("dim B = 64\ninput p : [B, 8]\ninput q : [4]", "p + q"),
                "cannot add tensors of shapes [B=64, 8] and [4]");
}

TEST_CASE("comparisons give float masks", "[shapes][compare]") {
  CHECK(type_of(kDecls, "a < r") == "f32[2, 3]");
  CHECK(type_of(kDecls, "a >= c") == "f32[2, 3]");
  CHECK(type_of(kDecls, "w == w") == "f64[3]");
  CHECK(type_of(kDecls, "w != 0") == "f64[3]");
  // i32 operands give an f32 mask.
  CHECK(type_of(kDecls, "i == j") == "f32[2, 3]");
  CHECK(type_of(kDecls, "i > 2") == "f32[3]");
  CHECK(type_of(kDecls, "0 <= i") == "f32[3]");
  compile_error(expr_model(kDecls, "i < 0.5"), "non-integer");
  compile_error(expr_model(kDecls, "i < a"), "cast");
}

TEST_CASE("a literal takes the float dtype of its neighbour", "[shapes][dtype]") {
  CHECK(type_of(kDecls, "0.5 * w") == "f64[3]");
  CHECK(type_of(kDecls, "w * 0.5") == "f64[3]");
  CHECK(type_of(kDecls, "1 - w") == "f64[3]");
  CHECK(type_of(kDecls, "w ^ 2") == "f64[3]");
  CHECK(type_of(kDecls, "2 ^ w") == "f64[3]");
  CHECK(type_of(kDecls, "w / 3 + 1") == "f64[3]");
  CHECK(type_of(kDecls, "maximum(w, 0)") == "f64[3]");
  CHECK(type_of(kDecls, "minimum(1, w)") == "f64[3]");
  CHECK(type_of(kDecls, "where(w > 0, w, 0)") == "f64[3]");
  CHECK(type_of(kDecls, "0.5 * a") == "f32[2, 3]");
  CHECK(type_of(kDecls, "(1 + 2) * w") == "f64[3]");
  // A lone number becomes an f32 scalar.
  CHECK(type_of(kDecls, "2.5") == "f32[]");
  CHECK(type_of(kDecls, "-3 * 2") == "f32[]");
}

TEST_CASE("mixed f32 and f64 is an error, and so is i32 arithmetic", "[shapes][dtype]") {
  compile_error(expr_model(kDecls, "r + w"), "cast");
  compile_error(expr_model(kDecls, "maximum(r, w)"), "cast");
  compile_error(expr_model(kDecls, "r @ w"), "f64");
  compile_error(expr_model(kDecls, "i + 1"), "i32");
  compile_error(expr_model(kDecls, "i * i"), "i32");
  compile_error(expr_model(kDecls, "-i"), "i32");
  CHECK(type_of(kDecls, "cast(r, f64) + w") == "f64[3]");
}

TEST_CASE("every loss builtin gives a scalar", "[shapes][loss]") {
  const std::string d =
      "input p : [5, 3]\ninput t : [5, 3]\ninput ids : i32[5]\ninput p64 : f64[5, 3]\ninput t64 : f64[5, 3]\n";
  CHECK(type_of(d, "mse(p, t)") == "f32[]");
  CHECK(type_of(d, "bce(sigmoid(p), t)") == "f32[]");
  CHECK(type_of(d, "bce_with_logits(p, t)") == "f32[]");
  CHECK(type_of(d, "cross_entropy(p, ids)") == "f32[]");
  CHECK(type_of(d, "cross_entropy(p, softmax(t))") == "f32[]");
  CHECK(type_of(d, "mse(p64, t64)") == "f64[]");
  CHECK(type_of(d, "cross_entropy(p64, ids)") == "f64[]");
}

TEST_CASE("loss builtins check their operands", "[shapes][loss]") {
  const std::string d = "input p : [5, 3]\ninput t : [5, 4]\ninput ids : i32[4]\ninput v : [5]\n";
  compile_error(expr_model(d, "mse(p, t)"), "same shape");
  compile_error(expr_model(d, "cross_entropy(p, ids)"), "class ids must have shape [5]");
  compile_error(expr_model(d, "cross_entropy(v, ids)"), "[N, C]");
  compile_error(expr_model(d, "cross_entropy(p, t)"), "class probabilities");
}

TEST_CASE("the loss must be a float scalar", "[shapes][loss]") {
  compile_error("input x : [3]\nloss x\n", "the loss must be a float scalar, got f32[3]");
  compile_error("input x : [3, 2]\nloss argmax(x, axis=0) == 1\n", "the loss must be a float scalar");
  Model m = compile_ok("input x : f64[3]\nloss sum(x)\n");
  CHECK(m.ok());
}

TEST_CASE("dims are numbers in expressions", "[shapes][dims]") {
  const std::string src =
      "dim B = 64\n"
      "input x : [B, 3]\n"
      "y = sum(x) / B\n"
      "output y\n"
      "loss y\n";
  Model m = compile_ok(src);
  CHECK(output_type(m.info(), "y") == "f32[]");
  // The dim's bound value is the constant in the graph (overrides included).
  CHECK(m.dump(Stage::Graph).find("= const 64 ") != std::string::npos);
  CompileOptions o;
  o.dims = {{"B", 5}};
  Model m5 = compile_ok(src, o);
  CHECK(m5.dump(Stage::Graph).find("= const 5 ") != std::string::npos);
  CHECK(m5.dump(Stage::Graph).find("const 64") == std::string::npos);
  CHECK(type_of("dim B = 4\ninput w : f64[3]", "w * B") == "f64[3]");
}

TEST_CASE("dim overrides change shapes", "[shapes][dims]") {
  const std::string src =
      "dim B = 64\n"
      "dim H = 8\n"
      "input x : [B, 3]\n"
      "param W : [3, H]\n"
      "y = x @ W\n"
      "output y\n"
      "loss mean(y)\n";
  Model d = compile_ok(src);
  CHECK(output_type(d.info(), "y") == "f32[64, 8]");
  CompileOptions o;
  o.dims = {{"B", 7}, {"H", 2}};
  Model m = compile_ok(src, o);
  ModelInfo info = m.info();
  CHECK(output_type(info, "y") == "f32[7, 2]");
  REQUIRE(info.inputs.size() == 1);
  CHECK(info.inputs[0].shape == std::vector<int64_t>{7, 3});
  REQUIRE(info.params.size() == 1);
  CHECK(info.params[0].shape == std::vector<int64_t>{3, 2});
  CHECK(info.dims == std::vector<std::pair<std::string, int64_t>>{{"B", 7}, {"H", 2}});
  CHECK(m.dump(Stage::Graph).find("f32[B=7, H=2]") != std::string::npos);
}

TEST_CASE("an unknown or non-positive dim override is an options error", "[shapes][dims]") {
  const std::string src = "dim B = 4\ninput x : [B]\nloss sum(x)\n";
  CompileOptions o;
  o.dims = {{"Q", 3}};
  Model m = compile(src, o);
  REQUIRE_FALSE(m.ok());
  CHECK(m.options_error());
  REQUIRE_FALSE(m.diagnostics().empty());
  CHECK(m.diagnostics()[0].message.find("no dim 'Q'") != std::string::npos);
  CHECK(m.diagnostics()[0].message.find("B") != std::string::npos);  // lists the known dims
  o.dims = {{"B", 0}};
  Model z = compile(src, o);
  CHECK_FALSE(z.ok());
  CHECK(z.options_error());
  // A model error is not an options error.
  Model bad = compile("dim B = 4\ninput x : [B]\nloss x\n");
  CHECK_FALSE(bad.ok());
  CHECK_FALSE(bad.options_error());
  CHECK_FALSE(compile_ok(src).options_error());
}

}  // namespace
}  // namespace gradc
