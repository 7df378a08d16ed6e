"""The Python module trains: xor to a small loss, bit-identical to `gradc
step` on the same inputs, checkpoints that `gradc` and the module both read,
and results as NumPy arrays.
Usage: /usr/bin/python3 test_train.py GRADC ROOT (with PYTHONPATH=build/python)"""

import os
import subprocess
import threading

import numpy as np

import gradc
from harness import GRADC, SCRATCH, X, XOR, Y, raises, read_safetensors, run
from safetensors_writer import write_safetensors


def test_xor_trains_to_a_small_loss():
    s = gradc.Model.load(XOR).session(threads=2, seed=0)
    first = s.train_step(x=X, y=Y)
    for _ in range(1500):
        loss = s.train_step(x=X, y=Y)
    assert isinstance(loss, float)
    assert loss < 0.02 < first, (first, loss)
    pred = s.forward(x=X)["out.pred"]
    assert pred.dtype == np.float32 and pred.shape == (4, 1)
    assert ((pred > 0.5) == (Y > 0.5)).all(), pred
    assert s.step == 1501


def test_bit_identical_to_gradc_step():
    inputs = os.path.join(SCRATCH, "xor_in.safetensors")
    out = os.path.join(SCRATCH, "xor_step.safetensors")
    write_safetensors(inputs, [("x", "f32", X), ("y", "f32", Y)])
    subprocess.run([GRADC, "step", XOR, "--inputs", inputs, "--steps", "7", "--lr", "0.3", "-o", out], check=True,
                   capture_output=True)
    cli = read_safetensors(out)
    s = gradc.Model.load(XOR).session(threads=1, seed=0)
    losses = np.array([s.train_step({"x": X, "y": Y}, lr=0.3) for _ in range(7)], dtype=np.float32)
    assert losses.tobytes() == cli["loss"].tobytes(), (losses, cli["loss"])
    for name in ["W1", "b1", "W2", "b2"]:
        assert s.params[name].tobytes() == cli[name].tobytes(), name
    # ... and the module's checkpoint holds the same tensors.
    saved = os.path.join(SCRATCH, "xor_py.safetensors")
    s.save(saved)
    mine = read_safetensors(saved)
    for name, t in mine.items():
        assert t.tobytes() == cli[name].tobytes(), name
    assert int(mine["opt.step"]) == 7


def test_load_a_checkpoint_of_gradc_step():
    out = os.path.join(SCRATCH, "xor_step.safetensors")  # from the test above
    cli = read_safetensors(out)
    s = gradc.Model.load(XOR).session(seed=5)
    w1 = s.params["W1"]
    s.load(out)
    assert s.step == 7
    assert w1.tobytes() == cli["W1"].tobytes()  # the view already held shows the loaded values


def test_forward_and_grad_return_numpy_arrays():
    s = gradc.Model.load(XOR).session()
    f = s.forward(x=X)
    assert sorted(f) == ["out.pred"]
    e = s.forward(x=X, y=Y)  # with the loss's inputs: the loss too
    assert sorted(e) == ["loss", "out.pred"] and e["loss"].shape == ()
    g = s.grad(x=X, y=Y)
    assert sorted(g) == ["grad.W1", "grad.W2", "grad.b1", "grad.b2", "loss", "out.pred"]
    assert g["grad.W1"].shape == (2, 8) and g["grad.W1"].dtype == np.float32
    assert g["grad.W1"].flags.writeable and g["grad.W1"].flags.c_contiguous
    # A step moves W1 against its gradient (sgd: W1 - lr * grad).
    w1 = s.params["W1"].copy()
    s.train_step(x=X, y=Y, lr=0.5)
    assert np.allclose(s.params["W1"], w1 - 0.5 * g["grad.W1"], rtol=0, atol=1e-6)


def test_gradients_with_respect_to_an_input():
    s = gradc.Model.load(XOR, wrt=["x"]).session()
    g = s.grad(x=X, y=Y)
    assert g["grad.x"].shape == (4, 2) and g["grad.x"].any()


def test_forward_mode_gradients_equal_back_propagation():
    r = gradc.Model.load(XOR).session(seed=3).grad(x=X, y=Y)
    f = gradc.Model.load(XOR, ad="forward").session(seed=3).grad(x=X, y=Y)
    for name in r:
        assert np.allclose(r[name], f[name], rtol=1e-4, atol=1e-6), name
    try:
        gradc.Model.load(XOR, ad="sideways")
        raise AssertionError("no error")
    except ValueError as e:
        assert "ad must be 'reverse' or 'forward'" in str(e)


def test_f64_and_i32_inputs():
    iris = gradc.Model.load(os.path.join(os.path.dirname(XOR), "iris_mlp.grad"), dims={"B": 6})
    assert iris.inputs["label"].dtype == np.int32 and iris.inputs["label"].shape == (6,)
    s = iris.session()
    x = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
    label = np.array([0, 1, 2, 0, 1, 2], dtype=np.int32)
    assert s.train_step(x=x, label=label) > 0
    f64 = gradc.Model.load(os.path.join(os.path.dirname(XOR), "regression_f64.grad"), dims={"B": 32})
    s = f64.session()
    inputs = {n: np.ones(t.shape, dtype=t.dtype) for n, t in f64.inputs.items()}
    assert all(t.dtype == np.float64 for t in f64.inputs.values())
    loss = s.train_step(inputs)
    assert np.isfinite(loss)


