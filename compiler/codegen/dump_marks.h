// The `llvm`, `llvm-raw` and `asm` dumps with each kernel's code marked.
//
// Why: in those printouts, loops and outlined functions have the emitter's
// names (loop5, gradc_train_step.par3), so nothing says which kernel of
// `--stage loops` or which model line some code computes. The dumps are made
// from a module with KernelMarks' debug locations (debug_info.h); these
// functions print it as it prints without them, plus a comment line where the
// code of a kernel starts:
//
//     ; k2: matmul 4x8x2, 1 epilogue (examples/xor.grad:22:10)      (IR)
//     # k2: matmul 4x8x2, 1 epilogue (examples/xor.grad:22:10)      (asm)
//
// and, with `annotate` (`gradc dump --annotate`, DumpFormat::Annotated), the
// model lines themselves below it, as `objdump -S` interleaves source lines.
#pragma once

#include <string>

namespace llvm {
class Module;
}

namespace gradc {

class KernelMarks;

// The module's IR text. Strips the module's debug info (it is printed without).
std::string marked_ir_text(llvm::Module& mod, const KernelMarks& marks, bool annotate);

// Assembly text that the target machine printed for such a module: the
// kernels' line-table entries (`.loc`) become the marks; the other debug-info
// directives, labels and sections go, so that the rest is the assembly of the
// module without debug info. `comment` starts a comment in the target's
// assembly ("#" on x86-64).
std::string marked_asm_text(const std::string& text, const KernelMarks& marks, bool annotate,
                            const std::string& comment);

}  // namespace gradc
