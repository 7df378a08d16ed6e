// The public host API (include/gradc/gradc.h): the compilation pipeline from
// source text to a checked graph, with every stage printable.
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <stdexcept>

#include "compiler/autodiff/optimizers.h"
#include "compiler/autodiff/reverse.h"
#include "compiler/codegen/jit.h"
#include "compiler/codegen/kernels.h"
#include "compiler/frontend/parser.h"
#include "compiler/ir/builder.h"
#include "compiler/ir/printer.h"
#include "compiler/ir/verifier.h"
#include "compiler/api/model_impl.h"
#include "compiler/support/stack.h"
#include "gradc/gradc.h"

namespace gradc {

// Largest model file accepted.
constexpr uintmax_t kMaxSourceBytes = 16u << 20;

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;
Model::~Model() = default;

Diagnostic plain_error(std::string msg) {
  Diagnostic d;
  d.message = std::move(msg);
  return d;
}

namespace {

std::string file_stem(const std::string& name) {
  std::string stem = std::filesystem::path(name).stem().string();
  return stem.empty() ? "model" : stem;
}

}  // namespace

namespace {

std::string cache_key(const std::string& file_name, const std::string& source, const CompileOptions& opts) {
  std::string key = fmt::format("{}\x1f{}\x1f{}{}{}\x1f", file_name, source.size(), opts.optimize, opts.debug_info,
                                opts.perf_map);
  for (const auto& [d, v] : opts.dims) key += fmt::format("{}={};", d, v);
  for (const auto& [d, v] : opts.capacities) key += fmt::format("{}<={};", d, v);
  key += "\x1f";
  for (const std::string& w : opts.wrt) key += w + ";";
  key += opts.ad == CompileOptions::Autodiff::Forward ? "\x1f" "forward" : "";
  return key + "\x1f" + source;
}

}  // namespace

std::shared_ptr<Model::Impl> Model::compile_cached(std::string source, std::string file_name,
                                                   const CompileOptions& opts) {
  // Compiled specializations by (file name, source, options), kept while some
  // Model or Session holds them: a recompile of a live model is free, and
  // code is freed with the last user.
  static std::mutex cache_mutex;
  static std::map<std::string, std::weak_ptr<Impl>> cache;
  std::string key = cache_key(file_name, source, opts);
  {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (auto it = cache.find(key); it != cache.end())
      if (auto hit = it->second.lock()) return hit;
  }
  auto impl = std::make_shared<Impl>();
  impl->opts = opts;
  impl->recompile = [source, file_name](const CompileOptions& o) { return compile_cached(source, file_name, o); };
  run_with_large_stack([&] {
    std::string stem = file_stem(file_name);
    uint32_t file = impl->sm.add(std::move(file_name), std::move(source));
    run_pipeline(*impl, stem, opts, [&](DiagEngine& diags) { parse(impl->sm, file, impl->ast, diags); });
  });
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  cache[key] = impl;
  return impl;
}

Model Model::compile_source(std::string_view source, std::string file_name, const CompileOptions& opts) {
  return Model(compile_cached(std::string(source), std::move(file_name), opts));
}

Model Model::compile_file(const std::string& path, const CompileOptions& opts) {
  auto impl = std::make_shared<Impl>();
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    impl->diags.push_back(plain_error(fmt::format("cannot read '{}': no such file", path)));
  } else if (std::filesystem::is_directory(status)) {
    impl->diags.push_back(plain_error(fmt::format("cannot read '{}': it is a directory", path)));
  } else {
    std::ifstream in(path, std::ios::binary);
    std::string text;
    if (in) text = read_bounded(in, kMaxSourceBytes);
    if (!in && !in.eof()) {
      impl->diags.push_back(plain_error(fmt::format("cannot read '{}': {}", path, std::strerror(errno))));
    } else if (text.size() > kMaxSourceBytes) {
      impl->diags.push_back(plain_error(fmt::format("'{}' is larger than the limit of {} MiB for model files", path,
                                                    kMaxSourceBytes >> 20)));
    } else {
      return Model(compile_cached(std::move(text), path, opts));
    }
  }
  return Model(std::move(impl));
}

