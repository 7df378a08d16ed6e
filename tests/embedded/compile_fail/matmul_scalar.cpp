// expect: the matrix product (% or matmul) needs operands of rank >= 1
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  Tensor<0> s = m.param("s", shape());
  m.loss(sum(x % s));
}
