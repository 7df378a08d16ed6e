// gradc.Session (py_session.h).
#include "py_session.h"

#include <fmt/format.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <utility>

#include "arrays.h"

namespace gradc_python {

namespace {

std::string names(const std::vector<gradc::TensorInfo>& ts) {
  std::string out;
  for (const gradc::TensorInfo& t : ts) out += (out.empty() ? "" : ", ") + t.name;
  return out.empty() ? "none" : out;
}

const gradc::TensorInfo* find_info(const std::vector<gradc::TensorInfo>& ts, std::string_view name) {
  for (const gradc::TensorInfo& t : ts)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace

PySession::PySession(const gradc::Model& model, const gradc::SessionOptions& opts)
    : session_(model, opts), info_(model.info()) {
  // The JIT keeps a param's storage, or its second buffer, for the
  // session's life; the interpreter replaces the tensors it writes, so with
  // it the views' memory is the binding's own (copied in and out each call).
  bool own = opts.backend == gradc::Backend::Interpreter;
  for (const auto& param : session_.params()) {
    gradc::Tensor& t = session_.param(param.first);
    auto copy = own ? std::make_unique<gradc::Tensor>(t) : nullptr;
    void* home = copy ? copy->raw() : t.raw();
    pins_.push_back({param.first, &t, home, t.nbytes(), std::move(copy)});
  }
  // A dynamic dim (-1) has no size until a call gives one: its inputs'
  // tensors are sized by each call's arrays (see gather).
  for (const gradc::TensorInfo& in : info_.inputs) {
    std::vector<int64_t> shape = in.shape;
    for (int64_t& d : shape) d = std::max<int64_t>(d, 1);
    batch_.emplace_back(in.name, gradc::Tensor(gradc_dtype(in.dtype), shape));
  }
  given_.assign(batch_.size(), false);
}

void PySession::pins_to_session() {
  for (Pin& p : pins_)
    if (p.tensor->raw() != p.home) std::memcpy(p.tensor->raw(), p.home, p.bytes);
}

void PySession::session_to_pins() {
  for (Pin& p : pins_)
    if (p.tensor->raw() != p.home) std::memcpy(p.home, p.tensor->raw(), p.bytes);
}

bool PySession::gather(const char* where, const py::object& inputs, const py::kwargs& more) {
  std::fill(given_.begin(), given_.end(), false);
  auto take = [&](py::handle key, py::handle value) {
    Py_ssize_t size = 0;
    const char* text = py::isinstance<py::str>(key) ? PyUnicode_AsUTF8AndSize(key.ptr(), &size) : nullptr;
    if (!text) throw py::type_error(fmt::format("{}: input names must be strings, got {}", where, std::string(py::repr(key))));
    std::string_view name(text, static_cast<size_t>(size));
    size_t i = 0;
    while (i < batch_.size() && batch_[i].first != name) ++i;
    if (i == batch_.size())
      throw py::type_error(fmt::format("{}: the model has no input '{}' (its inputs: {})", where, name, names(info_.inputs)));
    if (given_[i]) throw py::type_error(fmt::format("{}: input '{}' is given twice", where, name));
    py::array a = checked(where, "input", info_.inputs[i], value);
    gradc::Tensor& t = batch_[i].second;
    if (!std::equal(t.shape().begin(), t.shape().end(), a.shape()))  // a dynamic dim's new size
      t = gradc::Tensor(t.dtype(), std::vector<int64_t>(a.shape(), a.shape() + a.ndim()));
    std::memcpy(t.raw(), a.data(), t.nbytes());
    given_[i] = true;
  };
  if (!inputs.is_none()) {
    if (!py::isinstance<py::dict>(inputs))
      throw py::type_error(fmt::format("{}: inputs must be a dict of NumPy arrays by name, got {}", where,
                                       std::string(py::str(inputs.get_type().attr("__name__")))));
    for (auto [key, value] : py::reinterpret_borrow<py::dict>(inputs)) take(key, value);
  }
  for (auto [key, value] : more) take(key, value);
  return std::all_of(given_.begin(), given_.end(), [](bool g) { return g; });
}

void PySession::check_idle(const char* where) const {
  // A Session runs one call at a time. The flag is read and set with the GIL
  // held, so two Python threads cannot both pass.
  if (busy_) throw std::runtime_error(fmt::format("{}: this session is running a call in another thread", where));
}

template <class F> auto PySession::run(const char* where, const py::object& inputs, const py::kwargs& more, F call) {
  check_idle(where);
  bool all = gather(where, inputs, more);
  // Only the given inputs: forward() evaluates the loss and metrics when their inputs are there.
  gradc::NamedTensors subset;
  if (!all)
    for (size_t i = 0; i < batch_.size(); ++i)
      if (given_[i]) subset.push_back(std::move(batch_[i]));
  struct Done {
    PySession& s;
    gradc::NamedTensors& subset;
    ~Done() {
      s.busy_ = false;
      for (size_t i = 0, k = 0; i < s.batch_.size() && k < subset.size(); ++i)
        if (s.given_[i]) s.batch_[i] = std::move(subset[k++]);
    }
  } done{*this, subset};
  busy_ = true;
  py::gil_scoped_release nogil;
  pins_to_session();
  return call(all ? batch_ : subset);
}

double PySession::train_step(const py::object& inputs, std::optional<double> lr, const py::kwargs& more) {
  return run("train_step", inputs, more, [&](const gradc::NamedTensors& batch) {
    // A failed step commits nothing, but the session's check_numerics may
    // have put back a param's saved copy: the views follow either way.
    struct Sync {
      PySession& s;
      ~Sync() { s.session_to_pins(); }
    } sync{*this};
    return lr ? session_.train_step(batch, *lr) : session_.train_step(batch);
  });
}

py::dict PySession::forward(const py::object& inputs, const py::kwargs& more) {
  gradc::NamedTensors out =
      run("forward", inputs, more, [&](const gradc::NamedTensors& batch) { return session_.forward(batch); });
  return adopt_all(std::move(out));
}

py::dict PySession::grad(const py::object& inputs, const py::kwargs& more) {
  gradc::NamedTensors out =
      run("grad", inputs, more, [&](const gradc::NamedTensors& batch) { return session_.grad(batch); });
  return adopt_all(std::move(out));
}

void PySession::save(const std::string& path) {
  check_idle("save");
  pins_to_session();
  session_.save(path);
}

void PySession::load(const std::string& path) {
  check_idle("load");
  if (!std::filesystem::exists(path)) {
    errno = ENOENT;
    PyErr_SetFromErrnoWithFilename(PyExc_FileNotFoundError, path.c_str());
    throw py::error_already_set();
  }
  session_.load(path);
  session_to_pins();
}

py::array PySession::param(const std::string& name, py::handle self) {
  for (Pin& p : pins_)
    if (p.name == name) return view(p.tensor->dtype(), p.tensor->shape(), p.home, self, true);
  throw py::key_error(fmt::format("the model has no param '{}' (its params: {})", name, names(info_.params)));
}

void PySession::set_param(const std::string& name, py::handle value) {
  const gradc::TensorInfo* spec = find_info(info_.params, name);
  if (!spec) throw py::key_error(fmt::format("the model has no param '{}' (its params: {})", name, names(info_.params)));
  check_idle("params");
  py::array a = checked("params", "param", *spec, value);
  for (Pin& p : pins_)
    if (p.name == name) std::memmove(p.home, a.data(), p.bytes);  // the value may be the view itself
}

std::vector<std::string> PySession::param_names() const {
  std::vector<std::string> out;
  for (const Pin& p : pins_) out.push_back(p.name);
  return out;
}

std::vector<std::string> PySession::state_names() const {
  std::vector<std::string> out;
  for (const auto& st : session_.optimizer_state()) out.push_back(st.first);
  return out;
}

const gradc::Tensor& PySession::find_state(const std::string& name) const {
  if (const gradc::Tensor* t = gradc::find_tensor(session_.optimizer_state(), name)) return *t;
  std::string all = fmt::format("{}", fmt::join(state_names(), ", "));
  throw py::key_error(fmt::format("the optimizer has no state '{}' (its state: {})", name, all.empty() ? "none" : all));
}

py::array PySession::state(const std::string& name) const {
  gradc::Tensor copy = find_state(name);
  py::array a = adopt(std::move(copy));
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

void PySession::set_state(const std::string& name, py::handle value) {
  check_idle("optimizer_state");
  const gradc::Tensor& t = find_state(name);
  gradc::TensorInfo spec{name, std::string(gradc::dtype_name(t.dtype())), t.shape(),
                         std::vector<std::string>(t.shape().size()), 0, ""};
  py::array a = checked("optimizer_state", "state", spec, value);
  // The session writes its state only as a whole: a checkpoint of everything
  // with this tensor replaced goes back in (params and step unchanged).
  pins_to_session();
  gradc::NamedTensors all = session_.checkpoint();
  for (auto& [n, tensor] : all)
    if (n == name) std::memcpy(tensor.raw(), a.data(), tensor.nbytes());
  session_.restore(all, "optimizer_state");
  session_to_pins();
}

std::vector<std::string> PySession::buffer_names() const {
  std::vector<std::string> out;
  for (const gradc::TensorInfo& b : info_.buffers) out.push_back(b.name);
  return out;
}

py::array PySession::buffer(const std::string& name) const {
  const gradc::Tensor* t = gradc::find_tensor(session_.buffers(), name);
  if (!t) throw py::key_error(fmt::format("the model has no buffer '{}' (its buffers: {})", name, names(info_.buffers)));
  py::array a = adopt(gradc::Tensor(*t));
  a.attr("setflags")(py::arg("write") = false);
  return a;
}

void PySession::set_buffer(const std::string& name, py::handle value) {
  const gradc::TensorInfo* spec = find_info(info_.buffers, name);
  if (!spec) throw py::key_error(fmt::format("the model has no buffer '{}' (its buffers: {})", name, names(info_.buffers)));
  check_idle("buffers");
  py::array a = checked("buffers", "buffer", *spec, value);
  gradc::Tensor& t = session_.buffer(name);
  std::memcpy(t.raw(), a.data(), t.nbytes());
}

std::string PySession::backend() const {
  return session_.backend() == gradc::Backend::Jit ? "jit" : "interpreter";
}

namespace {

// session.params, session.buffers and session.optimizer_state: tensors by
// name, as a dict gives them. Params are NumPy views of the session's memory;
// buffers and the state are read as copies (the session exposes them
// read-only) and written whole.
struct Tensors {
  enum class Kind { Params, Buffers, State };
  py::object session;
  Kind kind;
  PySession& get() const { return session.cast<PySession&>(); }
  py::array at(const std::string& name) const {
    switch (kind) {
      case Kind::Params: return get().param(name, session);
      case Kind::Buffers: return get().buffer(name);
      case Kind::State: return get().state(name);
    }
    return {};
  }
  void set(const std::string& name, py::handle value) const {
    switch (kind) {
      case Kind::Params: return get().set_param(name, value);
      case Kind::Buffers: return get().set_buffer(name, value);
      case Kind::State: return get().set_state(name, value);
    }
  }
  std::vector<std::string> names() const {
    switch (kind) {
      case Kind::Params: return get().param_names();
      case Kind::Buffers: return get().buffer_names();
      case Kind::State: return get().state_names();
    }
    return {};
  }
};

}  // namespace

void bind_session(py::module_& m) {
  py::class_<PySession>(m, "Session",
                        "A model's params and optimizer state, and the entry points that use them.\n"
                        "Made by Model.session(); see docs/python.md.")
      .def("train_step", &PySession::train_step, py::arg("inputs") = py::none(), py::pos_only(), py::kw_only(),
           py::arg("lr") = py::none(),
           "One optimizer step on a batch of inputs (NumPy arrays by name); returns the loss before the update.\n"
           "lr: the learning rate of this step (default: the model's).")
      .def("forward", &PySession::forward, py::arg("inputs") = py::none(), py::pos_only(),
           "The outputs as 'out.NAME', plus 'loss' and 'metric.NAME' when their inputs are given.")
      .def("grad", &PySession::grad, py::arg("inputs") = py::none(), py::pos_only(),
           "'loss', 'grad.NAME' for every param and 'out.NAME' for every output; no update.")
      .def("save", [](PySession& s, const std::filesystem::path& p) { s.save(p.string()); }, py::arg("path"),
           "Writes params, buffers, optimizer state and step as safetensors (as `gradc train` does).")
      .def("load", [](PySession& s, const std::filesystem::path& p) { s.load(p.string()); }, py::arg("path"),
           "Loads a checkpoint (of `gradc train`, `gradc step` or save()).")
      .def_property_readonly("params", [](py::object self) { return Tensors{std::move(self), Tensors::Kind::Params}; },
                             "The params by name, as NumPy views of the session's own memory.")
      .def_property_readonly("buffers", [](py::object self) { return Tensors{std::move(self), Tensors::Kind::Buffers}; },
                             "The buffers by name (batch_norm's running statistics): read as copies, assigned whole.")
      .def_property_readonly("optimizer_state", [](py::object self) { return Tensors{std::move(self), Tensors::Kind::State}; },
                             "The optimizer state by name ('opt.SLOT.PARAM'): read as copies, assigned whole.")
      .def_property_readonly("step", &PySession::step, "Optimizer steps taken so far.")
      .def_property_readonly("threads", &PySession::threads)
      .def_property_readonly("backend", &PySession::backend);

  py::class_<Tensors>(m, "Tensors",
                      "A session's params (NumPy views of its memory, writable in place), buffers or optimizer "
                      "state (read-only copies) by name; assigning an array copies it in.")
      .def("__getitem__", &Tensors::at)
      .def("__setitem__", &Tensors::set)
      .def("__len__", [](const Tensors& t) { return t.names().size(); })
      .def("__contains__", [](const Tensors& t, const std::string& name) {
        std::vector<std::string> all = t.names();
        return std::find(all.begin(), all.end(), name) != all.end();
      })
      .def("__iter__", [](const Tensors& t) { return py::iter(py::cast(t.names())); })
      .def("keys", &Tensors::names)
      .def("items", [](const Tensors& t) {
        py::list out;
        for (const std::string& name : t.names()) out.append(py::make_tuple(name, t.at(name)));
        return out;
      })
      .def("__repr__", [](const Tensors& t) {
        return fmt::format("<gradc.Tensors {}>", fmt::join(t.names(), ", "));
      });
}

}  // namespace gradc_python
