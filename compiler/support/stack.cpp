// A large-stack thread for the compiler (see stack.h).
#include "compiler/support/stack.h"

#include <pthread.h>

#include <exception>

namespace gradc {
namespace {

struct Job {
  const std::function<void()>* f;
  std::exception_ptr error;
};

void* trampoline(void* arg) {
  Job* job = static_cast<Job*>(arg);
  try {
    (*job->f)();
  } catch (...) {
    job->error = std::current_exception();
  }
  return nullptr;
}

}  // namespace

void run_with_large_stack(const std::function<void()>& f) {
  Job job{&f, nullptr};
  pthread_attr_t attr;
  pthread_t thread;
  bool started = pthread_attr_init(&attr) == 0 && pthread_attr_setstacksize(&attr, kCompilerStackBytes) == 0 &&
                 pthread_create(&thread, &attr, trampoline, &job) == 0;
  pthread_attr_destroy(&attr);
  if (!started) {
    f();
    return;
  }
  pthread_join(thread, nullptr);
  if (job.error) std::rethrow_exception(job.error);
}

}  // namespace gradc
