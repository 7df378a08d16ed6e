// Parallel code generation (compiler/codegen/module_split.h): an entry
// compiled in parts on several threads computes bit for bit what the entry
// compiled in one part computes, on models with matrix-product tiles,
// thread-pool task bodies, loops (scan) and convolutions, for the forward
// pass and the train step; a cached entry of several parts loads back; a
// malformed pack of objects is refused.
#include <catch2/catch.hpp>

#include <cstring>
#include <filesystem>
#include <random>

#include "compiler/codegen/code_cache.h"
#include "compiler/codegen/jit.h"
#include "compiler/exec/entry.h"
#include "gradc/session.h"
#include "tests/common/model_ir.h"
#include "tests/common/run_entry.h"

using namespace gradc;

namespace {

// Seeded inputs for an entry: small normal values, and 0 for ids and labels
// (in range for every model).
std::vector<Tensor> inputs(const EntrySignature& sig, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> normal(0.0, 0.5);
  std::vector<Tensor> in;
  for (const EntryValue& v : sig.reads) {
    Tensor t(v.dtype, v.shape);
    for (int64_t i = 0; i < t.numel(); ++i) t.set(i, v.dtype == DType::I32 ? 0.0 : normal(rng));
    in.push_back(std::move(t));
  }
  return in;
}

bool same_bits(const Tensor& a, const Tensor& b) {
  return a.nbytes() == b.nbytes() && std::memcmp(a.raw(), b.raw(), a.nbytes()) == 0;
}

}  // namespace

TEST_CASE("an entry compiled in parts computes bit for bit what one part computes", "[codegen][parallel]") {
  for (const char* name : {"rnn/gru", "digits_cnn", "digits_mlp"}) {
    SECTION(name) {
      // (At batch 32: the recurrent and CNN examples' batch dims are dynamic,
      // and their code at the stand-in size is too small for three parts.)
      auto c = test::compile_ir(fmt::format("{}/examples/{}.grad", GRADC_SOURCE_DIR, name), {{"B", 32}});
      JitOptions whole, parts;
      whole.compile_threads = 1;
      parts.compile_threads = 3;
      parts.min_part_instructions = 1;  // as many parts as threads, however small the module
      std::unique_ptr<Executor> one = make_jit_executor(*c->ir, c->sm, whole), three = make_jit_executor(*c->ir, c->sm, parts);
      for (EntryKind kind : {EntryKind::TrainStep, EntryKind::Forward}) {
        INFO("entry " << entry_name(kind));
        EntrySignature sig = entry_signature(*c->ir, kind);
        std::vector<Tensor> in = inputs(sig, 3);
        std::vector<Tensor> a = test::run_entry(*one, sig, in, 2), b = test::run_entry(*three, sig, in, 2);
        CHECK(one->compile_times(kind).parts == 1);
        CHECK(three->compile_times(kind).parts == 3);
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) {
          INFO(sig.produces[i].name);
          CHECK(same_bits(a[i], b[i]));
        }
      }
    }
  }
}

TEST_CASE("an entry of several parts is cached and loads back", "[codegen][parallel][cache]") {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / fmt::format("gradc_parts_cache_{}", ::getpid());
  fs::remove_all(dir);
  set_code_cache_dir(dir.string());
  auto c = test::compile_ir(fmt::format("{}/examples/rnn/gru.grad", GRADC_SOURCE_DIR));
  JitOptions parts;
  parts.compile_threads = 2;
  parts.min_part_instructions = 1;
  EntrySignature sig = entry_signature(*c->ir, EntryKind::TrainStep);
  std::vector<Tensor> in = inputs(sig, 5);
  std::unique_ptr<Executor> first = make_jit_executor(*c->ir, c->sm, parts);
  std::vector<Tensor> a = test::run_entry(*first, sig, in, 1);
  CHECK(!first->compile_times(EntryKind::TrainStep).cache_hit);
  std::unique_ptr<Executor> second = make_jit_executor(*c->ir, c->sm, parts);
  std::vector<Tensor> b = test::run_entry(*second, sig, in, 1);
  CompileTimes hit = second->compile_times(EntryKind::TrainStep);
  CHECK(hit.cache_hit);
  for (size_t i = 0; i < a.size(); ++i) CHECK(same_bits(a[i], b[i]));
  set_code_cache_dir("");
  fs::remove_all(dir);
}

TEST_CASE("packs of object files: round trip, and anything else refused", "[codegen][parallel][cache]") {
  std::vector<std::string> objects{"first object", std::string("\0\1\2", 3), "third"};
  std::string pack = pack_objects(objects);
  CHECK(unpack_objects(pack) == objects);
  CHECK(!unpack_objects(""));
  CHECK(!unpack_objects(pack_objects({})));                        // no object
  CHECK(!unpack_objects(pack.substr(0, pack.size() - 1)));         // truncated
  CHECK(!unpack_objects(pack + "x"));                              // trailing bytes
  std::string huge = pack;
  huge[4] = '\xff';  // the first object's size past the end
  CHECK(!unpack_objects(huge));
}
