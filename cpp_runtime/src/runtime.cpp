// Thread pool, barrier and per-thread scratch memory.
#include "autoconfig/detail/runtime.h"

#include <sched.h>
#include <sys/mman.h>

#include <chrono>
#include <cstdio>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace autoconfig {
namespace detail {

namespace {

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// A call publishes a job (fn, ctx, active) together with a new generation
// number, all under mu_; workers with an id below `active` run it and count
// down `pending_`. Between calls a worker spins for kSpinWindow before
// sleeping on the condition variable: waking a sleeping thread costs tens of
// microseconds (more in a VM), which back-to-back kernel calls should not pay.
//
// Why each job runs exactly once on each of its workers, and the caller
// returns only after they all finished with it:
//  - calls are serialized by call_mu_, and a call returns only when pending_
//    is 0, so generation g+1 is published only after every worker of g
//    counted g down; a worker of g therefore still finds g when it looks;
//  - a worker reads the generation and the job in one critical section and
//    remembers that generation as seen, so it never runs a job under the
//    generation of another (the old loop remembered the generation it woke
//    for, read the job of a later call, and ran that later job twice when it
//    woke again: pending_ went to 0 early or below 0);
//  - after its fetch_sub a worker touches nothing of the call (ctx, stack).
thread_local bool in_parallel_job = false;

class ThreadPool {
 public:
  static constexpr std::chrono::microseconds kSpinWindow{300};

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      generation_.fetch_add(1, std::memory_order_release);
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int nthreads, ParallelFn fn, void* ctx) {
    if (in_parallel_job) {
      // A job calling parallel_run would wait for call_mu_, held by its own caller.
      std::fprintf(stderr, "autoconfig: parallel_run called from inside a parallel job\n");
      std::abort();
    }
    std::lock_guard<std::mutex> call_lock(call_mu_);
    grow(nthreads - 1);
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = fn;
      ctx_ = ctx;
      active_ = nthreads;
      pending_.store(nthreads - 1, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_release);
    }
    if (sleepers_.load(std::memory_order_acquire) > 0) cv_.notify_all();
    in_parallel_job = true;
    fn(ctx, 0, nthreads);
    in_parallel_job = false;
    // Workers finish in microseconds; spin briefly, then yield.
    int spins = 0;
    while (pending_.load(std::memory_order_acquire) != 0) {
      if (++spins < 4096) cpu_relax(); else std::this_thread::yield();
    }
  }

 private:
  void grow(int n) {
    while (static_cast<int>(workers_.size()) < n) {
      int id = static_cast<int>(workers_.size()) + 1;
      workers_.emplace_back([this, id] { loop(id); });
    }
  }

  // Waits for a generation other than `seen`: spin first, then sleep.
  uint64_t wait_for_job(uint64_t seen) {
    const auto until = std::chrono::steady_clock::now() + kSpinWindow;
    int spins = 0;
    for (;;) {
      const uint64_t g = generation_.load(std::memory_order_acquire);
      if (g != seen) return g;
      if (++spins % 64 == 0 && std::chrono::steady_clock::now() > until) break;
      cpu_relax();
    }
    std::unique_lock<std::mutex> lk(mu_);
    sleepers_.fetch_add(1, std::memory_order_acq_rel);
    cv_.wait(lk, [&] { return generation_.load(std::memory_order_acquire) != seen; });
    sleepers_.fetch_sub(1, std::memory_order_acq_rel);
    return generation_.load(std::memory_order_acquire);
  }

  void loop(int id) {
    in_parallel_job = true;
    uint64_t seen = 0;
    for (;;) {
      wait_for_job(seen);
      ParallelFn fn;
      void* ctx;
      int active;
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (stop_) return;
        // The job and its generation, read together: `seen` names the job run below.
        seen = generation_.load(std::memory_order_relaxed);
        fn = fn_;
        ctx = ctx_;
        active = active_;
      }
      if (id < active) {
        fn(ctx, id, active);
        pending_.fetch_sub(1, std::memory_order_release);
      }
    }
  }

  std::mutex call_mu_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread> workers_;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> sleepers_{0};
  bool stop_ = false;
  ParallelFn fn_ = nullptr;
  void* ctx_ = nullptr;
  int active_ = 0;
  std::atomic<int> pending_{0};
};

ThreadPool& pool() {
  static ThreadPool* p = new ThreadPool();  // leaked on purpose: no join at static destruction
  return *p;
}

struct AlignedDeleter {
  void operator()(float* p) const { std::free(p); }
};

struct ScratchSet {
  std::unique_ptr<float, AlignedDeleter> buf[kNumScratchSlots];
  size_t cap[kNumScratchSlots] = {};
};

}  // namespace

void parallel_run(int nthreads, ParallelFn fn, void* ctx) {
  if (nthreads <= 1) {
    fn(ctx, 0, 1);
    return;
  }
  pool().run(nthreads, fn, ctx);
}

int available_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc ? static_cast<int>(hc) : 1;
}

void Barrier::wait() {
  const int phase = phase_.load(std::memory_order_acquire);
  if (count_.fetch_add(1, std::memory_order_acq_rel) == n_ - 1) {
    count_.store(0, std::memory_order_relaxed);
    phase_.store(phase + 1, std::memory_order_release);
    return;
  }
  int spins = 0;
  while (phase_.load(std::memory_order_acquire) == phase) {
    if (++spins < 8192) cpu_relax(); else std::this_thread::yield();
  }
}

float* thread_scratch(int slot, size_t floats) {
  thread_local ScratchSet set;
  if (floats > set.cap[slot]) {
    // Round up to 2 MiB multiples past 2 MiB so growth is rare and huge pages can back it.
    size_t bytes = (floats * sizeof(float) + 63) & ~size_t(63);
    if (bytes > (size_t(2) << 20)) bytes = (bytes + (size_t(2) << 20) - 1) & ~((size_t(2) << 20) - 1);
    void* p = std::aligned_alloc(bytes > (size_t(2) << 20) ? (size_t(2) << 20) : 64, bytes);
    if (!p) return nullptr;
    // Packed panels are walked with large strides: huge pages spare TLB misses.
    if (bytes >= (size_t(2) << 20)) madvise(p, bytes, MADV_HUGEPAGE);
    set.buf[slot].reset(static_cast<float*>(p));
    set.cap[slot] = bytes / sizeof(float);
  }
  return set.buf[slot].get();
}

}  // namespace detail
}  // namespace autoconfig
