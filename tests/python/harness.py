"""What the Python module's tests share: the command line (GRADC ROOT), a
scratch directory, a safetensors reader independent of gradc, and a runner
that calls every test_* function of a script in order and fails on the
first failed assert."""

import json
import os
import struct
import sys
import tempfile
import traceback

import numpy as np

GRADC = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "gradc"
ROOT = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else os.getcwd())
SCRATCH = tempfile.mkdtemp(prefix="gradc_python_test_")
XOR = os.path.join(ROOT, "examples", "xor.grad")
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))

# The XOR truth table, as the model's inputs (f32).
X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
Y = np.array([[0], [1], [1], [0]], dtype=np.float32)

NUMPY_DTYPE = {"F32": "<f4", "F64": "<f8", "I32": "<i4"}


def read_safetensors(path):
    """Every tensor of a safetensors file by name, as NumPy arrays."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        a, b = t["data_offsets"]
        raw = data[8 + n + a:8 + n + b]
        out[name] = np.frombuffer(raw, dtype=NUMPY_DTYPE[t["dtype"]]).reshape(t["shape"])
    return out


def run(tests):
    """Runs every test_* function in `tests` (a script's globals), in order."""
    names = [n for n in tests if n.startswith("test_") and callable(tests[n])]
    failed = 0
    for name in names:
        try:
            tests[name]()
            print(f"ok   {name}")
        except Exception:  # report every failing test, not only the first
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
    print(f"{len(names) - failed} of {len(names)} passed")
    sys.exit(1 if failed or not names else 0)


def raises(kind, call, *words):
    """Asserts that call() raises `kind` with every one of `words` in its message; returns the exception."""
    try:
        call()
    except kind as e:
        for w in words:
            assert w in str(e), f"{w!r} is not in the message: {e}"
        return e
    raise AssertionError(f"no {kind.__name__} raised")
