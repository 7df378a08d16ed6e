// d(e, x), the derivative of a scalar expression at C++ compile time: its
// type, its value against central finite differences, and, handed to gradc,
// against gradc's own reverse mode on the same expression.
#include <catch2/catch.hpp>
#include <gradc/embed.h>

#include <cmath>
#include <type_traits>

namespace {

using namespace gradc::embed;

constexpr Var<"x"> x;
constexpr Var<"y"> y;

// A function of x and y that uses every rule of d().
auto f() {
  return x * sin(y) + exp(x / y) - pow(x, 3) + log(x * x + 1) + tanh(x * y) + sigmoid(-x) + sqrt(y) -
         cos(x) * square(y) + pow(y, x) / 4 + log1p(y) * rsqrt(x + 2) + stop_gradient(x) * 0;
}

double central(double (*g)(double, double), double x0, double y0, bool wrt_x) {
  const double h = 1e-5;
  return wrt_x ? (g(x0 + h, y0) - g(x0 - h, y0)) / (2 * h) : (g(x0, y0 + h) - g(x0, y0 - h)) / (2 * h);
}

TEST_CASE("d() is an expression type built by the C++ compiler") {
  STATIC_REQUIRE(std::is_same_v<decltype(d(Lit(3), x)), Zero>);
  STATIC_REQUIRE(std::is_same_v<decltype(d(x, x)), One>);
  STATIC_REQUIRE(std::is_same_v<decltype(d(y, x)), Zero>);
  STATIC_REQUIRE(std::is_same_v<decltype(d(x + y, x)), One>);  // 1 + 0 folds to 1
  STATIC_REQUIRE(std::is_same_v<decltype(d(y * 3, x)), Zero>);
  // d(x * x) = 1 * x + x * 1, folded to x + x
  STATIC_REQUIRE(std::is_same_v<decltype(d(x * x, x)), Binary<op::Add, Var<"x">, Var<"x">>>);
  STATIC_REQUIRE(decltype(d(f(), x))::rank == 0);
  // Evaluated at compile time where the functions allow it.
  constexpr double slope = d(x * x * 3 + y, x).eval(x = 2.0, y = 5.0);
  STATIC_REQUIRE(slope == 12.0);
}

TEST_CASE("eval() needs a value for every variable") {
  CHECK_THROWS_AS((x * y).eval(x = 1.0), std::invalid_argument);
  CHECK_THROWS_AS((x * y).eval(x = 1.0, y = 2.0, x = 3.0), std::invalid_argument);
  CHECK((x * y).eval(y = 2.0, x = 1.5) == 3.0);
}

TEST_CASE("d() agrees with central finite differences") {
  auto fx = [](double a, double b) { return f().eval(x = a, y = b); };
  for (auto [x0, y0] : {std::pair{0.7, 1.3}, {1.9, 0.4}, {0.2, 2.5}}) {
    INFO("x = " << x0 << ", y = " << y0);
    double dx = d(f(), x).eval(x = x0, y = y0);
    double dy = d(f(), y).eval(x = x0, y = y0);
    CHECK(dx == Approx(central(fx, x0, y0, true)).epsilon(1e-6));
    CHECK(dy == Approx(central(fx, x0, y0, false)).epsilon(1e-6));
    // Second derivatives are derivatives of derivatives.
    auto dfx = [](double a, double b) { return d(f(), x).eval(x = a, y = b); };
    CHECK(d(d(f(), x), y).eval(x = x0, y = y0) == Approx(central(dfx, x0, y0, false)).epsilon(1e-5));
  }
}

TEST_CASE("d() agrees with gradc's reverse mode, and compiles into a model") {
  const double x0 = 0.7, y0 = 1.3;
  ModelBuilder m("scalar");
  // Scalar f64 params named like the variables: Var<"x"> is the param x in the model.
  m.param("x", f64(), init::constant(x0));
  m.param("y", f64(), init::constant(y0));
  m.loss(f());
  m.metric("dfdx", d(f(), x));  // the compile-time derivative, as gradc graph
  m.metric("dfdy", d(f(), y));
  gradc::Model model = m.compile();
  INFO(gradc::render_all(model.diagnostics()));
  REQUIRE(model.ok());
  gradc::NamedTensors params = model.initial_params();
  auto get = [](const gradc::NamedTensors& ts, const std::string& name) {
    for (const auto& [n, t] : ts)
      if (n == name) return t.get(0);
    FAIL("no tensor " << name);
    return 0.0;
  };
  gradc::NamedTensors g = model.grad({}, params);
  gradc::NamedTensors fw = model.forward({}, params);
  double dx = d(f(), x).eval(x = x0, y = y0), dy = d(f(), y).eval(x = x0, y = y0);
  CHECK(get(g, "loss") == Approx(f().eval(x = x0, y = y0)).epsilon(1e-12));
  CHECK(get(g, "grad.x") == Approx(dx).epsilon(1e-10));
  CHECK(get(g, "grad.y") == Approx(dy).epsilon(1e-10));
  CHECK(get(fw, "metric.dfdx") == Approx(dx).epsilon(1e-10));
  CHECK(get(fw, "metric.dfdy") == Approx(dy).epsilon(1e-10));
}

}  // namespace
