#!/usr/bin/python3
"""Records torch.optim references for the models in tests/optim/models/.

Run with an interpreter that has torch (1.13 or later) and numpy:

    /usr/bin/python3 tests/optim/gen_optim_reference.py [NAME ...]

For every model NAME.grad there is a hand-written PyTorch twin below (MODELS).
The script draws seeded random inputs and initial params, builds the
torch.optim optimizer that the model's `optimizer` line names (parsed from the
.grad file; an option the line leaves out gets torch's own default, except
sgd's lr, which torch 1.13 requires: 0.01 as in SPEC 2.5), and runs STEPS
steps on the same inputs, as `gradc step --steps STEPS` does:

    optimizer.zero_grad(); loss = twin(...); loss.backward()
    torch.nn.utils.clip_grad_norm_(params, MAX)   # when the line has clip_grad_norm
    optimizer.step()

It writes

    data/NAME.inputs.safetensors    every input, in its declared dtype
    data/NAME.params.safetensors    every initial param (and buffer), in its declared dtype
    data/NAME.expected.safetensors  every param (and buffer) after the steps; `loss` [STEPS],
                                    the loss before each step; opt.SLOT.PARAM for
                                    every tensor of optimizer.state (exp_avg, ...);
                                    opt.step (i32 scalar) = STEPS

A line `# cli: ARGS` in the model file gives extra `gradc step` arguments;
only `--lr X` is understood here (torch then uses lr = X).

Mapping: SPEC beta1/beta2 -> torch betas=(beta1, beta2); nesterov/centered
1/0 -> True/False; gradc weights are [in, out] used as x @ W.

Like tests/reference/gen_reference.py, the twin runs three times. The expected
values come from the "exact" run (the f32-representable inputs and params,
carried in f64, rounded at the end to each tensor's declared dtype). The
"native" run (declared dtypes) must agree with it to a tenth of the test
tolerance, and for f64 models an all-f32 run must agree to 1e-2 of scale;
otherwise the model is too ill-conditioned for the comparison and the script
fails. A model with clip_grad_norm must clip at its first step.

The data files are committed; the tests (compare_optim) need no torch.
"""

import os
import re
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
from safetensors_writer import write_safetensors  # noqa: E402  (the shared writer)

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS_DIR = os.path.join(HERE, "models")
DATA_DIR = os.path.join(HERE, "data")

STEPS = 5

# Test tolerances (must match compare_optim.cpp).
TOL = {"f32": 1e-4, "f64": 1e-9, "i32": 0.0}

# --------------------------------------------------------------------------
# The model file: optimizer line and `# cli:` arguments.

SGD_DEFAULT_LR = 0.01  # SPEC 2.5 (torch 1.13's SGD has no default lr)


def parse_model_file(path):
    text = open(path).read()
    opt_name, opts = "sgd", {}
    m = re.search(r"^\s*optimizer\s+([A-Za-z_]\w*)\s*\(([^)]*)\)", text, re.M)
    if m:
        opt_name = m.group(1)
        for item in filter(None, (s.strip() for s in m.group(2).split(","))):
            k, v = (s.strip() for s in item.split("="))
            opts[k] = {"true": 1.0, "false": 0.0}.get(v, None)
            if opts[k] is None:
                opts[k] = float(v)
    cli = []
    for line in text.splitlines():
        if line.startswith("# cli:"):
            cli += line[len("# cli:"):].split()
    return opt_name, opts, cli


def make_optimizer(name, opts, params, lr_override):
    """torch.optim for the SPEC's optimizer line; returns (optimizer, clip max or None)."""
    o = dict(opts)
    clip = o.pop("clip_grad_norm", None)
    if lr_override is not None:
        o["lr"] = lr_override
    kw = {}

    def take(key, torch_key=None, conv=float):
        if key in o:
            kw[torch_key or key] = conv(o.pop(key))

    if name == "sgd":
        kw["lr"] = o.pop("lr", SGD_DEFAULT_LR)
        take("momentum")
        take("dampening")
        take("weight_decay")
        take("nesterov", conv=bool)
        cls = torch.optim.SGD
    elif name in ("adam", "adamw"):
        take("lr")
        if "beta1" in o or "beta2" in o:
            kw["betas"] = (o.pop("beta1", 0.9), o.pop("beta2", 0.999))
        take("eps")
        take("weight_decay")
        cls = torch.optim.Adam if name == "adam" else torch.optim.AdamW
    elif name == "rmsprop":
        for k in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            take(k)
        take("centered", conv=bool)
        cls = torch.optim.RMSprop
    elif name == "adagrad":
        for k in ("lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"):
            take(k)
        cls = torch.optim.Adagrad
    else:
        raise SystemExit(f"unknown optimizer {name}")
    if o:
        raise SystemExit(f"options {sorted(o)} of {name} are not mapped to torch")
    return cls(params, **kw), clip


