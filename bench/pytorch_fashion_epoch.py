#!/usr/bin/env python3
"""One Fashion-MNIST training epoch of examples/fashion_cnn.grad in eager PyTorch.

Optional (no test needs it): the wall time of one epoch (60,000 images, batch
64, Adam at 1e-3, the last partial batch included), then the test accuracy,
for comparison with `gradc train examples/fashion_cnn.grad --epochs 1`
(scripts/fashion.sh cnn 1, with GRADC_THREADS or --threads for the threads).

    /usr/bin/python3 bench/pytorch_fashion_epoch.py THREADS

THREADS is the threads of ATen, oneDNN and the BLAS alike (Debian's torch
does its matrix products in OpenBLAS, whose pool is set before it loads).
The data are Debian's dataset-fashion-mnist, read in place.
"""
import argparse
import gzip
import os
import time


def positive(text):
    n = int(text)
    if n < 1:
        raise ValueError(text)
    return n


_ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
_ap.add_argument("threads", nargs="?", type=positive, default=1, help="threads (default 1)")
THREADS = _ap.parse_args().threads
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(THREADS)

from openblas_core import use_strongest_kernels  # noqa: E402

use_strongest_kernels("pytorch_fashion_epoch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DATA = "/usr/share/datasets/fashion-mnist"


def idx(name, offset):
    with gzip.open(os.path.join(DATA, name)) as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=offset)


def main():
    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    x = torch.from_numpy(idx("train-images-idx3-ubyte.gz", 16).astype(np.float32)).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(idx("train-labels-idx1-ubyte.gz", 8).astype(np.int64))
    tx = torch.from_numpy(idx("t10k-images-idx3-ubyte.gz", 16).astype(np.float32)).reshape(-1, 1, 28, 28)
    ty = torch.from_numpy(idx("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64))
    model = nn.Sequential(  # examples/fashion_cnn.grad
        nn.Conv2d(1, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(x.shape[0])
    start = time.perf_counter()
    cpu = time.process_time()
    for i in range(0, x.shape[0], 64):
        rows = order[i:i + 64]
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(model(x[rows] / 255), y[rows]).backward()
        opt.step()
    wall = time.perf_counter() - start
    cores = (time.process_time() - cpu) / wall
    with torch.no_grad():
        accuracy = (model(tx / 255).argmax(1) == ty).float().mean().item()
    print(f"eager PyTorch {torch.__version__}, {THREADS} thread(s): one epoch {wall:.1f} s "
          f"({cores:.2f} cores of CPU time), test accuracy {100 * accuracy:.2f} %")


if __name__ == "__main__":
    main()
