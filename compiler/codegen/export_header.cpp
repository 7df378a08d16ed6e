// The C header of an exported model (export_abi.h): its structs, tensor
// tables, runtime, entries and return codes, in words a C programmer reads
// as the documentation of the ABI (docs/export.md).
#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "compiler/codegen/export_abi.h"
#include "gradc/tensor.h"

namespace gradc {
namespace {

const char* c_type(DType t) {
  switch (t) {
    case DType::F32: return "float";
    case DType::F64: return "double";
    case DType::I32: return "int32_t";
  }
  return "?";
}

std::string dims_text(const std::vector<int64_t>& shape) {
  std::string s;
  for (int64_t d : shape) s += fmt::format("[{}]", d);
  return s;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += fmt::format("{}{}", i ? ", " : "", shape[i]);
  return s + "]";
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

// The structs the header declares: those of the exported entries.
std::vector<const CStruct*> structs(const ExportAbi& a) {
  std::vector<const CStruct*> ss = {&a.inputs, &a.params};
  if (a.wants(EntryKind::TrainStep)) ss.push_back(&a.state);
  if (a.wants(EntryKind::Forward) || a.wants(EntryKind::Grad)) ss.push_back(&a.outputs);
  if (a.wants(EntryKind::Grad)) ss.push_back(&a.grads);
  return ss;
}

std::string struct_text(const ExportAbi& a, const CStruct& s, const std::string& doc) {
  std::string t = fmt::format("/* {} */\ntypedef struct {}_{} {{\n", doc, a.name, s.what);
  if (s.fields.empty()) t += "  char none; /* (the model has none) */\n";
  for (const Field& f : s.fields)
    t += fmt::format("  {} {}{}; /* {}: {}{} */\n", c_type(f.dtype), f.c_name, dims_text(f.shape), f.tensor,
                     dtype_name(f.dtype), shape_text(f.shape));
  return t + fmt::format("}} {}_{};\n\n", a.name, s.what);
}

// Every struct's tensors as data, for code that loads or prints them by
// name (a checkpoint's tensors into NAME_params, for example).
std::string tensor_tables(const ExportAbi& a) {
  size_t rank = 1;
  for (const CStruct* s : structs(a))
    for (const Field& f : s->fields) rank = std::max(rank, f.shape.size());
  std::string t = fmt::format(
      "/* Each struct's tensors by name: dtype \"f32\", \"f64\" or \"i32\", the shape (rank\n"
      " * entries of shape[]), and the field's offset and size in bytes. */\n"
      "typedef struct {n}_tensor {{\n  const char *name;\n  const char *dtype;\n  int32_t rank;\n"
      "  int64_t shape[{r}];\n  size_t offset, bytes;\n}} {n}_tensor;\n\n",
      fmt::arg("n", a.name), fmt::arg("r", rank));
  for (const CStruct* s : structs(a)) {
    t += fmt::format("#define {}_{}_COUNT {}\n", a.upper, upper(s->what), s->fields.size());
    if (s->fields.empty()) {  // no table: C has no empty arrays
      t += "\n";
      continue;
    }
    t += fmt::format("static const {n}_tensor {n}_{w}_tensors[{}] = {{\n", s->fields.size(), fmt::arg("n", a.name),
                     fmt::arg("w", s->what));
    for (const Field& f : s->fields) {
      std::string shape;
      for (int64_t d : f.shape) shape += fmt::format("{}{}", shape.empty() ? "" : ", ", d);
      t += fmt::format("  {{\"{}\", \"{}\", {}, {{{}}}, offsetof({}_{}, {}), {}}},\n", f.tensor, dtype_name(f.dtype),
                       f.shape.size(), shape.empty() ? "0" : shape, a.name, s->what, f.c_name, f.bytes);
    }
    t += "};\n\n";
  }
  return t;
}

std::string runtime_text(const ExportAbi& a) {
  return fmt::format(
      "/* An optional thread pool. An entry runs each large kernel as\n"
      " * rt->parallel_for(rt, body, ctx, n): call body(ctx, i, slot) once for every i\n"
      " * in [0, n), in any order and on any threads, and return when all are done.\n"
      " * slot tells apart the threads of one call: in [0, rt->threads), the calling\n"
      " * thread 0, no two running bodies with the same slot (each slot has scratch in\n"
      " * the work area, sized by the threads given to _WORK_BYTES). Results do not\n"
      " * depend on the thread count. pool is yours. Pass NULL for one thread. */\n"
      "typedef struct {n}_runtime {{\n"
      "  void (*parallel_for)(const struct {n}_runtime *rt, void (*body)(void *ctx, int64_t i, int64_t slot),\n"
      "                       void *ctx, int64_t n);\n"
      "  void *pool;\n"
      "  int32_t threads;\n"
      "}} {n}_runtime;\n\n"
      "#define {UP}_WORK_ALIGN {a}\n\n",
      fmt::arg("n", a.name), fmt::arg("UP", a.upper), fmt::arg("a", kWorkAlign));
}

// The dynamic dims' parameters of every entry: ", int64_t B" and so on.
std::string size_params(const ExportAbi& a) {
  std::string t;
  for (const auto& [d, capacity] : a.max_dims) t += fmt::format("int64_t {}, ", d);
  return t;
}

std::string entry_text(const ExportAbi& a, const EntryPlan& e) {
  const Program& p = e.program;
  const std::string sizes = size_params(a);
  std::string entry = upper(entry_name(e.kind));
  std::string loss = c_type(a.loss_dtype);
  std::string t;
  switch (e.kind) {
    case EntryKind::Forward:
      t += "/* forward: the outputs for the inputs and params (evaluation mode). */\n";
      break;
    case EntryKind::Grad:
      t += "/* grad: the loss and its gradient for every param (training mode), and the\n"
           " * outputs; params are not changed. */\n";
      break;
    case EntryKind::TrainStep:
      t += fmt::format(
          "/* train_step: one optimizer step ({}): *loss is the loss before it;\n"
          " * params and state are updated in place. lr is the learning rate (the\n"
          " * model's: {}). */\n",
          a.optimizer, a.lr);
      t += fmt::format("#define {}_LR {}\n", a.upper, a.lr);
      break;
    case EntryKind::Evaluate:
    case EntryKind::ApplyUpdate: break;
  }
  int64_t arena = align_up(p.arena_bytes, kWorkAlign);
  t += fmt::format("#define {}_{}_WORK_BYTES(threads) ((size_t){} + (size_t)(threads) * {})\n", a.upper, entry,
                   e.temp_bytes + arena, p.worker_bytes);
  switch (e.kind) {
    case EntryKind::Forward:
      t += fmt::format("int32_t {n}_forward(const {n}_inputs *inputs, const {n}_params *params, {n}_outputs *outputs,\n"
                       "                    {s}void *work, const {n}_runtime *rt);\n\n",
                       fmt::arg("n", a.name), fmt::arg("s", sizes));
      break;
    case EntryKind::Grad:
      t += fmt::format("int32_t {n}_grad(const {n}_inputs *inputs, const {n}_params *params, {l} *loss, {n}_grads *grads,\n"
                       "                 {n}_outputs *outputs, {s}void *work, const {n}_runtime *rt);\n\n",
                       fmt::arg("n", a.name), fmt::arg("l", loss), fmt::arg("s", sizes));
      break;
    case EntryKind::TrainStep:
      t += fmt::format("int32_t {n}_train_step(const {n}_inputs *inputs, {n}_params *params, {n}_state *state, double lr,\n"
                       "                       {l} *loss, {s}void *work, const {n}_runtime *rt);\n\n",
                       fmt::arg("n", a.name), fmt::arg("l", loss), fmt::arg("s", sizes));
      break;
    case EntryKind::Evaluate:
    case EntryKind::ApplyUpdate: break;
  }
  return t;
}

}  // namespace

std::string export_header(const ExportAbi& a) {
  std::string guard = a.upper + "_GRADC_H";
  std::string h;
  h += fmt::format(
      "/* {name}.h: the model '{name}' compiled ahead of time by `gradc export`.\n"
      " *\n"
      " * Link {name}.o into a C or C++ program: it needs the C library and libm only\n"
      " * (cc app.c {name}.o -lm). docs/export.md describes this ABI in full.\n"
      " *\n"
      " * Tensors are row-major arrays inside the structs below, each field at its\n"
      " * type's natural alignment. Every entry takes a caller-provided work area of\n"
      " * {UP}_<ENTRY>_WORK_BYTES(threads) bytes, aligned to {UP}_WORK_ALIGN, used\n"
      " * by one call at a time, and an optional runtime (NULL: run on the calling\n"
      " * thread). Entries return {UP}_OK (0) or a run-time check's code; then\n"
      " * nothing was updated, and {name}_error_message names the model line.\n"
      " * {same}\n"
      " */\n"
      "#ifndef {guard}\n#define {guard}\n\n#include <stddef.h>\n#include <stdint.h>\n\n"
      "#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n",
      fmt::arg("name", a.name), fmt::arg("UP", a.upper), fmt::arg("guard", guard),
      fmt::arg("same", a.host ? "Results are bit-identical to gradc's JIT on the CPU that exported it."
                             : "Made for another CPU than gradc's: results match the JIT's up to rounding."));
  h += fmt::format("#define {}_ABI_VERSION {}        /* changes with the layout or the entries' parameters */\n",
                   a.upper, kAbiVersion);
  h += fmt::format("#define {}_TARGET \"{}\"  /* the code runs on this target and CPU */\n", a.upper, a.triple);
  h += fmt::format("#define {}_CPU \"{}\"\n\n", a.upper, a.cpu);
  if (!a.dims.empty()) {
    h += "/* The dims the model was compiled for (gradc export --set D=N). */\n";
    for (const auto& [d, v] : a.dims) h += fmt::format("#define {}_DIM_{} {}\n", a.upper, d, v);
    h += "\n";
  }
  if (!a.max_dims.empty()) {
    std::string names;
    for (const auto& [d, v] : a.max_dims) names += fmt::format("{}{}", names.empty() ? "" : ", ", d);
    h += fmt::format(
        "/* Dynamic dims (gradc export --max D=N): every entry takes the size of each\n"
        " * ({}) as an int64_t argument, from 1 to {}_MAX_D (else it returns that\n"
        " * dim's error code and changes nothing). The structs declare the arrays at\n"
        " * the largest sizes; a call reads and writes the first D along each such axis\n"
        " * (for an input [B][4], rows 0 .. B-1; the entry pads a copy of the rest\n"
        " * itself, so they need not be set). Rows past D of the outputs are not results. */\n",
        names, a.upper);
    for (const auto& [d, v] : a.max_dims) h += fmt::format("#define {}_MAX_{} {}\n", a.upper, d, v);
    h += "\n";
  }
  h += struct_text(a, a.inputs, "The model's inputs (what the entries read; forward ignores those only the loss reads).");
  h += struct_text(a, a.params, "The params (and buffers), by name; train_step updates them in place.");
  if (a.wants(EntryKind::TrainStep))
    h += struct_text(a, a.state,
                     a.state.find("@seed")
                         ? "The optimizer state, as in checkpoints (opt.step, opt.SLOT.PARAM): zeros before the first "
                           "step; train_step updates it in place. Then `seed`, the key of the model's random draws "
                           "(dropout, genetic, es): the 64-bit seed as two 32-bit words, low first, as `gradc train "
                           "--seed S` and a checkpoint's train.seed give it; it is not a checkpoint tensor (its "
                           "table name starts with '@'), and train_step does not change it."
                         : "The optimizer state, as in checkpoints (opt.step, opt.SLOT.PARAM): zeros before the first "
                           "step; train_step updates it in place.");
  if (a.wants(EntryKind::Forward) || a.wants(EntryKind::Grad)) h += struct_text(a, a.outputs, "The outputs, by name.");
  if (a.wants(EntryKind::Grad)) h += struct_text(a, a.grads, "The gradient of the loss for every param, by param name.");
  h += tensor_tables(a);
  h += runtime_text(a);
  for (const EntryPlan& e : a.entries) h += entry_text(a, e);
  h += fmt::format(
      "/* Return codes: {UP}_OK, or one of {UP}_ERROR_CODES - 1 run-time checks\n"
      " * (a class id out of range...); the message names the model line. Never NULL. */\n"
      "#define {UP}_OK 0\n#define {UP}_ERROR_CODES {n}\n"
      "const char *{name}_error_message(int32_t code);\n\n",
      fmt::arg("UP", a.upper), fmt::arg("name", a.name), fmt::arg("n", a.messages.size()));
  const std::vector<std::string>& ms = a.messages;
  for (size_t i = 1; i < ms.size(); ++i) h += fmt::format("/*   {}: {} */\n", i, ms[i]);
  if (ms.size() > 1) h += "\n";
  h += fmt::format("#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {} */\n", guard);
  return h;
}

bool c_keyword(const std::string& s) {
  static const std::set<std::string> words = {
      "auto",     "break",    "case",     "char",   "const",    "continue", "default",  "do",     "double",
      "else",     "enum",     "extern",   "float",  "for",      "goto",     "if",       "inline", "int",
      "long",     "register", "restrict", "return", "short",    "signed",   "sizeof",   "static", "struct",
      "switch",   "typedef",  "union",    "unsigned", "void",   "volatile", "while",    "bool",   "true",
      "false",    "alignas",  "alignof",  "nullptr", "static_assert", "thread_local", "typeof", "constexpr"};
  return words.count(s) > 0;
}

}  // namespace gradc
