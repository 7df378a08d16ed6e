"""The safetensors writer (SPEC 4) shared by the reference generators
(tests/reference/gen_reference.py, tests/optim/gen_optim_reference.py):
8-byte little-endian header length, the JSON header padded with spaces to a
multiple of 8, then the data, tensors in the order given. Written with
Python's json module, a writer independent of gradc's."""

import json
import os
import struct

import numpy as np

ST_DTYPE = {"f32": ("F32", "<f4"), "f64": ("F64", "<f8"), "i32": ("I32", "<i4")}


def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype 'f32'|'f64'|'i32', numpy array).
    Writes a temporary file next to `path`, then renames it."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, dt, arr in tensors:
        code, npdt = ST_DTYPE[dt]
        data = np.ascontiguousarray(np.asarray(arr).astype(npdt)).tobytes()
        header[name] = {"dtype": code, "shape": [int(d) for d in np.shape(arr)],
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)
