"""Params are NumPy views of the session's own memory, without copies:
writing through a view changes what the session computes and saves, a view
taken once follows every train_step and load (on both back ends, whether
the step updates a param in place or into a second buffer), and a view
keeps the session alive after the Model and the Session objects are gone.
Usage: /usr/bin/python3 test_views.py GRADC ROOT (with PYTHONPATH=build/python)"""

import gc
import os
import sys

import numpy as np

import gradc
from harness import SCRATCH, X, XOR, Y, read_safetensors, run


def test_writes_through_a_view_reach_the_session():
    s = gradc.Model.load(XOR).session()
    for name in s.params:
        s.params[name][...] = 0  # in place, through the view
    pred = s.forward(x=X)["out.pred"]
    assert (pred == 0.5).all(), pred  # sigmoid(0): every weight is zero
    path = os.path.join(SCRATCH, "zeros.safetensors")
    s.save(path)
    assert not read_safetensors(path)["W1"].any()


def test_the_same_memory_every_time():
    s = gradc.Model.load(XOR).session()
    a, b = s.params["W1"], s.params["W1"]
    assert np.shares_memory(a, b)
    assert a.flags.writeable and a.flags.c_contiguous and not a.flags.owndata
    assert isinstance(a.base, gradc.Session)


def follows_steps(backend):
    s = gradc.Model.load(XOR).session(backend=backend)
    views = {name: s.params[name] for name in s.params}
    before = views["W1"].copy()
    for step in range(4):
        s.train_step(x=X, y=Y)
        path = os.path.join(SCRATCH, f"follow_{backend}.safetensors")
        s.save(path)
        saved = read_safetensors(path)
        for name, v in views.items():
            assert v.tobytes() == saved[name].tobytes(), (backend, step, name)
    assert not np.array_equal(before, views["W1"])
    # A write after steps still reaches the session.
    views["W2"][...] = 0
    views["b2"][...] = 0
    assert (s.forward(x=X)["out.pred"] == 0.5).all()


def test_a_view_follows_train_steps_jit():
    follows_steps("jit")


def test_a_view_follows_train_steps_interpreter():
    # The interpreter writes every new param into a second buffer: the view
    # must still show (and feed) the current values.
    follows_steps("interpreter")


def test_a_view_outlives_the_model_and_session_objects():
    m = gradc.Model.load(XOR)
    s = m.session(seed=3)
    s.train_step(x=X, y=Y)
    w1 = s.params["W1"]
    expected = w1.copy()
    refs = sys.getrefcount(s)
    del m, s
    gc.collect()
    assert np.array_equal(w1, expected)
    w1[...] = 1.0  # still writable memory of the (hidden) session
    assert (w1 == 1.0).all()
    assert refs >= 2


def test_a_session_trains_after_its_model_object_is_deleted():
    m = gradc.Model.load(XOR)
    s = m.session()
    del m
    gc.collect()
    assert s.train_step(x=X, y=Y) > 0


def test_assigning_a_param_copies_into_the_view():
    s = gradc.Model.load(XOR).session()
    w1 = s.params["W1"]
    s.params["W1"] = np.full((2, 8), 0.25, dtype=np.float32)
    assert (w1 == 0.25).all()
    assert (s.params["W1"] == 0.25).all()


def test_optimizer_state_reads_as_copies_and_is_assigned_whole():
    m = gradc.Model.load(os.path.join(os.path.dirname(XOR), "regression_f64.grad"), dims={"B": 32})
    s = m.session()
    s.train_step({n: np.ones(t.shape, dtype=t.dtype) for n, t in m.inputs.items()})
    state = s.optimizer_state
    assert "opt.exp_avg.W1" in state and len(state) == 8, sorted(state)
    m1 = state["opt.exp_avg.W1"]
    assert m1.dtype == np.float64 and m1.shape == (8, 16) and m1.any() and not m1.flags.writeable
    w1 = s.params["W1"].copy()
    state["opt.exp_avg.W1"] = np.full((8, 16), 0.5)
    assert (state["opt.exp_avg.W1"] == 0.5).all() and (m1 != 0.5).any()  # a new copy; the old one is unchanged
    assert s.step == 1 and (s.params["W1"] == w1).all()  # the rest of the session as it was
    path = os.path.join(SCRATCH, "state.safetensors")
    s.save(path)
    assert (read_safetensors(path)["opt.exp_avg.W1"] == 0.5).all()


def test_buffers_read_as_copies_and_train_step_updates_them():
    source = ("dim B = 4\ninput x : [B, 2]\nparam g : [2] ~ ones\nparam b : [2]\nbuffer rm : [2]\n"
              "buffer rv : [2] ~ ones\ny = batch_norm(x, rm, rv, g, b, momentum=0.5)\noutput y\nloss mean(y * y)\n")
    m = gradc.compile(source, name="bn.grad")
    assert list(m.buffers) == ["rm", "rv"] and list(m.params) == ["g", "b"]
    for backend in ("jit", "interpreter"):
        s = m.session(backend=backend)
        assert sorted(s.buffers.keys()) == ["rm", "rv"] and not s.buffers["rm"].flags.writeable
        x = np.array([[1, 0], [2, 0], [3, 4], [6, 4]], np.float32)
        s.buffers["rv"] = np.array([4, 16], np.float32)
        # forward: evaluation mode, the running statistics.
        assert np.allclose(s.forward(x=x)["out.y"][:, 1], np.array([0, 0, 4, 4]) / 4, atol=1e-5)
        # train_step: r = (1 - 0.5) r + 0.5 stat, unbiased variance for rv.
        s.train_step(x=x)
        assert np.allclose(s.buffers["rm"], [1.5, 1.0]), s.buffers["rm"]
        assert np.allclose(s.buffers["rv"], [0.5 * 4 + 0.5 * 14 / 3, 0.5 * 16 + 0.5 * 16 / 3]), s.buffers["rv"]
        path = os.path.join(SCRATCH, "buffers.safetensors")
        s.save(path)
        assert np.allclose(read_safetensors(path)["rm"], [1.5, 1.0])
        t = m.session(backend=backend)
        t.load(path)
        assert (t.buffers["rv"] == s.buffers["rv"]).all()


run(globals())
