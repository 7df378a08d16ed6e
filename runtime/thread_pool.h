// The run-time support that generated code calls: a small thread pool.
//
// Entry points compiled by the JIT have the C signature
//
//     int32_t gradc_<entry>(void** args, uint8_t* arena, const GradcRuntime* rt);
//
// and run a large kernel by outlining its outermost parallel loop into a
// function `body(ctx, i, slot)` and calling rt->parallel_for(rt, body, ctx, n).
// Every i is computed by exactly one thread with the same code, so results do
// not depend on the thread count. `slot` (in [0, threads)) tells apart the
// threads of one parallel_for: the caller is 0, and no two threads run with
// the same slot at once, so a body may use per-slot scratch memory.
#pragma once

#include <cstdint>

extern "C" {
struct GradcRuntime {
  void (*parallel_for)(const GradcRuntime* rt, void (*body)(void* ctx, int64_t i, int64_t slot), void* ctx, int64_t n);
  void* pool;       // the ThreadPool behind it
  int32_t threads;  // how many threads parallel_for may use (>= 1)
};
}

namespace gradc {

// The process's pool, created on first use with one worker per hardware
// thread (less the caller), and a runtime that uses at most `threads` of its
// threads (0: all of them). Calls from several host threads at once are
// safe: a call that finds the pool busy runs its loop on its own thread.
const GradcRuntime* runtime_for_threads(int threads);

// Hardware threads of the host (at least 1).
int hardware_threads();

}  // namespace gradc
