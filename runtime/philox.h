// Philox4x32-10, the counter-based random generator of Salmon, Moraes, Dror
// and Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC'11; the
// generator of cuRAND, JAX and PyTorch on CUDA): ten rounds of a Feistel-like
// network of two 32 x 32 -> 64-bit products, keyed by a Weyl sequence. Its
// output is a pure function of (counter, key), so any element of a random
// tensor is computed on its own, in any order and on any thread.
//
// gradc's random ops (dropout) draw element `index` of the op with stream id
// `stream` at training step `step` under the model's `seed` as
//
//   counter = (index low 32 bits, index high 32 bits, stream, step)
//   key     = (seed low 32 bits, seed high 32 bits)
//   bits    = word 0 of philox4x32_10(counter, key)
//   uniform = (bits >> 8) / 2^24, in [0, 1)
//
// The generated code (codegen/emit_scalar.cpp) computes the same words; this
// is the interpreter's copy and the tests' reference, checked against the
// known-answer vectors of the Random123 distribution (tests/runtime).
#pragma once

#include <array>
#include <cstdint>

namespace gradc {

inline constexpr uint32_t kPhiloxM0 = 0xD2511F53, kPhiloxM1 = 0xCD9E8D57;  // the round multipliers
inline constexpr uint32_t kPhiloxW0 = 0x9E3779B9, kPhiloxW1 = 0xBB67AE85;  // the key schedule's increments
inline constexpr int kPhiloxRounds = 10;

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

constexpr PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  for (int round = 0; round < kPhiloxRounds; ++round) {
    if (round > 0) k = {k[0] + kPhiloxW0, k[1] + kPhiloxW1};
    uint64_t p0 = uint64_t{kPhiloxM0} * c[0], p1 = uint64_t{kPhiloxM1} * c[2];
    c = {static_cast<uint32_t>(p1 >> 32) ^ c[1] ^ k[0], static_cast<uint32_t>(p1),
         static_cast<uint32_t>(p0 >> 32) ^ c[3] ^ k[1], static_cast<uint32_t>(p0)};
  }
  return c;
}

// The 32 random bits of one element (see the top of the file).
constexpr uint32_t random_bits(uint64_t seed, uint32_t step, uint32_t stream, uint64_t index) {
  return philox4x32_10({static_cast<uint32_t>(index), static_cast<uint32_t>(index >> 32), stream, step},
                       {static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32)})[0];
}

// Uniform in [0, 1) from the 24 high bits: exact in f32 and in f64.
constexpr double random_uniform(uint64_t seed, uint32_t step, uint32_t stream, uint64_t index) {
  return static_cast<double>(random_bits(seed, step, stream, index) >> 8) * 0x1.0p-24;
}

}  // namespace gradc
