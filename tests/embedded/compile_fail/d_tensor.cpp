// expect: d() differentiates scalar expressions of Var<...>
#include <gradc/embed.h>
using namespace gradc::embed;
double slope(ModelBuilder& m) {
  Tensor<0> w = m.param("w", shape());
  return d(w * 2, Var<"w">{}).eval(Var<"w">{} = 1.0);
}
