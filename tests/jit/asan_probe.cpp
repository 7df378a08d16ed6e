// Built and run in the sanitizer build only (scripts/test.sh's second half),
// where the JIT-compiled code is instrumented too (sanitize_module in
// compiler/codegen/jit.cpp). This program shows that it is: it hands a
// forward entry an input 16 elements shorter than the model declares, a
// call the host API refuses and Executor::run leaves to its caller, so the
// generated kernel reads past the end of the input's heap block. The test
// (tests/jit/CMakeLists.txt) passes when AddressSanitizer reports that read;
// without the instrumentation the read goes unseen and the program prints
// "not caught".
#include <cstdio>
#include <string>
#include <vector>

#include "compiler/codegen/jit.h"
#include "compiler/exec/entry.h"
#include "tests/common/model_ir.h"
#include "tests/common/run_entry.h"

using namespace gradc;

int main() {
  const std::string source =
      "dim N = 1000\n"
      "input x : [N]\n"
      "input t : [N]\n"
      "param w : [N]\n"
      "y = x * w\n"
      "loss mse(y, t)\n"
      "output y\n";
  std::unique_ptr<test::CompiledIR> c = test::compile_ir_source("probe.grad", source);
  if (!c) return std::puts("the probe model does not compile"), 2;
  const ModelIR& ir = *c->ir;
  std::unique_ptr<Executor> jit = make_jit_executor(ir, c->sm, JitOptions{});
  EntrySignature sig = entry_signature(ir, EntryKind::Forward);
  std::vector<Tensor> in;
  for (const EntryValue& v : sig.reads) {
    std::vector<int64_t> shape = v.shape;
    if (v.name == "x") shape[0] -= 16;
    in.emplace_back(v.dtype, shape);
  }
  test::run_entry(*jit, sig, in, 1);
  std::puts("not caught: the generated code read past the input unchecked");
  return 1;
}
