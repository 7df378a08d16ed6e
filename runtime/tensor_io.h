// Reading and writing tensor files (SPEC 4): safetensors for named tensors
// (inputs, parameters, checkpoints), NumPy .npy for single arrays, and IDX
// (MNIST's format) for data sets, read only.
//
// Files come from users, so every length, offset and shape is checked,
// overflow included, before it is used or anything is allocated; a bad file
// gives a DataError whose message starts with the file (`what`), names the
// tensor involved, and is lowercase without a trailing period:
//   inputs.safetensors: tensor 'x': data_offsets [0, 100] lie outside the data section of 64 bytes
//
// Data is stored as little-endian f32, f64 or i32. 64-bit integer data (I64,
// <i8) is converted to i32 with a range check; other dtypes are rejected.
// Writes are atomic: a crash or an error never leaves a half-written file.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "gradc/tensor.h"

namespace gradc {

// The "__metadata__" map of a safetensors file, in file order.
using TensorFileMetadata = std::vector<std::pair<std::string, std::string>>;

// --- safetensors ---

// Parses a whole safetensors file held in memory. Tensors come back in the
// order of the header. The checks follow the reference implementation: the
// header is at most 100 MB of strict JSON; tensors lie inside the data section,
// do not overlap and cover it with no holes; names are unique and non-empty.
// When `metadata` is not null it receives the "__metadata__" entries.
NamedTensors parse_safetensors(std::string_view bytes, const std::string& what, TensorFileMetadata* metadata = nullptr);

// Reads and parses the file at `path` (at most 16 GiB).
NamedTensors read_safetensors(const std::string& path, TensorFileMetadata* metadata = nullptr);

// The bytes of a safetensors file holding `ts` in this order (header entries
// in the given order; data ordered 8-byte dtypes first, so that every tensor
// is naturally aligned), with the header padded with spaces to a multiple of
// 8 bytes as the Python library does. Throws DataError for an empty, duplicate
// or non-UTF-8 name, the reserved name "__metadata__", or a duplicate or
// non-UTF-8 metadata key.
std::string serialize_safetensors(const NamedTensors& ts, const TensorFileMetadata& metadata = {});

// serialize_safetensors, then write_output_file (runtime/output_file.h).
void write_safetensors(const std::string& path, const NamedTensors& ts, const TensorFileMetadata& metadata = {});

// --- NumPy .npy ---

// Parses a .npy file (format versions 1.0, 2.0 and 3.0) of dtype <f4, <f8,
// <i4 or <i8 ('=' and '|' are read as little-endian; big-endian '>' is
// rejected). <i8 becomes i32, with an error naming the first element (in C
// order, like numpy's a.flat) that does not fit. Fortran-ordered arrays are
// transposed to C order. The data must be exactly the array's size: numpy
// never writes trailing bytes, so trailing bytes mean a damaged file.
Tensor parse_npy(std::string_view bytes, const std::string& what);

// Reads and parses the .npy file at `path` (at most 16 GiB).
Tensor read_npy(const std::string& path);

// The bytes of a version 1.0 .npy file holding `t` (C order, little-endian
// <f4, <f8 or <i4), as numpy.save writes them; write_npy writes them to
// `path` with write_output_file.
std::string serialize_npy(const Tensor& t);
void write_npy(const std::string& path, const Tensor& t);

// --- IDX ---

// Parses an IDX file (the MNIST family's format: 00 00 TYPE DIMS, the sizes
// as big-endian u32, the big-endian elements), plain or gzip-compressed
// (recognized by its first bytes, 1f 8b). Unsigned and signed bytes, i16 and
// f32 data become f32, i32 data i32, f64 data f64, all exactly (no
// rescaling). The header's shape is checked before anything is allocated:
// its tensor against kMaxSessionBytes, gzip data against the most deflate
// can hold, and the data must be exactly the shape's size (a truncated file,
// trailing bytes and a gzip stream that inflates past the claimed size are
// errors; decompression stops one byte past it).
Tensor parse_idx(std::string_view bytes, const std::string& what);

// Reads and parses the IDX file at `path` (at most 16 GiB; a plain regular
// file's header is checked against its size before the data is read).
Tensor read_idx(const std::string& path);

// Whether `path` (whose first bytes are `head`, "" when unknown) is an IDX
// file: named like one (train-images-idx3-ubyte, t10k-labels.idx1-ubyte,
// x.idx, each optionally .gz), or starting like one, also inside gzip.
bool is_idx(const std::string& path, std::string_view head);

// --- files ---

// `.safetensors` (all tensors), `.npy` or IDX (one tensor called
// `default_name`), chosen by the name of `path` (compared case-insensitively).
NamedTensors read_tensor_file(const std::string& path, const std::string& default_name);

// The largest file read_* accept: 16 GiB.
inline constexpr uint64_t kMaxTensorFileBytes = uint64_t{16} << 30;

// The most read_binary_file reads from a pipe or FIFO, whose size is not
// known in advance: 1 GiB, so that an endless stream fails rather than
// growing without bound.
inline constexpr uint64_t kMaxStreamBytes = uint64_t{1} << 30;

// The whole content of the file at `path`. Throws DataError naming the path for
// a missing or unreadable path, a directory or device (/dev/zero: only regular
// files and pipes are read; a FIFO without a writer reads as empty), or one
// larger than `max_bytes` (checked before allocating; a pipe at most
// kMaxStreamBytes).
std::string read_binary_file(const std::string& path, uint64_t max_bytes = kMaxTensorFileBytes);

// The first `n` bytes of the regular file at `path` (fewer when it is
// shorter), or "" for anything else: a pipe must be read once, whole, and a
// device or a missing file gets its error from the reader.
std::string read_file_head(const std::string& path, size_t n);


}  // namespace gradc
