// compare_reference: checks gradc's loss, gradients and outputs against values
// recorded from PyTorch autograd (tests/reference/gen_reference.py).
//
//   compare_reference MODEL INPUTS PARAMS EXPECTED
//       compiles MODEL with the C++ API, runs model.grad(inputs, params) with the
//       reference interpreter and compares every tensor of EXPECTED.
//   compare_reference --file OUT EXPECTED
//       compares a file written by `gradc grad ... -o OUT` with EXPECTED.
//
// EXPECTED holds `loss`, `grad.NAME` and `out.NAME` (grad, in training mode),
// and for models with buffers `eval.out.NAME` (forward, in evaluation mode;
// PARAMS then holds the buffers too). A `grad.NAME` whose NAME
// is not a param (an input or a named value) is requested through
// CompileOptions::wrt. Its "__metadata__" may hold `dim.NAME` = N (a dim
// override used when the reference was recorded) and `tol.TENSOR` = T (a
// tolerance for one tensor, e.g. an f64 gradient that flows through f32).
//
// A tensor matches when dtype and shape agree and every element satisfies
// |got - want| <= tol * scale, scale = max(1, max |want| over the tensor);
// tol is 1e-4 for f32, 1e-9 for f64 and 0 for i32. Non-finite values never
// match. Exit status: 0 all match, 1 a mismatch or missing tensor, 2 usage or
// an unreadable file.
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/session.h"
#include "tests/common/compare_tensors.h"
#include "gradc/tensor.h"
#include "runtime/tensor_io.h"

using namespace gradc;

namespace {

int usage() {
  std::cerr << "usage: compare_reference MODEL INPUTS PARAMS EXPECTED\n"
               "       compare_reference --file OUT EXPECTED\n";
  return 2;
}

int finish(int failures, const std::string& what) {
  if (failures) {
    std::printf("reference MISMATCH: %d tensor(s) of %s disagree with the PyTorch reference\n", failures, what.c_str());
    return 1;
  }
  std::printf("reference matched: %s\n", what.c_str());
  return 0;
}

// The reference's tolerances: per dtype, or "tol.NAME" metadata for one tensor.
int compare(const NamedTensors& got, const NamedTensors& expected, const TensorFileMetadata& meta) {
  test::CompareOptions o;
  for (const auto& [k, v] : meta)
    if (k.rfind("tol.", 0) == 0) o.tolerance[k.substr(4)] = std::stod(v);
  return test::compare_tensors(got, expected, o);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  try {
    if (args.size() == 3 && args[0] == "--file") {
      TensorFileMetadata meta;
      NamedTensors expected = read_safetensors(args[2], &meta);
      NamedTensors got = read_safetensors(args[1]);
      return finish(compare(got, expected, meta), args[1]);
    }
    if (args.size() != 4) return usage();
    const std::string &model_path = args[0], &inputs_path = args[1], &params_path = args[2], &expected_path = args[3];
    TensorFileMetadata meta;
    NamedTensors expected = read_safetensors(expected_path, &meta);
    NamedTensors inputs = read_safetensors(inputs_path);
    NamedTensors params = read_safetensors(params_path);

    CompileOptions opts;
    for (const auto& [k, v] : meta) {
      if (k.rfind("dim.", 0) == 0) opts.dims.emplace_back(k.substr(4), std::stoll(v));
    }
    for (const auto& [name, t] : expected) {
      if (name.rfind("grad.", 0) == 0 && !find_tensor(params, name.substr(5))) opts.wrt.push_back(name.substr(5));
    }
    Model model = Model::compile_file(model_path, opts);
    if (!model.ok()) {
      std::cerr << render_all(model.diagnostics());
      std::printf("reference MISMATCH: %s does not compile\n", model_path.c_str());
      return 1;
    }
    // The interpreter (Model::grad) and the JIT (a Session's grad entry point)
    // must both match the reference.
    // eval.out.NAME: the outputs of forward, in evaluation mode (models with buffers).
    bool eval = false;
    for (const auto& [name, t] : expected) eval = eval || name.rfind("eval.", 0) == 0;
    int status = 0;
    for (Backend backend : {Backend::Interpreter, Backend::Jit}) {
      const char* name = backend == Backend::Jit ? "jit" : "interpreter";
      NamedTensors got;
      try {
        NamedTensors forward;
        if (backend == Backend::Interpreter) {
          got = model.grad(inputs, params);
          if (eval) forward = model.forward(inputs, params);
        } else {
          Session s(model, {Backend::Jit, 0});
          s.set_params(params);
          s.set_buffers(params);
          got = s.grad(inputs);
          if (eval) forward = s.forward(inputs);
        }
        for (auto& [k, t] : forward)
          if (k.rfind("out.", 0) == 0) got.emplace_back("eval." + k, std::move(t));
      } catch (const std::exception& e) {
        std::printf("reference MISMATCH: grad on %s (%s) threw: %s\n", model_path.c_str(), name, e.what());
        return 1;
      }
      std::printf("-- %s\n", name);
      status = std::max(status, finish(compare(got, expected, meta), model_path + " (" + name + ")"));
    }
    return status;
  } catch (const std::exception& e) {
    std::cerr << "compare_reference: error: " << e.what() << "\n";
    return 2;
  }
}
