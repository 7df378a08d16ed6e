// The replay driver shared by the fuzz targets: built with GRADC_FUZZ_REPLAY,
// a target becomes an ordinary program that feeds every file (or every file
// under every directory) named on its command line to LLVMFuzzerTestOneInput,
// so the corpora run as tests without libFuzzer.
#pragma once

#ifdef GRADC_FUZZ_REPLAY
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  int count = 0;
  auto run = [&](const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(s.data()), s.size());
    ++count;
  };
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (const auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) run(e.path());
    } else {
      run(p);
    }
  }
  std::printf("fuzz_replay: %d inputs ran without a crash\n", count);
  return count > 0 ? 0 : 1;
}
#endif
