// Convolution and pooling (SPEC 2.7): result shapes of the builtins, the
// window-count formula, and the convolution fans of the initializers (SPEC 2.2).
#include <catch2/catch.hpp>

#include <cmath>

#include "compiler/ir/shape_rules.h"
#include "gradc/gradc.h"
#include "tests/unit/test_support.h"

namespace gradc {
namespace {

using test::type_of;

const std::string kImages =
    "input img : [2, 4, 7, 6]\n"
    "input seq : [2, 3, 9]\n"
    "input w : [6, 2, 3, 2]\n"
    "input dw : [4, 1, 3, 3]\n"
    "input k1 : [5, 3, 3]\n";

TEST_CASE("shapes: convolutions follow PyTorch's output size formula", "[shapes][conv]") {
  CHECK(type_of(kImages, "conv2d(img, w, groups=2)") == "f32[2, 6, 5, 5]");
  CHECK(type_of(kImages, "conv2d(img, w, stride=[2, 1], padding=[1, 0], dilation=[1, 2], groups=2)") ==
        "f32[2, 6, 4, 4]");
  CHECK(type_of(kImages, "conv2d(img, dw, padding=1, groups=4)") == "f32[2, 4, 7, 6]");
  CHECK(type_of(kImages, "conv1d(seq, k1, stride=2, padding=2, dilation=2)") == "f32[2, 5, 5]");
  CHECK(type_of(kImages, "conv1d(seq, k1, stride=[4])") == "f32[2, 5, 2]");
}

TEST_CASE("shapes: pooling and flatten", "[shapes][pool]") {
  CHECK(type_of(kImages, "max_pool2d(img, 2)") == "f32[2, 4, 3, 3]");
  CHECK(type_of(kImages, "max_pool2d(img, [3, 2], stride=[2, 1], padding=1)") == "f32[2, 4, 4, 7]");
  CHECK(type_of(kImages, "avg_pool2d(img, 3, stride=1)") == "f32[2, 4, 5, 4]");
  CHECK(type_of(kImages, "max_pool1d(seq, 2)") == "f32[2, 3, 4]");
  CHECK(type_of(kImages, "avg_pool1d(seq, 3, padding=1, stride=2)") == "f32[2, 3, 5]");
  CHECK(type_of(kImages, "flatten(img)") == "f32[2, 168]");
  CHECK(type_of(kImages, "flatten(img, start=2)") == "f32[2, 4, 42]");
  CHECK(type_of(kImages, "flatten(img, start=0)") == "f32[336]");
  CHECK(type_of(kImages, "flatten(img, start=-1)") == "f32[2, 4, 7, 6]");
}

TEST_CASE("window_count is floor((size - dilation (kernel - 1) - 1) / stride) + 1", "[shapes][conv]") {
  CHECK(window_count(7, 3, 2, 1) == 3);
  CHECK(window_count(8, 3, 2, 1) == 3);
  CHECK(window_count(9, 3, 2, 1) == 4);
  CHECK(window_count(9, 3, 2, 2) == 3);
  CHECK(window_count(3, 3, 5, 1) == 1);
  // No window fits: zero or less, floored (not truncated toward zero).
  CHECK(window_count(5, 3, 1, 3) == -1);
  CHECK(window_count(6, 8, 2, 1) == 0);
}

// The largest magnitude of a param's initial values.
double largest(const std::string& source, const std::string& param) {
  Model m = Model::compile_source(source, "fans.grad");
  NamedTensors params = m.initial_params();
  const Tensor* t = find_tensor(params, param);
  REQUIRE(t);
  double r = 0;
  for (int64_t i = 0; i < t->numel(); ++i) r = std::max(r, std::fabs(t->get(i)));
  return r;
}

TEST_CASE("init: a convolution weight takes PyTorch's convolution fans", "[init][conv]") {
  // k: [O=8, C/groups=2, 3, 3], fan_in = 2*9 = 18, fan_out = 8*9 = 72 (read as
  // [in, out] from its last two dims, it would have fan_in 3 and bound sqrt(2)).
  const std::string body =
      "input x : [2, 4, 5, 5]\n"
      "h = conv2d(x, k, groups=2)\n"
      "loss mean(h)\n";
  double he = largest("param k : [8, 2, 3, 3] ~ he_uniform\n" + body, "k");
  CHECK(he <= std::sqrt(6.0 / 18));
  CHECK(he > 0.9 * std::sqrt(6.0 / 18));
  double xavier = largest("param k : [8, 2, 3, 3] ~ xavier_uniform\n" + body, "k");
  CHECK(xavier <= std::sqrt(6.0 / (18 + 72)));
  CHECK(xavier > 0.9 * std::sqrt(6.0 / (18 + 72)));
  // The same param used otherwise keeps the [in, out] fans.
  double plain = largest("param k : [8, 2, 3, 3] ~ he_uniform\ninput y : [3]\nloss sum(k @ y)\n", "k");
  CHECK(plain > std::sqrt(6.0 / 18));
}

}  // namespace
}  // namespace gradc
