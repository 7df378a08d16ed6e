#!/usr/bin/env python3
"""Writes sines_train.csv and sines_test.csv: noisy sine waves and the value
that comes next, for the recurrent cells of elman.grad, gru.grad and lstm.grad.

Each row is one wave a * sin(w * t + p) with its amplitude a in [0.5, 1.5],
frequency w in [0.2, 0.8] radians per step and phase p in [0, 2 pi) drawn at
random: columns x0..x15 are its values at t = 0..15 with Gaussian noise of
standard deviation 0.05 added, and column y is its clean value at t = 16.
Python's standard library alone, seeded: the same files on every run.

    python3 examples/rnn/make_sines.py examples/rnn
"""
import math
import os
import random
import sys

T = 16
NOISE = 0.05


def write(path, rows, rng):
    with open(path, "w") as f:
        f.write(",".join([f"x{t}" for t in range(T)] + ["y"]) + "\n")
        for _ in range(rows):
            a = rng.uniform(0.5, 1.5)
            w = rng.uniform(0.2, 0.8)
            p = rng.uniform(0.0, 2.0 * math.pi)
            xs = [a * math.sin(w * t + p) + rng.gauss(0.0, NOISE) for t in range(T)]
            y = a * math.sin(w * T + p)
            f.write(",".join(f"{v:.4f}" for v in xs + [y]) + "\n")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    rng = random.Random(2024)
    write(os.path.join(out, "sines_train.csv"), 512, rng)
    write(os.path.join(out, "sines_test.csv"), 128, rng)


if __name__ == "__main__":
    main()
