#!/usr/bin/env python3
"""Eager PyTorch on the benchmark suite's workloads, one thread.

Optional (the tests never need it): scripts/bench.sh runs it when
/usr/bin/python3 has torch, after run_bench, and passes run_bench's JSON so
that gradc/pytorch ratios measured in the same run are printed.

    /usr/bin/python3 bench/pytorch_eager.py [--only W1,W3] [--seconds X] [--quick] [--gradc-json FILE]

Each workload is the same model, loss, optimizer and batch size as
bench/models/*.grad, written the way a PyTorch user writes it (nn.Linear,
the functional loss, torch.optim, zero_grad(set_to_none=True)); the data are
seeded random tensors like run_bench's. The time per step is the median over
samples of at least 2 ms, for at least --seconds per workload.
"""
import argparse
import json
import os
import statistics
import time

# One thread means the BLAS's threads too: torch.set_num_threads(1) sets
# ATen's and oneDNN's, but Debian's torch does its products in OpenBLAS,
# whose own pool takes every core unless told before it loads (on
# 2026-12-05, without this, W4's step took 23.9 ms at 1.5 cores of CPU time
# per second of wall time, and 38.4 ms on one). Each timed call's CPU time
# is checked against its wall time (time_call).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

# OpenBLAS's kernels: the newest this core runs (openblas_core.py).
from openblas_core import use_strongest_kernels  # noqa: E402

use_strongest_kernels("pytorch_eager")

import torch
import torch.nn.functional as F
from torch import nn


def w1_xor():
    model = nn.Sequential(nn.Linear(2, 8), nn.Tanh(), nn.Linear(8, 1), nn.Sigmoid())
    x = torch.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = torch.tensor([[0.0], [1.0], [1.0], [0.0]])
    return model, torch.optim.SGD(model.parameters(), lr=0.5), lambda: F.mse_loss(model(x), y)


def w2_logreg():
    model = nn.Linear(100, 1)
    x = torch.rand(128, 100) * 2 - 1
    y = (torch.rand(128) < 0.5).float()
    return model, torch.optim.SGD(model.parameters(), lr=0.1), \
        lambda: F.binary_cross_entropy_with_logits(model(x).squeeze(1), y)


def w3_mnist_mlp():
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))
    x = torch.rand(64, 784)
    label = torch.randint(0, 10, (64,))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    return model, opt, lambda: F.cross_entropy(model(x), label)


def w4_wide_mlp():
    model = nn.Sequential(nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 1024), nn.ReLU(), nn.Linear(1024, 10))
    x = torch.rand(256, 1024) * 2 - 1
    label = torch.randint(0, 10, (256,))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda: F.cross_entropy(model(x), label)


def w5_cnn():
    class Cnn(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
            self.conv2 = nn.Conv2d(16, 32, 5, padding=2)
            self.fc1 = nn.Linear(32 * 7 * 7, 128)
            self.fc2 = nn.Linear(128, 10)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x / 255)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))

    model = Cnn()
    x = torch.randint(0, 256, (64, 1, 28, 28)).float()
    label = torch.randint(0, 10, (64,))
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda: F.cross_entropy(model(x), label)


