"""Bad input from Python is a clear exception, never a crash: compile errors
as gradc.CompileError with the clang-style text and .line/.column, wrong
arrays as TypeError (type, dtype, name) or ValueError (shape, layout), data
errors as ValueError, run-time checks as gradc.ModelError.
Usage: /usr/bin/python3 test_errors.py GRADC ROOT (with PYTHONPATH=build/python)"""

import os
import warnings

import numpy as np

import gradc
from harness import ROOT, X, XOR, Y, raises, run


def session():
    return gradc.Model.load(XOR).session()


def test_compile_error_has_the_text_and_location():
    path = os.path.join(ROOT, "tests", "errors", "shape_matmul_inner.grad")
    e = raises(gradc.CompileError, lambda: gradc.compile(open(path).read(), name="inner.grad"),
               "inner.grad:8:10: error: cannot matmul tensors of shapes", "^")
    assert (e.file, e.line, e.column) == ("inner.grad", 8, 10)
    assert isinstance(e, ValueError)
    assert [d["severity"] for d in e.diagnostics] == ["error"]
    e = raises(gradc.CompileError, lambda: gradc.Model.load(path), "shape_matmul_inner.grad:8:10")
    assert e.line == 8


def test_options_and_files():
    raises(ValueError, lambda: gradc.Model.load(XOR, dims={"Q": 3}), "Q")
    raises(FileNotFoundError, lambda: gradc.Model.load(os.path.join(ROOT, "no_such.grad")), "no_such.grad")
    raises(FileNotFoundError, lambda: session().load("no_such.safetensors"), "no_such.safetensors")
    raises(ValueError, lambda: gradc.Model.load(XOR).session(backend="gpu"), "unknown backend 'gpu'")
    raises(ValueError, lambda: gradc.Model.load(XOR).dump("llvm2"), "unknown stage 'llvm2'", "'llvm-raw'")
    raises(ValueError, lambda: gradc.Model.load(XOR).dump("loops", format="dot"), "no DOT form")


def test_warnings_go_to_the_warnings_module():
    source = open(XOR).read().replace("input y : [B, 1]", "input y : [B, 1]\ninput unused : [B, 1]")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = gradc.compile(source, name="xor_plus.grad")
    assert m.name == "xor_plus"  # a model is named after its file
    assert [w.category for w in caught] == [gradc.CompileWarning], caught
    assert "xor_plus.grad:" in str(caught[0].message) and "unused" in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        raises(gradc.CompileWarning, lambda: gradc.compile(source, name="xor_plus.grad"), "unused")


def test_wrong_dtype_is_a_type_error():
    raises(TypeError, lambda: session().train_step(x=X.astype(np.float64), y=Y),
           "train_step: input 'x' must be float32, got float64")
    raises(TypeError, lambda: session().forward(x=X.astype(np.int32)), "forward: input 'x' must be float32")
    raises(TypeError, lambda: session().train_step(x=X.tolist(), y=Y), "input 'x' must be a numpy.ndarray", "list")


def test_wrong_shape_is_a_value_error():
    raises(ValueError, lambda: session().train_step(x=X[:3], y=Y[:3]),
           "train_step: input 'x' must have shape (4, 2), got (3, 2)", "dims={'B': 3}")
    raises(ValueError, lambda: session().grad(x=X.reshape(8), y=Y), "'x' must have shape (4, 2), got (8,)")


def test_non_contiguous_is_a_value_error():
    xt = np.ascontiguousarray(X.T).T  # shape (4, 2), column-major
    assert xt.shape == (4, 2) and not xt.flags.c_contiguous
    raises(ValueError, lambda: session().train_step(x=xt, y=Y), "'x' is not C-contiguous")
    raises(ValueError, lambda: session().forward(x=np.zeros((4, 4), np.float32)[:, ::2]), "'x' is not C-contiguous")


def test_unknown_missing_and_twice_given_inputs():
    raises(TypeError, lambda: session().train_step(x=X, y=Y, z=X), "no input 'z'", "its inputs: x, y")
    raises(ValueError, lambda: session().train_step(x=X), "missing input tensor 'y'")
    raises(TypeError, lambda: session().train_step({"x": X, "y": Y}, x=X), "'x' is given twice")
    raises(TypeError, lambda: session().train_step([X, Y]), "inputs must be a dict")


def test_bad_learning_rate_and_params():
    raises(ValueError, lambda: session().train_step(x=X, y=Y, lr=-1), "learning rate")
    raises(KeyError, lambda: session().params["W3"], "no param 'W3'", "W1, b1, W2, b2")
    raises(ValueError, lambda: session().params.__setitem__("W1", np.zeros((8, 2), np.float32)), "(2, 8)")
    raises(TypeError, lambda: session().params.__setitem__("W1", np.zeros((2, 8))), "float32")
    raises(KeyError, lambda: session().optimizer_state["opt.momentum_buffer.W1"], "no state", "(its state: none)")


def test_class_id_out_of_range_is_a_model_error():
    m = gradc.Model.load(os.path.join(ROOT, "examples", "iris_mlp.grad"), dims={"B": 2})
    x = np.zeros((2, 4), np.float32)
    e = raises(gradc.ModelError, lambda: m.session().train_step(x=x, label=np.array([0, 7], np.int32)),
               "iris_mlp.grad:22:6: error: a class id is outside [0, 3)")
    assert (e.line, e.column) == (22, 6) and isinstance(e, ValueError)


def test_buffers_by_name():
    source = ("dim B = 4\ninput x : [B, 3]\nparam g : [3]\nparam b : [3]\nbuffer rm : [3]\nbuffer rv : [3]\n"
              "loss mean(batch_norm(x, rm, rv, g, b))\n")
    s = gradc.compile(source, name="bn.grad").session()
    raises(KeyError, lambda: s.buffers["nope"], "no buffer 'nope'", "rm, rv")
    raises(ValueError, lambda: s.buffers.__setitem__("rm", np.zeros(4, np.float32)), "(3,)")


run(globals())
