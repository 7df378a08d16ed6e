// Parallel code generation: an entry's module split by function into parts
// that threads optimize and compile to object files at the same time, each
// in an LLVM context of its own (a context is not safe to share between
// threads), and that the JIT links back together.
//
// Every thread emits the whole module from the same plan (emission is a
// small share of a compile and deterministic, so every copy names its
// functions alike), computes the split on its copy (the same on every copy)
// and keeps the definitions of its own part: the others become
// declarations, resolved by the linker from the part that defines them. The split is by function, and no
// optimization would have crossed a function boundary that it cuts: the
// entry and the thread-pool task bodies only meet through the runtime's
// parallel_for, by address, and the register tiles of matrix products are
// never inlined. So each function is optimized as in the whole module and
// computes the same; only a function that was local to the module is now
// linked with the default calling convention (measured: no change in step
// time, docs/internals.md).
// Internal to the code generator: includes LLVM.
#pragma once

#include <llvm/IR/Module.h>

#include <map>
#include <string>

namespace gradc {

// Which part defines each function of the module. Parts are balanced by
// instructions.
struct ModuleSplit {
  int parts = 1;
  std::map<std::string, int> owner;
};

// The split of `mod` into at most `max_parts` parts of at least
// `min_part_instructions` each (one part: the module as it is).
ModuleSplit split_module(const llvm::Module& mod, int max_parts, size_t min_part_instructions);

// Makes `mod` part `part` of `split`: local functions become hidden
// external ones, and those of other parts lose their bodies.
void keep_part(llvm::Module& mod, const ModuleSplit& split, int part);

}  // namespace gradc
