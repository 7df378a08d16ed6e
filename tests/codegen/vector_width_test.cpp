// The width of the vectors that elementwise kernels take: the target's
// widest (512-bit with AVX-512, where LLVM's own tuning for Intel's cores
// would take 256), and the same results as the interpreter.
#include <catch2/catch.hpp>
#include <gradc/gradc.h>

#include <string>

#include "tests/common/jit_agreement.h"

using namespace gradc;

TEST_CASE("elementwise kernels vectorize with the target's widest vectors", "[codegen]") {
  const std::string src =
      "input x : [64, 256]\n"
      "input h : [64, 256]\n"
      "param w : [256]\n"
      "z = sigmoid(x + w)\n"
      "o = (1 - z) * tanh(x * w) + z * h\n"
      "loss mean(o * o)\n"
      "output o\n";
  Model m = Model::compile_source(src, "widths.grad");
  REQUIRE(m.ok());
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Text, Entry::Forward);
  const bool avx512 = __builtin_cpu_supports("avx512f");
  INFO("AVX-512: " << avx512);
  CHECK(ir.find(avx512 ? "load <16 x float>" : "load <8 x float>") != std::string::npos);
  if (avx512) {
    CHECK(ir.find("load <8 x float>") == std::string::npos);
    CHECK(ir.find("call <16 x float> @_ZGVeN16v_expf") != std::string::npos);  // sigmoid's exp: libmvec's AVX-512 variant
  }
  test::jit_agrees_with_interpreter(m, 0, 3);
}