std::vector<int64_t> Model::Impl::bind_dynamic(const NamedTensors& inputs) const {
  const ModelIR& m = *runnable();
  std::vector<int64_t> out;
  for (const auto& [d, stand_in] : stand_ins()) {
    // The first input that has the dim binds it; every other must agree.
    const NamedNode* by = nullptr;
    size_t by_axis = 0;
    int64_t size = stand_in;
    for (const NamedNode& in : m.inputs) {
      const Tensor* t = find_tensor(inputs, in.name);
      const Shape& shape = m.graph[in.node].shape;
      if (!t || t->shape().size() != shape.size()) continue;  // missing, or a rank the call's check reports
      for (size_t a = 0; a < shape.size(); ++a) {
        if (!shape[a].dynamic || shape[a].name != d) continue;
        int64_t got = t->shape()[a];
        if (!by) {
          by = &in, by_axis = a, size = got;
        } else if (got != size) {
          const Node& first = m.graph[by->node];
          throw DataError(fmt::format("inputs '{}' and '{}' disagree on the dynamic dim {}: '{}' ({}) has {} along axis "
                                      "{}, '{}' ({}) has {} along axis {}",
                                      by->name, in.name, d, by->name, type_str(first.dtype, first.shape), size, by_axis,
                                      in.name, type_str(m.graph[in.node].dtype, shape), got, a));
        }
      }
    }
    if (by && size < 1)
      throw DataError(fmt::format("input '{}' has size {} along axis {}, which binds the dynamic dim {}; it needs at "
                                  "least 1",
                                  by->name, size, by_axis, d));
    out.push_back(size);
  }
  return out;
}

std::shared_ptr<Model::Impl> Model::Impl::specialization(const std::vector<int64_t>& sizes, std::shared_ptr<Impl> self,
                                                         bool capacity) {
  if (!dynamic() || sizes == bind_dynamic({})) return self;  // (no inputs bind the stand-ins)
  const ModelIR& m = *runnable();
  if (capacity && at_user_capacities()) {
    bool fits = true;
    for (size_t i = 0; i < sizes.size(); ++i) fits = fits && sizes[i] <= m.capacities[i].second;
    if (fits) return self;
  }
  std::lock_guard<std::mutex> lock(spec_mutex);
  if (capacity && !capacity_refused) {
    // The smallest capacity compile that holds the sizes and is less than 4 times as large.
    auto holds = [&](const std::vector<int64_t>& caps) {
      for (size_t i = 0; i < sizes.size(); ++i)
        if (sizes[i] > caps[i] || sizes[i] * 4 <= caps[i]) return false;
      return true;
    };
    auto volume = [](const std::vector<int64_t>& caps) {
      double v = 1;
      for (int64_t c : caps) v *= static_cast<double>(c);
      return v;
    };
    size_t best = capacity_compiles.size();
    for (size_t i = 0; i < capacity_compiles.size(); ++i)
      if (holds(capacity_compiles[i].first) &&
          (best == capacity_compiles.size() || volume(capacity_compiles[i].first) < volume(capacity_compiles[best].first)))
        best = i;
    if (best < capacity_compiles.size()) {
      auto hit = capacity_compiles[best];
      capacity_compiles.erase(capacity_compiles.begin() + static_cast<long>(best));
      capacity_compiles.push_back(hit);  // most recently used last
      return hit.second;
    }
    // Else one at these sizes, or at twice a smaller capacity when they grow
    // past it, so that a run of growing sizes compiles O(log) times.
    std::vector<int64_t> caps = sizes;
    std::vector<std::vector<int64_t>> had;
    for (const auto& [have, spec] : capacity_compiles) had.push_back(have);
    if (at_user_capacities()) {  // the user's own (above)
      had.emplace_back();
      for (const auto& [d, c] : m.capacities) had.back().push_back(c);
    }
    for (const std::vector<int64_t>& have : had)
      for (size_t i = 0; i < caps.size(); ++i)
        if (have[i] < sizes[i]) caps[i] = std::max(caps[i], std::min(2 * have[i], kMaxElements));
    CompileOptions o = opts;
    for (size_t i = 0; i < caps.size(); ++i) o.capacities.emplace_back(m.dynamic_dims[i], caps[i]);
    std::shared_ptr<Impl> spec = recompile(o);
    if (spec->model) {
      if (capacity_compiles.size() >= kKeptSpecializations) capacity_compiles.erase(capacity_compiles.begin());
      capacity_compiles.emplace_back(caps, spec);
      return spec;
    }
    // (A model that cannot run at a capacity, or does not compile at these
    // sizes: the specialization below says which.)
    capacity_refused = true;
    capacity_refusal = render_all(spec->diags);
  }
  CompileOptions o = opts;
  o.capacities.clear();  // (the sizes fix every dynamic dim)
  for (size_t i = 0; i < sizes.size(); ++i) o.dims.emplace_back(m.dynamic_dims[i], sizes[i]);
  for (size_t i = 0; i < specializations.size(); ++i)
    if (specializations[i].first == sizes) {
      auto hit = specializations[i];
      specializations.erase(specializations.begin() + static_cast<long>(i));
      specializations.push_back(hit);  // most recently used last
      return hit.second;
    }
  std::shared_ptr<Impl> spec = recompile(o);
  if (!spec->model) {
    std::string bound;
    for (size_t i = 0; i < sizes.size(); ++i) bound += fmt::format("{}{}={}", i ? ", " : "", m.dynamic_dims[i], sizes[i]);
    throw DataError(fmt::format("the model does not compile for the sizes its inputs give ({}):\n{}", bound,
                                render_all(spec->diags)));
  }
  if (specializations.size() >= kKeptSpecializations) specializations.erase(specializations.begin());
  specializations.emplace_back(sizes, spec);
  return spec;
}

