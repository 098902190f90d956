// Runtime services used by generated kernels. Compiled once at baseline ISA;
// the interface is C-like on purpose (no templates cross the ISA boundary, so
// no inline function compiled with wider ISA flags can be picked by the linker).
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace autoconfig {
namespace detail {

// Runs fn(ctx, tid, nthreads) for tid in [0, nthreads); the caller is tid 0.
// Returns after every thread finished. Calls are serialized process-wide.
using ParallelFn = void (*)(void* ctx, int tid, int nthreads);
void parallel_run(int nthreads, ParallelFn fn, void* ctx);

// Logical CPUs this process may run on.
int available_cpus();

// Sense-reversing barrier for the threads of one parallel_run.
class Barrier {
 public:
  explicit Barrier(int n) : n_(n) {}
  void wait();
 private:
  const int n_;
  std::atomic<int> count_{0};
  std::atomic<int> phase_{0};
};

// Grow-only, 64-byte aligned scratch owned by the calling thread. Slots let a
// kernel hold several buffers at once. Contents are not preserved on growth.
enum ScratchSlot : int {
  kScratchPackA = 0,
  kScratchPackB = 1,
  kScratchEdgeB = 2,
  kScratchConv0 = 3,
  kScratchConv1 = 4,
  kScratchLayoutIn = 5,   // conv2d: an input converted between layouts
  kScratchLayoutOut = 6,  // conv2d: an output (or residual) converted between layouts
  kScratchLayoutRes = 7,
  kScratchWeights = 8,  // conv2d one-off call: the weights packed for the call (reused, never cleared)
  kScratchAttnK = 9,    // attention: K^T of one head, packed
  kScratchAttnS = 10,   // attention: the score tile (fused) or a head's score matrix (unfused)
  kScratchAttnO = 11,   // attention: the output tile's accumulators
  kNumScratchSlots = 12
};
float* thread_scratch(int slot, size_t floats);

}  // namespace detail
}  // namespace autoconfig
