// expect: wrong arguments: sum(x), sum(x, axis(k)) or sum(x, axis(k), keepdims<true>)
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  m.loss(mean(sum(x, 1)));
}
