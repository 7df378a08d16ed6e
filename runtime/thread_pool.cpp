// A fork-join pool for generated code: the caller and up to threads-1
// workers take indices of one parallel loop from a shared counter.
#include "runtime/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace gradc {
namespace {

using Body = void (*)(void* ctx, int64_t i, int64_t slot);

// One parallel loop at a time. The caller opens a loop and takes indices
// itself at once; workers join while the loop is open. When every index is
// taken the caller closes the loop and waits only for the workers that
// joined, so a worker that wakes late costs the loop nothing. Workers spin
// for a while after a loop before they sleep: generated code runs its
// parallel loops close together, and waking a sleeping thread of a virtual
// machine can take tens of microseconds.
class ThreadPool {
 public:
  explicit ThreadPool(int workers) {
    for (int w = 0; w < workers; ++w) threads_.emplace_back([this, w] { work(w); });
  }
  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }
  int workers() const { return static_cast<int>(threads_.size()); }

  // Runs body(ctx, i, slot) for every i in [0, n) on the caller (slot 0) and
  // up to `helpers` workers (worker w: slot w + 1).
  void run(Body body, void* ctx, int64_t n, int helpers) {
    helpers = std::min<int64_t>({helpers, workers(), n - 1});
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (helpers <= 0 || !busy.owns_lock()) {
      for (int64_t i = 0; i < n; ++i) body(ctx, i, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = body;
      ctx_ = ctx;
      n_ = n;
      next_.store(0);
      helpers_ = helpers;
      open_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    take(body, ctx, n, 0);
    std::unique_lock<std::mutex> lock(mutex_);
    open_ = false;
    done_.wait(lock, [&] { return joined_ == 0; });
  }

 private:
  void take(Body body, void* ctx, int64_t n, int64_t slot) {
    for (int64_t i; (i = next_.fetch_add(1)) < n;) body(ctx, i, slot);
  }

  void work(int w) {
    uint64_t seen = 0;
    for (;;) {
      // Spin about 100 microseconds for the next loop, then sleep.
      auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(100);
      for (int spins = 0; generation_.load(std::memory_order_acquire) == seen; ++spins) {
        if ((spins & 63) == 0 && std::chrono::steady_clock::now() > until) break;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#endif
      }
      Body body;
      void* ctx;
      int64_t n;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_.load() != seen; });
        if (stop_) return;
        seen = generation_.load();
        if (!open_ || w >= helpers_) continue;  // closed before this worker came, or not needed
        ++joined_;
        body = body_, ctx = ctx_, n = n_;
      }
      take(body, ctx, n, w + 1);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--joined_ == 0) done_.notify_one();
    }
  }

  std::vector<std::thread> threads_;
  std::mutex busy_;   // one parallel loop at a time
  std::mutex mutex_;  // the fields below (generation_ is also read while spinning)
  std::condition_variable wake_, done_;
  bool stop_ = false, open_ = false;
  std::atomic<uint64_t> generation_{0};
  Body body_ = nullptr;
  void* ctx_ = nullptr;
  int64_t n_ = 0;
  int helpers_ = 0, joined_ = 0;
  std::atomic<int64_t> next_{0};
};

ThreadPool& pool() {
  static ThreadPool p(hardware_threads() - 1);
  return p;
}

void parallel_for(const GradcRuntime* rt, Body body, void* ctx, int64_t n) {
  if (rt->threads <= 1 || n <= 1) {
    for (int64_t i = 0; i < n; ++i) body(ctx, i, 0);
    return;
  }
  static_cast<ThreadPool*>(rt->pool)->run(body, ctx, n, rt->threads - 1);
}

}  // namespace

int hardware_threads() { return std::max(1u, std::thread::hardware_concurrency()); }

const GradcRuntime* runtime_for_threads(int threads) {
  int n = threads <= 0 ? hardware_threads() : std::min(threads, hardware_threads());
  static std::mutex mutex;
  static std::map<int, std::unique_ptr<GradcRuntime>> runtimes;
  std::lock_guard<std::mutex> lock(mutex);
  std::unique_ptr<GradcRuntime>& rt = runtimes[n];
  if (!rt) rt.reset(new GradcRuntime{&parallel_for, n > 1 ? &pool() : nullptr, n});
  return rt.get();
}

}  // namespace gradc
