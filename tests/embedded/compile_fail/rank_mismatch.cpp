// expect: rank mismatch: a Tensor<R> can hold only a tensor of rank R
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3, 2));
  m.loss(sum(x));
}
