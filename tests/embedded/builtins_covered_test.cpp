// Every builtin of the language has a C++ function in the embedded front end
// (include/gradc/embed_*.h), or an entry in kNotEmbedded saying why not.
//
// The list below names each covered builtin once; for each, a generic lambda
// calls gradc::embed::NAME, a qualified name that the compiler looks up where
// the lambda is written, so a name the headers lack does not compile. The
// test then compares the list with the front end's builtin table (built from
// compiler/ir/ops.def), so a new DSL builtin fails here until it is embedded.
#include <catch2/catch.hpp>
#include <gradc/embed.h>
#include <gradc/session.h>

#include <map>
#include <set>
#include <string>

#include "compiler/frontend/sema_impl.h"

namespace {

#define GRADC_EMBEDDED_BUILTINS(X)                                                                      \
  X(exp) X(log) X(log1p) X(sqrt) X(rsqrt) X(abs) X(sign) X(sin) X(cos) X(tanh) X(sigmoid) X(softplus)   \
  X(stop_gradient) X(maximum) X(minimum) X(square) X(relu) X(silu) X(gelu) X(leaky_relu) X(elu)         \
  X(where) X(sum) X(mean) X(max) X(min) X(logsumexp) X(argmax) X(reshape) X(transpose) X(concat)        \
  X(slice) X(broadcast_to) X(cast) X(softmax) X(log_softmax) X(one_hot) X(mse) X(bce)                   \
  X(bce_with_logits) X(cross_entropy) X(grad) X(jvp) X(jacobian) X(conv1d) X(conv2d) X(max_pool1d)   \
  X(max_pool2d) X(avg_pool1d) X(avg_pool2d) X(flatten) X(embedding) X(dropout) X(layer_norm) X(batch_norm) X(scan)

#define GRADC_PROBE(NAME) \
  [[maybe_unused]] constexpr auto probe_##NAME = [](const auto&... a) { return gradc::embed::NAME(a...); };
GRADC_EMBEDDED_BUILTINS(GRADC_PROBE)
#undef GRADC_PROBE

// Builtins the embedded front end deliberately lacks: name -> why.
const std::map<std::string, std::string> kNotEmbedded = {};

// A C++ model and its text twin print the same graph, gradient graph and
// optimized graph once positions are hidden.
void same_dumps(const gradc::Model& text, const gradc::Model& cpp) {
  for (gradc::Stage stage : {gradc::Stage::Graph, gradc::Stage::Grad, gradc::Stage::Opt}) {
    INFO("stage " << static_cast<int>(stage));
    CHECK(text.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, gradc::Locations::Hide) ==
          cpp.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, gradc::Locations::Hide));
  }
}

TEST_CASE("every builtin of the language has an embedded C++ function") {
  std::set<std::string> embedded = {
#define GRADC_NAME(NAME) #NAME,
      GRADC_EMBEDDED_BUILTINS(GRADC_NAME)
#undef GRADC_NAME
  };
  std::set<std::string> builtins;
  for (std::string_view n : gradc::builtin_names()) builtins.emplace(n);
  for (const std::string& n : builtins) {
    INFO("builtin '" << n << "': add a function to include/gradc/embed_builtins.h and X(" << n
                     << ") to this test, or an entry in kNotEmbedded saying why not");
    CHECK((embedded.count(n) + kNotEmbedded.count(n)) == 1);
  }
  for (const std::string& n : embedded) {
    INFO("'" << n << "' is listed as embedded but is no builtin of the language");
    CHECK(builtins.count(n) == 1);
  }
  for (const auto& [n, why] : kNotEmbedded) {
    INFO("kNotEmbedded: '" << n << "'");
    CHECK(builtins.count(n) == 1);
    CHECK(!why.empty());
  }
}

