// Tools' view of JIT-compiled code: gdb and perf.
//
// Why: code that the JIT links lives in anonymous memory, so a debugger or
// profiler sees addresses without names or lines. Two mechanisms tell them:
//  - gdb's JIT interface (__jit_debug_register_code, __jit_debug_descriptor,
//    defined in Debian's libLLVM): each object that carries DWARF
//    (debug_info.h) is registered with its sections' load addresses, so a
//    backtrace inside a training step shows `model.grad:LINE`;
//  - perf's map file /tmp/perf-PID.map: one line "ADDRESS SIZE NAME" per
//    function of each linked object, naming the model, the entry point and
//    the kernel, so `perf report` names the kernels.
// Both are linker plugins of the model's LLJIT, added only when asked for
// (jit.h, JitOptions).
#pragma once

#include <map>
#include <string>

namespace llvm::orc {
class LLJIT;
}

namespace gradc {

// Registers every object that `jit` links and that has debug sections with
// gdb's JIT interface. Returns "" or why it could not.
std::string add_gdb_registration(llvm::orc::LLJIT& jit);

// The names that one object's functions get in perf's map file.
class PerfMap {
 public:
  virtual ~PerfMap() = default;
  // `object`: the identifier of the object's buffer; `names`: symbol ->
  // name in the map (functions not named are written under their symbol).
  virtual void name_functions(const std::string& object, std::map<std::string, std::string> names) = 0;
};

// Adds the writer of perf's map file to `jit` (nullptr when its linker is
// not JITLink). The plugin belongs to the JIT.
PerfMap* add_perf_map(llvm::orc::LLJIT& jit);

// This process's map file, /tmp/perf-PID.map.
std::string perf_map_path();

}  // namespace gradc
