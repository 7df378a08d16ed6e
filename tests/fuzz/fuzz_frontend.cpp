// libFuzzer target over the whole compiler short of running code: lexing,
// parsing, sema, grad() expansion, the optimizer step, the passes, the
// verifier, every printer, and for small models the kernel plan and LLVM IR
// (verified) of train_step. Any input must give either a model or
// diagnostics, never a crash, hang or sanitizer report.
//
// Built two ways: with -fsanitize=fuzzer (scripts/fuzz.sh) as a fuzzer, and
// with GRADC_FUZZ_REPLAY as an ordinary program that runs the seed corpus as
// a test (fuzz_replay FILE_OR_DIR...).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gradc/gradc.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  gradc::Model m = gradc::Model::compile_source(text, "fuzz.grad");
  std::string out = gradc::render_all(m.diagnostics());
  out += m.dump(gradc::Stage::Ast);
  out += m.dump(gradc::Stage::Ast, gradc::DumpFormat::Dot);
  if (m.ok()) {
    out += m.dump(gradc::Stage::Graph);
    out += m.dump(gradc::Stage::Graph, gradc::DumpFormat::Dot);
    out += m.dump(gradc::Stage::Opt);
    gradc::ModelInfo info = m.info();
    // Lowering to LLVM IR (not running it) for models small enough to lower quickly.
    if (info.graph_nodes < 2000) {
      out += m.dump(gradc::Stage::Loops);
      out += m.dump(gradc::Stage::LlvmRaw);
    }
  } else if (m.diagnostics().empty()) {
    __builtin_trap();  // a failed compile must say why
  }
  return out.empty() ? 0 : 0;
}

#include "tests/fuzz/replay_main.h"