# --------------------------------------------------------------------------
# Data generators and the twins.


def normal(std=1.0, mean=0.0):
    return lambda rng, shape: rng.normal(mean, std, size=shape)


def labels(n):
    return lambda rng, shape: rng.randint(0, n, size=shape)


def bits():
    return lambda rng, shape: rng.randint(0, 2, size=shape).astype(np.float64)


MODELS = {}


def model(names, inputs, params, buffers=None):
    """One twin for several model files (the same network, different optimizers).
    `buffers` (batch_norm's running statistics) are given to the twin, which
    updates them in place, and are not trained."""
    def deco(fn):
        for name, dtype in names:
            sub = lambda d: {k: (dtype if dt == "F" else dt, shape, gen) for k, (dt, shape, gen) in d.items()}
            MODELS[name] = dict(inputs=sub(inputs), params=sub(params), buffers=sub(buffers or {}), twin=fn)
        return fn
    return deco


P = normal(0.5)  # the default param distribution

# "F" stands for the model's float dtype.


@model([("mlp_sgd_nesterov", "f32"), ("mlp_adam_clip", "f32"), ("mlp_adamw_f64", "f64"),
        ("mlp_adamw_defaults", "f32"), ("mlp_rmsprop_momentum", "f32")],
       inputs={"x": ("F", [8, 4], normal()), "label": ("i32", [8], labels(3))},
       params={"W1": ("F", [4, 5], P), "b1": ("F", [5], P), "W2": ("F", [5, 3], P), "b2": ("F", [3], P)})
def _(I, W):
    h = torch.tanh(I["x"] @ W["W1"] + W["b1"])
    logits = h @ W["W2"] + W["b2"]
    return F.cross_entropy(logits, I["label"].long())


@model([("regression_sgd_dampening", "f32"), ("regression_rmsprop_centered_f64", "f64"),
        ("regression_adagrad", "f32"), ("regression_default_f64", "f64")],
       inputs={"x": ("F", [10, 3], normal()), "t": ("F", [10, 2], normal())},
       params={"W": ("F", [3, 2], P), "b": ("F", [2], P)})
def _(I, W):
    return F.mse_loss(I["x"] @ W["W"] + W["b"], I["t"])


@model([("logreg_adam", "f32"), ("logreg_sgd_clip_f64", "f64"), ("logreg_rmsprop_clip", "f32"),
        ("logreg_adagrad_f64", "f64")],
       inputs={"x": ("F", [12, 4], normal()), "t": ("F", [12], bits())},
       params={"w": ("F", [4], P), "b": ("F", [], P)})
def _(I, W):
    return F.binary_cross_entropy_with_logits(I["x"] @ W["w"] + W["b"], I["t"])


@model([("cnn_adam", "f32"), ("cnn_sgd_momentum_f64", "f64")],
       inputs={"x": ("F", [4, 2, 6, 6], normal()), "label": ("i32", [4], labels(3))},
       params={"k": ("F", [4, 2, 3, 3], P), "kb": ("F", [4], P), "W": ("F", [16, 3], P), "b": ("F", [3], P)})
def _(I, W):
    h = F.relu(F.conv2d(I["x"], W["k"], padding=1) + W["kb"].reshape(4, 1, 1))
    p = F.max_pool2d(h, 3)
    return F.cross_entropy(p.flatten(1) @ W["W"] + W["b"], I["label"].long())


