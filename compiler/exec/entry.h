// Entry points as data, and the executors that run them.
//
// An EntrySignature lists what an entry point reads (model inputs, params,
// optimizer state, the learning rate and step counter, by name) and what it
// produces ("loss", "grad.W", "out.y", "metric.m", and for train_step the
// updated "W" and "opt.SLOT.W" and "opt.step"). The interpreter and the JIT
// run the same signatures, so a session does not care which one it has.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "compiler/ir/graph.h"
#include "gradc/tensor.h"

namespace gradc {

enum class EntryKind { Forward, Evaluate, Grad, TrainStep };
const char* entry_name(EntryKind k);  // "forward", "evaluate", "grad", "train_step"

struct EntryValue {
  std::string name;
  NodeId node = kNoNode;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
};

struct EntrySignature {
  EntryKind kind;
  std::vector<EntryValue> reads;     // leaves the outputs need, in a fixed order
  std::vector<EntryValue> produces;  // roots, in a fixed order
};

// Forward: outputs only; Evaluate: outputs, loss and metrics; Grad: loss,
// gradients, outputs; TrainStep: loss, then new params, new state, new step.
EntrySignature entry_signature(const ModelIR& m, EntryKind kind);

// Runs entry points; `in` matches sig.reads and `out` sig.produces, element
// for element, with the declared dtypes and shapes (checked by the caller).
class Executor {
 public:
  virtual ~Executor() = default;
  // `threads`: how many threads may run the entry's kernels (1: the calling thread only).
  virtual void run(const EntrySignature& sig, const std::vector<const Tensor*>& in, const std::vector<Tensor*>& out,
                   int threads = 1) = 0;
};

class SourceManager;
// The reference interpreter as an executor.
std::unique_ptr<Executor> make_interpreter_executor(const ModelIR& m, const SourceManager& sm);

}  // namespace gradc
