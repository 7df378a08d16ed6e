// expect-ok: the harness's control, a correct program that must compile.
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Dim B = m.dim("B", 4);
  Tensor<2> x = m.input("x", shape(B, 3));
  Tensor<1> w = m.param("w", shape(3));
  Tensor<> any = x;  // the dynamic rank holds any rank
  m.loss(mean(tanh(x % w)) + sum(any * 0));
}
