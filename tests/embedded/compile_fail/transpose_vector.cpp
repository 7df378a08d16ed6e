// expect: .T() swaps the last two axes and needs rank >= 2
#include <gradc/embed.h>
using namespace gradc::embed;
void define(ModelBuilder& m) {
  Tensor<1> v = m.input("v", shape(3));
  m.loss(sum(v.T()));
}