@model([("embedding_bag_adam", "f32")],
       inputs={"ids": ("i32", [5, 3], labels(6)), "label": ("i32", [5], labels(3))},
       params={"table": ("F", [6, 4], normal()), "W": ("F", [4, 3], P), "b": ("F", [3], P)})
def _(I, W):
    h = F.embedding(I["ids"].long(), W["table"]).mean(dim=1)
    return F.cross_entropy(h @ W["W"] + W["b"], I["label"].long())


def uniform(lo, hi):
    return lambda rng, shape: rng.uniform(lo, hi, size=shape)


@model([("mlp_batch_norm", "f32")],
       inputs={"x": ("F", [8, 4], normal()), "label": ("i32", [8], labels(3))},
       params={"W1": ("F", [4, 5], P), "gamma": ("F", [5], normal(0.3, 1.0)),
               "beta": ("F", [5], P), "W2": ("F", [5, 3], P), "b2": ("F", [3], P)},
       buffers={"running_mean": ("F", [5], normal(0.3)), "running_var": ("F", [5], uniform(0.5, 1.5))})
def _(I, W, B):
    # No bias before batch_norm: it would have a zero gradient, which adam
    # turns into rounding noise.
    z = I["x"] @ W["W1"]
    h = torch.tanh(F.batch_norm(z, B["running_mean"], B["running_var"], W["gamma"], W["beta"], training=True,
                                momentum=0.2, eps=1e-5))
    return F.cross_entropy(h @ W["W2"] + W["b2"], I["label"].long())


@model([("mlp_layer_norm", "f64")],
       inputs={"x": ("F", [6, 4], normal()), "t": ("F", [6, 2], normal())},
       params={"W1": ("F", [4, 6], P), "gamma": ("F", [6], normal(0.3, 1.0)), "beta": ("F", [6], P),
               "W2": ("F", [6, 2], P)})
def _(I, W):
    h = torch.relu(F.layer_norm(I["x"] @ W["W1"], (6,), W["gamma"], W["beta"], eps=1e-5))
    return F.mse_loss(h @ W["W2"], I["t"])


# ---- recurrent models: scan (SPEC 2.7) with torch.nn.GRU / torch.nn.LSTM ----
#
# The twins run the real torch.nn.GRU / torch.nn.LSTM (one layer) with the
# trained param tensors as the module's weights: the module's own Parameters
# are deleted and the param tensors set in their place (RNNBase.__setattr__
# puts them into the _flat_weights that forward reads), as in
# tests/reference/gen_reference.py's torch_rnn. torch_rnn asserts that the
# module holds exactly these tensors, so a torch version that ignored them
# (keeping its own randomly initialized weights) fails here instead of
# recording a wrong reference; run() also reads every param's .grad, which
# would be None for a param the module does not use.


def torch_rnn(cls, x, state, W, batch_first=False):
    """torch.nn.GRU / torch.nn.LSTM (one layer) on x with W's W_ih, W_hh, b_ih,
    b_hh as weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0."""
    weights = {"weight_ih_l0": W["W_ih"], "weight_hh_l0": W["W_hh"], "bias_ih_l0": W["b_ih"],
               "bias_hh_l0": W["b_hh"]}
    D, H = weights["weight_ih_l0"].shape[1], weights["weight_hh_l0"].shape[1]
    rnn = cls(D, H, num_layers=1, batch_first=batch_first).to(x.dtype)
    for name, w in weights.items():
        delattr(rnn, name)      # the module's own Parameter
        setattr(rnn, name, w)   # into rnn._flat_weights
    assert list(rnn._flat_weights_names) == list(weights)
    assert all(a is weights[n] for n, a in zip(rnn._flat_weights_names, rnn._flat_weights))
    assert not list(rnn.parameters()), "the module kept Parameters of its own"
    return rnn(x, state)


@model([("gru_lm_adam", "f32")],
       inputs={"ids": ("i32", [6, 3], labels(7)), "targets": ("i32", [6, 3], labels(7))},
       params={"table": ("F", [7, 4], normal()), "W_ih": ("F", [15, 4], P), "W_hh": ("F", [15, 5], P),
               "b_ih": ("F", [15], P), "b_hh": ("F", [15], P), "h0": ("F", [1, 5], P),
               "Wo": ("F", [5, 7], P), "bo": ("F", [7], P)})
