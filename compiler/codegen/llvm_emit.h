// Kernel programs to LLVM IR (internal to the code generator; includes LLVM).
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <memory>
#include <string>

#include "compiler/codegen/loop_ir.h"

namespace gradc {

// Emits `int32_t <name>(void** args, uint8_t* arena)` for the program into
// module `m`, for a CPU with the given name and features. Verified with
// llvm::verifyModule (a failure is an internal compiler error).
void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features);

}  // namespace gradc
