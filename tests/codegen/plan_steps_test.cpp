// The kernel planner runs in named steps and shows the Program after each
// one (kernels.h, PlanObserver), for `gradc dump --stage loops
// --print-after-all`. These tests plan an example with an observer: the
// steps come in order, every intermediate state prints, and the printout
// after the last step is the normal `--stage loops` printout.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "compiler/codegen/kernels.h"
#include "compiler/passes/pipeline.h"
#include "gradc/gradc.h"
#include "tests/unit/test_support.h"

using namespace gradc;

namespace {

std::string read_example(const std::string& name) {
  std::string path = std::string(GRADC_SOURCE_DIR) + "/examples/" + name + ".grad";
  std::FILE* f = std::fopen(path.c_str(), "rb");
  REQUIRE(f);
  std::string s;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, f)) > 0;) s.append(buf, n);
  std::fclose(f);
  return s;
}

struct Step {
  std::string name, printout;
};

// Plans entry `kind` of the example's optimized forward graph, printing after each step.
std::vector<Step> plan_steps(const std::string& example, EntryKind kind, std::string* normal) {
  auto a = test::analyze_source(read_example(example));
  INFO(render_all(a->diags));
  REQUIRE(a->model);
  ModelIR m = optimize(*a->model);
  std::vector<Step> steps;
  Program p = plan_program(m, kind, false, [&](std::string_view step, const Program& at) {
    steps.push_back({std::string(step), print_program(at)});
  });
  *normal = print_program(p);
  return steps;
}

}  // namespace

TEST_CASE("the planner's steps run in order and the last printout is the plan") {
  std::string normal;
  std::vector<Step> steps = plan_steps("digits_mlp", EntryKind::Forward, &normal);
  std::vector<std::string> names;
  for (const Step& s : steps) names.push_back(s.name);
  CHECK(names == std::vector<std::string>{"lowering", "batch-rows", "in-place", "internal-epilogues", "product-blocks",
                                          "invariant-packing", "pool-epilogues", "arena"});
  REQUIRE(!steps.empty());
  CHECK(steps.back().printout == normal);
  // The same as `gradc dump --stage loops --entry forward`, through the public API.
  Model model = Model::compile_file(std::string(GRADC_SOURCE_DIR) + "/examples/digits_mlp.grad");
  REQUIRE(model.ok());
  CHECK(steps.back().printout == model.dump(Stage::Loops, DumpFormat::Text, Entry::Forward));
}

TEST_CASE("intermediate plans print: the arena is not placed before its step") {
  std::string normal;
  std::vector<Step> steps = plan_steps("digits_mlp", EntryKind::Forward, &normal);
  REQUIRE(steps.size() == 8);
  // After lowering: the kernels exist, arena buffers have no offsets yet.
  CHECK(steps[0].printout.find("  k0 ") != std::string::npos);
  CHECK(steps[0].printout.find("arena, not placed yet") != std::string::npos);
  CHECK(steps[0].printout.find("arena @") == std::string::npos);
  // Products keep C in per-thread blocks only from the product-blocks step on.
  CHECK(steps[3].printout.find("C in per-thread blocks") == std::string::npos);
  CHECK(steps[4].printout.find("C in per-thread blocks") != std::string::npos);
  CHECK(steps[4].printout.find("arena, not placed yet") != std::string::npos);
  CHECK(steps[6].printout.find("arena, not placed yet") != std::string::npos);
  CHECK(steps[7].printout.find("arena, not placed yet") == std::string::npos);
}

TEST_CASE("planning without an observer gives the same plan") {
  auto a = test::analyze_source(read_example("xor"));
  REQUIRE(a->model);
  ModelIR m = optimize(*a->model);
  int calls = 0;
  Program seen = plan_program(m, EntryKind::Forward, true, [&](std::string_view, const Program&) { ++calls; });
  CHECK(calls == 8);
  CHECK(print_program(seen) == print_program(plan_program(m, EntryKind::Forward, true)));
}
