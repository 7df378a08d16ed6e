// Data sets for a model's inputs (gradc/data.h): IDX files among the other
// formats, rows reshaped to the input's row shape, and class ids checked up
// front with the file and row (or line and column) of the first bad one.
#include <fmt/format.h>

#include <catch2/catch.hpp>

#include "gradc/data.h"
#include "tests/common/idx_files.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::error_of;
using test::gzip;

// An IDX file of unsigned bytes.
std::string idx_u8(std::initializer_list<uint32_t> shape, const std::string& data) { return test::idx_file(0x08, shape, data); }

TensorInfo input(const std::string& name, const std::string& dtype, std::vector<int64_t> shape, int64_t classes = 0) {
  TensorInfo t;
  t.name = name;
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.dim_names.assign(t.shape.size(), "");
  t.dim_names[0] = "B";
  t.classes = classes;
  if (classes) t.classes_read_at = "m.grad:9:6";
  return t;
}

// A model of images x : [B, 1, 2, 2] (or `x_shape`) and labels : i32[B] of 3 classes.
ModelInfo image_model(std::vector<int64_t> x_shape = {8, 1, 2, 2}) {
  ModelInfo m;
  m.inputs = {input("x", "f32", std::move(x_shape)), input("label", "i32", {8}, 3)};
  return m;
}