def test_dump_every_stage():
    m = gradc.Model.load(XOR)
    for stage in ["ast", "graph", "grad", "opt", "loops", "llvm-raw", "llvm", "asm"]:
        text = m.dump(stage)
        assert text, stage
    assert "define" in m.dump("llvm", entry="forward")
    assert "digraph" in m.dump("graph", format="dot")
    cli = subprocess.run([GRADC, "dump", XOR, "--stage", "opt"], check=True, capture_output=True, text=True).stdout
    assert m.dump("opt") == cli


def test_model_interface():
    m = gradc.compile(open(XOR).read(), name="xor.grad", dims={"B": 8})
    assert m.name == "xor" and m.dims == {"B": 8}
    assert list(m.inputs) == ["x", "y"] and m.inputs["x"].shape == (8, 2)
    assert list(m.params) == ["W1", "b1", "W2", "b2"] and m.params["b1"].dim_names == [""]
    assert m.lr == 0.5 and m.optimizer.startswith("sgd")
    assert repr(m.inputs["x"]) == "TensorSpec('x', float32, (8, 2))"


def test_dynamic_batch_dim():
    # `dim B` without a size: every call binds B from its arrays; the params
    # (views of the session's memory) follow every step, whatever its size.
    src = open(XOR).read().replace("dim B = 4", "dim B")
    assert src != open(XOR).read()
    m = gradc.compile(src, name="xor_dyn.grad")
    assert m.dynamic_dims == ("B",) and "B" not in m.dims
    assert m.inputs["x"].shape == (-1, 2)
    s = m.session(seed=0)
    w = s.params["b2"]  # (W1's gradient is 0 on the row x = (0, 0) alone)
    for n in (4, 3, 1, 4):
        before = w.copy()
        s.train_step(x=X[:n], y=Y[:n])
        assert not np.array_equal(before, w), n  # the view shows the step's update
    assert s.forward(x=X[:3])["out.pred"].shape == (3, 1)
    raises(ValueError, lambda: s.train_step(x=X[:3], y=Y[:2]), "disagree on the dynamic dim B")
    raises(ValueError, lambda: s.forward(x=X[:, :1]), "must have shape (B, 2)")


def test_max_dims_compiles_one_code_for_every_size_up_to_a_bound():
    # max_dims={'B': 4} (gradc's --max B=4): the sizes 1 to 4 run one code;
    # its results are those of the model that compiles per size.
    src = open(XOR).read().replace("dim B = 4", "dim B")
    bounded = gradc.compile(src, name="xor_max.grad", max_dims={"B": 4})
    per_size = gradc.compile(src, name="xor_dyn.grad")
    assert bounded.dynamic_dims == ("B",)
    a, b = bounded.session(seed=0), per_size.session(seed=0)
    for n in (4, 1, 3):
        np.testing.assert_allclose(a.forward(x=X[:n])["out.pred"], b.forward(x=X[:n])["out.pred"], rtol=1e-6)
        np.testing.assert_allclose(a.train_step(x=X[:n], y=Y[:n]), b.train_step(x=X[:n], y=Y[:n]), rtol=1e-6)
    raises(ValueError, lambda: gradc.compile(src, dims={"B": 4}, max_dims={"B": 4}), "dims and max_dims both name 'B'")
    raises(Exception, lambda: gradc.compile(open(XOR).read(), max_dims={"B": 8}), "--max bounds a dynamic dim")


def test_calls_release_the_gil():
    # Two Python threads call one session: while one is inside a call, the
    # other gets the GIL and is refused (a session runs one call at a time).
    # Were the GIL held during calls, neither could ever see the other inside.
    m = gradc.compile("dim N = 256\ninput x : [N, N]\ninput y : [N, N]\nparam W : [N, N] ~ xavier_uniform\n"
                      "loss mse(x @ W @ W, y)\noptimizer sgd(lr = 0.01)\n", name="big.grad")
    s = m.session(threads=1)
    x = np.ones((256, 256), np.float32)
    s.train_step(x=x, y=x)  # compiled before the threads start
    refused, done = [], threading.Event()

    def calls():
        for _ in range(200):
            if done.is_set():
                return
            try:
                s.train_step(x=x, y=x)
            except RuntimeError as e:
                refused.append(str(e))
                done.set()

    other = threading.Thread(target=calls)
    other.start()
    calls()
    done.set()
    other.join()
    assert refused and "train_step: this session is running a call in another thread" in refused[0], refused


def test_interpreter_backend_matches_jit_closely():
    m = gradc.Model.load(XOR)
    jit, ref = m.session(backend="jit"), m.session(backend="interpreter")
    for _ in range(5):
        a, b = jit.train_step(x=X, y=Y), ref.train_step(x=X, y=Y)
        assert abs(a - b) < 1e-6, (a, b)
    assert ref.backend == "interpreter" and ref.threads == 1


run(globals())
