"""OpenBLAS's kernels for the benchmark's Python baselines (eager PyTorch).

Debian's torch does its matrix products in OpenBLAS, which picks its kernels
when it loads. Import this module before torch and call use_strongest_kernels().
"""
import os
import subprocess
import sys


def stronger_openblas_core():
    """The OPENBLAS_CORETYPE of the newest kernels this core runs, when they
    are newer than those OpenBLAS would choose by itself; else None.

    OpenBLAS picks its kernels when it loads, from the CPU's family and model,
    and gives a core it does not recognise an old core's: on 2026-12-06's
    AVX-512 Xeon, whose model the virtual machine hid, it chose Prescott's
    SSE3 kernels (sgemm 41 against 183 GFLOP/s), and eager PyTorch's W4 step
    took 88 ms. run_bench makes the same choice for its baselines
    (bench::stronger_blas_core)."""
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((set(line.split(":", 1)[1].split()) for line in f if line.startswith("flags")), set())
    except OSError:
        return None
    avx512 = {"avx512f", "avx512bw", "avx512dq", "avx512vl"}
    levels = [("Haswell", {"avx2", "fma"}), ("SkylakeX", avx512), ("Cooperlake", avx512 | {"avx512_bf16"})]
    best = max((i for i, (_, need) in enumerate(levels) if need <= flags), default=None)
    if best is None:
        return None
    # What OpenBLAS chooses by itself, asked in a child process (the choice
    # is made when the library loads).
    ask = ("import ctypes; b = ctypes.CDLL('libopenblas.so.0'); b.openblas_get_corename.restype = ctypes.c_char_p; "
           "print(b.openblas_get_corename().decode())")
    try:
        chosen = subprocess.run([sys.executable, "-c", ask], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    if not chosen or chosen.lower().startswith("zen"):  # (an AMD core OpenBLAS knows)
        return None
    level = next((i for i, (name, _) in enumerate(levels) if name.lower() == chosen.lower()), -1)
    return levels[best][0] if best > level else None


def use_strongest_kernels(program):
    """Sets OPENBLAS_CORETYPE (before torch loads OpenBLAS) when
    stronger_openblas_core() names a kernel set, and says so on stderr."""
    core = stronger_openblas_core()
    if core:
        print(f"{program}: OpenBLAS would choose older kernels than this core runs; OPENBLAS_CORETYPE={core}",
              file=sys.stderr)
        os.environ["OPENBLAS_CORETYPE"] = core