TEST_CASE("IDX images and labels, plain and gzip-compressed, feed a model's inputs") {
  test::TempDir dir;
  test::write_bytes(dir / "train-images-idx3-ubyte.gz", gzip(idx_u8({3, 2, 2}, std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\xff", 12))));
  test::write_bytes(dir / "train-labels-idx1-ubyte", idx_u8({3}, std::string("\x02\x00\x01", 3)));
  CHECK(data::file_type(dir / "train-images-idx3-ubyte.gz") == ".idx");
  CHECK(data::file_type(dir / "train-labels-idx1-ubyte") == ".idx");
  for (std::vector<int64_t> x_shape : {std::vector<int64_t>{8, 1, 2, 2}, {8, 4}, {8, 2, 2}}) {
    INFO("x is " << type_string(DType::F32, x_shape));
    data::Dataset ds = data::load({{"x", dir / "train-images-idx3-ubyte.gz"}, {"label", dir / "train-labels-idx1-ubyte"}},
                                  image_model(x_shape));
    CHECK(ds.rows == 3);
    const Tensor& x = ds.columns[0].second;
    x_shape[0] = 3;
    CHECK(x.type_string() == type_string(DType::F32, x_shape));
    CHECK(x.get(5) == 5);
    CHECK(x.get(11) == 255);  // no rescaling
    const Tensor& label = ds.columns[1].second;
    CHECK(label.type_string() == "i32[3]");
    CHECK(label.data<int32_t>()[0] == 2);
  }
  // A file named otherwise is recognized from its first bytes, also in gzip.
  test::write_bytes(dir / "images.bin", gzip(idx_u8({3, 4}, std::string(12, '\x01'))));
  CHECK(data::file_type(dir / "images.bin") == ".idx");
  CHECK(data::load({{"x", dir / "images.bin"}}, image_model()).columns[0].second.type_string() == "f32[3, 1, 2, 2]");
  CHECK(data::read_idx(dir / "images.bin").type_string() == "f32[3, 4]");
}

TEST_CASE("a row that holds another number of elements than the input's row is an error") {
  test::TempDir dir;
  test::write_bytes(dir / "x-idx3-ubyte", idx_u8({2, 2, 3}, std::string(12, '\x01')));
  std::string msg = error_of([&] { data::load({{"x", dir / "x-idx3-ubyte"}}, image_model()); });
  CHECK_THAT(msg, Catch::Contains(fmt::format("--data x={}: the data has shape f32[2, 2, 3] but input 'x' is "
                                              "f32[8, 1, 2, 2]: every row must be f32[1, 2, 2] (or hold its 4 elements)",
                                              dir / "x-idx3-ubyte")));
  test::write_bytes(dir / "x.txt", "1\n");
  CHECK_THAT(error_of([&] { data::load({{"x", dir / "x.txt"}}, image_model()); }),
             Catch::Contains("unsupported file type '.txt'; --data reads .csv, .npy, .safetensors and IDX files"));
  // A bad IDX file is the reader's error, naming the file.
  test::write_bytes(dir / "bad-idx1-ubyte.gz", gzip(idx_u8({4}, "abc")));
  CHECK_THAT(error_of([&] { data::load({{"label", dir / "bad-idx1-ubyte.gz"}}, image_model()); }),
             Catch::Contains(dir / "bad-idx1-ubyte.gz" + ": data is 3 bytes, but shape [4] of u8 needs 4 (the file is truncated)"));
}

TEST_CASE("class ids out of range are named with their file and row before any step") {
  test::TempDir dir;
  const std::string tail = " for input 'label' is out of range [0, 3) (read as class ids at m.grad:9:6)";
  // CSV: the line in the file (the header is line 1) and the column.
  test::write_bytes(dir / "d.csv", "a,b,c,d,label\n1,2,3,4,0\n\n1,2,3,4,3\n");
  std::string msg = error_of([&] { data::load({{"x", dir / "d.csv"}, {"label", dir / "d.csv"}}, image_model()); });
  CHECK(msg == dir / "d.csv" + ":4:9: class id 3" + tail);
  // IDX and .npy: the row.
  test::write_bytes(dir / "l-idx1-ubyte", idx_u8({3}, std::string("\x00\x02\x07", 3)));
  msg = error_of([&] { data::load({{"label", dir / "l-idx1-ubyte"}}, image_model()); });
  CHECK(msg == dir / "l-idx1-ubyte" + ": row 2: class id 7" + tail);
  Tensor ids(DType::I32, {4});
  ids.set(1, -1);
  data::write_npy(dir / "l.npy", ids);
  msg = error_of([&] { data::load({{"label", dir / "l.npy"}}, image_model()); });
  CHECK(msg == dir / "l.npy" + ": row 1: class id -1" + tail);
  // safetensors: the tensor and the row; from_tensors and check_class_ids alike.
  data::write_safetensors(dir / "l.safetensors", {{"label", ids}});
  msg = error_of([&] { data::load({{"label", dir / "l.safetensors"}}, image_model()); });
  CHECK(msg == dir / "l.safetensors" + ": tensor 'label', row 1: class id -1" + tail);
  msg = error_of([&] { data::from_tensors({{"label", ids}}, image_model(), "--inputs in.st"); });
  CHECK(msg == "--inputs in.st: tensor 'label', row 1: class id -1" + tail);
  msg = error_of([&] { data::check_class_ids({{"label", ids}}, image_model(), "--inputs in.st"); });
  CHECK(msg == "--inputs in.st: tensor 'label', element 1: class id -1" + tail);
  // Ids of a row of several: the element within the row. No model line known: no note.
  ModelInfo pairs;
  pairs.inputs = {input("label", "i32", {8, 2}, 3)};
  pairs.inputs[0].classes_read_at.clear();
  Tensor two(DType::I32, {2, 2});
  two.set(3, 3);
  data::write_npy(dir / "p.npy", two);
  msg = error_of([&] { data::load({{"label", dir / "p.npy"}}, pairs); });
  CHECK(msg == dir / "p.npy" + ": row 1, element 1: class id 3 for input 'label' is out of range [0, 3)");
  // Ids in range, and inputs not read as class ids, pass.
  ids.set(1, 2);
  CHECK_NOTHROW(data::check_class_ids({{"label", ids}}, image_model(), "in"));
  ModelInfo plain;
  plain.inputs = {input("label", "i32", {8})};
  ids.set(1, 99);
  CHECK_NOTHROW(data::from_tensors({{"label", ids}}, plain, "in"));
}

}  // namespace
}  // namespace gradc
