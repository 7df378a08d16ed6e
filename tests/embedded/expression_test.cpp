// Expression templates: the operation tree is the C++ type, nodes hold only
// values (nothing to free, so nothing allocated while an expression is
// written), ranks follow the language's rules, and a statement flattens its
// expression into the definition the way the parser would build it.
#include <catch2/catch.hpp>
#include <gradc/embed.h>

#include <type_traits>

namespace {

using namespace gradc::embed;

TEST_CASE("an expression's tree is its type, and its nodes own nothing") {
  ModelBuilder m("t");
  Dim B = m.dim("B", 4);
  Tensor<2> x = m.input("x", shape(B, 3));
  Tensor<2> W = m.param("W", shape(3, 5));
  Tensor<1> b = m.param("b", shape(5));
  auto e = tanh(x % W + b);
  using E = decltype(e);
  STATIC_REQUIRE(std::is_same_v<E, Call<2, "tanh", Binary<op::Add, Binary<op::MatMul, Tensor<2>, Tensor<2>>, Tensor<1>>>>);
  STATIC_REQUIRE(std::is_trivially_destructible_v<E>);
  auto big = sum(softmax(e, axis(-1)) * 2 - where(e > 0, e, 0.1 * e), axis(1), keepdims<true>);
  STATIC_REQUIRE(std::is_trivially_destructible_v<decltype(big)>);
  size_t before = m.def().exprs.size();
  (void)big;
  CHECK(m.def().exprs.size() == before);  // nothing recorded until a statement takes it
}

TEST_CASE("ranks follow the language's rules") {
  ModelBuilder m("t");
  auto s = m.input("s", shape());
  auto v = m.input("v", shape(3));
  auto M = m.input("M", shape(2, 3));
  auto T = m.input("T", shape(5, 2, 3));
  auto labels = m.input("labels", i32(2));
  STATIC_REQUIRE(decltype(v % M.T())::rank == 1);     // [k] @ [k, n]
  STATIC_REQUIRE(decltype(M % v)::rank == 1);         // [m, k] @ [k]
  STATIC_REQUIRE(decltype(v % v)::rank == 0);
  STATIC_REQUIRE(decltype(T % M.T())::rank == 3);     // batched
  STATIC_REQUIRE(decltype(M + s)::rank == 2);         // broadcasting
  STATIC_REQUIRE(decltype(sum(T))::rank == 0);
  STATIC_REQUIRE(decltype(sum(T, axis(0)))::rank == 2);
  STATIC_REQUIRE(decltype(sum(T, axis(0), keepdims<true>))::rank == 3);
  STATIC_REQUIRE(decltype(argmax(M, axis(1)))::rank == 1);
  STATIC_REQUIRE(decltype(reshape(T, shape(-1)))::rank == 1);
  STATIC_REQUIRE(decltype(broadcast_to(v, shape(4, 2, 3)))::rank == 3);
  STATIC_REQUIRE(decltype(transpose(T, perm(2, 0, 1)))::rank == 3);
  STATIC_REQUIRE(decltype(one_hot(labels, 3))::rank == 2);
  STATIC_REQUIRE(decltype(concat(list(M, M), axis(0)))::rank == 2);
  STATIC_REQUIRE(decltype(mse(M, M))::rank == 0);
  STATIC_REQUIRE(decltype(grad(sum(M * M), M))::rank == 2);
  Tensor<> any = T;  // the dynamic rank holds any rank
  STATIC_REQUIRE(decltype(any + M)::rank == kDynamic);
  (void)s;
}

TEST_CASE("a statement flattens its expression as the parser would build it") {
  ModelBuilder m("t");
  auto x = m.input("x", shape(2, 3));
  const unsigned line = __LINE__ + 1;
  m.let("y", -pow(x, 2) + sum(x, axis(-1), keepdims<true>) / 16);
  const ModelDef& def = m.def();
  REQUIRE(def.stmts.size() == 2);
  const DefStmt& let = def.stmts[1];
  CHECK(let.kind == DefStmt::Kind::Let);
  CHECK(let.name == "y");
  const DefExpr& add = def.exprs.at(static_cast<size_t>(let.value));
  CHECK(add.kind == DefExpr::Kind::Binary);
  CHECK(add.text == "+");
  const DefExpr& neg = def.exprs.at(static_cast<size_t>(add.args[0]));
  CHECK(neg.kind == DefExpr::Kind::Unary);  // -x^2 is -(x^2)
  CHECK(def.exprs.at(static_cast<size_t>(neg.args[0])).text == "^");
  const DefExpr& div = def.exprs.at(static_cast<size_t>(add.args[1]));
  CHECK(div.text == "/");
  const DefExpr& sum_call = def.exprs.at(static_cast<size_t>(div.args[0]));
  CHECK(sum_call.kind == DefExpr::Kind::Call);
  CHECK(sum_call.text == "sum");
  REQUIRE(sum_call.kwargs.size() == 2);
  CHECK(sum_call.kwargs[0].first == "axis");
  const DefExpr& axis_value = def.exprs.at(static_cast<size_t>(sum_call.kwargs[0].second));
  CHECK(axis_value.kind == DefExpr::Kind::Unary);  // -1 is unary minus of 1, as parsed
  CHECK(def.exprs.at(static_cast<size_t>(axis_value.args[0])).int_value == 1);
  const DefExpr& sixteen = def.exprs.at(static_cast<size_t>(div.args[1]));
  CHECK(sixteen.is_int);
  CHECK(sixteen.int_value == 16);
  CHECK(add.loc.line() == line);
  CHECK(std::string(add.loc.file_name()) == __FILE__);
}

}  // namespace
