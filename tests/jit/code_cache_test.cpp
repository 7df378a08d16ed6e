// The on-disk code cache (include/gradc/session.h, set_code_cache_dir): a
// second compile of the same specialization loads its machine code from the
// cache and computes exactly what a fresh compile computes; truncated, corrupt
// or foreign cache files are recompiled and rewritten; a cache directory that
// cannot be written is skipped without an error.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gradc/session.h"
#include "tests/common/test_inputs.h"

using namespace gradc;
namespace fs = std::filesystem;

namespace {

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

void write_text(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A new, empty directory under the system's temporary directory, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path = fs::temp_directory_path() / ("gradc-code-cache-test-" + std::to_string(stamp));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::vector<fs::path> files() const {
    std::vector<fs::path> out;
    for (const auto& e : fs::directory_iterator(path)) out.push_back(e.path());
    return out;
  }
};

const std::string kModelPath = GRADC_SOURCE_DIR "/examples/digits_mlp.grad";

// A fresh compilation of the model (a new comment defeats the in-memory
// cache, not the code cache: the kernel plan is the same).
Model fresh_model() {
  static int serial = 0;
  return Model::compile_source("# copy " + std::to_string(serial++) + "\n" + read_text(kModelPath), kModelPath);
}

struct Run {
  CompileTimes times;
  std::vector<double> losses;
  NamedTensors params;
};

// Compiles train_step in a new session of a fresh model and trains 5 steps.
Run train() {
  Model m = fresh_model();
  REQUIRE(m.ok());
  Session s(m, {Backend::Jit, 1, false, 1});
  s.prepare(Entry::TrainStep);
  Run r;
  r.times = s.compile_times(Entry::TrainStep);
  NamedTensors in = test::random_inputs(m.info(), 7);
  for (int i = 0; i < 5; ++i) r.losses.push_back(s.train_step(in));
  r.params = s.params();
  return r;
}

void check_same(const Run& a, const Run& b) {
  CHECK(a.losses == b.losses);
  REQUIRE(a.params.size() == b.params.size());
  for (size_t i = 0; i < a.params.size(); ++i) {
    INFO(a.params[i].first);
    const Tensor& x = a.params[i].second;
    const Tensor& y = b.params[i].second;
    REQUIRE(x.nbytes() == y.nbytes());
    CHECK(std::memcmp(x.raw(), y.raw(), x.nbytes()) == 0);  // bit for bit
  }
}

}  // namespace

TEST_CASE("a second compile loads the code cache and computes the same", "[jit][cache]") {
  TempDir dir;
  set_code_cache_dir("");
  Run uncached = train();
  CHECK(uncached.times.compiled);
  CHECK_FALSE(uncached.times.cache_hit);

  set_code_cache_dir(dir.path.string());
  CHECK(code_cache_dir() == dir.path.string());
  CodeCacheStats before = code_cache_stats();
  Run miss = train();
  CHECK_FALSE(miss.times.cache_hit);
  CHECK(miss.times.codegen_ms > 0);
  CHECK(code_cache_stats().misses == before.misses + 1);
  CHECK(code_cache_stats().stores == before.stores + 1);
  REQUIRE(dir.files().size() == 1);

  Run hit = train();
  CHECK(hit.times.cache_hit);
  CHECK(hit.times.emit_ms == 0);
  CHECK(hit.times.optimize_ms == 0);
  CHECK(hit.times.codegen_ms == 0);
  CHECK(code_cache_stats().hits == before.hits + 1);
  CHECK(dir.files().size() == 1);
  check_same(uncached, miss);
  check_same(uncached, hit);

  // Another entry point, and another specialization, are other files.
  Model m = fresh_model();
  Session s(m);
  s.prepare(Entry::Forward);
  CHECK(dir.files().size() == 2);
  CompileOptions wide;
  wide.dims = {{"H", 32}};
  Model m2 = Model::compile_file(kModelPath, wide);
  Session s2(m2);
  s2.prepare(Entry::TrainStep);
  CHECK_FALSE(s2.compile_times(Entry::TrainStep).cache_hit);
  CHECK(dir.files().size() == 3);
  set_code_cache_dir("");
}

