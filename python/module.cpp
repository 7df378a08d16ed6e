// The Python module gradc: compile a model, read every stage, and train it
// on NumPy arrays (docs/python.md). A thin layer over the C++ host API
// (gradc/gradc.h, gradc/session.h): diagnostics become gradc.CompileError
// (a ValueError with the clang-style text and the first error's line and
// column), data errors ValueError, wrong arrays TypeError or ValueError.
#include <fmt/format.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <dlfcn.h>

#include <cerrno>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "arrays.h"
#include "gradc/gradc.h"
#include "gradc/session.h"
#include "py_session.h"

namespace py = pybind11;
using gradc_python::PySession;

namespace {

// The module's exception and warning classes, made once at import.
py::handle compile_error, model_error, compile_warning;

const char* severity_name(gradc::Severity s) {
  switch (s) {
    case gradc::Severity::Error: return "error";
    case gradc::Severity::Warning: return "warning";
    case gradc::Severity::Note: return "note";
    case gradc::Severity::Fatal: return "fatal";
  }
  return "error";
}

py::dict diagnostic_dict(const gradc::Diagnostic& d) {
  py::dict out;
  out["severity"] = severity_name(d.severity);
  out["file"] = d.file;
  out["line"] = d.line;
  out["column"] = d.column;
  out["message"] = d.message;
  return out;
}

// Sets the Python error `type(message)` with the location of `first` as
// .file, .line and .column (0 when it has none) and every diagnostic in .diagnostics.
void set_located_error(py::handle type, const std::string& message, const std::vector<gradc::Diagnostic>& diags) {
  const gradc::Diagnostic* first = nullptr;
  for (const gradc::Diagnostic& d : diags)
    if (!first && (d.severity == gradc::Severity::Error || d.severity == gradc::Severity::Fatal)) first = &d;
  py::object e = type(message);
  e.attr("file") = first ? first->file : "";
  e.attr("line") = first ? first->line : 0;
  e.attr("column") = first ? first->column : 0;
  py::list all;
  for (const gradc::Diagnostic& d : diags) all.append(diagnostic_dict(d));
  e.attr("diagnostics") = all;
  PyErr_SetObject(type.ptr(), e.ptr());
}

// The compiled model, or CompileError with its diagnostics (ValueError for
// bad options such as an unknown dim); its warnings go to Python's warnings.
std::shared_ptr<gradc::Model> checked_model(gradc::Model model) {
  const std::vector<gradc::Diagnostic>& diags = model.diagnostics();
  if (model.options_error()) throw py::value_error(gradc::render_all(diags));
  if (!model.ok()) {
    set_located_error(compile_error, gradc::render_all(diags), diags);
    throw py::error_already_set();
  }
  for (const gradc::Diagnostic& d : diags)
    if (d.severity == gradc::Severity::Warning && PyErr_WarnEx(compile_warning.ptr(), d.render().c_str(), 2) < 0)
      throw py::error_already_set();
  return std::make_shared<gradc::Model>(std::move(model));
}

gradc::CompileOptions compile_options(const std::map<std::string, int64_t>& dims,
                                      const std::map<std::string, int64_t>& max_dims, const std::vector<std::string>& wrt,
                                      bool optimize, const std::string& ad) {
  gradc::CompileOptions opts;
  opts.dims.assign(dims.begin(), dims.end());
  opts.capacities.assign(max_dims.begin(), max_dims.end());
  for (const auto& [name, size] : max_dims)
    if (dims.count(name))
      throw py::value_error(fmt::format("dims and max_dims both name '{}': dims fixes the dim at one size, max_dims "
                                        "compiles it for every size up to N; give one",
                                        name));
  opts.wrt = wrt;
  opts.optimize = optimize;
  if (ad != "reverse" && ad != "forward")
    throw py::value_error(fmt::format("ad must be 'reverse' or 'forward', got '{}'", ad));
  if (ad == "forward") opts.ad = gradc::CompileOptions::Autodiff::Forward;
  return opts;
}

std::shared_ptr<gradc::Model> load(const std::filesystem::path& path, const std::map<std::string, int64_t>& dims,
                                   const std::map<std::string, int64_t>& max_dims, const std::vector<std::string>& wrt,
                                   bool optimize, const std::string& ad) {
  if (!std::filesystem::exists(path)) {
    errno = ENOENT;
    PyErr_SetFromErrnoWithFilename(PyExc_FileNotFoundError, path.c_str());
    throw py::error_already_set();
  }
  return checked_model(gradc::Model::compile_file(path.string(), compile_options(dims, max_dims, wrt, optimize, ad)));
}

std::shared_ptr<gradc::Model> compile(const std::string& source, const std::string& name,
                                      const std::map<std::string, int64_t>& dims,
                                      const std::map<std::string, int64_t>& max_dims, const std::vector<std::string>& wrt,
                                      bool optimize, const std::string& ad) {
  return checked_model(gradc::Model::compile_source(source, name, compile_options(dims, max_dims, wrt, optimize, ad)));
}

template <class T> T lookup(const char* what, const std::map<std::string, T>& table, const std::string& key) {
  auto it = table.find(key);
  if (it != table.end()) return it->second;
  std::string known;
  for (const auto& [k, v] : table) known += (known.empty() ? "'" : ", '") + k + "'";
  throw py::value_error(fmt::format("unknown {} '{}' (expected {})", what, key, known));
}

std::string dump(const gradc::Model& m, const std::string& stage, const std::string& format, const std::string& entry,
                 bool locations, bool print_after_all) {
  static const std::map<std::string, gradc::Stage> stages = {
      {"ast", gradc::Stage::Ast},   {"graph", gradc::Stage::Graph}, {"grad", gradc::Stage::Grad},
      {"opt", gradc::Stage::Opt},   {"loops", gradc::Stage::Loops}, {"llvm-raw", gradc::Stage::LlvmRaw},
      {"llvm", gradc::Stage::Llvm}, {"asm", gradc::Stage::Asm}};
  static const std::map<std::string, gradc::DumpFormat> formats = {
      {"text", gradc::DumpFormat::Text}, {"dot", gradc::DumpFormat::Dot}, {"annotated", gradc::DumpFormat::Annotated}};
  static const std::map<std::string, gradc::Entry> entries = {
      {"forward", gradc::Entry::Forward}, {"grad", gradc::Entry::Grad}, {"train_step", gradc::Entry::TrainStep}};
  gradc::DumpOptions opts;
  gradc::Stage st = lookup("stage", stages, stage);
  opts.format = lookup("format", formats, format);
  bool graph_stage = st == gradc::Stage::Ast || st == gradc::Stage::Graph || st == gradc::Stage::Grad || st == gradc::Stage::Opt;
  bool code_stage = st == gradc::Stage::LlvmRaw || st == gradc::Stage::Llvm || st == gradc::Stage::Asm;
  if (opts.format == gradc::DumpFormat::Dot && !graph_stage)
    throw py::value_error(fmt::format("the {} stage has no DOT form (only ast, graph, grad and opt)", stage));
  if (opts.format == gradc::DumpFormat::Annotated && !code_stage)
    throw py::value_error(fmt::format("the {} stage has no annotated form (only llvm-raw, llvm and asm)", stage));
  opts.entry = lookup("entry", entries, entry);
  opts.locations = locations ? gradc::Locations::Show : gradc::Locations::Hide;
  opts.print_after_all = print_after_all;
  return m.dump(st, opts);
}

std::unique_ptr<PySession> session(const gradc::Model& m, int threads, uint64_t seed, const std::string& backend,
                                   bool check_numerics) {
  static const std::map<std::string, gradc::Backend> backends = {{"jit", gradc::Backend::Jit},
                                                                 {"interpreter", gradc::Backend::Interpreter}};
  if (threads < 0) throw py::value_error(fmt::format("threads must be 0 (one per hardware thread) or more, got {}", threads));
  gradc::SessionOptions opts;
  opts.backend = lookup("backend", backends, backend);
  opts.seed = seed;
  opts.threads = threads;
  opts.check_numerics = check_numerics;
  return std::make_unique<PySession>(m, opts);
}

py::dict specs(const std::vector<gradc::TensorInfo>& ts) {
  py::dict out;
  for (const gradc::TensorInfo& t : ts) out[py::str(t.name)] = t;
  return out;
}

std::string repr(const gradc::Model& m) {
  gradc::ModelInfo info = m.info();
  auto names = [](const std::vector<gradc::TensorInfo>& ts) {
    std::vector<std::string> out;
    for (const gradc::TensorInfo& t : ts) out.push_back(t.name);
    return fmt::format("{}", fmt::join(out, ", "));
  };
  return fmt::format("<gradc.Model {}: inputs {}; params {}>", info.name, names(info.inputs), names(info.params));
}

}  // namespace

