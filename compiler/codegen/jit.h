// The native back end: kernel programs -> LLVM IR -> ORC JIT.
//
// This header is plain C++; LLVM's headers stay inside compiler/codegen/*.cpp.
// Each entry point of a model is planned (kernels.h), emitted as one LLVM
// function with a C ABI,
//
//     int32_t gradc_<entry>(void** args, uint8_t* arena, const GradcRuntime* rt);
//
// (args: the entry's reads, then its outputs, each a pointer to contiguous
// row-major data; the return value is 0, or the 1-based index of a failed
// run-time check; rt: the thread pool, runtime/thread_pool.h), verified,
// optimized for the host CPU, compiled to an object file and linked into the
// model's LLJIT on first use (Executor::native). Code lives as long as its
// executor (that is, its Model). With a code cache directory
// (set_code_cache_dir, GRADC_CACHE_DIR) the object file is kept on disk and a
// later compile of the same plan loads it instead (code_cache.h). Each
// compile records its per-stage times (CompileTimes).
#pragma once

#include <memory>
#include <string>

#include "compiler/exec/entry.h"

namespace gradc {

class SourceManager;

std::unique_ptr<Executor> make_jit_executor(const ModelIR& m, const SourceManager& sm);

// The text of a back-end stage of one entry point:
// "loops" (kernels and memory plan), "llvm" (optimized IR), "llvm-raw"
// (IR before optimization) or "asm" (host assembly).
std::string jit_stage_text(const ModelIR& m, EntryKind entry, const std::string& stage);

}  // namespace gradc
