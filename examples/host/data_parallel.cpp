// Data-parallel training through the host API, without MPI: two "workers"
// (two sessions of the model compiled for half a batch) each compute the
// gradients of their half with Session::grad, the gradients are averaged (the
// place where a distributed program calls MPI_Allreduce), and every worker
// applies the same update with Session::apply_gradients. The workers end with
// the params of one session that ran train_step on the whole batches.
// Built and run by the tests (docs/host_api.md, docs/distributed.md).
//
//   data_parallel examples/xor.grad
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <algorithm>
#include <cmath>
#include <iostream>

// The mean of the workers' "grad.*" tensors, written back into each: what
// MPI_Allreduce (a sum) and a division by the worker count do across
// processes. Every worker's grad() lists the same tensors in the same order.
void average_gradients(std::vector<gradc::NamedTensors>& grads) {
  for (size_t j = 0; j < grads[0].size(); ++j) {
    if (!grads[0][j].first.starts_with("grad.")) continue;
    for (int64_t i = 0; i < grads[0][j].second.numel(); ++i) {
      double sum = 0;
      for (const gradc::NamedTensors& g : grads) sum += g[j].second.get(i);
      for (gradc::NamedTensors& g : grads) g[j].second.set(i, sum / static_cast<double>(grads.size()));
    }
  }
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: data_parallel examples/xor.grad\n";
    return 2;
  }
  constexpr int kWorkers = 2, kRows = 4;
  gradc::Model whole = gradc::Model::compile_file(argv[1], {{{"B", kRows}}});
  gradc::Model half = gradc::Model::compile_file(argv[1], {{{"B", kRows / kWorkers}}});
  if (!whole.ok() || !half.ok()) {
    std::cerr << gradc::render_all(whole.ok() ? half.diagnostics() : whole.diagnostics());
    return 1;
  }
  // The four XOR cases; worker k gets rows 2k and 2k+1.
  const float cases[kRows][3] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};
  auto rows = [&](int first, int count) {
    gradc::Tensor x(gradc::DType::F32, {count, 2}), y(gradc::DType::F32, {count, 1});
    for (int i = 0; i < count; ++i) {
      x.data<float>()[2 * i] = cases[first + i][0];
      x.data<float>()[2 * i + 1] = cases[first + i][1];
      y.data<float>()[i] = cases[first + i][2];
    }
    return gradc::NamedTensors{{"x", x}, {"y", y}};
  };
  try {
    gradc::Session reference(whole, {gradc::Backend::Jit, /*seed=*/1});
    std::vector<gradc::Session> workers;
    for (int k = 0; k < kWorkers; ++k)
      workers.emplace_back(half, gradc::SessionOptions{gradc::Backend::Jit, /*seed=*/1});
    for (int step = 0; step < 200; ++step) {
      reference.train_step(rows(0, kRows), 0.5);
      std::vector<gradc::NamedTensors> grads;
      for (int k = 0; k < kWorkers; ++k) grads.push_back(workers[k].grad(rows(k * kRows / kWorkers, kRows / kWorkers)));
      average_gradients(grads);
      for (int k = 0; k < kWorkers; ++k) workers[k].apply_gradients(grads[k], 0.5);
    }
    // The largest difference from the reference, relative to each param's scale.
    double worst = 0;
    for (const auto& [name, p] : reference.params()) {
      double scale = 0, diff = 0;
      for (int64_t i = 0; i < p.numel(); ++i) scale = std::max(scale, std::abs(p.get(i)));
      for (gradc::Session& w : workers)
        for (int64_t i = 0; i < p.numel(); ++i) diff = std::max(diff, std::abs(w.param(name).get(i) - p.get(i)));
      worst = std::max(worst, diff / std::max(scale, 1e-30));
    }
    std::cout << "after 200 steps, " << workers[0].step() << " updates on each worker; largest relative difference "
              << "from train_step: " << worst << "\n";
    std::cout << (worst <= 1e-6 ? "params match" : "params differ") << "\n";
    return worst <= 1e-6 ? 0 : 1;
  } catch (const gradc::DataError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
