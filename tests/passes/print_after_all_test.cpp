// DumpOptions::print_after_all through the public API: the graph after each
// pass, in the order of the `opt` printout's pass log, the last one being the
// `opt` graph itself; and the stages it does not apply to.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>
#include <vector>

#include "gradc/gradc.h"

using namespace gradc;

namespace {

std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
    if (line.rfind(prefix, 0) == 0) out.push_back(line);
    pos = nl == std::string::npos ? text.size() : nl + 1;
  }
  return out;
}

// The text after the last line that starts with `prefix`.
std::string after_last(const std::string& text, const std::string& prefix) {
  size_t at = text.rfind("\n" + prefix);
  size_t nl = text.find('\n', at + 1);
  return text.substr(nl + 1);
}

DumpOptions after_all() {
  DumpOptions d;
  d.print_after_all = true;
  return d;
}

}  // namespace

TEST_CASE("print_after_all: one printout per pass, in the pass log's order, the last one the opt graph",
          "[passes][print]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/digits_mlp.grad");
  REQUIRE(m.ok());
  std::string opt = m.dump(Stage::Opt);
  std::string all = m.dump(Stage::Opt, after_all());
  // "# after simplify    50 nodes" in the opt printout; "# *** after simplify ***" here.
  std::vector<std::string> logged, headed;
  for (const std::string& l : lines_starting(opt, "# after ")) logged.push_back(l.substr(8, l.find(' ', 8) - 8));
  for (const std::string& l : lines_starting(all, "# *** after ")) headed.push_back(l.substr(12, l.size() - 12 - 4));
  CHECK(headed == logged);
  CHECK(headed.size() >= 3);
  CHECK(lines_starting(all, "graph ").size() == headed.size());
  CHECK(all.rfind(lines_starting(opt, "# ").front() + "\n", 0) == 0);  // "# N nodes before the passes"
  CHECK(after_last(all, "# *** after ") == after_last(opt, "# after "));
}

TEST_CASE("print_after_all: locations hidden, and Graphviz", "[passes][print]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/xor.grad");
  REQUIRE(m.ok());
  DumpOptions hide = after_all();
  hide.locations = Locations::Hide;
  std::string text = m.dump(Stage::Opt, hide);
  CHECK(m.dump(Stage::Opt, after_all()).find("# @") != std::string::npos);
  CHECK(text.find("# @") == std::string::npos);
  CHECK(after_last(text, "# *** after ") ==
        after_last(m.dump(Stage::Opt, DumpFormat::Text, Entry::TrainStep, Locations::Hide), "# after "));
  DumpOptions dot = after_all();
  dot.format = DumpFormat::Dot;
  std::string graphs = m.dump(Stage::Opt, dot);
  CHECK(lines_starting(graphs, "digraph").size() == lines_starting(graphs, "# *** after ").size());
  CHECK(after_last(graphs, "# *** after ") == m.dump(Stage::Opt, DumpFormat::Dot));
}

TEST_CASE("print_after_all: only stages made of steps, nothing for a model without passes", "[passes][print]") {
  CHECK(stage_has_steps(Stage::Opt));
  CHECK(stage_has_steps(Stage::Loops));
  for (Stage s : {Stage::Ast, Stage::Graph, Stage::Grad, Stage::LlvmRaw, Stage::Llvm, Stage::Asm})
    CHECK_FALSE(stage_has_steps(s));
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/xor.grad");
  REQUIRE(m.ok());
  CHECK_THROWS_AS(m.dump(Stage::Graph, after_all()), std::invalid_argument);
  // Without print_after_all the options are dump()'s other arguments.
  DumpOptions plain;
  plain.entry = Entry::Forward;
  CHECK(m.dump(Stage::Loops, plain) == m.dump(Stage::Loops, DumpFormat::Text, Entry::Forward));
  CompileOptions no_passes;
  no_passes.optimize = false;
  Model raw = Model::compile_file(GRADC_SOURCE_DIR "/examples/xor.grad", no_passes);
  REQUIRE(raw.ok());
  CHECK(raw.dump(Stage::Opt, after_all()).empty());
}

TEST_CASE("print_after_all on loops: the planner's steps in order, the last printout the loops stage", "[passes][print]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/digits_mlp.grad");
  REQUIRE(m.ok());
  for (Entry e : {Entry::Forward, Entry::Grad, Entry::TrainStep}) {
    DumpOptions o = after_all();
    o.entry = e;
    std::string text = m.dump(Stage::Loops, o);
    CHECK(lines_starting(text, "# *** after ") ==
          std::vector<std::string>{"# *** after lowering ***", "# *** after batch-rows ***", "# *** after in-place ***",
                                   "# *** after internal-epilogues ***", "# *** after product-blocks ***",
                                   "# *** after invariant-packing ***", "# *** after pool-epilogues ***",
                                   "# *** after arena ***"});
    CHECK(after_last(text, "# *** after ") == m.dump(Stage::Loops, DumpFormat::Text, e));
  }
}
