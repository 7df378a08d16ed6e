// Machine code from emitted modules, shared by the JIT (jit.cpp, which
// defines these) and the ahead-of-time export (export.cpp), so both make the
// same code for the same plan. Internal to the code generator: includes LLVM.
#pragma once

#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/CodeGen.h>
#include <llvm/Target/TargetMachine.h>

#include <string>

namespace gradc {

// The host CPU, detected once per process (detection reads /proc and CPUID:
// slow). The first call also sets the process's LLVM options for machine
// code (no loop strength reduction, no instruction scheduling; see jit.cpp).
struct Host {
  llvm::orc::JITTargetMachineBuilder jtmb;
  std::string cpu, features;
};
const Host& host();

// LLVM's O3 pipeline without its loop unroller and loop load elimination
// (jit.cpp: kPipeline).
void optimize_module(llvm::Module& mod, llvm::TargetMachine& tm);

// Machine code for the module: an object file, or assembly text.
std::string machine_code(llvm::Module& mod, llvm::TargetMachine& tm, llvm::CodeGenFileType type);

}  // namespace gradc
