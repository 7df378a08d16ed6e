// The compiler's large-stack threads (compiler/support/stack.h): a job runs
// on a stack far deeper than a default thread's, its exception reaches the
// caller, a finished job's thread serves the next one, jobs nest, jobs from
// several threads run at once, and a child of fork() still runs jobs (its
// parent's idle threads do not exist there).
#include <catch2/catch.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <stdexcept>
#include <thread>
#include <vector>

#include "compiler/support/stack.h"
#include "gradc/gradc.h"

using namespace gradc;

namespace {

// Recursion with 4 KiB of frame per level; `volatile` keeps the frames.
// Returns n.
int deep(int n) {
  volatile char frame[4096];
  frame[0] = 1;
  frame[4095] = 1;
  return n == 0 ? 0 : deep(n - 1) + frame[0] * frame[4095];
}

}  // namespace

TEST_CASE("large stack: 64 MiB of recursion, exceptions, reuse and nesting", "[stack]") {
  int depth = 0;
  run_with_large_stack([&] { depth = deep(16 * 1024); });  // 64 MiB: past a default 8 MiB stack
  CHECK(depth == 16 * 1024);

  CHECK_THROWS_WITH(run_with_large_stack([] { throw std::runtime_error("from the job"); }), "from the job");

  // A finished job's thread runs the next job.
  std::set<std::thread::id> ids;
  for (int i = 0; i < 5; ++i) run_with_large_stack([&] { ids.insert(std::this_thread::get_id()); });
  CHECK(ids.size() == 1);
  CHECK(ids.count(std::this_thread::get_id()) == 0);

  // A job that runs a job: each on its own thread.
  std::thread::id outer, inner;
  run_with_large_stack([&] {
    outer = std::this_thread::get_id();
    run_with_large_stack([&] { inner = std::this_thread::get_id(); });
  });
  CHECK(outer != inner);
}

TEST_CASE("large stack: jobs from several threads at once, and model compiles among them", "[stack]") {
  std::atomic<int> done{0}, in_job{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10; ++i)
        run_with_large_stack([&] {
          int now = ++in_job;
          for (int m = most.load(); now > m && !most.compare_exchange_weak(m, now);) {
          }
          deep(256);
          --in_job;
          ++done;
        });
    });
  for (auto& th : threads) th.join();
  CHECK(done == 60);
  CHECK(most >= 1);
  std::vector<std::thread> compilers;
  std::atomic<int> ok{0};
  for (int t = 0; t < 3; ++t)
    compilers.emplace_back([&] {
      Model m = Model::compile_source("dim B = 2\ninput x : [B, 3]\nparam w : [3]\nloss sum(x * w)\n", "t.grad");
      ok += m.ok() ? 1 : 0;
    });
  for (auto& th : compilers) th.join();
  CHECK(ok == 3);
}

TEST_CASE("large stack: a child of fork() runs jobs and compiles", "[stack]") {
  run_with_large_stack([] {});  // leave an idle thread in the parent
  pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    int depth = 0;
    run_with_large_stack([&] { depth = deep(4 * 1024); });
    Model m = Model::compile_source("input x : [2]\nloss sum(x)\n", "child.grad");
    _exit(depth == 4 * 1024 && m.ok() ? 0 : 1);
  }
  int status = 0;
  REQUIRE(waitpid(pid, &status, 0) == pid);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
}
