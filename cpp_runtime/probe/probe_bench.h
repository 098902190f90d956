// Micro-benchmarks of autoconfig_probe: core clock, FMA latency/throughput,
// read and copy bandwidth per working-set size. Every kernel is compiled with a
// function-level target attribute, so this file needs no -m flags; callers
// must only run a kernel whose ISA host_features() reports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace autoconfig {
namespace probe {

// Monotonic wall clock, seconds.
double now_seconds();

// --- core clock -----------------------------------------------------------
// Runs `iters` iterations of a dependent chain of kAddsPerIter 1-cycle
// integer adds. Returns the chain length executed (adds).
constexpr uint64_t kAddsPerIter = 128;
void add_chain(uint64_t iters);

// --- FMA kernels ------------------------------------------------------------
// Each runs `iters` loop iterations and executes fmas_per_iter() FMAs
// (vector instructions) per iteration.
struct FmaKernel {
  std::string key;          // "avx512" | "avx2" | "sse" | "neon"
  int lanes;                // fp32 lanes per vector
  int accumulators;         // independent chains in the throughput kernel
  bool emulated;            // true: mul+add pair stands in for one FMA (no FMA unit)
  uint64_t lat_fmas_per_iter;
  uint64_t thr_fmas_per_iter;
  void (*latency)(uint64_t iters);
  void (*throughput)(uint64_t iters);
};

// The FMA kernels this host can run (per host_features()), widest first.
std::vector<FmaKernel> available_fma_kernels();

// --- read bandwidth -----------------------------------------------------
struct ReadKernel {
  std::string name;  // "avx512" | "avx2" | "sse2" | "neon" | "scalar"
  // Reads n floats (n multiple of 256, p 64-byte aligned) `reps` times; returns a sum.
  float (*read)(const float* p, size_t n, uint64_t reps);
};

// The widest read kernel this host can run.
ReadKernel best_read_kernel();

// --- copy bandwidth -----------------------------------------------------
// What a weight re-layout does at best: read one stream, write another, with
// the widest vector loads and ordinary (write-allocating) stores, so a copy
// beyond the last cache pays the read-for-ownership of every written line.
struct CopyKernel {
  std::string name;  // as ReadKernel
  // Copies n floats from src to dst (n multiple of 256, both 64-byte aligned,
  // not overlapping) `reps` times.
  void (*copy)(const float* src, float* dst, size_t n, uint64_t reps);
};

// The widest copy kernel this host can run.
CopyKernel best_copy_kernel();

}  // namespace probe
}  // namespace autoconfig