PYBIND11_MODULE(gradc, m) {
  m.doc() = "gradc: compile models written in the gradc language and train them on NumPy arrays (docs/python.md).";
  m.attr("__version__") = GRADC_VERSION;
  // The JIT's code calls glibc's vector math (libmvec) and finds it among the
  // process's global symbols. Python loads a module and what it links
  // locally, so libmvec, loaded with this module, is made global.
  if (!dlopen("libmvec.so.1", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD))
    throw py::import_error("gradc: libmvec.so.1 (glibc's vector math, which the generated code calls) is not loaded");

  compile_error = PyErr_NewExceptionWithDoc(
      "gradc.CompileError", "A model that does not compile: the message is the compiler's clang-style text; "
      ".file, .line and .column locate the first error; .diagnostics lists them all.", PyExc_ValueError, nullptr);
  model_error = PyErr_NewExceptionWithDoc(
      "gradc.ModelError", "A run-time check that a line of the model explains (a class id out of range, a "
      "non-finite value under check_numerics); .file, .line and .column locate that line.", PyExc_ValueError, nullptr);
  compile_warning = PyErr_NewExceptionWithDoc("gradc.CompileWarning", "A compiler warning about a model.",
                                              PyExc_UserWarning, nullptr);
  m.attr("CompileError") = compile_error;
  m.attr("ModelError") = model_error;
  m.attr("CompileWarning") = compile_warning;
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const gradc::ModelError& e) {
      set_located_error(model_error, e.what(), {e.diagnostic});
    } catch (const gradc::DataError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<gradc::TensorInfo>(m, "TensorSpec", "A tensor of the model's interface: its name, dtype and shape.")
      .def_readonly("name", &gradc::TensorInfo::name)
      .def_property_readonly("dtype", [](const gradc::TensorInfo& t) { return gradc_python::numpy_dtype(t.dtype); })
      .def_property_readonly("shape", [](const gradc::TensorInfo& t) { return py::tuple(py::cast(t.shape)); })
      .def_readonly("dim_names", &gradc::TensorInfo::dim_names)
      .def("__repr__", [](const gradc::TensorInfo& t) {
        std::string shape = t.shape.size() == 1 ? fmt::format("({},)", t.shape[0]) : fmt::format("({})", fmt::join(t.shape, ", "));
        return fmt::format("TensorSpec('{}', {}, {})", t.name, std::string(py::str(gradc_python::numpy_dtype(t.dtype))), shape);
      });

  py::class_<gradc::Model, std::shared_ptr<gradc::Model>>(m, "Model", "A compiled model (immutable).")
      .def_static("load", &load, py::arg("path"), py::kw_only(), py::arg("dims") = std::map<std::string, int64_t>{},
                  py::arg("max_dims") = std::map<std::string, int64_t>{},
                  py::arg("wrt") = std::vector<std::string>{}, py::arg("optimize") = true, py::arg("ad") = "reverse",
                  "Compiles the model file at `path`; dims={'B': 64} binds dims, max_dims={'B': 64} compiles a "
                  "dynamic dim for every size up to 64, wrt names extra gradients, ad='forward' computes gradients "
                  "by forward accumulation.")
      .def("session", &session, py::kw_only(), py::arg("threads") = 0, py::arg("seed") = 0, py::arg("backend") = "jit",
           py::arg("check_numerics") = false,
           "A training session: params from the initializers (deterministic for the seed), optimizer state at "
           "its start. threads=0: one per hardware thread; backend 'jit' or 'interpreter'.")
      .def("dump", &dump, py::arg("stage"), py::kw_only(), py::arg("format") = "text", py::arg("entry") = "train_step",
           py::arg("locations") = true, py::arg("print_after_all") = false,
           "The text of a stage: ast, graph, grad, opt, loops, llvm-raw, llvm or asm (as `gradc dump`).")
      .def_property_readonly("name", [](const gradc::Model& m) { return m.info().name; })
      .def_property_readonly("dims", [](const gradc::Model& m) {
        py::dict out;
        for (const auto& [name, size] : m.info().dims) out[py::str(name)] = size;
        return out;
      })
      .def_property_readonly(
          "dynamic_dims", [](const gradc::Model& m) { return py::tuple(py::cast(m.info().dynamic_dims)); },
          "Dims declared without a size (`dim B`): every call binds them from its arrays' shapes (-1 in the "
          "shapes of `inputs`, `outputs`)")
      .def_property_readonly("inputs", [](const gradc::Model& m) { return specs(m.info().inputs); })
      .def_property_readonly("params", [](const gradc::Model& m) { return specs(m.info().params); })
      .def_property_readonly("buffers", [](const gradc::Model& m) { return specs(m.info().buffers); })
      .def_property_readonly("outputs", [](const gradc::Model& m) { return specs(m.info().outputs); })
      .def_property_readonly("metrics", [](const gradc::Model& m) { return specs(m.info().metrics); })
      .def_property_readonly("optimizer", [](const gradc::Model& m) { return m.info().optimizer; })
      .def_property_readonly("lr", [](const gradc::Model& m) { return m.info().lr; })
      .def("__repr__", &repr);

  m.def("compile", &compile, py::arg("source"), py::kw_only(), py::arg("name") = "<string>",
        py::arg("dims") = std::map<std::string, int64_t>{}, py::arg("max_dims") = std::map<std::string, int64_t>{},
        py::arg("wrt") = std::vector<std::string>{}, py::arg("optimize") = true, py::arg("ad") = "reverse",
        "Compiles a model from its source text; `name` is the file name its diagnostics show.");

  gradc_python::bind_session(m);
}
