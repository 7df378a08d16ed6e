// Kernel marks in the IR and assembly dumps (compiler/codegen/dump_marks.h):
// every kernel's code is marked with its index and model position; the marks
// are comment lines only, so that without them the dumps are, byte for byte,
// those of the module emitted without debug locations (the locations that
// find the kernels change no code); DumpFormat::Annotated adds the model
// lines' text below each mark.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <fstream>
#include <iterator>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "compiler/codegen/jit.h"
#include "compiler/codegen/kernels.h"
#include "compiler/frontend/parser.h"
#include "compiler/frontend/sema.h"
#include "compiler/api/model_impl.h"
#include "tests/common/model_ir.h"
#include "compiler/support/diagnostics.h"
#include "gradc/gradc.h"

using namespace gradc;

namespace {

const std::regex kMark(R"(^(  ;|\t#) (k[0-9]+: .*|  *[0-9]+ \| .*)$)");

// The text without mark lines, and the kernels the marks name.
std::string without_marks(const std::string& text, std::set<int>* kernels = nullptr) {
  std::istringstream in(text);
  std::string line, out;
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, kMark)) {
      if (kernels && m[2].str()[0] == 'k') kernels->insert(std::stoi(m[2].str().substr(1)));
      continue;
    }
    out += line + "\n";
  }
  return out;
}

}  // namespace

TEST_CASE("dump marks: every kernel marked, and nothing else changes", "[debug]") {
  for (const char* name : {"xor", "iris_mlp", "digits_mlp", "regression_f64", "all_builtins"}) {
    auto c = test::compile_ir(fmt::format("{}/examples/{}.grad", GRADC_SOURCE_DIR, name));
    size_t kernels = plan_program(*c->ir, EntryKind::TrainStep).kernels.size();
    for (const char* stage : {"llvm-raw", "llvm", "asm"}) {
      INFO(name << " " << stage);
      std::string plain = jit_stage_text(*c->ir, EntryKind::TrainStep, stage);
      std::string marked = jit_stage_text(*c->ir, EntryKind::TrainStep, stage, &c->sm);
      std::string annotated = jit_stage_text(*c->ir, EntryKind::TrainStep, stage, &c->sm, true);
      std::set<int> seen;
      CHECK(without_marks(marked, &seen) == plain);
      CHECK(without_marks(annotated) == plain);
      CHECK(annotated.size() > marked.size());
      for (size_t k = 0; k < kernels; ++k) {
        INFO("kernel k" << k);
        CHECK(seen.count(static_cast<int>(k)));
      }
    }
  }
}

TEST_CASE("dump marks: annotated assembly interleaves the model line", "[debug]") {
  std::string path = fmt::format("{}/examples/xor.grad", GRADC_SOURCE_DIR);
  Model m = Model::compile_file(path);
  REQUIRE(m.ok());
  std::string text = m.dump(Stage::Asm, DumpFormat::Text);
  CHECK(text.find(fmt::format("\t# k2: matmul 4x8x2, 1 epilogue ({}:23:12)\n", path)) != std::string::npos);
  std::string annotated = m.dump(Stage::Asm, DumpFormat::Annotated);
  CHECK(annotated.find(fmt::format("\t# k2: matmul 4x8x2, 1 epilogue ({}:23:12)\n"
                                   "\t#    23 | h = tanh(x @ W1 + b1)           # [B, 8]",
                                   path)) != std::string::npos);
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Annotated);
  CHECK(ir.find("  ;    23 | h = tanh(x @ W1 + b1)") != std::string::npos);
  // Other stages print text.
  CHECK(m.dump(Stage::Opt, DumpFormat::Annotated) == m.dump(Stage::Opt));
}
