// expect: wrong arguments: tanh(x) takes one tensor
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  m.loss(sum(tanh(x, x)));
}
