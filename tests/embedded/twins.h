// C++ twins of the example models (examples/*.grad), for the tests that
// compare their printed graphs with the text models'.
#pragma once

#include <gradc/embed.h>

#include <vector>

namespace gradc::embed::twins {

struct Twin {
  const char* file;   // examples/FILE.grad
  const char* model;  // the model's name (its `model` statement or file stem)
  void (*define)(ModelBuilder&);
};

// Every example model, in the order of examples/*.grad.
const std::vector<Twin>& all();

}  // namespace gradc::embed::twins
