// A host program that loads data the way `gradc train` does: CSV files read
// into a data set for the model's inputs (gradc/data.h), the features
// standardized with statistics fitted on the training rows, shuffled batches
// through train_step, held-out accuracy from forward, and a checkpoint that
// records the standardization (so `gradc predict --params` applies it).
// Built and run by the tests, inside the build and against an installed gradc.
//
//   train_iris MODEL.grad TRAIN.csv TEST.csv CHECKPOINT.safetensors
#include <gradc/data.h>
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <algorithm>
#include <iostream>
#include <numeric>
#include <random>

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: train_iris examples/iris_mlp.grad TRAIN.csv TEST.csv OUT.safetensors\n";
    return 2;
  }
  gradc::Model model = gradc::Model::compile_file(argv[1]);
  if (!model.ok()) {
    std::cerr << gradc::render_all(model.diagnostics());
    return 1;
  }
  try {
    // x: every column but `label`; label: the column named like the input.
    gradc::data::Dataset train = gradc::data::load({{"x", argv[2]}, {"label", argv[2]}}, model.info());
    gradc::data::Dataset test = gradc::data::load({{"x", argv[3]}, {"label", argv[3]}}, model.info());
    std::cout << "train rows " << train.rows << ", test rows " << test.rows << "\n";

    // Standardize x with the training rows' statistics, on both sets.
    const gradc::Tensor& x = train.columns.front().second;
    gradc::Preprocessing pre{{gradc::data::fit_standardization("x", x)}};
    pre.apply(train.columns);
    pre.apply(test.columns);

    gradc::Session session(model, {gradc::Backend::Jit, /*seed=*/3});
    session.set_preprocessing(pre);  // saved with the params
    // The model's batch dim B is dynamic (`dim B`): each call binds it from
    // the inputs, so the batches need not divide the rows.
    const int64_t batch = 16;
    std::vector<int64_t> order(static_cast<size_t>(train.rows));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 rng(3);
    double loss = 0;
    for (int epoch = 1; epoch <= 60; ++epoch) {
      std::shuffle(order.begin(), order.end(), rng);
      for (int64_t b = 0; b < train.rows; b += batch)
        loss = session.train_step(gradc::data::gather(train, order, b, std::min(batch, train.rows - b)));
    }
    std::cout << "last train loss " << loss << "\n";

    // Held-out accuracy on every test row in one call (B is the test set's
    // size there), from the model's own `accuracy` metric.
    for (const auto& [name, t] : session.forward(test.columns))
      if (name == "metric.accuracy") std::cout << "held-out accuracy " << t.get(0) << " over " << test.rows << " rows\n";

    session.save(argv[4]);
    std::cout << "wrote " << argv[4] << "\n";
  } catch (const gradc::DataError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
