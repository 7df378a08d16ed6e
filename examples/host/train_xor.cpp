// A host program that trains a model with its own loop: compile the XOR
// model, feed it batches, change the learning rate as it goes, look at the
// generated code, and save a checkpoint. Built and run by the tests, both
// inside the build and against an installed gradc (find_package(gradc)).
//
//   train_xor MODEL.grad CHECKPOINT.safetensors
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <iostream>

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: train_xor examples/xor.grad OUT.safetensors\n";
    return 2;
  }
  gradc::Model model = gradc::Model::compile_file(argv[1]);
  if (!model.ok()) {
    std::cerr << gradc::render_all(model.diagnostics());
    return 1;
  }

  // The four XOR cases as one batch: x is f32[4, 2], y is f32[4, 1].
  gradc::Tensor x(gradc::DType::F32, {4, 2}), y(gradc::DType::F32, {4, 1});
  const float cases[4][3] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};
  for (int i = 0; i < 4; ++i) {
    x.data<float>()[2 * i] = cases[i][0];
    x.data<float>()[2 * i + 1] = cases[i][1];
    y.data<float>()[i] = cases[i][2];
  }
  gradc::NamedTensors batch = {{"x", x}, {"y", y}};

  try {
    gradc::Session session(model, {gradc::Backend::Jit, /*seed=*/1});
    double loss = 0;
    for (int step = 1; step <= 2000; ++step) {
      double lr = step <= 1500 ? 0.5 : 0.1;  // a schedule: no recompilation needed
      loss = session.train_step(batch, lr);
      if (step % 500 == 0) std::cout << "step " << step << "  loss " << loss << "\n";
    }
    gradc::NamedTensors out = session.forward(batch);
    const gradc::Tensor& pred = out.front().second;  // out.pred
    int correct = 0;
    for (int i = 0; i < 4; ++i) {
      std::cout << "  xor(" << cases[i][0] << ", " << cases[i][1] << ") = " << pred.get(i) << "\n";
      correct += (pred.get(i) > 0.5) == (cases[i][2] > 0.5);
    }
    std::cout << "correct: " << correct << " of 4\n";

    // Every stage can be printed; here the first lines of train_step's kernels.
    std::string loops = model.dump(gradc::Stage::Loops, gradc::DumpFormat::Text, gradc::Entry::TrainStep);
    std::cout << loops.substr(0, loops.find('\n')) << "\n";

    session.save(argv[2]);
    std::cout << "saved " << argv[2] << " after " << session.step() << " steps\n";
    return correct == 4 ? 0 : 1;
  } catch (const gradc::DataError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
