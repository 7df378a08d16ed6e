// A large-stack thread for the compiler (see stack.h).
//
// The threads are kept: a finished job's thread waits for the next one (at
// most kIdleKept of them wait; more exit). A thread made per job cost every
// compilation a thread start, a 512 MiB mapping and its unmapping, and a page
// fault for every page of stack it touched, on fresh pages each time: about
// 0.3 ms of a 1 ms front end on a virtual machine, where a fault costs ~10 us.
#include "compiler/support/stack.h"

#include <pthread.h>

#include <condition_variable>
#include <exception>
#include <mutex>
#include <utility>
#include <vector>

namespace gradc {
namespace {

constexpr size_t kIdleKept = 4;

// One thread with a large stack, running the jobs handed to it one at a time.
struct Worker {
  std::mutex mu;
  std::condition_variable cv;
  const std::function<void()>* job = nullptr;  // set by the caller, cleared by the worker when done
  std::exception_ptr error;
  bool quit = false;
};

// The idle workers. Never destroyed: a worker may still be waiting when
// static objects are destroyed at exit. A child of fork() has none of its
// parent's threads, so it starts with a new, empty list (the old one, and
// its lock in whatever state the fork found it, are left behind).
struct Idle {
  std::mutex mu;
  std::vector<Worker*> workers;
};
Idle* idle_list = nullptr;
Idle& idle() {
  static const bool registered = [] {
    idle_list = new Idle;
    pthread_atfork(nullptr, nullptr, [] { idle_list = new Idle; });
    return true;
  }();
  (void)registered;
  return *idle_list;
}

void* worker_main(void* arg) {
  auto* w = static_cast<Worker*>(arg);
  std::unique_lock<std::mutex> lock(w->mu);
  while (true) {
    w->cv.wait(lock, [&] { return w->job != nullptr || w->quit; });
    if (w->quit) break;
    lock.unlock();
    std::exception_ptr error;
    try {
      (*w->job)();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    w->error = error;
    w->job = nullptr;
    w->cv.notify_all();
  }
  lock.unlock();
  delete w;
  return nullptr;
}

// A worker from the idle list, or a new thread; nullptr if none can be started.
Worker* take_worker() {
  {
    std::lock_guard<std::mutex> lock(idle().mu);
    if (!idle().workers.empty()) {
      Worker* w = idle().workers.back();
      idle().workers.pop_back();
      return w;
    }
  }
  auto* w = new Worker;
  pthread_attr_t attr;
  pthread_t thread;
  bool started = pthread_attr_init(&attr) == 0 && pthread_attr_setstacksize(&attr, kCompilerStackBytes) == 0 &&
                 pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED) == 0 &&
                 pthread_create(&thread, &attr, worker_main, w) == 0;
  pthread_attr_destroy(&attr);
  if (!started) {
    delete w;
    return nullptr;
  }
  return w;
}

void give_back(Worker* w) {
  {
    std::lock_guard<std::mutex> lock(idle().mu);
    if (idle().workers.size() < kIdleKept) {
      idle().workers.push_back(w);
      return;
    }
  }
  std::lock_guard<std::mutex> lock(w->mu);
  w->quit = true;
  w->cv.notify_all();
}

}  // namespace

void run_with_large_stack(const std::function<void()>& f) {
  Worker* w = take_worker();
  if (!w) {
    f();
    return;
  }
  std::exception_ptr error;
  {
    std::unique_lock<std::mutex> lock(w->mu);
    w->job = &f;
    w->cv.notify_all();
    w->cv.wait(lock, [&] { return w->job == nullptr; });
    error = std::exchange(w->error, nullptr);
  }
  give_back(w);
  if (error) std::rethrow_exception(error);
}

}  // namespace gradc
