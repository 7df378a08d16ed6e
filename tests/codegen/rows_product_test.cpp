// Products of the "rows" form (few columns: a classifier layer, its weight
// gradient): 8 rows of C at a time when A is read along k, and a transposed
// A prefetched ahead of the k steps (emit_matmul.cpp, matmul_rows); the same
// results as the interpreter, with rows that do not fill a group and a k
// loop whose prefetches pass the end of A.
#include <catch2/catch.hpp>
#include <gradc/gradc.h>

#include <string>

#include "tests/common/jit_agreement.h"

using namespace gradc;

TEST_CASE("a classifier layer's products: a transposed A is prefetched, and the results are the interpreter's",
          "[codegen]") {
  const std::string src =
      "dim B = 250\n"  // 250 rows: 31 groups of 8 and 2 rows
      "input h : [B, 1024]\n"
      "input label : i32[B]\n"
      "param W : [1024, 10] ~ xavier_uniform\n"
      "logits = h @ W\n"
      "loss cross_entropy(logits, label)\n"
      "output logits\n"
      "optimizer adam(lr = 0.001)\n";
  Model m = Model::compile_source(src, "rows.grad");
  REQUIRE(m.ok());
  std::string loops = m.dump(Stage::Loops, DumpFormat::Text, Entry::TrainStep);
  INFO(loops);
  // The forward product and the weight gradient (h transposed) are both of the rows form.
  CHECK(loops.find("b0[i0 + 1024*i2]") != std::string::npos);
  std::string ir = m.dump(Stage::Llvm, DumpFormat::Text, Entry::TrainStep);
  CHECK(ir.find("call void @llvm.prefetch") != std::string::npos);
  CHECK(m.dump(Stage::Llvm, DumpFormat::Text, Entry::Forward).find("@llvm.prefetch") == std::string::npos);  // (A read along k)
  test::jit_agrees_with_interpreter(m, 1, 3);
  test::jit_agrees_with_interpreter(m, 2, 3);
}
