// Running deep recursion safely: semantic analysis recurses once per
// expression level (and per inlined fn and lazily analyzed named value), so
// compilation runs on a thread with a large stack instead of the caller's,
// whose size gradc does not control (8 MiB on Linux's main thread, less on
// others). The stack is reserved, not committed: untouched pages cost nothing.
#pragma once

#include <functional>

namespace gradc {

inline constexpr size_t kCompilerStackBytes = size_t{512} << 20;

// Runs f on a thread with kCompilerStackBytes of stack and waits for it;
// exceptions thrown by f are rethrown here. The thread is kept for the next
// call (stack.cpp); calls from several threads at once each get their own.
// Falls back to the calling thread if such a thread cannot be created.
void run_with_large_stack(const std::function<void()>& f);

}  // namespace gradc