TEST_CASE("truncated, corrupt and foreign cache files are recompiled and rewritten", "[jit][cache]") {
  TempDir dir;
  set_code_cache_dir("");
  Run reference = train();
  set_code_cache_dir(dir.path.string());
  train();  // writes the file
  REQUIRE(dir.files().size() == 1);
  std::string file = dir.files().front().string();
  const std::string good = read_text(file);
  REQUIRE(good.size() > 200);

  auto damaged = [&](const std::string& what, const std::string& bytes) {
    INFO(what);
    write_text(file, bytes);
    CodeCacheStats before = code_cache_stats();
    Run r = train();
    CHECK_FALSE(r.times.cache_hit);
    CHECK(code_cache_stats().rejected == before.rejected + 1);
    check_same(reference, r);
    CHECK(read_text(file) == good);  // rewritten
    Run again = train();
    CHECK(again.times.cache_hit);
    check_same(reference, again);
  };
  damaged("empty", "");
  damaged("truncated header", good.substr(0, 40));
  damaged("truncated object", good.substr(0, good.size() / 2));
  damaged("one byte longer", good + "x");
  std::string flipped = good;
  flipped[flipped.size() - 100] ^= 0x20;
  damaged("a flipped bit in the object", flipped);
  std::string magic = good;
  magic[0] = 'X';
  damaged("wrong magic", magic);
  std::string huge = good;
  huge[87] = '\x7f';  // the object's size, far beyond the file
  damaged("a size beyond the file", huge);

  // A well-formed file whose object is not this entry's (another entry's
  // code, with this key in its header): the JIT cannot find the entry point.
  Model m = fresh_model();
  Session s(m);
  s.prepare(Entry::Forward);
  REQUIRE(dir.files().size() == 2);
  std::string forward_file;
  for (const fs::path& p : dir.files())
    if (p.string() != file) forward_file = p.string();
  std::string foreign = read_text(forward_file);
  foreign.replace(16, 64, good.substr(16, 64));
  damaged("another entry's object", foreign);
  set_code_cache_dir("");
}

TEST_CASE("a cache directory that cannot be written does not fail the run", "[jit][cache]") {
  TempDir dir;
  std::string blocker = (dir.path / "a-file").string();
  write_text(blocker, "not a directory");
  set_code_cache_dir("");
  Run reference = train();
  set_code_cache_dir(blocker + "/cache");  // its parent is a file: nothing can be created
  CodeCacheStats before = code_cache_stats();
  Run r = train();
  CHECK_FALSE(r.times.cache_hit);
  CHECK(code_cache_stats().store_failures == before.store_failures + 1);
  check_same(reference, r);
  set_code_cache_dir("");
}

TEST_CASE("a full cache directory loses its least recently used files", "[jit][cache]") {
  TempDir dir;
  auto day_old = fs::file_time_type::clock::now() - std::chrono::hours(24);
  for (int i = 0; i < 4100; ++i) {
    fs::path p = dir.path / (std::to_string(i) + ".gco");
    write_text(p.string(), "x");
    fs::last_write_time(p, day_old);
  }
  fs::path leftover = dir.path / "0.gco.tmp.1.2.3";  // from a writer that was killed
  write_text(leftover.string(), "partial");
  fs::last_write_time(leftover, day_old);
  set_code_cache_dir(dir.path.string());
  Run r = train();
  CHECK_FALSE(r.times.cache_hit);
  std::vector<fs::path> files = dir.files();
  CHECK(files.size() == 3072);
  CHECK_FALSE(fs::exists(leftover));
  size_t fresh = 0;
  for (const fs::path& p : files) fresh += p.filename().string().size() == 64 + 4;
  CHECK(fresh == 1);  // the new file stays
  CHECK(train().times.cache_hit);
  set_code_cache_dir("");
}
