// expect: grad(e, x) needs a scalar e (rank 0)
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  m.loss(sum(grad(x * x, x)));
}