def _(I, W):
    emb = F.embedding(I["ids"].long(), W["table"])                    # [T, B, E]
    h0 = W["h0"].expand(3, 5).unsqueeze(0)                            # [1, B, H]
    hs, _ = torch_rnn(torch.nn.GRU, emb, h0, W)                       # [T, B, H], time-major
    logits = hs.reshape(-1, 5) @ W["Wo"] + W["bo"]
    return F.cross_entropy(logits, I["targets"].reshape(-1).long())


@model([("lstm_rmsprop", "f32")],
       inputs={"x": ("F", [4, 5, 3], normal()), "y": ("F", [4, 2], normal())},
       params={"W_ih": ("F", [16, 3], P), "W_hh": ("F", [16, 4], P), "b_ih": ("F", [16], P),
               "b_hh": ("F", [16], P), "h0": ("F", [4, 4], P), "c0": ("F", [4, 4], P),
               "Wo": ("F", [4, 2], P), "bo": ("F", [2], P)})
def _(I, W):
    out, (hn, cn) = torch_rnn(torch.nn.LSTM, I["x"], (W["h0"].unsqueeze(0), W["c0"].unsqueeze(0)), W,
                              batch_first=True)                     # out [B, T, H]
    assert torch.equal(out[:, -1], hn[0])
    return F.mse_loss(hn[0] @ W["Wo"] + W["bo"], I["y"])


# --------------------------------------------------------------------------
# Running the steps.


def run(spec, opt_name, opts, lr_override, inputs, params, mode):
    """mode: 'native' (declared dtypes), 'exact' (every float f64) or 'low'
    (every float f32). Returns (losses, {param: array}, {opt.SLOT.P: array},
    gradient norms before clipping, torch's step counts)."""
    def tdt(dt):
        if dt == "i32":
            return torch.int32
        if mode == "exact":
            return torch.float64
        if mode == "low":
            return torch.float32
        return {"f32": torch.float32, "f64": torch.float64}[dt]

    I = {k: torch.tensor(v, dtype=tdt(spec["inputs"][k][0])) for k, v in inputs.items()}
    W = {k: torch.tensor(v, dtype=tdt(spec["params"][k][0]), requires_grad=True) for k, v in params.items()
         if k in spec["params"]}
    B = {k: torch.tensor(v, dtype=tdt(spec["buffers"][k][0])) for k, v in params.items() if k in spec["buffers"]}
    plist = list(W.values())
    opt, clip = make_optimizer(opt_name, opts, plist, lr_override)
    losses, norms = [], []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = spec["twin"](I, W, B) if spec["buffers"] else spec["twin"](I, W)
        losses.append(loss.item())
        loss.backward()
        norms.append(float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in plist))))
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(plist, clip)
        opt.step()
    out_params = {k: p.detach().double().numpy().copy() for k, p in W.items()}
    out_params.update({k: b.double().numpy().copy() for k, b in B.items()})
    state, steps = {}, []
    for k, p in W.items():
        for slot, v in opt.state[p].items():
            if slot == "step":
                steps.append(int(v.item() if torch.is_tensor(v) else v))
            elif torch.is_tensor(v):
                state[f"opt.{slot}.{k}"] = v.detach().double().numpy().copy()
            elif v is not None:
                raise SystemExit(f"unexpected state {slot} = {v!r}")
    return np.array(losses), out_params, state, norms, steps


def scale_of(name, arr):
    """The comparer's scale: max(1, max |want|) for params and loss; max |want|
    for optimizer state (relative to its own magnitude)."""
    m = float(np.max(np.abs(arr))) if np.size(arr) else 0.0
    return max(m, 1e-30) if name.startswith("opt.") else max(1.0, m)


def agree(name, a, b, tol):
    err = float(np.max(np.abs(np.asarray(a) - np.asarray(b)))) if np.size(a) else 0.0
    return err <= tol * scale_of(name, b), err


