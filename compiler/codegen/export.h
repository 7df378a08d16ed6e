// Ahead-of-time export (`gradc export`, SPEC section 6): a model's entry
// points as one relocatable object file and a C header that documents their
// ABI (docs/export.md). The code is the JIT's: the same plans (kernels.h),
// the same emitter and optimization pipeline (machine.h); each entry is
// wrapped in a C function taking structs of the model's tensors.
//
// This header is plain C++; LLVM's headers stay inside compiler/codegen/*.cpp.
#pragma once

#include <string>
#include <vector>

#include "compiler/exec/entry.h"

namespace gradc {

class SourceManager;

struct ExportRequest {
  std::vector<EntryKind> entries;  // Forward, Grad, TrainStep (no Evaluate)
  // The machine: empty for the host's CPU (the JIT's code), else an LLVM
  // target triple ("aarch64-linux-gnu") and CPU name ("x86-64-v3"; default:
  // the target's baseline).
  std::string target, cpu;
};

struct ExportedCode {
  std::string name;    // the C prefix of every symbol: the model's name as an identifier
  std::string object;  // an ELF object file
  std::string header;  // C source
};

// Throws DataError when the model cannot be exported (its name is no C
// identifier, an entry it lacks), std::invalid_argument for a target or CPU
// it cannot export for.
ExportedCode export_model(const ModelIR& m, const SourceManager& sm, const ExportRequest& request);

}  // namespace gradc
