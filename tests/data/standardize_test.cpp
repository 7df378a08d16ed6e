// Standardization (fit_standardizer, apply_standardizer): the numbers, constant
// features, extreme values, the shapes it takes, and its errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "runtime/csv.h"
#include "tests/runtime/test_util.h"

namespace gradc {
namespace {

using test::error_of;

Tensor matrix(DType dtype, int64_t rows, int64_t cols, std::vector<double> v) {
  Tensor t(dtype, {rows, cols});
  for (size_t i = 0; i < v.size(); ++i) t.set(static_cast<int64_t>(i), v[i]);
  return t;
}

TEST_CASE("standardizer mean and population std per column") {
  // Column 0: 1, 3, 5 (mean 3, variance 8/3); column 1: 2, 4, 9 (mean 5, variance 26/3).
  Tensor x = matrix(DType::F64, 3, 2, {1, 2, 3, 4, 5, 9});
  Standardizer s = fit_standardizer(x);
  REQUIRE(s.mean.size() == 2);
  CHECK(s.mean[0] == Approx(3));
  CHECK(s.mean[1] == Approx(5));
  CHECK(s.std[0] == Approx(std::sqrt(8.0 / 3)));
  CHECK(s.std[1] == Approx(std::sqrt(26.0 / 3)));
  apply_standardizer(s, x);
  const double* d = x.data<double>();
  CHECK(d[0] == Approx(-2 / std::sqrt(8.0 / 3)));
  CHECK(d[1] == Approx(-3 / std::sqrt(26.0 / 3)));
  CHECK(d[2] == Approx(0).margin(1e-15));
  CHECK(d[4] == Approx(2 / std::sqrt(8.0 / 3)));
  CHECK(d[5] == Approx(4 / std::sqrt(26.0 / 3)));
}

TEST_CASE("a constant column gets std 1 and becomes exactly zero") {
  // 0.1f added up in double is not 0.1f times n: without the special case the
  // deviations would be rounding noise divided by a tiny std.
  Tensor x = matrix(DType::F32, 5, 2, {0.1, 7, 0.1, 8, 0.1, 9, 0.1, 10, 0.1, 11});
  Standardizer s = fit_standardizer(x);
  CHECK(s.mean[0] == static_cast<double>(0.1f));
  CHECK(s.std[0] == 1);
  CHECK(s.std[1] == Approx(std::sqrt(2.0)));
  apply_standardizer(s, x);
  for (int64_t r = 0; r < 5; ++r) CHECK(x.data<float>()[r * 2] == 0.0f);
  CHECK(x.data<float>()[9] == Approx(2 / std::sqrt(2.0)));
}

TEST_CASE("standardizing a vector and applying training statistics to other data") {
  Tensor train(DType::F32, {4});
  for (int64_t i = 0; i < 4; ++i) train.set(i, static_cast<double>(10 + 2 * i));  // 10 12 14 16: mean 13, std sqrt(5)
  Standardizer s = fit_standardizer(train);
  REQUIRE(s.mean.size() == 1);
  CHECK(s.mean[0] == 13);
  CHECK(s.std[0] == Approx(std::sqrt(5.0)));
  Tensor eval(DType::F32, {2});
  eval.set(0, 13);
  eval.set(1, 13 + std::sqrt(5.0));
  apply_standardizer(s, eval);
  CHECK(eval.get(0) == 0);
  CHECK(eval.get(1) == Approx(1));
}

TEST_CASE("standardizing higher-rank rows treats every element of a row as a feature") {
  Tensor x(DType::F64, {2, 2, 2});
  for (int64_t i = 0; i < 8; ++i) x.set(i, static_cast<double>(i));  // row 0: 0..3, row 1: 4..7
  Standardizer s = fit_standardizer(x);
  CHECK(s.mean == std::vector<double>{2, 3, 4, 5});
  CHECK(s.std == std::vector<double>{2, 2, 2, 2});
  apply_standardizer(s, x);
  CHECK(x.get(0) == -1);
  CHECK(x.get(7) == 1);
}

TEST_CASE("standardizing extreme values neither overflows nor underflows") {
  Tensor big = matrix(DType::F64, 2, 2, {1e300, 1e-300, -1e300, 3e-300});
  Standardizer s = fit_standardizer(big);
  CHECK(s.mean[0] == 0);
  CHECK(s.std[0] == Approx(1e300));
  CHECK(s.mean[1] == Approx(2e-300));
  CHECK(s.std[1] == Approx(1e-300));
  apply_standardizer(s, big);
  CHECK(big.get(0) == Approx(1));
  CHECK(big.get(1) == Approx(-1));
  CHECK(big.get(2) == Approx(-1));
  CHECK(big.get(3) == Approx(1));
  Tensor max(DType::F64, {3});
  for (int64_t i = 0; i < 3; ++i) max.set(i, 1.7e308);
  max.set(2, 1.6e308);
  Standardizer m = fit_standardizer(max);
  CHECK(std::isfinite(m.mean[0]));
  CHECK(std::isfinite(m.std[0]));
}

TEST_CASE("standardized iris features have mean 0 and std 1") {
  CsvTable t = read_csv(GRADC_EXAMPLES_DATA "/iris.csv");
  Tensor x = csv_columns(t, "!label", DType::F32, false);
  Standardizer s = fit_standardizer(x);
  CHECK(s.mean[0] == Approx(5.8433).epsilon(1e-4));  // sepal length, as numpy gives
  CHECK(s.std[0] == Approx(0.8253).epsilon(1e-3));
  apply_standardizer(s, x);
  for (int64_t c = 0; c < 4; ++c) {
    double sum = 0, sq = 0;
    for (int64_t r = 0; r < 150; ++r) sum += x.get(r * 4 + c);
    for (int64_t r = 0; r < 150; ++r) sq += std::pow(x.get(r * 4 + c) - sum / 150, 2);
    CHECK(sum / 150 == Approx(0).margin(1e-6));
    CHECK(std::sqrt(sq / 150) == Approx(1).epsilon(1e-5));
  }
}

TEST_CASE("standardizer errors") {
  Tensor ints(DType::I32, {3, 1});
  CHECK(error_of([&] { fit_standardizer(ints); }) == "cannot standardize an i32 tensor, only f32 or f64");
  CHECK(error_of([&] { Standardizer s{{0}, {1}}; apply_standardizer(s, ints); }) ==
        "cannot standardize an i32 tensor, only f32 or f64");
  Tensor scalar(DType::F32, {});
  CHECK(error_of([&] { fit_standardizer(scalar); }) == "cannot standardize a scalar, expected a tensor of shape [rows, ...]");
  Tensor empty(DType::F32, {0, 3});
  CHECK(error_of([&] { fit_standardizer(empty); }) == "cannot fit a standardizer on 0 rows");
  Tensor nan = matrix(DType::F64, 2, 2, {1, 2, 3, NAN});
  CHECK(error_of([&] { fit_standardizer(nan); }) == "cannot standardize: row 1, feature 1 is nan, not a finite number");
  Tensor x = matrix(DType::F32, 2, 3, {1, 2, 3, 4, 5, 6});
  Standardizer two{{0, 0}, {1, 1}};
  CHECK(error_of([&] { apply_standardizer(two, x); }) ==
        "cannot standardize: the standardizer was fit on 2 features, the tensor f32[2, 3] has 3");
}

}  // namespace
}  // namespace gradc
