// The time of one train_step call from C++ on W1 (xor, batch 4: the step
// itself is well under a microsecond, so the time is mostly the call), the
// baseline for the Python module's call overhead (bench/python_overhead.py).
//
//   host_call_time bench/models/w1_xor.grad [CALLS]
// prints "cxx_ns_per_call MEDIAN" over 21 blocks of CALLS calls (default 20000).
#include <gradc/gradc.h>
#include <gradc/session.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: host_call_time bench/models/w1_xor.grad [CALLS]\n");
    return 2;
  }
  int calls = argc > 2 ? std::stoi(argv[2]) : 20000;
  gradc::Model model = gradc::Model::compile_file(argv[1]);
  if (!model.ok()) {
    std::fputs(gradc::render_all(model.diagnostics()).c_str(), stderr);
    return 1;
  }
  gradc::SessionOptions opts;
  opts.threads = 1;
  gradc::Session s(model, opts);
  gradc::Tensor x(gradc::DType::F32, {4, 2}), y(gradc::DType::F32, {4, 1});
  const float cases[4][3] = {{0, 0, 0}, {0, 1, 1}, {1, 0, 1}, {1, 1, 0}};
  for (int i = 0; i < 4; ++i) {
    x.data<float>()[2 * i] = cases[i][0];
    x.data<float>()[2 * i + 1] = cases[i][1];
    y.data<float>()[i] = cases[i][2];
  }
  gradc::NamedTensors batch;
  batch.emplace_back("x", x);
  batch.emplace_back("y", y);
  for (int i = 0; i < 1000; ++i) s.train_step(batch);  // compile and warm up
  std::vector<double> per_call;
  for (int block = 0; block < 21; ++block) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < calls; ++i) s.train_step(batch);
    per_call.push_back(std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count() / calls);
  }
  std::nth_element(per_call.begin(), per_call.begin() + 10, per_call.end());
  std::printf("cxx_ns_per_call %.1f\n", per_call[10]);
  return 0;
}