bool Model::ok() const { return impl_->model.has_value(); }
bool Model::options_error() const { return impl_->options_error; }
const std::vector<Diagnostic>& Model::diagnostics() const { return impl_->diags; }

namespace {

// A graph printout without the `@line:col` that ends a node's line: a line
// "  %3 : f32[8] = param b1 ~ zeros        # h @19:7" keeps "# h", and one
// whose note is only the position loses the note and its padding. Every other
// line is kept as it is.
std::string without_locations(const std::string& text) {
  auto is_position = [](std::string_view s) {  // "@LINE:COL"
    size_t colon = s.find(':');
    if (s.size() < 4 || s[0] != '@' || colon == std::string_view::npos || colon < 2 || colon + 1 == s.size()) return false;
    for (size_t i = 1; i < s.size(); ++i)
      if (i != colon && (s[i] < '0' || s[i] > '9')) return false;
    return true;
  };
  std::string out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line(text.data() + pos, (nl == std::string::npos ? text.size() : nl) - pos);
    pos = nl == std::string::npos ? text.size() : nl + 1;
    size_t hash = line.rfind("# ");
    size_t at = line.rfind(' ');
    if (line.rfind("  %", 0) == 0 && hash != std::string_view::npos && at != std::string_view::npos &&
        at + 1 >= hash + 2 && is_position(line.substr(at + 1))) {
      if (at + 1 == hash + 2) {  // only a position: drop the note and the padding before it
        line = line.substr(0, hash);
        while (!line.empty() && line.back() == ' ') line.remove_suffix(1);
      } else {  // "# NAME @L:C" -> "# NAME"
        line = line.substr(0, at);
      }
    }
    size_t space = line.find(' ', 2);
    if (line.rfind("# @", 0) == 0 && space != std::string_view::npos && is_position(line.substr(2, space - 2))) {
      out += "# ";  // a remark, "# @L:C TEXT" -> "# TEXT"
      line = line.substr(space + 1);
    }
    out.append(line);
    out += '\n';
  }
  return out;
}

// The header of one step's printout under DumpOptions::print_after_all.
std::string step_header(std::string_view step) { return fmt::format("# *** after {} ***\n", step); }

}  // namespace

bool stage_has_steps(Stage stage) {
  // The passes and the kernel planner report their steps to an observer; the
  // back-end stages below them are one LLVM pipeline each.
  return stage == Stage::Opt || stage == Stage::Loops;
}

