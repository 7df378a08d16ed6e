// The storage of large tensors and of the JIT's working memory, from memory
// the kernel may back with 2 MiB pages (transparent huge pages, asked for with
// madvise).
//
// Why: a fresh page costs a page fault at its first touch, and on a virtual
// machine a fault costs about 10 us. A session of W3 (784-256-10) touches
// 2.4 MB of new params, optimizer state and back buffers: about 600 faults,
// 4.5 ms, most of its construction and more than its code takes to load from
// the code cache. With 2 MiB pages it is one or two faults.
//
// Three sizes:
// - under kMinPooled: operator new (64-byte aligned); the pool would waste more
//   than it saves.
// - up to kChunk (with the page for its colour, below): carved from shared
//   2 MiB chunks (2 MiB aligned, madvised) in kUnit steps, first fit; a chunk
//   that becomes empty is kept as the one spare or unmapped.
// - larger: a mapping of its own, 2 MiB aligned so that every whole 2 MiB of it
//   can be one page, its length rounded up to 4 KiB only (no more memory than
//   the size asks for).
//
// Pooled and mapped blocks start on a different cache line of their first
// 4 KiB page each ("colours", as jemalloc offsets its large allocations):
// block i at line 17 * i mod 64, so 64 blocks in a row all differ. Without
// them every large tensor began on a 64 KiB or 2 MiB boundary, the same
// address modulo 4 KiB as every other, and a loop over several of them at
// the same index (an optimizer's update: the weight, its moments and its
// gradient) had each load wait on the store to another at the same offset
// (the core's 4 KiB aliasing) and their lines compete for the same cache
// sets: W4's Adam updates, fused into its weight-gradient products, took
// 5.8 ms each on an AVX-512 Xeon, 4.1-4.3 ms coloured (2026-12-06). A
// block takes one page more than it asks for, to hold its colour.
//
// Where madvise is refused or transparent huge pages are off, the memory is
// ordinary pages and everything still works. Under AddressSanitizer every size
// comes from operator new, so that the sanitizer still sees every overflow.
#include "gradc/tensor.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>
#endif

#if defined(__SANITIZE_ADDRESS__)
#define GRADC_POOL_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GRADC_POOL_OFF 1
#endif
#endif
#if !defined(__linux__) || !defined(MADV_HUGEPAGE)
#define GRADC_POOL_OFF 1
#endif

