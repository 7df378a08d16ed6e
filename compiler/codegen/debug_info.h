// Marks that tie generated code back to the model: the kernel (the k<N> of
// `gradc dump --stage loops`) and the model lines each piece of code comes from.
//
// Why: the LLVM IR and assembly of an entry point name their blocks and
// outlined functions after the emitter (loop5, gradc_train_step.par3), which
// matches nothing the user wrote. The emitter calls KernelMarks where each
// kernel's code starts (llvm_emit.h, KernelHook). From that, KernelMarks knows
// which functions each kernel created, and, when asked for debug locations,
// gives every instruction of kernel k a DWARF location: its model line and
// column, in a lexical block file whose discriminator is k + 1.
// Discriminators exist to tell apart code of one line that belongs to
// different blocks (here: kernels); they survive optimization and code
// generation into the line table (`.loc 1 22 10 discriminator 3`), so
//  - the IR and assembly dumps find each kernel's code again (dump_marks.h),
//  - gdb maps a JIT-compiled address to `model.grad:LINE` (jit_debug.h
//    registers the object with gdb), and
//  - perf's map file names the kernel of each outlined function.
//
// Off costs nothing: the JIT installs the hook only when debug info or the
// perf map is asked for (jit.h, JitOptions).
#pragma once

#include <llvm/ADT/StringRef.h>

#include <memory>
#include <string>
#include <vector>

#include "compiler/codegen/kernels.h"
#include "compiler/codegen/llvm_emit.h"

namespace llvm {
class DILocation;
class Module;
}  // namespace llvm

namespace gradc {

class SourceManager;

class KernelMarks {
 public:
  // For plan `p` of model `m`, about to be emitted into `mod` as function
  // `entry_symbol`. With `debug_locs`, `mod` gets a compile unit for the
  // model file, a subprogram per function and a location per kernel (see above).
  KernelMarks(const ModelIR& m, const Program& p, const SourceManager& sm, llvm::Module& mod,
              std::string entry_symbol, bool debug_locs);
  ~KernelMarks();
  KernelMarks(const KernelMarks&) = delete;
  KernelMarks& operator=(const KernelMarks&) = delete;

  // The hook to give emit_program.
  KernelHook hook();
  // After emit_program: which kernel each function belongs to; with debug
  // locations, a subprogram for every outlined function and the finished
  // compile unit (verified).
  void finish();

  size_t kernels() const { return kernels_.size(); }
  const std::string& entry_symbol() const { return entry_symbol_; }
  // The kernel whose code a function is (an outlined body, created while
  // that kernel was emitted), or -1: the entry itself, a helper shared by
  // several kernels (the register tile), or a function not seen.
  int function_kernel(llvm::StringRef fn) const;
  // Every defined function but the entry, with its kernel (as function_kernel).
  const std::vector<std::pair<std::string, int>>& functions() const { return function_kernels_; }
  // "k2: matmul 4x8x2, 1 epilogue (xor.grad:22:10)": index, summary and the
  // model positions it comes from (the op it computes, then its epilogues').
  std::string label(size_t k) const;
  // "xor.grad:22", the first of those positions ("" when it has none).
  std::string where(size_t k) const;
  // The model lines kernel k comes from, each as "   22 | h = tanh(x @ W1 + b1)".
  std::vector<std::string> source_lines(size_t k) const;
  // The kernel of a debug location made here (its discriminator - 1), or -1.
  static int kernel_of(const llvm::DILocation* loc);

 private:
  struct Kernel {
    std::string summary;
    // Distinct model lines: file id, line, column (the first is the DWARF location).
    struct Pos {
      uint32_t file;
      int line, column;
    };
    std::vector<Pos> pos;
  };
  struct Debug;  // the DIBuilder and its nodes

  void at_kernel(llvm::IRBuilderBase& b, size_t k);

  const SourceManager& sm_;
  llvm::Module& mod_;
  std::vector<Kernel> kernels_;
  std::vector<size_t> functions_before_;  // per kernel: functions in the module when its code started
  std::vector<std::pair<std::string, int>> function_kernels_;
  std::string entry_symbol_;
  std::unique_ptr<Debug> debug_;
};

// Whether an environment variable asks for a feature: set, and neither
// empty nor "0".
bool env_flag(const char* name);

}  // namespace gradc
