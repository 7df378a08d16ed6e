// compare_optim: checks a file written by `gradc step ... -o OUT` against a
// torch.optim reference (tests/optim/gen_optim_reference.py).
//
//   compare_optim OUT EXPECTED
//
// EXPECTED holds every param after the steps, `loss` ([STEPS], the loss
// before each step), `opt.SLOT.PARAM` for every tensor of PyTorch's
// optimizer.state, and `opt.step` (i32 scalar). Every tensor of EXPECTED must
// be in OUT with the same dtype and shape, and OUT must hold nothing else (so
// gradc's optimizer state has exactly PyTorch's slots).
//
// A tensor matches when every element satisfies |got - want| <= tol * scale,
// tol = 1e-4 (f32), 1e-9 (f64), 0 (i32), and scale = max(1, max |want|) over
// the tensor for params and loss, max |want| for optimizer state (relative to
// its own magnitude: exp_avg_sq and the like are small). Non-finite values
// never match. Exit status: 0 all match, 1 a mismatch, missing or extra
// tensor, 2 usage or an unreadable file.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <set>
#include <string>
#include <vector>

#include "gradc/tensor.h"
#include "runtime/tensor_io.h"
#include "tests/common/compare_tensors.h"

using namespace gradc;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: compare_optim OUT EXPECTED\n";
    return 2;
  }
  try {
    TensorFileMetadata meta;
    NamedTensors expected = read_safetensors(argv[2], &meta);
    NamedTensors got = read_safetensors(argv[1]);
    for (const auto& [k, v] : meta) std::printf("reference %s: %s\n", k.c_str(), v.c_str());
    test::CompareOptions o;
    o.relative_state = true;
    o.extra_is_failure = true;
    o.reference = "torch";
    o.width = 22;
    int failures = test::compare_tensors(got, expected, o);
    if (failures) {
      std::printf("torch.optim MISMATCH: %d tensor(s) of %s disagree with %s\n", failures, argv[1], argv[2]);
      return 1;
    }
    std::printf("torch.optim reference matched: %s\n", argv[1]);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "compare_optim: error: " << e.what() << "\n";
    return 2;
  }
}
