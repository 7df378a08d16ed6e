// Every example model has a C++ twin (twins.cpp) whose printed graph is the
// text model's, byte for byte, at every graph stage, with the source
// positions left out (they are .grad lines in one and C++ lines in the other).
#include <catch2/catch.hpp>
#include <gradc/embed.h>
#include <gradc/session.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include "tests/embedded/twins.h"

#ifndef GRADC_SOURCE_DIR
#error "GRADC_SOURCE_DIR must name the source tree"
#endif

namespace {

using gradc::Locations;
using gradc::Stage;

// Whether a printout still has a source position: "@LINE:COL" ending a line.
// (A loop, not std::regex: GCC 12 warns -Wmaybe-uninitialized inside
// <regex>'s automaton in the sanitizer build.)
bool has_position(const std::string& s) {
  auto digits = [&](size_t i) {
    size_t j = i;
    while (j < s.size() && std::isdigit(static_cast<unsigned char>(s[j]))) ++j;
    return j;
  };
  for (size_t at = s.find('@'); at != std::string::npos; at = s.find('@', at + 1)) {
    size_t colon = digits(at + 1);
    if (colon == at + 1 || colon >= s.size() || s[colon] != ':') continue;
    size_t end = digits(colon + 1);
    if (end > colon + 1 && end < s.size() && s[end] == '\n') return true;
  }
  return false;
}

TEST_CASE("every example model has a C++ twin") {
  std::vector<std::string> files, twins;
  for (const auto& e : std::filesystem::directory_iterator(std::string(GRADC_SOURCE_DIR) + "/examples"))
    if (e.path().extension() == ".grad") files.push_back(e.path().stem().string());
  for (const auto& t : gradc::embed::twins::all()) twins.push_back(t.file);
  std::sort(files.begin(), files.end());
  std::sort(twins.begin(), twins.end());
  CHECK(files == twins);
}

TEST_CASE("a C++ twin prints the same graph as its text model") {
  for (const auto& twin : gradc::embed::twins::all()) {
    INFO("examples/" << twin.file << ".grad");
    gradc::Model text = gradc::Model::compile_file(std::string(GRADC_SOURCE_DIR) + "/examples/" + twin.file + ".grad");
    REQUIRE(text.ok());
    gradc::embed::ModelBuilder m(twin.model);
    twin.define(m);
    gradc::Model cpp = m.compile();
    INFO(gradc::render_all(cpp.diagnostics()));
    REQUIRE(cpp.ok());
    for (Stage stage : {Stage::Graph, Stage::Grad, Stage::Opt}) {
      std::string a = text.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide);
      std::string b = cpp.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide);
      CHECK(a == b);
      if (a != b && std::getenv("GRADC_TWIN_DUMP_DIR")) {  // for a diff by hand
        std::string base = std::string(std::getenv("GRADC_TWIN_DUMP_DIR")) + "/" + twin.file + "." +
                           std::to_string(static_cast<int>(stage));
        std::ofstream(base + ".grad.txt") << a;
        std::ofstream(base + ".cpp.txt") << b;
      }
      CHECK_FALSE(has_position(a));  // no positions left
    }
    CHECK(text.dump(Stage::Graph, gradc::DumpFormat::Dot) == cpp.dump(Stage::Graph, gradc::DumpFormat::Dot));
    CHECK(text.info().optimizer == cpp.info().optimizer);
  }
}

TEST_CASE("the location-free printout keeps names and drops only positions") {
  gradc::Model text = gradc::Model::compile_file(std::string(GRADC_SOURCE_DIR) + "/examples/xor.grad");
  REQUIRE(text.ok());
  std::string shown = text.dump(Stage::Graph);
  std::string hidden = text.dump(Stage::Graph, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide);
  CHECK(shown.find("# h @23:5") != std::string::npos);
  CHECK(hidden.find("%8 : f32[B=4, 8] = tanh %7                            # h\n") != std::string::npos);
  CHECK(hidden.find("%6 : f32[B=4, 8] = matmul %0, %2\n") != std::string::npos);
  CHECK(std::count(shown.begin(), shown.end(), '\n') == std::count(hidden.begin(), hidden.end(), '\n'));
  CHECK(has_position(shown));
  CHECK_FALSE(has_position(hidden));
  CHECK_FALSE(has_position("# h @23\n@:5\n"));
}

}  // namespace

namespace {

const gradc::embed::twins::Twin& twin_of(const std::string& file) {
  for (const auto& t : gradc::embed::twins::all())
    if (t.file == file) return t;
  throw std::logic_error("no twin " + file);
}

TEST_CASE("a C++ twin specializes to other dims like its text model") {
  gradc::CompileOptions opts;
  opts.dims = {{"B", 32}, {"H", 256}};
  gradc::Model text = gradc::Model::compile_file(std::string(GRADC_SOURCE_DIR) + "/examples/digits_mlp.grad", opts);
  gradc::embed::ModelBuilder m("digits_mlp");
  twin_of("digits_mlp").define(m);
  gradc::Model cpp = m.compile(opts);
  REQUIRE(text.ok());
  REQUIRE(cpp.ok());
  CHECK(text.dump(Stage::Opt, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide) ==
        cpp.dump(Stage::Opt, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide));
  CHECK(cpp.info().params[0].shape == std::vector<int64_t>{64, 256});
}

TEST_CASE("a C++ twin trains exactly like its text model") {
  gradc::Model text = gradc::Model::compile_file(std::string(GRADC_SOURCE_DIR) + "/examples/xor.grad");
  gradc::embed::ModelBuilder m("xor");
  twin_of("xor").define(m);
  gradc::Model cpp = m.compile();
  REQUIRE(text.ok());
  REQUIRE(cpp.ok());
  gradc::Tensor x(gradc::DType::F32, {4, 2}), y(gradc::DType::F32, {4, 1});
  const float cases[4][3] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};
  for (int i = 0; i < 4; ++i) x.set(2 * i, cases[i][0]), x.set(2 * i + 1, cases[i][1]), y.set(i, cases[i][2]);
  gradc::NamedTensors batch = {{"x", x}, {"y", y}};
  gradc::Session a(text, {gradc::Backend::Jit, 3}), b(cpp, {gradc::Backend::Jit, 3});
  for (int step = 0; step < 50; ++step) REQUIRE(a.train_step(batch) == b.train_step(batch));
  for (size_t i = 0; i < a.params().size(); ++i)
    for (int64_t k = 0; k < a.params()[i].second.numel(); ++k)
      REQUIRE(a.params()[i].second.get(k) == b.params()[i].second.get(k));
}

}  // namespace