def generate(name, spec):
    path = os.path.join(MODELS_DIR, name + ".grad")
    opt_name, opts, cli = parse_model_file(path)
    lr_override = None
    if cli:
        if len(cli) != 2 or cli[0] != "--lr":
            raise SystemExit(f"{name}: only '# cli: --lr X' is understood, got {cli}")
        lr_override = float(cli[1])

    rng = np.random.RandomState(zlib.crc32(name.encode()) & 0x7FFFFFFF)

    def draw(decls):
        out = {}
        for k, (dt, shape, gen) in decls.items():
            v = np.asarray(gen(rng, tuple(shape)))
            if dt == "i32":
                v = v.astype(np.int32)
            elif dt == "f32":
                v = v.astype(np.float32).astype(np.float64)  # f32-representable
            out[k] = v
        return out

    inputs, params = draw(spec["inputs"]), draw(spec["params"])
    params.update(draw(spec["buffers"]))
    decls = dict(spec["params"], **spec["buffers"])
    float_dts = {dt for dt, _, _ in list(spec["params"].values())}
    (model_dt,) = float_dts

    exact = run(spec, opt_name, opts, lr_override, inputs, params, "exact")
    losses, out_params, state, norms, steps = exact
    if any(s != STEPS for s in steps):
        raise SystemExit(f"{name}: torch's step counts {steps}, expected {STEPS}")
    if "clip_grad_norm" in opts and not norms[0] > opts["clip_grad_norm"]:
        raise SystemExit(f"{name}: clip_grad_norm {opts['clip_grad_norm']} does not clip at step 1 (norm {norms[0]})")

    expected = [(k, decls[k][0], v) for k, v in out_params.items()]
    expected += [(k, model_dt, v) for k, v in state.items()]
    expected += [("opt.step", "i32", np.array(STEPS, dtype=np.int32)), ("loss", model_dt, losses)]

    # Conditioning checks.
    checks = [("native", TOL[model_dt] / 10)]
    if model_dt == "f64":
        checks.append(("low", 1e-2))
    for mode, tol in checks:
        l2, p2, s2, _, _ = run(spec, opt_name, opts, lr_override, inputs, params, mode)
        other = dict(p2, **s2, loss=l2)
        if set(other) != {k for k, _, _ in expected if k != "opt.step"}:
            raise SystemExit(f"{name}: the {mode} run has different tensors")
        for k, dt, want in expected:
            if k == "opt.step":
                continue
            ok, err = agree(k, other[k], want, tol)
            if not ok:
                raise SystemExit(f"{name}: {k}: the {mode} run differs by {err:.3e} (> {tol:g} x scale): ill-conditioned")

    def tensors(vals, decls):
        return [(k, decls[k][0], v) for k, v in vals.items()]

    meta = {"optimizer": f"{opt_name}({', '.join(f'{k}={v:g}' for k, v in opts.items())})", "steps": STEPS}
    if lr_override is not None:
        meta["lr"] = repr(lr_override)
    meta["grad_norms"] = " ".join(f"{n:.6g}" for n in norms)
    write_safetensors(os.path.join(DATA_DIR, name + ".inputs.safetensors"), tensors(inputs, spec["inputs"]))
    write_safetensors(os.path.join(DATA_DIR, name + ".params.safetensors"), tensors(params, decls))
    write_safetensors(os.path.join(DATA_DIR, name + ".expected.safetensors"), expected, meta)
    slots = sorted({k.split(".")[1] for k in state})
    print(f"{name}: {meta['optimizer']}{' lr ' + meta['lr'] if lr_override is not None else ''}; "
          f"loss {losses[0]:.6g} -> {losses[-1]:.6g}; grad norms {meta['grad_norms']}; state {slots}")


def main(argv):
    files = sorted(f[:-5] for f in os.listdir(MODELS_DIR) if f.endswith(".grad"))
    missing = [f for f in files if f not in MODELS]
    if missing:
        raise SystemExit(f"models without a twin: {missing}")
    names = argv or files
    os.makedirs(DATA_DIR, exist_ok=True)
    torch.set_num_threads(1)
    for name in names:
        if name not in MODELS:
            raise SystemExit(f"unknown model {name}")
        generate(name, MODELS[name])


if __name__ == "__main__":
    main(sys.argv[1:])
