"""The call overhead of the Python module's train_step on W1 (xor, batch 4),
against the same call from C++ (host_call_time): both on one thread, the
median over 21 blocks of CALLS calls. The step itself is well under a
microsecond, so the difference is what Python adds per call: argument
parsing, the input checks and copies, releasing the GIL.

  PYTHONPATH=build/python /usr/bin/python3 bench/python_overhead.py \\
      build/bench/host_call_time bench/models/w1_xor.grad [CALLS]"""

import statistics
import subprocess
import sys
import time

import numpy as np

import gradc


def python_ns_per_call(model_path, calls):
    s = gradc.Model.load(model_path).session(threads=1)
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    for _ in range(1000):  # compile and warm up
        s.train_step(x=x, y=y)
    step = s.train_step
    blocks = []
    for _ in range(21):
        t0 = time.perf_counter_ns()
        for _ in range(calls):
            step(x=x, y=y)
        blocks.append((time.perf_counter_ns() - t0) / calls)
    return statistics.median(blocks)


def main():
    host, model = sys.argv[1], sys.argv[2]
    calls = int(sys.argv[3]) if len(sys.argv) > 3 else 20000
    out = subprocess.run([host, model, str(calls)], check=True, capture_output=True, text=True).stdout
    cxx = float(out.split()[1])
    py = python_ns_per_call(model, calls)
    print(f"train_step on W1 (xor), one thread, median of 21 blocks of {calls} calls")
    print(f"  C++ host        {cxx / 1000:8.3f} us per call")
    print(f"  Python module   {py / 1000:8.3f} us per call")
    print(f"  Python overhead {(py - cxx) / 1000:8.3f} us per call")


main()
