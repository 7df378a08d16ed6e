// Kernel marks and DWARF for generated code (see debug_info.h for why).
#include "compiler/codegen/debug_info.h"

#include <fmt/format.h>
#include <llvm/BinaryFormat/Dwarf.h>
#include <llvm/IR/DIBuilder.h>
#include <llvm/IR/DebugInfoMetadata.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Support/raw_ostream.h>

#include <cstdlib>
#include <filesystem>
#include <map>

#include "compiler/support/diagnostics.h"
#include "compiler/support/source.h"

namespace gradc {

struct KernelMarks::Debug {
  explicit Debug(llvm::Module& mod) : dib(mod) {}
  llvm::DIBuilder dib;
  llvm::DICompileUnit* cu = nullptr;
  llvm::DISubroutineType* type = nullptr;
  std::map<uint32_t, llvm::DIFile*> files;  // by SourceLoc::file
  llvm::DISubprogram* entry = nullptr;
  std::vector<llvm::DILocation*> locs;  // per kernel, in the entry's subprogram

  llvm::DIFile* file(const SourceManager& sm, uint32_t id) {
    llvm::DIFile*& f = files[id];
    if (!f) {
      // A relative name is relative to the directory gradc ran in.
      std::filesystem::path path = id ? sm.name(id) : std::string("<model>");
      std::error_code ec;
      std::filesystem::path dir = path.is_absolute() ? path.parent_path() : std::filesystem::current_path(ec);
      f = dib.createFile(path.is_absolute() ? path.filename().string() : path.string(), dir.string());
    }
    return f;
  }
  llvm::DISubprogram* subprogram(llvm::DIFile* file, llvm::StringRef name, int line, bool artificial) {
    auto flags = llvm::DINode::FlagPrototyped | (artificial ? llvm::DINode::FlagArtificial : llvm::DINode::FlagZero);
    auto sp_flags = llvm::DISubprogram::SPFlagDefinition | llvm::DISubprogram::SPFlagOptimized;
    llvm::DISubprogram* sp = dib.createFunction(file, name, name, file, static_cast<unsigned>(line), type,
                                                static_cast<unsigned>(line), flags, sp_flags);
    dib.finalizeSubprogram(sp);  // no variables: the module verifies before finish()
    return sp;
  }
};

KernelMarks::KernelMarks(const ModelIR& m, const Program& p, const SourceManager& sm, llvm::Module& mod,
                         std::string entry_symbol, bool debug_locs)
    : sm_(sm), mod_(mod), entry_symbol_(std::move(entry_symbol)) {
  for (size_t k = 0; k < p.kernels.size(); ++k) {
    const gradc::Kernel& kernel = p.kernels[k];
    Kernel mark;
    mark.summary = kernel_summary(p, k);
    auto add = [&](SourceLoc loc) {
      if (!loc.valid()) return;
      LineCol lc = sm.line_col(loc.file, loc.begin);
      for (const Kernel::Pos& q : mark.pos)
        if (q.file == loc.file && q.line == lc.line) return;
      mark.pos.push_back({loc.file, lc.line, lc.column});
    };
    add(kernel.loc);
    for (const gradc::Kernel::Epilogue& e : kernel.epilogues)
      if (e.node != kNoNode) add(m.graph[e.node].loc);
    kernels_.push_back(std::move(mark));
  }
  functions_before_.assign(kernels_.size(), 0);
  if (!debug_locs) return;

  debug_ = std::make_unique<Debug>(mod);
  Debug& d = *debug_;
  const Kernel::Pos* first = nullptr;
  for (const Kernel& k : kernels_)
    if (!k.pos.empty()) {
      first = &k.pos.front();
      break;
    }
  llvm::DIFile* main = d.file(sm, first ? first->file : 0);
  d.cu = d.dib.createCompileUnit(llvm::dwarf::DW_LANG_C, main, "gradc", /*isOptimized=*/true, "", 0, "",
                                 llvm::DICompileUnit::FullDebug, 0, /*SplitDebugInlining=*/false,
                                 /*DebugInfoForProfiling=*/false, llvm::DICompileUnit::DebugNameTableKind::None);
  d.type = d.dib.createSubroutineType(d.dib.getOrCreateTypeArray({}));
  mod.addModuleFlag(llvm::Module::Warning, "Debug Info Version", llvm::DEBUG_METADATA_VERSION);
  mod.addModuleFlag(llvm::Module::Warning, "Dwarf Version", 4);  // 4: the first with discriminators
  d.entry = d.subprogram(main, entry_symbol_, first ? first->line : 0, false);
  for (size_t k = 0; k < kernels_.size(); ++k) {
    // A kernel without a model position (the step counter's update) is line 0:
    // "no source line" in DWARF.
    const Kernel::Pos* at = kernels_[k].pos.empty() ? nullptr : &kernels_[k].pos.front();
    llvm::DIFile* file = at ? d.file(sm, at->file) : main;
    auto* scope = d.dib.createLexicalBlockFile(d.entry, file, static_cast<unsigned>(k + 1));
    d.locs.push_back(llvm::DILocation::get(mod.getContext(), at ? static_cast<unsigned>(at->line) : 0,
                                           at ? static_cast<unsigned>(at->column) : 0, scope));
  }
}

KernelMarks::~KernelMarks() = default;

KernelHook KernelMarks::hook() {
  return [this](llvm::IRBuilderBase& b, size_t k) { at_kernel(b, k); };
}

void KernelMarks::at_kernel(llvm::IRBuilderBase& b, size_t k) {
  functions_before_.at(k) = mod_.size();
  if (!debug_) return;
  llvm::Function* f = b.GetInsertBlock()->getParent();
  if (!f->getSubprogram() && f->getName() == entry_symbol_) f->setSubprogram(debug_->entry);
  b.SetCurrentDebugLocation(debug_->locs[k]);
}

void KernelMarks::finish() {
  // Functions in creation order: those named <entry>.* that kernel k's code
  // created belong to k; others (the register tile) are shared helpers.
  size_t index = 0;
  for (llvm::Function& f : mod_) {
    size_t i = index++;
    if (f.isDeclaration() || f.getName() == entry_symbol_) continue;
    int owner = -1;
    if (f.getName().starts_with(entry_symbol_ + "."))
      for (size_t k = 0; k < functions_before_.size() && functions_before_[k] <= i; ++k) owner = static_cast<int>(k);
    function_kernels_.emplace_back(f.getName().str(), owner);
  }
  if (!debug_) return;
  Debug& d = *debug_;
  if (llvm::Function* entry = mod_.getFunction(entry_symbol_); entry && !entry->getSubprogram())
    entry->setSubprogram(d.entry);
  // Outlined functions get subprograms of their own; their code keeps its
  // kernel's line and discriminator. A shared helper's code has no one line.
  for (const auto& [name, owner] : function_kernels_) {
    llvm::Function* f = mod_.getFunction(name);
    llvm::DILocation* at = owner >= 0 ? d.locs[static_cast<size_t>(owner)] : nullptr;
    llvm::DIFile* file = at ? llvm::cast<llvm::DILexicalBlockFile>(at->getScope())->getFile() : d.cu->getFile();
    llvm::DISubprogram* sp = d.subprogram(file, name, at ? static_cast<int>(at->getLine()) : 0, owner < 0);
    f->setSubprogram(sp);
    llvm::DILocation* loc =
        at ? llvm::DILocation::get(mod_.getContext(), at->getLine(), at->getColumn(),
                                   d.dib.createLexicalBlockFile(sp, file, static_cast<unsigned>(owner + 1)))
           : nullptr;
    for (llvm::BasicBlock& bb : *f)
      for (llvm::Instruction& inst : bb)
        if (inst.getDebugLoc()) inst.setDebugLoc(loc);
  }
  d.dib.finalize();
  std::string err;
  llvm::raw_string_ostream os(err);
  bool broken_debug_info = false;
  if (llvm::verifyModule(mod_, &os, &broken_debug_info) || broken_debug_info)
    internal_error(__FILE__, __LINE__, "generated debug info is invalid: " + os.str());
}

int KernelMarks::function_kernel(llvm::StringRef fn) const {
  // Optimization may clone a function under a longer name (NAME.specialized.1).
  for (const auto& [name, owner] : function_kernels_)
    if (fn == name || (fn.starts_with(name) && fn.size() > name.size() && fn[name.size()] == '.')) return owner;
  return -1;
}

std::string KernelMarks::label(size_t k) const {
  const Kernel& mark = kernels_.at(k);
  std::string s = fmt::format("k{}: {}", k, mark.summary);
  for (size_t i = 0; i < mark.pos.size(); ++i) {
    const Kernel::Pos& q = mark.pos[i];
    bool same_file = i > 0 && q.file == mark.pos[i - 1].file;
    s += fmt::format("{}{}{}:{}", i ? ", " : " (", same_file ? "" : sm_.name(q.file) + ":", q.line, q.column);
  }
  return mark.pos.empty() ? s : s + ")";
}

std::string KernelMarks::where(size_t k) const {
  const Kernel& mark = kernels_.at(k);
  return mark.pos.empty() ? "" : fmt::format("{}:{}", sm_.name(mark.pos[0].file), mark.pos[0].line);
}

std::vector<std::string> KernelMarks::source_lines(size_t k) const {
  std::vector<std::string> lines;
  for (const Kernel::Pos& q : kernels_.at(k).pos) {
    std::string text(sm_.line_text(q.file, q.line));
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r')) text.pop_back();
    lines.push_back(fmt::format("{:>5} | {}", q.line, text));
  }
  return lines;
}

int KernelMarks::kernel_of(const llvm::DILocation* loc) {
  if (!loc) return -1;
  unsigned d = loc->getDiscriminator();
  return d ? static_cast<int>(d) - 1 : -1;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string_view(v) != "0";
}

}  // namespace gradc