def w6_gru_lm():
    """torch.nn.GRU between nn.Embedding and nn.Linear, time-major, from a zero state; cross_entropy
    over all T * B positions. ATen's CPU GRU does the input projections of all steps as one addmm,
    then one addmm per step; autograd differentiates it step by step."""
    T, B, V, E, H = 64, 32, 96, 64, 256

    class GruLm(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(V, E)
            self.gru = nn.GRU(E, H)
            self.out = nn.Linear(H, V)

        def forward(self, ids):
            hs, _ = self.gru(self.embed(ids))  # [T, B, H]
            return self.out(hs.reshape(-1, H))

    model = GruLm()
    text = torch.randint(0, V, (T + 1, B))
    ids, targets = text[:-1], text[1:].reshape(-1)
    return model, torch.optim.Adam(model.parameters(), lr=1e-3), lambda: F.cross_entropy(model(ids), targets)


WORKLOADS = [("W1", "xor", w1_xor), ("W2", "logreg", w2_logreg), ("W3", "mnist_mlp", w3_mnist_mlp),
             ("W4", "wide_mlp", w4_wide_mlp), ("W5", "cnn", w5_cnn),
             ("W6", "gru_lm", w6_gru_lm)]


def time_step(make, seconds):
    """Median milliseconds of one train step (zero_grad, loss, backward, step)."""
    model, opt, loss_fn = make()

    def step():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn()
        loss.backward()
        opt.step()

    return time_call(step, seconds)


def time_call(fn, seconds, sample_ms=2.0, min_samples=5):
    """Median milliseconds of fn(): warm-up, steps per sample doubled until a
    sample lasts sample_ms, then samples for at least `seconds`."""
    for _ in range(3):
        fn()
    per = 1
    while True:
        a = time.perf_counter()
        for _ in range(per):
            fn()
        if (time.perf_counter() - a) * 1e3 >= sample_ms or per >= 1 << 20:
            break
        per *= 2
    samples, total = [], 0.0
    cpu = time.process_time()
    while total < seconds or len(samples) < min_samples:
        a = time.perf_counter()
        for _ in range(per):
            fn()
        dt = time.perf_counter() - a
        total += dt
        samples.append(dt * 1e3 / per)
    cores = (time.process_time() - cpu) / total
    if cores > 1.2:
        raise SystemExit(f"pytorch_eager.py: the timed calls used {cores:.2f} cores of CPU time per second "
                         "of wall time; the baseline is one thread")
    return statistics.median(samples)


def w5_inference_ms(seconds):
    """W5's CNN on one image: the logits, without autograd (model.eval(), torch.no_grad())."""
    model, _, _ = w5_cnn()
    model.eval()
    x = torch.randint(0, 256, (1, 1, 28, 28)).float()
    with torch.no_grad():
        return time_call(lambda: model(x), seconds)


def fmt_ms(ms):
    return f"{ms * 1e3:.2f} us" if ms < 1 else f"{ms:.3f} ms"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default="")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--gradc-json", default=None, help="run_bench --json output: print gradc/pytorch ratios")
    args, _ = ap.parse_known_args()  # run_bench's other options are accepted and ignored
    seconds = args.seconds if args.seconds is not None else (0.05 if args.quick else 1.0)
    only = {s for s in args.only.split(",") if s}
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gradc, gradc_infer = {}, None
    if args.gradc_json:
        with open(args.gradc_json) as f:
            results = json.load(f)
            for w in results["workloads"]:
                gradc[w["id"]] = w["gradc"]["median_ms"]
            gradc_infer = results.get("w5_inference_batch1", {}).get("median_ms")
    print(f"eager PyTorch {torch.__version__}, {torch.get_num_threads()} thread: time per train step (median)\n")
    print(f"{'workload':<14} {'pytorch':>11} {'gradc':>11} {'gradc/pytorch':>14}")
    for wid, name, make in WORKLOADS:
        if only and wid not in only and name not in only:
            continue
        ms = time_step(make, seconds)
        g = gradc.get(wid)
        print(f"{wid + ' ' + name:<14} {fmt_ms(ms):>11} {fmt_ms(g) if g else '-':>11} "
              f"{f'{g / ms:.3f}' if g else '-':>14}")
        if wid == "W5":
            inf = w5_inference_ms(seconds)
            print(f"{'W5 infer b=1':<14} {fmt_ms(inf):>11} {fmt_ms(gradc_infer) if gradc_infer else '-':>11} "
                  f"{f'{gradc_infer / inf:.3f}' if gradc_infer else '-':>14}")


if __name__ == "__main__":
    main()
