// Unit tests of grad() and stop_gradient() in the language (SPEC 2.4), and of
// the optimizer statement's names, defaults and options (SPEC 2.5).
#include <catch2/catch.hpp>

#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::analyze_source;
using test::compile;
using test::compile_error;
using test::compile_ok;
using test::output_type;
using test::parse_optimizer;

TEST_CASE("grad: the gradient has the shape of x", "[sema][grad]") {
  Model m = compile_ok(
      "input x : [5, 3]\n"
      "param W : [3, 4]\n"
      "param b : [4]\n"
      "param s : f64[]\n"
      "h = x @ W + b\n"
      "l = mean(h^2)\n"
      "gW = grad(l, W)\n"
      "gb = grad(l, b)\n"
      "gx = grad(l, x)\n"
      "gh = grad(l, h)\n"
      "gs = grad(s * s, s)\n"
      "output gW, gb, gx, gh, gs\n"
      "loss l\n");
  ModelInfo info = m.info();
  CHECK(output_type(info, "gW") == "f32[3, 4]");
  CHECK(output_type(info, "gb") == "f32[4]");
  CHECK(output_type(info, "gx") == "f32[5, 3]");
  CHECK(output_type(info, "gh") == "f32[5, 4]");
  CHECK(output_type(info, "gs") == "f64[]");
}

TEST_CASE("grad: nested grad and grad inside the loss", "[sema][grad]") {
  Model m = compile_ok(
      "input x : [3]\n"
      "g1 = grad(sum(x^3), x)\n"
      "g2 = grad(sum(grad(sum(x^3), x)), x)\n"
      "g3 = grad(sum(g2 * g1), x)\n"
      "output g1, g2, g3\n"
      "param w : [2, 2]\n"
      "loss sum(grad(sum(w^2), w)^2) + sum(g3)\n");
  CHECK(output_type(m.info(), "g2") == "f32[3]");
  CHECK(output_type(m.info(), "g3") == "f32[3]");
  // In a fn, with respect to a parameter of the fn.
  Model f = compile_ok(
      "input x : [4]\n"
      "fn dsq(a) = grad(sum(a * a), a)\n"
      "y = dsq(x)\n"
      "output y\n"
      "loss sum(y)\n");
  CHECK(output_type(f.info(), "y") == "f32[4]");
}

TEST_CASE("grad: misuse is reported", "[sema][grad]") {
  const std::string d = "input x : [3]\ninput i : i32[3]\n";
  compile_error(d + "y = grad(x, x)\nloss sum(x)\n", "grad(e, x) needs a float scalar e, got f32[3]");
  compile_error(d + "y = grad(sum(x), x * 2)\nloss sum(x)\n", "must be a plain name");
  compile_error(d + "y = grad(sum(x), i)\nloss sum(x)\n", "float tensor");
  compile_error(d + "y = grad(sum(x))\nloss sum(x)\n", "missing its argument 'x'");
}

// The node of output `name` in an analyzed model.
const Node& output_node(const ModelIR& m, const std::string& name) {
  for (const NamedNode& o : m.outputs)
    if (o.name == name) return m.graph[o.node];
  FAIL("no output " << name);
  return m.graph[0];
}

// True when `n` is a tensor of zeros: a zero constant, or one broadcast.
bool is_zeros(const Graph& g, const Node& n) {
  if (n.op == Op::Constant) return n.attrs.value == 0;
  return n.op == Op::BroadcastTo && g[n.operands[0]].op == Op::Constant && g[n.operands[0]].attrs.value == 0;
}

TEST_CASE("grad: stop_gradient and comparisons pass no gradient", "[sema][grad]") {
  auto b = analyze_source(
      "param w : [3]\n"
      "param w2 : [2]\n"
      "z_sg = grad(sum(stop_gradient(w)), w)\n"
      "z_cmp = grad(sum(w > 0), w)\n"
      "z_indep = grad(sum(w), w2)\n"
      "ones = grad(sum(w), w)\n"
      "g_sg = grad(sum(stop_gradient(w) * w), w)\n"
      "g_sq = grad(sum(w * w), w)\n"
      "output z_sg, z_cmp, z_indep, ones, g_sg, g_sq\n"
      "loss sum(w)\n");
  INFO(render_all(b->diags));
  REQUIRE(b->model.has_value());
  const ModelIR& m = *b->model;
  CHECK(is_zeros(m.graph, output_node(m, "z_sg")));
  CHECK(is_zeros(m.graph, output_node(m, "z_cmp")));
  CHECK(is_zeros(m.graph, output_node(m, "z_indep")));
  CHECK(output_node(m, "z_indep").shape == make_shape({2}));
  CHECK_FALSE(is_zeros(m.graph, output_node(m, "ones")));
  // d/dw sum(w * w) gets two contributions that are added; with stop_gradient
  // on one factor only one contribution is left.
  CHECK(output_node(m, "g_sq").op == Op::Add);
  CHECK(output_node(m, "g_sg").op != Op::Add);
  CHECK(output_node(m, "g_sg").shape == make_shape({3}));
}

// ---- optimizers ----

