// expect: the loss must be a scalar (rank 0)
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  m.loss(x * 2);
}
