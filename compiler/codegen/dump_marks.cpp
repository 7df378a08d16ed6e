// Marked IR and assembly dumps (see dump_marks.h for why).
#include "compiler/codegen/dump_marks.h"

#include <llvm/IR/AssemblyAnnotationWriter.h>
#include <llvm/IR/DebugInfo.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/FormattedStream.h>
#include <llvm/Support/raw_ostream.h>

#include <set>
#include <sstream>
#include <string_view>
#include <unordered_map>

#include "compiler/codegen/debug_info.h"

namespace gradc {
namespace {

// Prints a mark before the first instruction of each run of one kernel's code.
class IrMarks final : public llvm::AssemblyAnnotationWriter {
 public:
  IrMarks(const KernelMarks& marks, bool annotate) : marks_(marks), annotate_(annotate) {}
  std::unordered_map<const llvm::Instruction*, int> kernel;

  void emitFunctionAnnot(const llvm::Function*, llvm::formatted_raw_ostream&) override { current_ = -1; }
  void emitInstructionAnnot(const llvm::Instruction* inst, llvm::formatted_raw_ostream& os) override {
    auto it = kernel.find(inst);
    if (it == kernel.end() || it->second == current_) return;
    current_ = it->second;
    os << "  ; " << marks_.label(static_cast<size_t>(current_)) << "\n";
    if (annotate_)
      for (const std::string& line : marks_.source_lines(static_cast<size_t>(current_))) os << "  ; " << line << "\n";
  }

 private:
  const KernelMarks& marks_;
  bool annotate_;
  int current_ = -1;
};

// The module flags that KernelMarks added for debug info (a module without
// debug info has none of them).
void drop_debug_module_flags(llvm::Module& mod) {
  llvm::NamedMDNode* flags = mod.getModuleFlagsMetadata();
  if (!flags) return;
  std::vector<llvm::MDNode*> keep;
  for (llvm::MDNode* flag : flags->operands()) {
    auto* key = flag->getNumOperands() >= 2 ? llvm::dyn_cast<llvm::MDString>(flag->getOperand(1)) : nullptr;
    if (!key || (key->getString() != "Debug Info Version" && key->getString() != "Dwarf Version")) keep.push_back(flag);
  }
  flags->clearOperands();
  for (llvm::MDNode* flag : keep) flags->addOperand(flag);
  if (keep.empty()) mod.eraseNamedMetadata(flags);
}

std::string_view trim_left(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  return s;
}

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }

// The discriminator of a `.loc FILE LINE COL [options]` directive (0: none).
unsigned loc_discriminator(std::string_view directive) {
  std::istringstream in{std::string(directive)};
  std::string word;
  while (in >> word)
    if (word == "discriminator" && in >> word) return static_cast<unsigned>(std::stoul(word));
  return 0;
}

// A label definition at the start of a line ("name:"), or "".
std::string_view label_of(std::string_view line) {
  size_t colon = line.find(':');
  if (colon == std::string_view::npos || colon == 0) return {};
  std::string_view name = line.substr(0, colon);
  for (char c : name)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$')) return {};
  return name;
}

}  // namespace

std::string marked_ir_text(llvm::Module& mod, const KernelMarks& marks, bool annotate) {
  IrMarks writer(marks, annotate);
  for (llvm::Function& f : mod)
    for (llvm::BasicBlock& bb : f)
      for (llvm::Instruction& inst : bb)
        if (int k = KernelMarks::kernel_of(inst.getDebugLoc().get()); k >= 0) writer.kernel[&inst] = k;
  llvm::StripDebugInfo(mod);
  drop_debug_module_flags(mod);
  std::string s;
  llvm::raw_string_ostream os(s);
  mod.print(os, &writer);
  return os.str();
}

std::string marked_asm_text(const std::string& text, const KernelMarks& marks, bool annotate,
                            const std::string& comment) {
  // First pass: the lines of the assembly without debug info, and the marks
  // (a `.loc` of another kernel than the one before it, in one function).
  struct Line {
    std::string_view text;
    int mark = -1;  // a kernel's mark goes before this line
  };
  std::vector<Line> lines;
  bool in_debug_section = false;
  int current = -1, pending = -1;
  std::string_view rest = text;
  while (!rest.empty()) {
    size_t end = rest.find('\n');
    std::string_view line = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    std::string_view t = trim_left(line);
    if (starts_with(t, ".section")) in_debug_section = starts_with(trim_left(t.substr(8)), ".debug_");
    else if (t == ".text" || t == ".data" || t == ".bss") in_debug_section = false;
    if (in_debug_section) continue;
    if (starts_with(t, ".loc\t") || starts_with(t, ".loc ")) {
      int k = static_cast<int>(loc_discriminator(t)) - 1;
      if (k >= 0 && k != current && static_cast<size_t>(k) < marks.kernels()) current = pending = k;
      continue;
    }
    // Numbered .file directives name the line table's files; the generated
    // code has no unwind tables, so its call frame information is debug info too.
    if ((starts_with(t, ".file\t") && t.size() > 6 && std::isdigit(static_cast<unsigned char>(t[6]))) ||
        starts_with(t, ".cfi_"))
      continue;
    std::string_view label = label_of(line);
    if (!label.empty() && !starts_with(label, ".L")) current = -1;  // a function starts
    lines.push_back({line, pending});
    pending = -1;
  }
  // Labels that only debug info referred to go (.Lfunc_begin0, .Ltmp3).
  std::set<std::string, std::less<>> used;
  for (const Line& l : lines) {
    std::string_view s = l.text;
    if (!label_of(s).empty()) s = s.substr(label_of(s).size() + 1);
    for (size_t at = s.find(".L"); at != std::string_view::npos; at = s.find(".L", at + 2)) {
      size_t e = at + 2;
      while (e < s.size() && (std::isalnum(static_cast<unsigned char>(s[e])) || s[e] == '_' || s[e] == '.' || s[e] == '$')) ++e;
      used.emplace(s.substr(at, e - at));
    }
  }
  std::string out;
  out.reserve(text.size());
  int carried = -1;  // a mark whose line went with an unused label
  for (const Line& l : lines) {
    std::string_view label = label_of(l.text);
    int mark = l.mark >= 0 ? l.mark : carried;
    if (starts_with(label, ".L") && trim_left(l.text.substr(label.size() + 1)).empty() && !used.count(label)) {
      carried = mark;
      continue;
    }
    carried = -1;
    if (mark >= 0) {
      out += "\t" + comment + " " + marks.label(static_cast<size_t>(mark)) + "\n";
      if (annotate)
        for (const std::string& src : marks.source_lines(static_cast<size_t>(mark))) out += "\t" + comment + " " + src + "\n";
    }
    out.append(l.text);
    out += '\n';
  }
  return out;
}

}  // namespace gradc
