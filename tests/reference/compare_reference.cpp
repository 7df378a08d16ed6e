// compare_reference: checks gradc's loss, gradients and outputs against values
// recorded from PyTorch autograd (tests/reference/gen_reference.py).
//
//   compare_reference MODEL INPUTS PARAMS EXPECTED
//       compiles MODEL with the C++ API, runs model.grad(inputs, params) with the
//       reference interpreter and compares every tensor of EXPECTED.
//   compare_reference --file OUT EXPECTED
//       compares a file written by `gradc grad ... -o OUT` with EXPECTED.
//
// EXPECTED holds `loss`, `grad.NAME` and `out.NAME`. A `grad.NAME` whose NAME
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
#include "gradc/tensor.h"
#include "runtime/tensor_io.h"

using namespace gradc;

namespace {

double default_tol(DType t) {
  switch (t) {
    case DType::F32: return 1e-4;
    case DType::F64: return 1e-9;
    case DType::I32: return 0.0;
  }
  return 0.0;
}

// Compares `got` against every tensor of `expected`; prints one line per tensor.
// Returns the number of failures.
int compare(const NamedTensors& got, const NamedTensors& expected, const TensorFileMetadata& meta) {
  std::map<std::string, double> tol_override;
  for (const auto& [k, v] : meta) {
    if (k.rfind("tol.", 0) == 0) tol_override[k.substr(4)] = std::stod(v);
  }
  int failures = 0;
  std::set<std::string> seen;
  for (const auto& [name, want] : expected) {
    seen.insert(name);
    const Tensor* g = find_tensor(got, name);
    if (!g) {
      std::printf("FAIL %-16s missing: gradc did not produce it (expected %s)\n", name.c_str(), want.type_string().c_str());
      ++failures;
      continue;
    }
    if (g->dtype() != want.dtype() || g->shape() != want.shape()) {
      std::printf("FAIL %-16s type mismatch: gradc gives %s, expected %s\n", name.c_str(), g->type_string().c_str(),
                  want.type_string().c_str());
      ++failures;
      continue;
    }
    auto it = tol_override.find(name);
    double tol = it != tol_override.end() ? it->second : default_tol(want.dtype());
    double scale = 1.0;
    for (int64_t i = 0; i < want.numel(); ++i) scale = std::max(scale, std::fabs(want.get(i)));
    double max_err = 0.0;
    int64_t worst = -1, bad = 0;
    for (int64_t i = 0; i < want.numel(); ++i) {
      double w = want.get(i), v = g->get(i);
      double err = std::isfinite(v) && std::isfinite(w) ? std::fabs(v - w) : INFINITY;
      if (err > tol * scale) ++bad;
      if (worst < 0 || err > max_err) {
        max_err = err;
        worst = i;
      }
    }
    bool ok = bad == 0;
    std::printf("%s %-16s %-12s max abs err %.3e  (scale %.3g, tol %.1e x scale)", ok ? "ok  " : "FAIL", name.c_str(),
                want.type_string().c_str(), max_err, scale, tol);
    if (!ok && worst >= 0) {
      std::printf("\n     %lld of %lld elements differ; worst at flat index %lld: gradc %.10g, expected %.10g",
                  static_cast<long long>(bad), static_cast<long long>(want.numel()), static_cast<long long>(worst),
                  g->get(worst), want.get(worst));
    }
    std::printf("\n");
    if (!ok) ++failures;
  }
  for (const auto& [name, t] : got) {
    if (!seen.count(name)) std::printf("note %-16s produced by gradc, not in the reference (not compared)\n", name.c_str());
  }
  return failures;
}

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
    int status = 0;
    for (Backend backend : {Backend::Interpreter, Backend::Jit}) {
      const char* name = backend == Backend::Jit ? "jit" : "interpreter";
      NamedTensors got;
      try {
        if (backend == Backend::Interpreter) {
          got = model.grad(inputs, params);
        } else {
          Session s(model, {Backend::Jit, 0});
          s.set_params(params);
          got = s.grad(inputs);
        }
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
