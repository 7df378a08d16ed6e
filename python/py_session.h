// gradc.Session: a gradc::Session driven from Python. Inputs come as NumPy
// arrays by name, results go back as NumPy arrays that own gradc's tensors,
// and params are NumPy views of the session's own memory.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gradc/gradc.h"
#include "gradc/session.h"

namespace gradc_python {

namespace py = pybind11;

class PySession {
 public:
  PySession(const gradc::Model& model, const gradc::SessionOptions& opts);

  double train_step(const py::object& inputs, std::optional<double> lr, const py::kwargs& more);
  py::dict forward(const py::object& inputs, const py::kwargs& more);
  py::dict grad(const py::object& inputs, const py::kwargs& more);
  void save(const std::string& path);
  void load(const std::string& path);

  // The param `name` as a writable NumPy view of the session's memory,
  // kept alive by `self` (this session's Python object).
  py::array param(const std::string& name, py::handle self);
  // Copies `value` (checked like an input) into the param `name`.
  void set_param(const std::string& name, py::handle value);
  std::vector<std::string> param_names() const;
  std::vector<std::string> state_names() const;
  // The optimizer state `name` ("opt.SLOT.PARAM") as a read-only copy.
  py::array state(const std::string& name) const;
  // Replaces the optimizer state `name` with `value` (checked like an input).
  void set_state(const std::string& name, py::handle value);
  std::vector<std::string> buffer_names() const;
  // The buffer `name` (batch_norm's running statistics) as a read-only copy.
  py::array buffer(const std::string& name) const;
  // Copies `value` (checked like an input) into the buffer `name`.
  void set_buffer(const std::string& name, py::handle value);
  int64_t step() const { return session_.step(); }
  int threads() const { return session_.threads(); }
  std::string backend() const;

 private:
  // A param's memory as its NumPy views see it, `home`. On the JIT it is the
  // session's own storage of the param. The JIT updates most params in place
  // (then nothing is ever copied); one it does not is written into a second
  // buffer that train_step swaps in (compiler/api/session.cpp), so the
  // storage alternates between two blocks, both allocated once and kept for
  // the session's life: whenever the current one is not `home`, the two are
  // synchronized around each call. The interpreter replaces the tensors it
  // writes (freeing their storage), so with it `home` is `own`, the
  // binding's copy, synchronized around every call.
  struct Pin {
    std::string name;
    gradc::Tensor* tensor;  // the session's param (the object; its storage may move)
    void* home;
    size_t bytes;
    std::unique_ptr<gradc::Tensor> own;  // the interpreter's: the views' memory
  };
  // Before a call: what was written through the views reaches the session.
  void pins_to_session();
  // After a call that changed params: the views see the new values.
  void session_to_pins();

  // The state `name`, or KeyError naming the state there is.
  const gradc::Tensor& find_state(const std::string& name) const;
  // Raises RuntimeError when another Python thread is inside a call of this session.
  void check_idle(const char* where) const;
  // The batch for `where`: every array checked and copied into `batch_`.
  // Returns whether every model input was given.
  bool gather(const char* where, const py::object& inputs, const py::kwargs& more);
  // Runs `call` on the given inputs (all of batch_, or the given ones), with the GIL released.
  template <class F> auto run(const char* where, const py::object& inputs, const py::kwargs& more, F call);

  gradc::Session session_;
  gradc::ModelInfo info_;
  std::vector<Pin> pins_;
  gradc::NamedTensors batch_;  // one tensor per model input, reused from call to call
  std::vector<bool> given_;
  bool busy_ = false;  // a call is running (with the GIL released)
};

// Registers gradc.Session and its params mapping.
void bind_session(py::module_& m);

}  // namespace gradc_python