namespace gradc::detail {
namespace {

constexpr size_t kAlign = 64;

void* small_new(size_t bytes) { return ::operator new(bytes, std::align_val_t{kAlign}); }
void small_delete(void* p) noexcept { ::operator delete(p, std::align_val_t{kAlign}); }

}  // namespace

#ifdef GRADC_POOL_OFF

void* allocate_storage(size_t bytes) { return small_new(bytes == 0 ? 1 : bytes); }
void free_storage(void* p, size_t) noexcept { small_delete(p); }
bool storage_is_pooled(size_t) { return false; }

#else

namespace {

constexpr size_t kChunk = size_t{2} << 20;  // one huge page
constexpr size_t kUnit = size_t{64} << 10;
constexpr size_t kUnits = kChunk / kUnit;   // 32: one bit each in Chunk::used
constexpr size_t kMinPooled = kUnit;
constexpr size_t kPage = 4096;
static_assert(kUnits == 32, "Chunk::used has a bit per unit");

// A mapping of `bytes` (a multiple of kPage) whose start is kChunk aligned,
// madvised for huge pages; nullptr when the system refuses the memory.
void* map_aligned(size_t bytes) {
  size_t over = bytes + kChunk;
  void* p = mmap(nullptr, over, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  auto start = reinterpret_cast<uintptr_t>(p), aligned = (start + kChunk - 1) & ~(kChunk - 1);
  if (aligned > start) munmap(p, aligned - start);
  if (uintptr_t end = start + over, used = aligned + bytes; end > used) munmap(reinterpret_cast<void*>(used), end - used);
  void* a = reinterpret_cast<void*>(aligned);
  madvise(a, bytes, MADV_HUGEPAGE);  // advice only: refused, the pages are ordinary ones
  return a;
}

struct Chunk {
  uint8_t* base;
  uint32_t used;  // bit u: unit u is taken
};

class Pool;
std::mutex& pool_lock();

class Pool {
 public:
  void* allocate(size_t units) {
    std::lock_guard<std::mutex> lock(mu_);
    const uint32_t run = units == kUnits ? ~uint32_t{0} : ((uint32_t{1} << units) - 1);
    for (Chunk& c : chunks_)
      for (size_t u = 0; u + units <= kUnits; ++u)
        if ((c.used & (run << u)) == 0) {
          c.used |= run << u;
          return c.base + u * kUnit;
        }
    void* base = map_aligned(kChunk);
    if (!base) return nullptr;
    chunks_.push_back({static_cast<uint8_t*>(base), run});
    return base;
  }

  void free(void* p, size_t units) noexcept {
    std::lock_guard<std::mutex> lock(mu_);
    auto* q = static_cast<uint8_t*>(p);
    auto* base = reinterpret_cast<uint8_t*>(reinterpret_cast<uintptr_t>(q) & ~(kChunk - 1));
    const uint32_t run = units == kUnits ? ~uint32_t{0} : ((uint32_t{1} << units) - 1);
    for (size_t i = 0; i < chunks_.size(); ++i) {
      if (chunks_[i].base != base) continue;
      chunks_[i].used &= ~(run << ((q - base) / kUnit));
      if (chunks_[i].used != 0) return;
      // Empty: keep it as the one spare, or give it back.
      size_t empty = 0;
      for (const Chunk& c : chunks_) empty += c.used == 0;
      if (empty > 1) {
        munmap(base, kChunk);
        chunks_.erase(chunks_.begin() + static_cast<std::ptrdiff_t>(i));
      }
      return;
    }
  }

 private:
  friend std::mutex& pool_lock();
  std::mutex mu_;
  std::vector<Chunk> chunks_;
};

Pool& pool();
std::mutex& pool_lock() { return pool().mu_; }

// Never destroyed: tensors with static storage duration may free into it
// after every other static object is gone. fork() holds its lock, so that a
// child never starts with the lock taken by a thread it does not have.
Pool& pool() {
  static Pool* p = [] {
    auto* pool = new Pool;
    pthread_atfork([] { pool_lock().lock(); }, [] { pool_lock().unlock(); }, [] { pool_lock().unlock(); });
    return pool;
  }();
  return *p;
}

// The pool and its fork handlers are made while the program starts, not at
// the first large allocation: a fork() while another thread was making them
// (inside the initialization of pool()'s static) left the child waiting for
// that initialization forever, since the thread doing it does not exist in
// the child (the fork test hung about one run in eight).
[[maybe_unused]] Pool& made_at_start = pool();

size_t units_for(size_t bytes) { return (bytes + kUnit - 1) / kUnit; }

// The memory a block of `bytes` takes: one page more, for its colour.
size_t span_of(size_t bytes) { return bytes + kPage; }

// The next block's offset into its first page, a multiple of kAlign.
size_t next_colour() {
  static std::atomic<uint32_t> blocks{0};
  constexpr size_t lines = kPage / kAlign;  // 64
  return (17 * blocks.fetch_add(1, std::memory_order_relaxed) % lines) * kAlign;
}

}  // namespace

bool storage_is_pooled(size_t bytes) { return bytes >= kMinPooled; }

void* allocate_storage(size_t bytes) {
  if (bytes < kMinPooled) return small_new(bytes == 0 ? 1 : bytes);
  const size_t span = span_of(bytes);
  void* p = span <= kChunk ? pool().allocate(units_for(span)) : map_aligned((span + kPage - 1) / kPage * kPage);
  if (!p) throw std::bad_alloc();
  return static_cast<uint8_t*>(p) + next_colour();
}

void free_storage(void* p, size_t bytes) noexcept {
  if (!p) return;
  if (bytes < kMinPooled) return small_delete(p);
  // The block's memory starts at the page its colour is in.
  void* base = reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kPage - 1});
  const size_t span = span_of(bytes);
  if (span <= kChunk)
    pool().free(base, units_for(span));
  else
    munmap(base, (span + kPage - 1) / kPage * kPage);
}

#endif

}  // namespace gradc::detail
