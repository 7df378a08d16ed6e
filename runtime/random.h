// A small counter-based random stream, identical on every run and platform
// for the same key: used for parameter initialization and gradcheck inputs.
#pragma once

#include <cmath>
#include <cstdint>
#include <string_view>

namespace gradc {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline uint64_t fnv1a(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  return h;
}

// The i-th draw depends only on (key, i).
class RandomStream {
 public:
  explicit RandomStream(uint64_t key) : key_(key) {}
  // A stream for one named tensor under a seed.
  RandomStream(uint64_t seed, std::string_view name) : key_(splitmix64(seed) ^ fnv1a(name)) {}

  // Uniform in [0, 1), 53 random bits.
  double uniform() { return static_cast<double>(splitmix64(key_ + counter_++) >> 11) * 0x1.0p-53; }
  // Standard normal by Box-Muller (u1 in (0, 1] so the log is finite).
  double normal() {
    double u1 = 1.0 - uniform(), u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace gradc
