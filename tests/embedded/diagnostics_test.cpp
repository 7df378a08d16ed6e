// Errors that only gradc can find (sizes, dtypes, names) are diagnostics at
// the C++ file and line that wrote the expression.
#include <catch2/catch.hpp>

#include <fmt/format.h>
#include <gradc/embed.h>

namespace {

using namespace gradc::embed;

TEST_CASE("a shape error points at the C++ line of the expression") {
  ModelBuilder m("bad");
  auto x = m.input("x", shape(4, 3));
  auto b = m.param("b", shape(5));
  const int line = __LINE__ + 1;
  auto h = m.let("h", x + b);
  m.loss(sum(h));
  gradc::Model model = m.compile();
  REQUIRE_FALSE(model.ok());
  REQUIRE(model.diagnostics().size() >= 1);
  const gradc::Diagnostic& d = model.diagnostics()[0];
  INFO(gradc::render_all(model.diagnostics()));
  CHECK(d.file == __FILE__);
  CHECK(d.line == line);
  CHECK(d.message.find("cannot add tensors of shapes [4, 3] and [5]") != std::string::npos);
  CHECK(d.source_line.find("auto h = m.let(\"h\", x + b);") != std::string::npos);
  REQUIRE(d.notes.size() == 2);
  CHECK(d.notes[0].line == line - 3);  // 'x' declared here
  CHECK(d.notes[1].line == line - 2);  // 'b' declared here
  CHECK(d.notes[1].message == "'b' declared here with shape [5]");
  // (fmt, not std::string's operator+: GCC 12 warned -Warray-bounds, falsely, in that chain)
  CHECK(d.render().rfind(fmt::format("{}:{}:", __FILE__, line), 0) == 0);
}

TEST_CASE("a builtin's error points at the line of its call") {
  ModelBuilder m("bad");
  auto x = m.input("x", shape(4, 3));
  auto W = m.param("W", shape(4, 3));
  const int line = __LINE__ + 2;
  m.loss(sum(
      x % W));  // [4, 3] @ [4, 3]
  gradc::Model model = m.compile();
  REQUIRE_FALSE(model.ok());
  INFO(gradc::render_all(model.diagnostics()));
  CHECK(model.diagnostics()[0].line == line);
  CHECK(model.diagnostics()[0].file == __FILE__);
}

TEST_CASE("model-wide errors point at the ModelBuilder") {
  const int line = __LINE__ + 1;
  ModelBuilder m("no_loss");
  auto x = m.input("x", shape(2));
  m.output(x);
  gradc::Model model = m.compile();
  REQUIRE_FALSE(model.ok());
  INFO(gradc::render_all(model.diagnostics()));
  CHECK(model.diagnostics()[0].message.find("no 'loss' statement") != std::string::npos);
  CHECK(model.diagnostics()[0].line == line);
}

TEST_CASE("option errors are the same as for text models") {
  ModelBuilder m("opts");
  Dim B = m.dim("B", 2);
  auto x = m.input("x", shape(B));
  m.loss(sum(x));
  gradc::CompileOptions opts;
  opts.dims = {{"Q", 3}};
  gradc::Model model = m.compile(opts);
  REQUIRE_FALSE(model.ok());
  CHECK(model.options_error());
  CHECK(model.diagnostics()[0].message == "--set Q=3: the model declares no dim 'Q' (its dims: B)");
}

TEST_CASE("a hand-written definition without locations gives diagnostics without them") {
  gradc::embed::ModelDef def;
  def.name = "gone";
  def.loc = std::source_location::current();
  gradc::embed::DefExpr e;
  e.kind = gradc::embed::DefExpr::Kind::Name;
  e.text = "nothing";
  def.exprs.push_back(e);
  gradc::embed::DefStmt loss;
  loss.kind = gradc::embed::DefStmt::Kind::Loss;
  loss.value = 0;
  def.stmts.push_back(loss);
  gradc::Model model = gradc::Model::compile_def(def);
  REQUIRE_FALSE(model.ok());
  INFO(gradc::render_all(model.diagnostics()));
  CHECK(model.diagnostics()[0].message.find("nothing") != std::string::npos);
  CHECK(model.diagnostics()[0].line == 0);
}

}  // namespace
