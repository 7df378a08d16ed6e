// The host API of the preprocessing a checkpoint records (gradc/preprocess.h):
// the tensors and metadata it writes, reading them back through Session::save
// and load, applying them, and the damaged checkpoints it refuses.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "gradc/preprocess.h"
#include "gradc/session.h"
#include "runtime/tensor_io.h"

using namespace gradc;

namespace {

Preprocessing iris_like() {
  Preprocessing p;
  p.standardize.push_back({"x", {5.8, 3.0, 3.7, 1.2}, {0.8, 0.4, 1.7, 0.75}});
  return p;
}

Tensor rows(std::vector<double> values, int64_t cols) {
  Tensor t(DType::F32, {static_cast<int64_t>(values.size()) / cols, cols});
  for (size_t i = 0; i < values.size(); ++i) t.set(static_cast<int64_t>(i), values[i]);
  return t;
}

}  // namespace

TEST_CASE("preprocessing: checkpoint tensors and metadata", "[train][preprocess]") {
  Preprocessing p = iris_like();
  NamedTensors ts = p.tensors();
  REQUIRE(ts.size() == 2);
  CHECK(ts[0].first == "pre.standardize.x.mean");
  CHECK(ts[1].first == "pre.standardize.x.std");
  CHECK(ts[0].second.type_string() == "f64[4]");
  auto meta = p.metadata();
  REQUIRE(meta.size() == 1);
  CHECK(meta[0].first == "pre.standardize.x");
  CHECK(meta[0].second == "(x - pre.standardize.x.mean) / pre.standardize.x.std");

  Preprocessing back = Preprocessing::from_checkpoint(ts, meta, "ckpt");
  REQUIRE(back.standardize.size() == 1);
  CHECK(back.standardize[0].input == "x");
  CHECK(back.standardize[0].mean == p.standardize[0].mean);
  CHECK(back.standardize[0].std == p.standardize[0].std);
  CHECK(back.inputs_text() == "x");
}

TEST_CASE("preprocessing: apply standardizes the named inputs only", "[train][preprocess]") {
  Preprocessing p = iris_like();
  NamedTensors in = {{"x", rows({5.8, 3.0, 3.7, 1.2, 6.6, 3.4, 5.4, 1.95}, 4)}, {"label", Tensor(DType::I32, {2})}};
  in[1].second.set(1, 2);
  p.apply(in);
  for (int i = 0; i < 4; ++i) CHECK(in[0].second.get(i) == Approx(0.0).margin(1e-6));  // f32 data
  CHECK(in[0].second.get(4) == Approx(1.0));
  CHECK(in[0].second.get(7) == Approx(1.0));
  CHECK(in[1].second.get(1) == 2);  // not standardized
  NamedTensors wrong = {{"x", rows({1, 2, 3}, 3)}};
  CHECK_THROWS_WITH(p.apply(wrong), Catch::Contains("input 'x'") && Catch::Contains("4 features"));
}

TEST_CASE("preprocessing: damaged checkpoints are refused", "[train][preprocess]") {
  NamedTensors ts = iris_like().tensors();
  NamedTensors only_mean = {ts[0]};
  CHECK_THROWS_WITH(Preprocessing::from_tensors(only_mean, "c.st"), Catch::Contains("'pre.standardize.x.std'"));
  NamedTensors only_std = {ts[1]};
  CHECK_THROWS_WITH(Preprocessing::from_tensors(only_std, "c.st"), Catch::Contains("'pre.standardize.x.mean'"));
  NamedTensors zero = ts;
  zero[1].second.set(2, 0.0);
  CHECK_THROWS_WITH(Preprocessing::from_tensors(zero, "c.st"), Catch::Contains("> 0"));
  NamedTensors unknown = ts;
  unknown.emplace_back("pre.minmax.x.lo", Tensor(DType::F64, {4}));
  CHECK_THROWS_WITH(Preprocessing::from_tensors(unknown, "c.st"), Catch::Contains("does not know"));
  CHECK_THROWS_WITH(Preprocessing::from_checkpoint({}, iris_like().metadata(), "c.st"),
                    Catch::Contains("tensors are missing"));
  CHECK(Preprocessing::from_tensors({{"W1", Tensor(DType::F32, {2})}}).empty());
}

TEST_CASE("preprocessing: Session::save and load carry it", "[train][preprocess]") {
  Model m = Model::compile_file(GRADC_SOURCE_DIR "/examples/iris_mlp.grad");
  REQUIRE(m.ok());
  Session s(m, {Backend::Interpreter, 0});
  CHECK(s.preprocessing().empty());
  s.set_preprocessing(iris_like());
  std::string path = GRADC_BINARY_DIR "/preprocess_test.safetensors";
  s.save(path);
  TensorFileMetadata meta;
  NamedTensors file = read_safetensors(path, &meta);
  CHECK(find_tensor(file, "pre.standardize.x.mean") != nullptr);
  REQUIRE(meta.size() == 1);
  CHECK(read_preprocessing(path).standardize.size() == 1);

  Session t(m, {Backend::Interpreter, 1});
  t.load(path);
  REQUIRE(t.preprocessing().standardize.size() == 1);
  CHECK(t.preprocessing().standardize[0].mean == iris_like().standardize[0].mean);
  // A checkpoint without preprocessing clears it: the session follows its params.
  t.restore(m.initial_params(0));
  CHECK(t.preprocessing().empty());
  std::remove(path.c_str());
}
