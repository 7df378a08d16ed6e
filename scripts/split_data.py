#!/usr/bin/env python3
"""Splits each data set in examples/data into a training and a held-out part:
a seeded shuffle of the rows (Python's random.Random(0)), then the first 80 %
for training and the rest for evaluation. The split files are committed; this
script documents (and can repeat) how they were made. Standard library only."""
import csv
import random
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "examples" / "data"

for name in ("digits", "iris", "breast_cancer"):
    with open(DATA / f"{name}.csv", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    random.Random(0).shuffle(body)
    cut = int(len(body) * 0.8)
    for part, chunk in (("train", body[:cut]), ("test", body[cut:])):
        with open(DATA / f"{name}_{part}.csv", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(header)
            w.writerows(chunk)
        print(f"{name}_{part}.csv: {len(chunk)} rows")
