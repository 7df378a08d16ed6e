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

// What compiled code carries for tools (jit_debug.h). Off by default; the
// environment variables GRADC_DEBUG_INFO=1 and GRADC_PERF_MAP=1 turn them on
// for every model of the process.
struct JitOptions {
  // DWARF (a compile unit for the model file, a subprogram per function, a
  // location per kernel: debug_info.h), registered with gdb's JIT interface.
  // Part of the code cache's key.
  bool debug_info = false;
  // A line per function in perf's map file /tmp/perf-PID.map.
  bool perf_map = false;
  // Threads that optimize and compile one entry's code, each a part of its
  // module (module_split.h); 0: the environment variable
  // GRADC_COMPILE_THREADS, else the machine's hardware threads, at most
  // kMaxCompileThreads. Entries marked for tools compile in one part.
  int compile_threads = 0;
  // Each part has at least this many LLVM instructions: below 2000 an entry
  // compiles in one part (a thread and a second emission of the module cost
  // about what they save; measured in docs/internals.md).
  size_t min_part_instructions = 1000;
};
inline constexpr int kMaxCompileThreads = 4;

std::unique_ptr<Executor> make_jit_executor(const ModelIR& m, const SourceManager& sm, JitOptions opts = {});

// The JITDylibs holding compiled entries in the process, in every JIT: one per
// entry loaded, removed (and its code freed) with its executor.
int jit_loaded_entries();

// The text of a back-end stage of one entry point:
// "loops" (kernels and memory plan), "llvm" (optimized IR), "llvm-raw"
// (IR before optimization) or "asm" (host assembly). With the model's source
// `sm`, the code of each kernel is marked with its index and model lines,
// and with `annotate` the model lines' text is interleaved (dump_marks.h).
std::string jit_stage_text(const ModelIR& m, EntryKind entry, const std::string& stage,
                           const SourceManager* sm = nullptr, bool annotate = false);

}  // namespace gradc
