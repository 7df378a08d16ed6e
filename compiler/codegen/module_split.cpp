// Splitting an entry's module by function for parallel code generation
// (module_split.h).
#include "compiler/codegen/module_split.h"

#include <llvm/IR/Function.h>

#include <algorithm>
#include <vector>

namespace gradc {
namespace {

size_t instructions(const llvm::Function& f) {
  size_t n = 0;
  for (const llvm::BasicBlock& bb : f) n += bb.size();
  return n;
}

}  // namespace

ModuleSplit split_module(const llvm::Module& mod, int max_parts, size_t min_part_instructions) {
  struct Unit {
    std::string name;
    size_t weight;
  };
  std::vector<Unit> units;
  size_t total = 0;
  for (const llvm::Function& f : mod) {
    if (f.isDeclaration()) continue;
    units.push_back({f.getName().str(), instructions(f)});
    total += units.back().weight;
  }
  ModuleSplit split;
  split.parts = static_cast<int>(std::clamp<size_t>(total / std::max<size_t>(min_part_instructions, 1), 1, static_cast<size_t>(std::max(max_parts, 1))));
  split.parts = std::min(split.parts, static_cast<int>(std::max<size_t>(units.size(), 1)));
  // The heaviest unit first, each to the lightest part (ties by name and by
  // part number, so every copy of the module splits alike).
  std::sort(units.begin(), units.end(),
            [](const Unit& a, const Unit& b) { return a.weight != b.weight ? a.weight > b.weight : a.name < b.name; });
  std::vector<size_t> load(static_cast<size_t>(split.parts), 0);
  for (const Unit& u : units) {
    size_t p = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());
    load[p] += u.weight;
    split.owner[u.name] = static_cast<int>(p);
  }
  return split;
}

void keep_part(llvm::Module& mod, const ModuleSplit& split, int part) {
  if (split.parts <= 1) return;
  for (llvm::Function& f : mod) {
    auto it = split.owner.find(f.getName().str());
    if (f.isDeclaration() || it == split.owner.end()) continue;
    if (f.hasLocalLinkage()) {  // now linked across parts, and seen by no one else
      f.setLinkage(llvm::GlobalValue::ExternalLinkage);
      f.setVisibility(llvm::GlobalValue::HiddenVisibility);
    }
    if (it->second != part) f.deleteBody();  // defined by its own part
  }
}

}  // namespace gradc
