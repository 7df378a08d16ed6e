// The runtime's thread pool (runtime/thread_pool.h): every index of a loop
// runs exactly once; the slots of the threads running one loop are distinct
// and below the thread count; loops back to back, loops after the workers
// went to sleep, and loops from two host threads at once all complete.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

using namespace gradc;

namespace {

struct Loop {
  std::vector<std::atomic<int>> runs;
  std::atomic<int> in_slot[64] = {};
  std::atomic<bool> bad_slot{false}, shared_slot{false};
  int threads = 1;
  explicit Loop(int64_t n, int t) : runs(static_cast<size_t>(n)), threads(t) {}
};

void body(void* ctx, int64_t i, int64_t slot) {
  Loop& l = *static_cast<Loop*>(ctx);
  if (slot < 0 || slot >= l.threads || slot >= 64) {
    l.bad_slot = true;
    return;
  }
  if (l.in_slot[slot].fetch_add(1) != 0) l.shared_slot = true;
  volatile int spin = 0;
  for (int k = 0; k < 200 * (1 + i % 5); ++k) spin = spin + k;
  l.runs[static_cast<size_t>(i)].fetch_add(1);
  l.in_slot[slot].fetch_sub(1);
}

// Runs loops of varied sizes on rt; returns how many went wrong.
int run_loops(const GradcRuntime* rt, int loops, unsigned seed) {
  int wrong = 0;
  for (int k = 0; k < loops; ++k) {
    seed = seed * 1103515245u + 12345u;
    int64_t n = 1 + (seed >> 16) % 100;
    Loop l(n, rt->threads);
    rt->parallel_for(rt, body, &l, n);
    bool ok = !l.bad_slot && !l.shared_slot;
    for (const std::atomic<int>& r : l.runs) ok = ok && r.load() == 1;
    wrong += !ok;
    if (k % 50 == 49) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // let workers sleep
  }
  return wrong;
}

}  // namespace

TEST_CASE("thread pool: each index once, distinct slots below the thread count", "[runtime][threads]") {
  for (int threads : {1, 2, 0}) {
    const GradcRuntime* rt = runtime_for_threads(threads);
    INFO("threads " << rt->threads);
    CHECK(run_loops(rt, 400, 7u + static_cast<unsigned>(threads)) == 0);
  }
}

TEST_CASE("thread pool: loops from two host threads at once", "[runtime][threads]") {
  const GradcRuntime* rt = runtime_for_threads(0);
  std::atomic<int> wrong{0};
  std::thread a([&] { wrong += run_loops(rt, 300, 1u); });
  std::thread b([&] { wrong += run_loops(rt, 300, 2u); });
  a.join();
  b.join();
  CHECK(wrong == 0);
}