std::string optimizer_of(const std::string& stmt) {
  Model m = compile_ok("param w : [3]\nloss sum(w * w)\n" + stmt);
  return m.info().optimizer;
}

TEST_CASE("optimizer: defaults of every optimizer match SPEC 2.5", "[sema][optimizer]") {
  using Opts = std::map<std::string, double>;
  struct Case {
    std::string name;
    std::vector<std::string> keys;
    Opts values;
  };
  const std::vector<Case> cases = {
      {"sgd", {"lr", "momentum", "dampening", "weight_decay", "nesterov"},
       {{"lr", 0.01}, {"momentum", 0}, {"dampening", 0}, {"weight_decay", 0}, {"nesterov", 0}}},
      {"adam", {"lr", "beta1", "beta2", "eps", "weight_decay"},
       {{"lr", 0.001}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0}}},
      {"adamw", {"lr", "beta1", "beta2", "eps", "weight_decay"},
       {{"lr", 0.001}, {"beta1", 0.9}, {"beta2", 0.999}, {"eps", 1e-8}, {"weight_decay", 0.01}}},
      {"rmsprop", {"lr", "alpha", "eps", "weight_decay", "momentum", "centered"},
       {{"lr", 0.01}, {"alpha", 0.99}, {"eps", 1e-8}, {"weight_decay", 0}, {"momentum", 0}, {"centered", 0}}},
      {"adagrad", {"lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"},
       {{"lr", 0.01}, {"lr_decay", 0}, {"weight_decay", 0}, {"initial_accumulator_value", 0}, {"eps", 1e-10}}},
  };
  for (const Case& c : cases) {
    for (const std::string& stmt : {"optimizer " + c.name + "\n", "optimizer " + c.name + "()\n"}) {
      INFO(stmt);
      auto o = parse_optimizer(optimizer_of(stmt));
      CHECK(o.name == c.name);
      CHECK(o.keys == c.keys);
      CHECK(o.options == c.values);
    }
  }
  // No optimizer statement: sgd with its defaults.
  auto o = parse_optimizer(optimizer_of(""));
  CHECK(o.name == "sgd");
  CHECK(o.options == cases[0].values);
}

TEST_CASE("optimizer: options override defaults, true and false are 1 and 0", "[sema][optimizer]") {
  auto o = parse_optimizer(optimizer_of("optimizer sgd(lr = 0.5, momentum = 0.9, nesterov = true)\n"));
  CHECK(o.options["lr"] == 0.5);
  CHECK(o.options["momentum"] == 0.9);
  CHECK(o.options["nesterov"] == 1);
  CHECK(o.options["dampening"] == 0);
  o = parse_optimizer(optimizer_of("optimizer rmsprop(centered = true, alpha = 0.9)\n"));
  CHECK(o.options["centered"] == 1);
  CHECK(o.options["alpha"] == 0.9);
  o = parse_optimizer(optimizer_of("optimizer adamw(weight_decay = 0, beta2 = 0.95)\n"));
  CHECK(o.options["weight_decay"] == 0);
  CHECK(o.options["beta2"] == 0.95);
}

TEST_CASE("optimizer: clip_grad_norm is recorded", "[sema][optimizer]") {
  auto o = parse_optimizer(optimizer_of("optimizer adam(lr = 0.01, clip_grad_norm = 1.5)\n"));
  REQUIRE(o.options.count("clip_grad_norm") == 1);
  CHECK(o.options["clip_grad_norm"] == 1.5);
  CHECK(o.options["lr"] == 0.01);
  o = parse_optimizer(optimizer_of("optimizer sgd(clip_grad_norm = 5)\n"));
  CHECK(o.options["clip_grad_norm"] == 5);
  CHECK(parse_optimizer(optimizer_of("optimizer adam\n")).options.count("clip_grad_norm") == 0);
}

TEST_CASE("optimizer: errors", "[sema][optimizer]") {
  const std::string m = "param w : [3]\nloss sum(w * w)\n";
  compile_error(m + "optimizer lbfgs(lr = 1)\n", "unknown optimizer 'lbfgs'");
  compile_error(m + "optimizer adam(momentum = 0.9)\n", "optimizer 'adam' has no option 'momentum'");
  compile_error(m + "optimizer adam(beta1 = 1)\n", "in [0, 1)");
  compile_error(m + "optimizer sgd(lr = -1)\n", "non-negative");
  compile_error(m + "optimizer sgd(nesterov = 2)\n", "true or false");
  compile_error(m + "optimizer sgd(nesterov = true)\n", "nesterov");
  compile_error(m + "optimizer sgd(0.1)\n", "given by name");
  compile_error(m + "optimizer sgd(clip_grad_norm = 0)\n", "clip_grad_norm must be positive");
  compile_error(m + "optimizer sgd(lr = w)\n", "number literal");
  compile_error(m + "optimizer sgd\noptimizer adam\n", "at most one 'optimizer'");
  // Independent option errors are all reported.
  Model two = compile(m + "optimizer adam(beta1 = 2, foo = 1)\n");
  CHECK(two.diagnostics().size() == 2);
}

}  // namespace
}  // namespace gradc
