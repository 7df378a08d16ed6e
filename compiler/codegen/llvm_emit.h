// Kernel programs to LLVM IR (internal to the code generator; includes LLVM).
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <functional>
#include <memory>
#include <string>

#include "compiler/codegen/kernels.h"

namespace llvm {
class IRBuilderBase;
}

namespace gradc {

// Emits `int32_t <name>(void** args, uint8_t* arena)` for the program into
// module `m`, for a CPU with the given name and features. Verified with
// llvm::verifyModule (a failure is an internal compiler error).
// `at_kernel`, when given, is called with the builder where the code of
// kernel k starts, before any of it is emitted (debug_info.h: KernelMarks).
using KernelHook = std::function<void(llvm::IRBuilderBase& b, size_t k)>;
void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features, const KernelHook& at_kernel = {});

}  // namespace gradc
