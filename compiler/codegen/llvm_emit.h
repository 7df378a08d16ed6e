// Kernel programs to LLVM IR (internal to the code generator; includes LLVM).
#pragma once

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <functional>
#include <memory>
#include <string>

#include "compiler/codegen/loop_ir.h"

namespace llvm {
class IRBuilderBase;
}

namespace gradc {

// Emits, for the program into module `m`, for a CPU with the given name and
// features, the entry function
//
//     int32_t <name>(void** args, uint8_t* arena, const GradcRuntime* rt);
//
// args: the entry's reads, then its outputs, each a pointer to contiguous
// row-major data (Program::buffers of kind Arg, in order); arena: the
// working memory of Program::arena_bytes (plus one product block per
// thread, NativeEntry::arena_bytes); rt: the thread pool
// (runtime/thread_pool.h). Returns 0, or the 1-based index of the run-time
// check that failed (Program::check_messages). Verified with
// llvm::verifyModule (a failure is an internal compiler error).
// `at_kernel`, when given, is called with the builder where the code of
// kernel k starts, before any of it is emitted (debug_info.h: KernelMarks).
using KernelHook = std::function<void(llvm::IRBuilderBase& b, size_t k)>;
void emit_program(const Program& p, const std::string& name, llvm::Module& m, const std::string& cpu,
                  const std::string& features, const KernelHook& at_kernel = {});

}  // namespace gradc
