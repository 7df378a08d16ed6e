// gdb registration and perf's map file for JIT-compiled code (see jit_debug.h for why).
#include "compiler/codegen/jit_debug.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <llvm/ExecutionEngine/JITLink/JITLink.h>
#include <llvm/ExecutionEngine/Orc/DebugObjectManagerPlugin.h>
#include <llvm/ExecutionEngine/Orc/EPCDebugObjectRegistrar.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ObjectLinkingLayer.h>
#include <unistd.h>

#include <mutex>

namespace gradc {
namespace {

bool executable(llvm::orc::MemProt prot) {
  using namespace llvm;  // the operators of bitmask enums
  return (prot & orc::MemProt::Exec) != orc::MemProt::None;
}

llvm::orc::ObjectLinkingLayer* jitlink_layer(llvm::orc::LLJIT& jit) {
  return llvm::dyn_cast<llvm::orc::ObjectLinkingLayer>(&jit.getObjLinkingLayer());
}

// Appends each linked object's functions to the map file, once their
// addresses are final.
class PerfMapPlugin final : public llvm::orc::ObjectLinkingLayer::Plugin, public PerfMap {
 public:
  void name_functions(const std::string& object, std::map<std::string, std::string> names) override {
    std::lock_guard<std::mutex> lock(mutex_);
    names_[object] = std::move(names);
  }

  void modifyPassConfig(llvm::orc::MaterializationResponsibility&, llvm::jitlink::LinkGraph& g,
                        llvm::jitlink::PassConfiguration& config) override {
    // Local functions are reached through their section, not their symbol:
    // kept alive, so that the pruning pass leaves their names.
    config.PrePrunePasses.push_back([](llvm::jitlink::LinkGraph& g) {
      for (llvm::jitlink::Symbol* sym : g.defined_symbols())
        if (sym->hasName() && executable(sym->getBlock().getSection().getMemProt())) sym->setLive(true);
      return llvm::Error::success();
    });
    config.PostFixupPasses.push_back([this](llvm::jitlink::LinkGraph& g) {
      write(g);
      return llvm::Error::success();
    });
  }
  llvm::Error notifyFailed(llvm::orc::MaterializationResponsibility&) override { return llvm::Error::success(); }
  llvm::Error notifyRemovingResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey) override {
    return llvm::Error::success();
  }
  void notifyTransferringResources(llvm::orc::JITDylib&, llvm::orc::ResourceKey, llvm::orc::ResourceKey) override {}

 private:
  void write(llvm::jitlink::LinkGraph& g) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::map<std::string, std::string>* names = nullptr;
    if (auto it = names_.find(g.getName()); it != names_.end()) names = &it->second;
    std::string text;
    for (llvm::jitlink::Symbol* sym : g.defined_symbols()) {
      // Functions: named symbols in executable sections (local ones included).
      if (!sym->hasName() || sym->getSize() == 0 || !executable(sym->getBlock().getSection().getMemProt()))
        continue;
      std::string symbol = sym->getName().str(), name = symbol;
      if (names)
        if (auto it = names->find(symbol); it != names->end()) name = it->second;
      text += fmt::format("{:x} {:x} {}\n", sym->getAddress().getValue(), sym->getSize(), name);
    }
    // One write per object, appended: several JITs of a process share the file.
    int fd = ::open(perf_map_path().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return;  // perf's map is a convenience: no error when /tmp is not writable
    for (size_t done = 0; done < text.size();) {
      ssize_t n = ::write(fd, text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
    ::close(fd);
  }

  std::mutex mutex_;
  std::map<std::string, std::map<std::string, std::string>> names_;  // by object
};

}  // namespace

std::string add_gdb_registration(llvm::orc::LLJIT& jit) {
  llvm::orc::ObjectLinkingLayer* layer = jitlink_layer(jit);
  if (!layer) return "the JIT's linker is not JITLink";
  llvm::orc::ExecutionSession& es = jit.getExecutionSession();
  // The registration function is found among the process's symbols (Debian's libLLVM exports it).
  auto registrar = llvm::orc::createJITLoaderGDBRegistrar(es);
  if (!registrar) return llvm::toString(registrar.takeError());
  // Only objects with debug sections; registered as soon as they are linked.
  layer->addPlugin(std::make_unique<llvm::orc::DebugObjectManagerPlugin>(es, std::move(*registrar),
                                                                         /*RequireDebugSections=*/true,
                                                                         /*AutoRegisterCode=*/true));
  return {};
}

PerfMap* add_perf_map(llvm::orc::LLJIT& jit) {
  llvm::orc::ObjectLinkingLayer* layer = jitlink_layer(jit);
  if (!layer) return nullptr;
  auto plugin = std::make_unique<PerfMapPlugin>();
  PerfMap* map = plugin.get();
  layer->addPlugin(std::move(plugin));
  return map;
}

std::string perf_map_path() { return fmt::format("/tmp/perf-{}.map", ::getpid()); }

}  // namespace gradc
