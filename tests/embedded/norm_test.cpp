// batch_norm, layer_norm and buffers in the embedded front end: a model
// written in C++ prints the same graphs as its text twin (both modes, the
// buffer updates included), and its session updates the buffers.
#include <catch2/catch.hpp>
#include <gradc/embed.h>
#include <gradc/session.h>

namespace {

using namespace gradc::embed;
using gradc::Locations;
using gradc::Stage;

const char* kText =
    "model norms\n"
    "dim B = 4\n"
    "input x : [B, 3]\n"
    "input label : i32[B]\n"
    "param W : [3, 5] ~ he_uniform\n"
    "param gamma : [5] ~ ones\n"
    "param beta : [5]\n"
    "buffer running_mean : [5]\n"
    "buffer running_var : [5] ~ ones\n"
    "param g : [5] ~ ones\n"
    "param b : [5]\n"
    "h = relu(batch_norm(x @ W, running_mean, running_var, gamma, beta, momentum=0.2, eps=0.001))\n"
    "z = layer_norm(h, g, b, eps=0.01)\n"
    "loss cross_entropy(z, label)\n"
    "output z\n"
    "optimizer adam(lr = 0.01)\n";

void define(ModelBuilder& m) {
  Dim B = m.dim("B", 4);
  auto x = m.input("x", shape(B, 3));
  auto label = m.input("label", i32(B));
  auto W = m.param("W", shape(3, 5), init::he_uniform);
  auto gamma = m.param("gamma", shape(5), init::ones);
  auto beta = m.param("beta", shape(5));
  auto running_mean = m.buffer("running_mean", shape(5));
  auto running_var = m.buffer("running_var", shape(5), init::ones);
  auto g = m.param("g", shape(5), init::ones);
  auto b = m.param("b", shape(5));
  auto h = m.let("h", relu(batch_norm(x % W, running_mean, running_var, gamma, beta, momentum(0.2), eps(0.001))));
  auto z = m.let("z", layer_norm(h, g, b, eps(0.01)));
  m.loss(cross_entropy(z, label));
  m.output(z);
  m.optimizer("adam", {{"lr", 0.01}});
}

TEST_CASE("batch_norm, layer_norm and buffers in C++ print the text model's graphs") {
  gradc::Model text = gradc::Model::compile_source(kText, "norms.grad");
  REQUIRE(text.ok());
  ModelBuilder m("norms");
  define(m);
  gradc::Model cpp = m.compile();
  INFO(gradc::render_all(cpp.diagnostics()));
  REQUIRE(cpp.ok());
  for (Stage stage : {Stage::Graph, Stage::Grad, Stage::Opt}) {
    std::string a = text.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide);
    CHECK(a == cpp.dump(stage, gradc::DumpFormat::Text, gradc::Entry::TrainStep, Locations::Hide));
    CHECK(a.find("training loss") != std::string::npos);
  }
  REQUIRE(cpp.info().buffers.size() == 2);
  gradc::Session s(cpp);
  gradc::NamedTensors in = {{"x", gradc::Tensor(gradc::DType::F32, {4, 3})}, {"label", gradc::Tensor(gradc::DType::I32, {4})}};
  for (int64_t i = 0; i < 12; ++i) in[0].second.set(i, static_cast<double>(i % 5));
  s.train_step(in);
  // One step with momentum 0.2 from ones: the running variance moved.
  bool moved = false;
  for (int64_t i = 0; i < 5; ++i) moved = moved || s.buffers()[1].second.get(i) != 1.0;
  CHECK(moved);
}

}  // namespace
