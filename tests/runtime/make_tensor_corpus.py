#!/usr/bin/env python3
"""Writes the seed corpus of the tensor-file fuzzer (tests/fuzz/corpus_tensor):
valid and broken safetensors, .npy and IDX files (plain and gzip-compressed),
built byte by byte (no numpy).
Usage: python3 tests/runtime/make_tensor_corpus.py [OUT_DIR]"""
import gzip
import json
import os
import struct
import sys

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus_tensor")


def safetensors(entries, data, metadata=None, pad=True):
    """entries: [(name, dtype, shape, begin, end)] in header order."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, begin, end in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + data


def npy(version, header, data):
    prefix = 10 if version == 1 else 12
    h = header.encode()
    h += b" " * ((64 - (prefix + len(h) + 1) % 64) % 64) + b"\n"
    size = struct.pack("<H", len(h)) if version == 1 else struct.pack("<I", len(h))
    return b"\x93NUMPY" + bytes([version, 0]) + size + h + data


def idx(code, shape, data):
    """An IDX file: 00 00 TYPE DIMS, the sizes as big-endian u32, the data."""
    return bytes([0, 0, code, len(shape)]) + b"".join(struct.pack(">I", d) for d in shape) + data


def gz(data):
    return gzip.compress(data, mtime=0)  # the same bytes on every run


def f32(*v):
    return struct.pack(f"<{len(v)}f", *v)


def f64(*v):
    return struct.pack(f"<{len(v)}d", *v)


def i32(*v):
    return struct.pack(f"<{len(v)}i", *v)


def i64(*v):
    return struct.pack(f"<{len(v)}q", *v)


def dict_header(descr, shape, fortran=False):
    return "{'descr': '%s', 'fortran_order': %s, 'shape': %s, }" % (descr, "True" if fortran else "False", shape)


files = {
    "valid_f32.safetensors": safetensors(
        [("w", "F32", [2, 3], 0, 24), ("b", "F32", [3], 24, 36)], f32(1, 2, 3, 4, 5, 6) + f32(0.5, -1, 2), {"format": "pt"}),
    "valid_mixed.safetensors": safetensors(
        [("a", "F64", [2], 0, 16), ("step", "I64", [], 16, 24), ("idx", "I32", [2, 2], 24, 40), ("e", "F32", [0], 40, 40)],
        f64(0.25, -8) + i64(1000) + i32(1, 2, 3, 4)),
    "empty.safetensors": safetensors([], b""),
    "bad_overlap.safetensors": safetensors([("a", "F32", [2], 0, 8), ("b", "F32", [2], 4, 12)], f32(1, 2, 3)),
    "bad_offsets.safetensors": safetensors([("x", "F32", [25], 0, 100)], bytes(64)),
    "bad_dtype.safetensors": safetensors([("h", "F16", [2], 0, 4)], bytes(4)),
    "bad_json.safetensors": struct.pack("<Q", 30) + b'{"x":{"dtype":"F32","shape":[1' + b"\x00" * 8,
    "valid_v1_f4.npy": npy(1, dict_header("<f4", "(2, 3)"), f32(0, 1, 2, 3, 4, 5)),
    "valid_v2_i8_fortran.npy": npy(2, dict_header("<i8", "(2, 3)", True), i64(0, 3, 1, 4, 2, 5)),
    "valid_v3_f8_scalar.npy": npy(3, dict_header("<f8", "()"), f64(2.5)),
    "bad_bigendian.npy": npy(1, dict_header(">f4", "(1,)"), b"\x3f\x80\x00\x00"),
    "bad_truncated.npy": npy(1, dict_header("<i4", "(4,)"), i32(1, 2, 3)),
    "bad_header.npy": npy(1, dict_header("<f4", "(5)"), bytes(20)),
    "valid_images-idx3-ubyte": idx(0x08, [2, 2, 3], bytes(range(0, 240, 20))),
    "valid_labels-idx1-ubyte.gz": gz(idx(0x08, [2], bytes([7, 1]))),
    "valid_f64.idx": idx(0x0E, [2], struct.pack(">2d", 0.5, -3)),
    "valid_i16.idx2.gz": gz(idx(0x0B, [1, 2], struct.pack(">2h", -300, 2))),
    "bad_truncated-idx3-ubyte": idx(0x08, [2, 2, 3], bytes(11)),
    "bad_trailing-idx1-ubyte.gz": gz(idx(0x08, [2], bytes(3))),
    "bad_type-idx1-ubyte": idx(0x0A, [2], bytes(2)),
    "bad_bomb-idx1-ubyte.gz": gz(idx(0x08, [10], bytes(1 << 20))),
    "bad_claim-idx3-ubyte.gz": gz(idx(0x08, [60000, 28, 28], bytes(4))),
}

os.makedirs(OUT, exist_ok=True)
for name, content in files.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(content)
print(f"wrote {len(files)} files to {OUT}")
