// An entry point run straight through an Executor (compiler/exec/entry.h),
// below the host API and its checks: `in` in sig.reads order, the outputs
// allocated at sig.produces' shapes and returned.
#pragma once

#include <vector>

#include "compiler/exec/entry.h"
#include "gradc/tensor.h"

namespace gradc::test {

inline std::vector<Tensor> run_entry(Executor& exec, const EntrySignature& sig, const std::vector<Tensor>& in,
                                     int threads) {
  std::vector<const Tensor*> args;
  for (const Tensor& t : in) args.push_back(&t);
  std::vector<Tensor> out;
  for (const EntryValue& v : sig.produces) out.emplace_back(v.dtype, v.shape);
  std::vector<Tensor*> outs;
  for (Tensor& t : out) outs.push_back(&t);
  exec.run(sig, args, outs, threads);
  return out;
}

}  // namespace gradc::test
