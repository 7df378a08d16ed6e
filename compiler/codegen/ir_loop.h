// A counted loop in LLVM IR, shared by the kernel emitter (emit_loops.cpp)
// and the export wrapper (export.cpp). Internal to the code generator: it
// includes LLVM.
#pragma once

#include <llvm/IR/IRBuilder.h>

#include <functional>

namespace gradc {

// for (i = lo; i < hi; ++i) body(i), at the builder's insertion point (no
// iteration when lo >= hi); the builder is left after the loop. Returns the
// loop's latch branch, for loop metadata.
inline llvm::BranchInst* emit_counted_loop(llvm::IRBuilderBase& b, llvm::Value* lo, llvm::Value* hi,
                                           const std::function<void(llvm::Value*)>& body,
                                           const char* name = "range") {
  llvm::LLVMContext& ctx = b.getContext();
  llvm::Function* fn = b.GetInsertBlock()->getParent();
  llvm::BasicBlock* pre = b.GetInsertBlock();
  auto* header = llvm::BasicBlock::Create(ctx, name, fn);
  auto* exit = llvm::BasicBlock::Create(ctx, llvm::Twine(name) + ".done", fn);
  b.CreateCondBr(b.CreateICmpSLT(lo, hi), header, exit);
  b.SetInsertPoint(header);
  llvm::PHINode* i = b.CreatePHI(b.getInt64Ty(), 2, "i");
  i->addIncoming(lo, pre);
  body(i);
  llvm::Value* next = b.CreateAdd(i, b.getInt64(1), "i.next", true, true);
  i->addIncoming(next, b.GetInsertBlock());
  llvm::BranchInst* latch = b.CreateCondBr(b.CreateICmpSLT(next, hi), header, exit);
  b.SetInsertPoint(exit);
  return latch;
}

}  // namespace gradc
