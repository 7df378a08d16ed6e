// expect: a fn takes as many arguments as it has parameters
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<2> x = m.input("x", shape(4, 3));
  auto scale = m.fn("scale", {"v", "k"}, [](auto v, auto k) { return v * k; });
  m.loss(sum(scale(x)));
}