// jacobian() is the one builtin whose result rank adds its operands' ranks,
// and the one that leaves a remark in the graph dumps: the C++ model prints
// the text model's graph, remarks included, once positions are hidden.
TEST_CASE("embedded jacobian: rank e ++ x, and the dumps of the text model") {
  using namespace gradc::embed;
  gradc::Model text = gradc::Model::compile_source(
      "dim B = 4\n"
      "input x : [B, 3]\n"
      "param W : [3, 2]\n"
      "param b : [2]\n"
      "h = tanh(x @ W + b)\n"
      "jb = jacobian(h, b)\n"
      "jW = jacobian(sum(h, axis=1), W)\n"
      "loss mean(jb) + mean(jW)\n",
      "jac.grad");
  REQUIRE(text.ok());
  ModelBuilder m("jac");
  Dim B = m.dim("B", 4);
  auto x = m.input("x", shape(B, 3));
  auto W = m.param("W", shape(3, 2));
  auto b = m.param("b", shape(2));
  auto h = m.let("h", tanh(x % W + b));
  auto jb = m.let("jb", jacobian(h, b));
  auto jW = m.let("jW", jacobian(sum(h, axis(1)), W));
  STATIC_REQUIRE(decltype(jb)::rank == 3);
  STATIC_REQUIRE(decltype(jW)::rank == 3);
  m.loss(mean(jb) + mean(jW));
  gradc::Model cpp = m.compile();
  INFO(gradc::render_all(cpp.diagnostics()));
  REQUIRE(cpp.ok());
  std::string shown = text.dump(gradc::Stage::Graph);
  CHECK(shown.find("\n# @6:6 jacobian: forward accumulation, 2 directional derivatives") != std::string::npos);
  CHECK(shown.find("\n# @7:6 jacobian: reverse accumulation, 4 gradients") != std::string::npos);
  same_dumps(text, cpp);
  for (gradc::Stage stage : {gradc::Stage::Graph, gradc::Stage::Grad, gradc::Stage::Opt})
    CHECK(cpp.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, gradc::Locations::Hide)
              .find("\n# jacobian: forward accumulation, 2 directional derivatives") != std::string::npos);
}

// embedding and dropout: ranks, and the same graphs as the text model.
TEST_CASE("embedded embedding and dropout: rank ids ++ [D] and x's, and the dumps of the text model") {
  using namespace gradc::embed;
  gradc::Model text = gradc::Model::compile_source(
      "input ids : i32[4, 3]\n"
      "param E : [10, 5]\n"
      "e = dropout(embedding(ids, E), 0.25)\n"
      "loss mean(dropout(e))\n",
      "lookup.grad");
  REQUIRE(text.ok());
  ModelBuilder m("lookup");
  auto ids = m.input("ids", i32(4, 3));
  auto E = m.param("E", shape(10, 5));
  auto e = m.let("e", dropout(embedding(ids, E), 0.25));
  STATIC_REQUIRE(decltype(e)::rank == 3);
  STATIC_REQUIRE(decltype(dropout(E))::rank == 2);
  m.loss(mean(dropout(e)));
  gradc::Model cpp = m.compile();
  INFO(gradc::render_all(cpp.diagnostics()));
  REQUIRE(cpp.ok());
  same_dumps(text, cpp);
}

// scan with a C++ fn: the rank of the stacked carries, and the same graphs
// (the loop's body included) as the text model, for one xs and for a list.
TEST_CASE("embedded scan: a fn of the model as the step, and the dumps of the text model") {
  using namespace gradc::embed;
  gradc::Model text = gradc::Model::compile_source(
      "input x : [5, 3, 4]\n"
      "input m : [3, 5, 1]\n"
      "param W : [4, 6]\n"
      "param U : [6, 6]\n"
      "param h0 : [3, 6]\n"
      "fn cell(h, xt) = tanh(xt @ W + h @ U)\n"
      "fn masked(h, xt, mt) = mt * cell(h, xt) + (1 - mt) * h\n"
      "hs = scan(cell, h0, x)\n"
      "gs = scan(masked, h0, [transpose(x, [1, 0, 2]), m], axis=1, reverse=true, checkpoint=2)\n"
      "loss mean(hs * hs) + mean(gs)\n",
      "rnn.grad");
  REQUIRE(text.ok());
  ModelBuilder m("rnn");
  auto x = m.input("x", shape(5, 3, 4));
  auto mask = m.input("m", shape(3, 5, 1));
  auto W = m.param("W", shape(4, 6));
  auto U = m.param("U", shape(6, 6));
  auto h0 = m.param("h0", shape(3, 6));
  auto cell = m.fn("cell", {"h", "xt"}, [&](Tensor<> h, Tensor<> xt) { return tanh(xt % W + h % U); });
  auto masked = m.fn("masked", {"h", "xt", "mt"},
                     [&](Tensor<> h, Tensor<> xt, Tensor<> mt) { return mt * cell(h, xt) + (1 - mt) * h; });
  auto hs = m.let("hs", scan(cell, h0, x));
  STATIC_REQUIRE(decltype(hs)::rank == 3);
  auto gs = m.let("gs", scan(masked, h0, list(transpose(x, perm(1, 0, 2)), mask),
                             {.axis = 1, .reverse = true, .checkpoint = 2}));
  m.loss(mean(hs * hs) + mean(gs));
  gradc::Model cpp = m.compile();
  INFO(gradc::render_all(cpp.diagnostics()));
  REQUIRE(cpp.ok());
  same_dumps(text, cpp);
}

}  // namespace
