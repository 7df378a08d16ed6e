// fold, the adjoint of the windows of convolution and pooling: windows that
// tile their input exactly (a pool's usual stride = kernel) are planned as an
// elementwise permutation, others as a sum. A permutation gives the
// interpreter's bits, -0 included (the sum's 0 + -0 is +0); a sum agrees to
// rounding (it adds in another order); both are the same bits for 1 and 2
// threads.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>

#include "compiler/codegen/jit.h"
#include "compiler/codegen/kernels.h"
#include "compiler/exec/entry.h"
#include "compiler/ir/builder.h"
#include "compiler/support/source.h"
#include "gradc/session.h"

using namespace gradc;

namespace {

// y = fold(w) of windows w [2, 3, K, K, O, O] onto [2, 3, S, S], with stride st.
struct FoldModel {
  ModelIR m;
  SourceManager sm;
  Shape windows;

  FoldModel(int64_t k, int64_t st, int64_t o, int64_t s) {
    m.name = "fold";
    Builder b(m.graph);
    windows = make_shape({2, 3, k, k, o, o});
    NodeId w = b.leaf(Op::Input, "w", DType::F32, windows);
    Attrs a;
    a.ints = {k, st, 1, s, k, st, 1, s};
    NodeId y = b.make(Op::Fold, {w}, a);
    m.inputs = {{"w", w, {}}};
    m.outputs = {{"y", y, {}}};
  }
};

Tensor run(Executor& exec, const ModelIR& m, const Tensor& w, int threads) {
  EntrySignature sig = entry_signature(m, EntryKind::Forward);
  Tensor y(DType::F32, sig.produces[0].shape);
  exec.run(sig, {&w}, {&y}, threads);
  return y;
}

}  // namespace

TEST_CASE("fold: exact tilings are permutations with the interpreter's bits, overlaps are sums", "[codegen][fold]") {
  struct Case {
    int64_t k, st, o, s;
    Kernel::Kind planned;
  };
  for (Case c : {Case{2, 2, 3, 6, Kernel::Kind::Elementwise},  // max_pool2d(x, 2) on 6 x 6
                 Case{3, 2, 3, 7, Kernel::Kind::Reduce},       // overlapping windows
                 Case{2, 2, 3, 7, Kernel::Kind::Reduce}}) {    // a row and a column left over
    INFO("kernel " << c.k << ", stride " << c.st << ", size " << c.s);
    FoldModel fm(c.k, c.st, c.o, c.s);
    Program p = plan_program(fm.m, EntryKind::Forward);
    REQUIRE(p.kernels.size() == 1);
    CHECK(p.kernels[0].kind == c.planned);
    Tensor w(DType::F32, sizes(fm.windows));
    for (int64_t i = 0; i < w.numel(); ++i) w.set(i, i % 5 == 0 ? -0.0 : std::sin(0.7 * static_cast<double>(i)));
    std::unique_ptr<Executor> jit = make_jit_executor(fm.m, fm.sm), interp = make_interpreter_executor(fm.m, fm.sm);
    Tensor ref = run(*interp, fm.m, w, 1), one = run(*jit, fm.m, w, 1), two = run(*jit, fm.m, w, 2);
    CHECK(std::memcmp(one.raw(), two.raw(), one.nbytes()) == 0);
    if (c.planned == Kernel::Kind::Elementwise) {
      CHECK(std::memcmp(one.raw(), ref.raw(), one.nbytes()) == 0);
    } else {
      double worst = 0;
      for (int64_t i = 0; i < ref.numel(); ++i) worst = std::max(worst, std::fabs(one.get(i) - ref.get(i)));
      CHECK(worst <= 1e-6);
    }
    // Where no window reads an element, or only -0 does, the fold is +0.
    int64_t negative_zeros = 0;
    for (int64_t i = 0; i < one.numel(); ++i) negative_zeros += std::signbit(one.get(i)) && one.get(i) == 0;
    CHECK(negative_zeros == 0);
  }
}
