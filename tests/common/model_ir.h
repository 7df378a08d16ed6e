// A model file through the same steps as Model::compile_file (parse, check,
// differentiate, the train step, the passes), keeping the IR, for tests of
// the code generator's internals.
#pragma once

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "compiler/api/model_impl.h"
#include "compiler/frontend/parser.h"
#include "compiler/frontend/sema.h"
#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"

namespace gradc::test {

struct CompiledIR {
  SourceManager sm;
  std::optional<ModelIR> ir;
};

// A model's text through those steps, or nullptr where it does not compile
// (no Catch2 assertion: tests/jit/asan_probe.cpp is a plain program).
// `dims` binds dims as --set does (a dynamic dim is otherwise at its stand-in size).
inline std::unique_ptr<CompiledIR> compile_ir_source(const std::string& name, const std::string& text,
                                                     const std::vector<std::pair<std::string, int64_t>>& dims = {}) {
  auto c = std::make_unique<CompiledIR>();
  uint32_t file = c->sm.add(name, text);
  DiagEngine diags(c->sm);
  Ast ast;
  parse(c->sm, file, ast, diags);
  std::optional<ModelIR> m = analyze(ast, c->sm, diags, SemaOptions{"model", dims});
  if (!m || !differentiate_loss(*m, {}).empty()) return nullptr;
  build_train_step(*m);
  c->ir = optimize(*m);
  return c;
}

// The model file at `path`, which must compile.
inline std::unique_ptr<CompiledIR> compile_ir(const std::string& path,
                                              const std::vector<std::pair<std::string, int64_t>>& dims = {}) {
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::unique_ptr<CompiledIR> c = compile_ir_source(path, text, dims);
  REQUIRE(c);
  return c;
}

}  // namespace gradc::test
