// The model files the every-model sweeps run: examples/ and tests/gradcheck/,
// sorted. Under AddressSanitizer (the second half of scripts/test.sh) a sweep
// may take its share of them instead: the JIT against the interpreter takes
// the even positions and forward mode the odd ones (of those, the ones it
// runs: up to 20,000 params), so the sanitized run compiles and runs each
// model once, in half the time, but the large Fashion-MNIST models at odd
// positions (their own gradcheck and training tests run sanitized); the plain
// build runs both sweeps on every model.
#pragma once

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

namespace gradc::test {

inline std::vector<std::string> model_files() {
  std::vector<std::string> out;
  for (const char* dir : {GRADC_SOURCE_DIR "/examples", GRADC_SOURCE_DIR "/tests/gradcheck"})
    for (const auto& e : std::filesystem::directory_iterator(dir))
      if (e.path().extension() == ".grad") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

inline constexpr bool sanitized_build() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#else
  return false;
#endif
}

// The paths at positions `share` (0 or 1) modulo 2 in a sanitized build, all of them otherwise.
inline std::vector<std::string> sanitizer_share(const std::vector<std::string>& paths, size_t share) {
  if (!sanitized_build()) return paths;
  std::vector<std::string> out;
  for (size_t i = share; i < paths.size(); i += 2) out.push_back(paths[i]);
  return out;
}

}  // namespace gradc::test
