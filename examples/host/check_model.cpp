// A host program: compile a model with the C++ API, print its diagnostics or
// its interface and graph. Built and run by the tests (see docs/host_api.md).
//
//   check_model MODEL.grad [DIM=N ...]
#include <gradc/gradc.h>

#include <cstdlib>
#include <iostream>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: check_model MODEL.grad [DIM=N ...]\n";
    return 2;
  }
  gradc::CompileOptions opts;
  for (int i = 2; i < argc; ++i) {
    std::string arg = argv[i];
    auto eq = arg.find('=');
    if (eq == std::string::npos) {
      std::cerr << "expected DIM=N, got " << arg << "\n";
      return 2;
    }
    opts.dims.emplace_back(arg.substr(0, eq), std::atoll(arg.c_str() + eq + 1));
  }

  gradc::Model model = gradc::Model::compile_file(argv[1], opts);
  if (!model.ok()) {
    // Diagnostics are values: render them clang-style, or inspect line/column/message.
    std::cerr << gradc::render_all(model.diagnostics());
    const gradc::Diagnostic& first = model.diagnostics().front();
    std::cerr << "first error at line " << first.line << ", column " << first.column << "\n";
    return 1;
  }

  gradc::ModelInfo info = model.info();
  std::cout << "model " << info.name << "\n";
  for (const gradc::TensorInfo& p : info.params) {
    std::cout << "  param " << p.name << " : " << p.dtype << "[";
    for (size_t i = 0; i < p.shape.size(); ++i) std::cout << (i ? ", " : "") << p.shape[i];
    std::cout << "]\n";
  }
  std::cout << "  optimizer " << info.optimizer << "\n";
  std::cout << model.dump(gradc::Stage::Grad);
  return 0;
}
