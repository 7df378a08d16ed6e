// Seeded inputs for any model, shared by the tests that run models: normal
// floats, and class ids in [0, 2) for i32 inputs. A dynamic dim takes
// `dynamic_size` (not the stand-in size the model was checked at, so that
// the calls bind it and run a specialization).
#pragma once

#include <cmath>
#include <vector>

#include "gradc/gradc.h"
#include "runtime/random.h"

namespace gradc::test {

inline NamedTensors random_inputs(const ModelInfo& info, uint64_t seed, int64_t dynamic_size = 5) {
  NamedTensors ts;
  for (const TensorInfo& t : info.inputs) {
    DType dt = t.dtype == "f64" ? DType::F64 : t.dtype == "i32" ? DType::I32 : DType::F32;
    std::vector<int64_t> shape = t.shape;
    for (int64_t& d : shape)
      if (d < 0) d = dynamic_size;
    Tensor x(dt, shape);
    RandomStream rng(seed, t.name);
    for (int64_t i = 0; i < x.numel(); ++i) x.set(i, dt == DType::I32 ? std::floor(rng.uniform() * 2) : rng.normal());
    ts.emplace_back(t.name, std::move(x));
  }
  return ts;
}

}  // namespace gradc::test