std::string Model::dump(Stage stage, const DumpOptions& opts) const {
  if (!opts.print_after_all) return dump(stage, opts.format, opts.entry, opts.locations);
  if (!stage_has_steps(stage))
    throw std::invalid_argument("Model::dump: print_after_all needs a stage made of steps (see stage_has_steps)");
  if (opts.locations == Locations::Hide && opts.format == DumpFormat::Text) {
    DumpOptions shown = opts;
    shown.locations = Locations::Show;
    return without_locations(dump(stage, shown));
  }
  std::string text;
  auto after = [&](std::string_view step, const std::string& printout) { text += step_header(step) + printout; };
  // (A stage added to stage_has_steps gets its branch here.)
  if (stage == Stage::Loops) {
    if (!impl_->runnable()) return {};
    if (opts.format == DumpFormat::Dot) throw std::invalid_argument("Model::dump: the loops stage has no DOT form");
    // The planner's steps, each printed as the plan stands after it: the last
    // printout is the `loops` stage.
    plan_program(*impl_->runnable(), entry_kind(opts.entry), false,
                 [&](std::string_view step, const Program& p) { after(step, print_program(p)); });
  }
  if (stage == Stage::Opt) {
    if (!impl_->model || !impl_->optimized) return {};  // not ok(), or compiled without the passes
    // The passes again, this time printing the graph after each: they are
    // deterministic, so the last printout is the `opt` stage's graph.
    if (opts.format == DumpFormat::Text)
      text = fmt::format("# {} nodes before the passes\n", live_nodes(*impl_->model, Roots::All).size());
    run_with_large_stack([&] {
      optimize(*impl_->model, nullptr, [&](std::string_view pass, const ModelIR& g) {
        after(pass, opts.format == DumpFormat::Dot ? print_graph_dot(g, Roots::All) : print_graph(g, impl_->sm, Roots::All));
      });
    });
  }
  return text;
}

std::string Model::dump(Stage stage, DumpFormat format, Entry entry, Locations locations) const {
  bool backend_stage = stage == Stage::Loops || stage == Stage::LlvmRaw || stage == Stage::Llvm || stage == Stage::Asm;
  if (format == DumpFormat::Annotated && !backend_stage) format = DumpFormat::Text;
  if (locations == Locations::Hide && format == DumpFormat::Text && (stage == Stage::Graph || stage == Stage::Grad || stage == Stage::Opt))
    return without_locations(dump(stage, format, entry, Locations::Show));
  if (stage == Stage::Ast) {
    if (!impl_->parsed) return {};
    std::string text;  // the printers recurse once per level, like the parser
    run_with_large_stack([&] {
      text = format == DumpFormat::Dot ? print_ast_dot(impl_->ast) : print_ast(impl_->ast, impl_->sm);
    });
    return text;
  }
  if (!impl_->model) return {};
  if (stage == Stage::Loops || stage == Stage::LlvmRaw || stage == Stage::Llvm || stage == Stage::Asm) {
    if (!impl_->runnable()) return {};
    EntryKind kind = entry_kind(entry);
    const char* name = stage == Stage::Loops ? "loops" : stage == Stage::LlvmRaw ? "llvm-raw" : stage == Stage::Llvm ? "llvm" : "asm";
    std::string text = jit_stage_text(*impl_->runnable(), kind, name, &impl_->sm, format == DumpFormat::Annotated);
    if (!impl_->dynamic()) return text;
    const char* comment = stage == Stage::LlvmRaw || stage == Stage::Llvm ? ";" : "#";
    if (impl_->at_user_capacities()) {  // --max: this code runs every size up to them
      std::string bounds;
      for (const auto& [d, c] : impl_->runnable()->capacities) bounds += fmt::format("{}{} <= {}", bounds.empty() ? "" : ", ", d, c);
      return fmt::format("{} the code for every size {} (--max): arrays along those dims have the largest size\n",
                         comment, bounds) +
             text;
    }
    // The code is that of one size (SPEC 2.2: each call's sizes are compiled on first use).
    std::string sizes, sets;
    for (const auto& [d, v] : impl_->stand_ins()) {
      sizes += fmt::format("{}{}={}", sizes.empty() ? "" : ", ", d, v);
      sets += fmt::format("{}--set {}=N", sets.empty() ? "" : " ", d);
    }
    return fmt::format("{} the code for the dynamic dims' stand-in sizes {}; a call compiles its own sizes (print one "
                       "with {})\n",
                       comment, sizes, sets) +
           text;
  }
  if (stage == Stage::Opt) {
    if (!impl_->optimized) return {};
    if (format == DumpFormat::Dot) return print_graph_dot(*impl_->optimized, Roots::All);
    std::string log = fmt::format("# {} nodes before the passes\n", live_nodes(*impl_->model, Roots::All).size());
    for (const PassRecord& r : impl_->pass_log) log += fmt::format("# after {:<11} {} nodes\n", r.pass, r.nodes_after);
    return log + print_graph(*impl_->optimized, impl_->sm, Roots::All);
  }
  Roots roots = stage == Stage::Grad ? Roots::Grads : Roots::Model;
  return format == DumpFormat::Dot ? print_graph_dot(*impl_->model, roots) : print_graph(*impl_->model, impl_->sm, roots);
}

