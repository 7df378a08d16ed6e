// Philox4x32-10 (runtime/philox.h) against the known-answer vectors of the
// Random123 distribution (tests/kat_vectors, the "philox4x32 10" lines:
// counter words, key words, expected output words), and the properties the
// random ops rely on.
#include <catch2/catch.hpp>

#include <cmath>
#include <set>

#include "runtime/philox.h"

using namespace gradc;

TEST_CASE("philox4x32-10 matches the Random123 known-answer vectors") {
  static_assert(philox4x32_10({0, 0, 0, 0}, {0, 0}) == PhiloxCounter{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8});
  CHECK(philox4x32_10({0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff}) ==
        PhiloxCounter{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd});
  CHECK(philox4x32_10({0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0}) ==
        PhiloxCounter{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1});
}

TEST_CASE("gradc's random bits: the counter and key words of (seed, step, stream, index)") {
  CHECK(random_bits(0, 0, 0, 0) == 0x6627e8d5);
  CHECK(random_bits(0xffffffffffffffffULL, 0xffffffff, 0xffffffff, 0xffffffffffffffffULL) == 0x408f276d);
  CHECK(random_bits(0x299f31d0a4093822ULL, 0x03707344, 0x13198a2e, 0x85a308d3243f6a88ULL) == 0xd16cfe09);
  CHECK(random_uniform(0, 0, 0, 0) == static_cast<double>(0x6627e8) / (1 << 24));
  // Every input word changes the bits.
  std::set<uint32_t> seen;
  for (uint64_t seed : {0ULL, 1ULL, 1ULL << 32})
    for (uint32_t step : {1u, 2u})
      for (uint32_t stream : {0u, 1u})
        for (uint64_t index : {0ULL, 1ULL, 1ULL << 32}) seen.insert(random_bits(seed, step, stream, index));
  CHECK(seen.size() == 3 * 2 * 2 * 3);
}

TEST_CASE("random_uniform lies in 0 <= u < 1 with the mean and spread of a uniform") {
  double sum = 0, sq = 0;
  const int n = 100000;
  for (int i = 0; i < n; ++i) {
    double u = random_uniform(42, 1, 7, static_cast<uint64_t>(i));
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
    sum += u;
    sq += u * u;
  }
  double mean = sum / n, var = sq / n - mean * mean;
  // Standard errors: 0.29 / sqrt(n) ~ 1e-3 for the mean; tolerances of 5 of them.
  CHECK(std::abs(mean - 0.5) < 5e-3);
  CHECK(std::abs(var - 1.0 / 12) < 5e-3);
}
