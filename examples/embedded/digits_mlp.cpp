// The digits MLP of examples/digits_mlp.grad, defined and trained entirely
// in C++ with the embedded front end (gradc/embed.h): the model is C++
// expressions, gradc differentiates it, adds the optimizer step, optimizes
// and JIT-compiles it, and this program runs the training loop.
//
//   embedded_digits_mlp examples/data/digits_train.csv examples/data/digits_test.csv [EPOCHS] [MIN_ACCURACY]
//
// Exits with 1 when the held-out accuracy is below MIN_ACCURACY (default 0).
#include <gradc/embed.h>
#include <gradc/session.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

// The model, statement for statement as in examples/digits_mlp.grad.
void define_digits_mlp(gradc::embed::ModelBuilder& m) {
  using namespace gradc::embed;
  Dim B = m.dim("B", 64);   // rows per batch
  Dim H = m.dim("H", 128);  // hidden units
  Dim C = m.dim("C", 10);   // classes (digits 0-9)

  Tensor<2> x = m.input("x", shape(B, 64));  // pixels 0..16
  Tensor<1> label = m.input("label", i32(B));

  auto W1 = m.param("W1", shape(64, H), init::he_uniform);
  auto b1 = m.param("b1", shape(H));
  auto W2 = m.param("W2", shape(H, C), init::xavier_uniform);
  auto b2 = m.param("b2", shape(C));

  auto pixels = m.let("pixels", x / 16);               // [B, 64]  scaled to 0..1
  auto h = m.let("h", relu(pixels % W1 + b1));         // [B, H]   % is the matrix product
  auto logits = m.let("logits", h % W2 + b2);          // [B, C]

  m.loss(cross_entropy(logits, label));
  m.metric("accuracy", mean(argmax(logits, axis(1)) == label));
  m.output(logits);
  m.optimizer("sgd", {{"lr", 0.05}, {"momentum", 0.9}});
}

struct Digits {
  std::vector<float> pixels;  // rows x 64
  std::vector<int32_t> labels;
  size_t rows() const { return labels.size(); }
};

// Reads a digits CSV (a header, then 64 pixel columns and the label).
Digits read_digits(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw gradc::DataError("cannot read '" + path + "'");
  Digits d;
  std::string line;
  std::getline(in, line);  // header
  for (int row = 2; std::getline(in, line); ++row) {
    if (line.empty()) continue;
    std::stringstream ss(line);
    std::string cell;
    std::vector<double> v;
    while (std::getline(ss, cell, ',')) v.push_back(std::stod(cell));
    if (v.size() != 65) throw gradc::DataError(path + ":" + std::to_string(row) + ": expected 65 columns");
    d.pixels.insert(d.pixels.end(), v.begin(), v.begin() + 64);
    d.labels.push_back(static_cast<int32_t>(v[64]));
  }
  return d;
}

// The rows `order[first, first + n)` as the inputs x and label.
gradc::NamedTensors batch(const Digits& d, const std::vector<size_t>& order, size_t first, size_t n) {
  gradc::Tensor x(gradc::DType::F32, {static_cast<int64_t>(n), 64}), label(gradc::DType::I32, {static_cast<int64_t>(n)});
  for (size_t i = 0; i < n; ++i) {
    size_t r = order[first + i];
    std::copy_n(d.pixels.begin() + static_cast<std::ptrdiff_t>(r * 64), 64, x.data<float>() + i * 64);
    label.data<int32_t>()[i] = d.labels[r];
  }
  return {{"x", x}, {"label", label}};
}

double metric(const gradc::NamedTensors& out, const std::string& name) {
  const gradc::Tensor* t = gradc::find_tensor(out, name);
  return t ? t->get(0) : -1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: embedded_digits_mlp TRAIN.csv TEST.csv [EPOCHS] [MIN_ACCURACY]\n";
    return 2;
  }
  int epochs = argc > 3 ? std::stoi(argv[3]) : 20;
  double min_accuracy = argc > 4 ? std::stod(argv[4]) : 0;

  gradc::embed::ModelBuilder builder("digits_mlp");
  define_digits_mlp(builder);
  gradc::Model model = builder.compile();
  if (!model.ok()) {
    std::cerr << gradc::render_all(model.diagnostics());
    return 1;
  }
  try {
    Digits train = read_digits(argv[1]), test = read_digits(argv[2]);
    gradc::Session session(model, {gradc::Backend::Jit, /*seed=*/0});
    const size_t B = 64;
    std::vector<size_t> order(train.rows());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::mt19937 rng(0);
    for (int epoch = 1; epoch <= epochs; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      double total = 0;
      size_t steps = 0;
      for (size_t first = 0; first + B <= order.size(); first += B, ++steps)
        total += session.train_step(batch(train, order, first, B));
      std::printf("epoch %2d  mean loss %.4f\n", epoch, total / static_cast<double>(steps));
    }

    // Held-out accuracy: the same model specialized to the whole test set as one batch.
    gradc::CompileOptions whole;
    whole.dims = {{"B", static_cast<int64_t>(test.rows())}};
    gradc::Model eval_model = builder.compile(whole);
    gradc::Session eval(eval_model);
    eval.set_params(session.params());
    std::vector<size_t> all(test.rows());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    double accuracy = metric(eval.forward(batch(test, all, 0, all.size())), "metric.accuracy");
    std::printf("held-out accuracy %.4f on %zu rows\n", accuracy, test.rows());
    return accuracy >= min_accuracy ? 0 : 1;
  } catch (const gradc::DataError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