EntryCost Model::cost(Entry entry) const {
  EntryCost c;
  if (!impl_->runnable()) return c;
  EntryKind kind = entry_kind(entry);
  Program p = plan_program(*impl_->runnable(), kind);
  c.kernels = static_cast<int>(p.kernels.size());
  c.arena_bytes = p.arena_bytes;
  c.peak_bytes = p.peak_bytes;
  // A product inside loops runs once per step of each (Kernel::Loop).
  std::vector<std::pair<int, int64_t>> loops;  // (loop_end, trip count) of the loops around
  int64_t runs = 1;
  for (size_t ki = 0; ki < p.kernels.size(); ++ki) {
    while (!loops.empty() && static_cast<int>(ki) >= loops.back().first) {
      runs /= loops.back().second;
      loops.pop_back();
    }
    const Kernel& k = p.kernels[ki];
    if (k.kind == Kernel::Kind::Loop) {
      loops.emplace_back(k.loop_end, k.dims[0]);
      runs *= k.dims[0];
    }
    if (k.kind == Kernel::Kind::MatMul) {
      int64_t n = 2 * runs;
      for (int64_t d : k.dims) n *= d;
      c.matmul_flops += n;
    }
  }
  return c;
}

ModelInfo Model::info() const {
  ModelInfo info;
  if (!impl_->model) return info;
  const ModelIR& m = *impl_->model;
  auto tensor = [&](const std::string& name, NodeId id) {
    const Node& n = m.graph[id];
    std::vector<std::string> dims;
    std::vector<int64_t> shape;
    for (const Dim& d : n.shape) {
      dims.push_back(d.name);
      shape.push_back(d.dynamic ? -1 : d.size);
    }
    return TensorInfo{name, std::string(dtype_name(n.dtype)), shape, dims, 0, ""};
  };
  info.name = m.name;
  for (const auto& [d, v] : m.dims)
    if (std::find(m.dynamic_dims.begin(), m.dynamic_dims.end(), d) == m.dynamic_dims.end()) info.dims.emplace_back(d, v);
  info.dynamic_dims = m.dynamic_dims;
  std::vector<NodeId> live = live_nodes(m);
  const std::vector<std::pair<std::string, int64_t>> stand_ins = impl_->stand_ins();
  for (const NamedNode& v : m.inputs) {
    TensorInfo t = tensor(v.name, v.node);
    // The fewest classes of the live one_hots that read it (cross_entropy's
    // among them), located where the graph knows the model line.
    for (NodeId id : live) {
      const Node& user = m.graph[id];
      if (user.op != Op::OneHot || user.operands[0] != v.node) continue;
      int64_t n = user.attrs.ints[0];
      // A class count that follows from a dynamic dim (a multiple of its
      // stand-in, which no integer of the file is) is the call's: its ids are
      // checked by the call.
      bool dynamic_count = false;
      for (const auto& [d, v] : stand_ins) dynamic_count = dynamic_count || n % v == 0;
      if (dynamic_count) continue;
      if (t.classes && (n > t.classes || (n == t.classes && !t.classes_read_at.empty()))) continue;
      t.classes = n;
      t.classes_read_at.clear();
      if (user.loc.valid()) {
        LineCol lc = impl_->sm.line_col(user.loc.file, user.loc.begin);
        t.classes_read_at = fmt::format("{}:{}:{}", impl_->sm.name(user.loc.file), lc.line, lc.column);
      }
    }
    info.inputs.push_back(std::move(t));
  }
  for (const ParamDecl& p : m.params) info.params.push_back(tensor(p.name, p.node));
  for (const ParamDecl& p : m.buffers) info.buffers.push_back(tensor(p.name, p.node));
  for (const NamedNode& v : m.outputs) info.outputs.push_back(tensor(v.name, v.node));
  for (const NamedNode& v : m.metrics) info.metrics.push_back(tensor(v.name, v.node));
  info.optimizer = m.optimizer.name + "(";
  for (size_t i = 0; i < m.optimizer.options.size(); ++i)
    info.optimizer += fmt::format("{}{}={}", i ? ", " : "", m.optimizer.options[i].first, m.optimizer.options[i].second);
  info.optimizer += ")";
  info.lr = m.optimizer.lr();
  info.graph_nodes = live.size();
  return info;
}

}  // namespace gradc
