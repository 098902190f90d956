// autoconfig_probe: measures what the planner needs to know about this core
// and prints ONE JSON object on stdout (see python/autoconfig/probe.py):
//
// {"arch": "x86_64", "features": [...], "freq_ghz": f,
//  "fma": {"avx512": {"latency_cycles": f, "per_cycle": f, "gflops": f, ...}, ...},
//  "fma_all_cpus": {"key": s, "threads": n, "gflops": f} or null,
//  "bandwidth": [{"bytes": n, "gbps": f}, ...],
//  "copy_bandwidth": [{"bytes": n, "gbps": f}, ...], "logical_cpus": n, "seconds": f}
//
//  - core clock: a dependent chain of 1-cycle integer adds (cycles/s); every
//    other measurement is converted to cycles with it.
//  - FMA latency: one dependent chain; throughput: many independent chains;
//    the median of a few rounds, each converted to cycles with its own clock
//    readings. Only variants host_features() supports are run.
//  - read bandwidth per working-set size: widest vector loads, best of N.
//  - copy bandwidth per working-set size (the same sizes; "bytes" is the
//    source plus the destination, each half of it): widest vector loads and
//    ordinary stores, GB/s counting the bytes read plus the bytes written;
//    shorter runs than the read curve (a re-layout is the only user).
//  - FMA throughput with every allowed CPU running the throughput kernel at
//    once ("fma_all_cpus": {"threads": n, "gflops": total}): below n times
//    one CPU's rate when logical CPUs share FMA units (SMT siblings).
// The thread is pinned to the CPU it starts on while measuring.
//
// Flags: --quick (shorter runs; for tests), --no-bandwidth.
// Build: c++ -O2 -std=c++17 -I../src probe_main.cpp probe_bench.cpp ../src/cpu_features.cpp
#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "cpu_features.h"
#include "probe_bench.h"

namespace {

using autoconfig::probe::now_seconds;

volatile float g_sink = 0.0f;

struct Options {
  bool quick = false;
  bool bandwidth = true;
};

struct Timing {
  double clock_target;   // seconds per timed run, core clock
  double fma_target;     // seconds per timed run, FMA kernels
  double bw_target;      // seconds per timed run, bandwidth
  double copy_target;    // seconds per timed run, copy bandwidth
  int clock_repeats;     // best of
  int fma_repeats;
  int fma_rounds;        // median of (clock, FMA) rounds
  int bw_repeats;
  std::vector<size_t> sizes;
};

Timing timing_for(const Options& o) {
  const size_t K = 1024, M = 1024 * 1024;
  // Same sizes in both modes: the largest one (DRAM) anchors the L3 sanity
  // check of probe.py, so --quick only shortens the runs.
  const std::vector<size_t> sizes = {16 * K, 32 * K, 256 * K, 1 * M,
                                     4 * M,  16 * M, 64 * M,  256 * M};
  if (o.quick) return {0.008, 0.004, 0.004, 0.002, 2, 2, 3, 2, sizes};
  return {0.030, 0.015, 0.025, 0.008, 3, 2, 3, 3, sizes};
}

// Runs fn(iters) with iters chosen so one run lasts about `target` seconds;
// returns the best seconds per iteration over `repeats` runs.
template <class Fn>
double best_seconds_per_iter(Fn&& fn, double target, int repeats) {
  uint64_t iters = 1;
  double t = 0.0;
  for (;;) {
    const double s = now_seconds();
    fn(iters);
    t = now_seconds() - s;
    if (t >= target / 8 || iters >= (uint64_t{1} << 40)) break;
    iters *= (t < target / 256) ? 16 : 2;
  }
  const double per = t / static_cast<double>(iters);
  iters = std::max<uint64_t>(1, static_cast<uint64_t>(target / std::max(per, 1e-12)));
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeats; ++r) {
    const double s = now_seconds();
    fn(iters);
    best = std::min(best, (now_seconds() - s) / static_cast<double>(iters));
  }
  return best;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string json_str(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--quick] [--no-bandwidth]\n", argv0);
}

// Aggregate FMA rate (FMAs per second) with one thread per CPU in `cpus`, each
// pinned to its CPU, all running `kernel` for `iters` iterations from a common start.
double all_cpus_fma_rate(const autoconfig::probe::FmaKernel& k, const cpu_set_t& cpus, uint64_t iters) {
  std::vector<int> ids;
  for (int c = 0; c < CPU_SETSIZE; ++c)
    if (CPU_ISSET(c, &cpus)) ids.push_back(c);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<double> ends(ids.size(), 0.0);
  std::vector<std::thread> threads;
  double start = 0.0;
  for (size_t i = 0; i < ids.size(); ++i) {
    threads.emplace_back([&, i] {
      cpu_set_t one;
      CPU_ZERO(&one);
      CPU_SET(ids[i], &one);
      sched_setaffinity(0, sizeof(one), &one);
      k.throughput(iters / 16);  // warm up on this CPU
      ready.fetch_add(1);
      while (!go.load(std::memory_order_acquire)) {
      }
      k.throughput(iters);
      ends[i] = now_seconds();
    });
  }
  while (ready.load() < static_cast<int>(ids.size())) {
  }
  start = now_seconds();
  go.store(true, std::memory_order_release);
  for (auto& t : threads) t.join();
  const double end = *std::max_element(ends.begin(), ends.end());
  return static_cast<double>(ids.size()) * static_cast<double>(iters) * static_cast<double>(k.thr_fmas_per_iter) /
         (end - start);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quick") == 0) {
      opt.quick = true;
    } else if (std::strcmp(argv[i], "--no-bandwidth") == 0) {
      opt.bandwidth = false;
    } else if (std::strcmp(argv[i], "--help") == 0 || std::strcmp(argv[i], "-h") == 0) {
      usage(argv[0]);
      return 0;
    } else {
      std::fprintf(stderr, "autoconfig_probe: unknown argument '%s'\n", argv[i]);
      usage(argv[0]);
      return 2;
    }
  }
  const double t_start = now_seconds();
  const Timing tm = timing_for(opt);

  // CPUs we may use, then pin to the one we are on.
  cpu_set_t original;
  CPU_ZERO(&original);
  int logical_cpus = 1;
  const bool have_affinity = sched_getaffinity(0, sizeof(original), &original) == 0;
  if (have_affinity) logical_cpus = CPU_COUNT(&original);
  const int cpu = sched_getcpu();
  bool pinned = false;
  if (cpu >= 0) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    pinned = sched_setaffinity(0, sizeof(one), &one) == 0;
  }

  const auto& feats = autoconfig::cpu::host_features();

  // ---- core clock (warm up first so the core leaves any idle state). The
  // host's clock drifts with load on other cores (turbo budget), so the clock
  // is measured again right before each FMA measurement and that adjacent
  // value converts it to cycles; "freq_ghz" is the median of all of them.
  using autoconfig::probe::add_chain;
  using autoconfig::probe::kAddsPerIter;
  auto measure_hz = [&tm](double target) {
    const double s = best_seconds_per_iter([](uint64_t n) { add_chain(n); }, target,
                                           tm.clock_repeats);
    return static_cast<double>(kAddsPerIter) / s;
  };
  measure_hz(tm.clock_target / 2);  // warm-up
  std::vector<double> clocks = {measure_hz(tm.clock_target)};

  // ---- FMA latency / throughput, in rounds of (clock, latency, clock,
  // throughput); each round converts its own times to cycles with its own
  // clock readings and the median round is kept. A stall of a shared host
  // (steal time) inflates whichever run it hits: one stalled clock run once
  // gave 1 cycle of FMA latency instead of 4; a median of rounds ignores it.
  std::string fma_json;
  for (const auto& k : autoconfig::probe::available_fma_kernels()) {
    std::vector<double> lat_cycles, thr_per_cycle, rates, round_hz;
    for (int r = 0; r < tm.fma_rounds; ++r) {
      const double hz_lat = measure_hz(tm.clock_target / 4);
      const double lat_s = best_seconds_per_iter(k.latency, tm.fma_target, tm.fma_repeats);
      const double hz_thr = measure_hz(tm.clock_target / 4);
      const double thr_s = best_seconds_per_iter(k.throughput, tm.fma_target, tm.fma_repeats);
      clocks.push_back(hz_lat);
      clocks.push_back(hz_thr);
      round_hz.push_back(0.5 * (hz_lat + hz_thr));
      lat_cycles.push_back(lat_s * hz_lat / static_cast<double>(k.lat_fmas_per_iter));
      const double fmas_per_s = static_cast<double>(k.thr_fmas_per_iter) / thr_s;
      rates.push_back(fmas_per_s);
      thr_per_cycle.push_back(fmas_per_s / hz_thr);
    }
    const double latency_cycles = median(lat_cycles);
    const double per_cycle = median(thr_per_cycle);
    const double gflops = median(rates) * k.lanes * 2.0 / 1e9;
    char buf[512];
    std::snprintf(buf, sizeof(buf),
                  "%s\"%s\": {\"latency_cycles\": %.3f, \"per_cycle\": %.3f, \"gflops\": %.2f, "
                  "\"freq_ghz\": %.4f, \"lanes\": %d, \"accumulators\": %d, \"rounds\": %d%s}",
                  fma_json.empty() ? "" : ", ", k.key.c_str(), latency_cycles, per_cycle, gflops,
                  median(round_hz) / 1e9, k.lanes, k.accumulators, tm.fma_rounds,
                  k.emulated ? ", \"emulated\": true" : "");
    fma_json += buf;
  }
  const double hz = median(clocks);

  // ---- read bandwidth
  std::string bw_json, copy_json;
  std::string bw_kernel;
  if (opt.bandwidth && !tm.sizes.empty()) {
    const auto rk = autoconfig::probe::best_read_kernel();
    bw_kernel = rk.name;
    const size_t max_bytes = *std::max_element(tm.sizes.begin(), tm.sizes.end());
    const size_t align = size_t{2} << 20;  // 2 MiB: lets THP back the buffer
    const size_t alloc_bytes = (max_bytes + align - 1) / align * align;
    float* buf = static_cast<float*>(std::aligned_alloc(align, alloc_bytes));
    if (buf == nullptr) {
      std::fprintf(stderr, "autoconfig_probe: cannot allocate %zu bytes\n", alloc_bytes);
      return 1;
    }
#if defined(MADV_HUGEPAGE)
    madvise(buf, alloc_bytes, MADV_HUGEPAGE);
#endif
    const size_t nfl = alloc_bytes / sizeof(float);
    for (size_t i = 0; i < nfl; ++i) buf[i] = 0.5f;
    for (size_t bytes : tm.sizes) {
      const size_t n = bytes / sizeof(float);
      const double s = best_seconds_per_iter(
          [&](uint64_t reps) { g_sink = g_sink + rk.read(buf, n, reps); }, tm.bw_target,
          tm.bw_repeats);
      char line[128];
      std::snprintf(line, sizeof(line), "%s{\"bytes\": %zu, \"gbps\": %.2f}",
                    bw_json.empty() ? "" : ", ", bytes, static_cast<double>(bytes) / s / 1e9);
      bw_json += line;
    }
    // ---- copy bandwidth: the first half of the buffer into the second.
    const auto ck = autoconfig::probe::best_copy_kernel();
    for (size_t bytes : tm.sizes) {
      const size_t n = bytes / 2 / sizeof(float);
      const double s =
          best_seconds_per_iter([&](uint64_t reps) { ck.copy(buf, buf + n, n, reps); }, tm.copy_target, tm.bw_repeats);
      char line[128];
      std::snprintf(line, sizeof(line), "%s{\"bytes\": %zu, \"gbps\": %.2f}", copy_json.empty() ? "" : ", ", bytes,
                    static_cast<double>(2 * n * sizeof(float)) / s / 1e9);
      copy_json += line;
    }
    std::free(buf);
  }

  if (have_affinity && pinned) sched_setaffinity(0, sizeof(original), &original);

  // ---- FMA throughput of all CPUs at once (widest kernel), best of the repeats
  std::string all_json;
  const auto kernels = autoconfig::probe::available_fma_kernels();
  if (have_affinity && logical_cpus > 1 && !kernels.empty()) {
    const auto& k = kernels.front();
    const double per = best_seconds_per_iter(k.throughput, tm.fma_target, 1);
    const uint64_t iters = std::max<uint64_t>(1, static_cast<uint64_t>(4 * tm.fma_target / std::max(per, 1e-12)));
    double best = 0.0;
    for (int r = 0; r < tm.fma_repeats; ++r) best = std::max(best, all_cpus_fma_rate(k, original, iters));
    char buf[160];
    std::snprintf(buf, sizeof(buf), "{\"key\": \"%s\", \"threads\": %d, \"gflops\": %.2f}", k.key.c_str(),
                  logical_cpus, best * k.lanes * 2.0 / 1e9);
    all_json = buf;
  }

  std::string feat_json;
  for (const auto& n : feats.names()) {
    if (!feat_json.empty()) feat_json += ", ";
    feat_json += json_str(n);
  }

  std::printf(
      "{\"arch\": %s, \"features\": [%s], \"freq_ghz\": %.4f, \"fma\": {%s}, \"fma_all_cpus\": %s, "
      "\"bandwidth\": [%s], \"copy_bandwidth\": [%s], \"bandwidth_kernel\": %s, \"logical_cpus\": %d, "
      "\"cpu\": %d, "
      "\"pinned\": %s, \"quick\": %s, \"seconds\": %.3f}\n",
      json_str(feats.arch).c_str(), feat_json.c_str(), hz / 1e9, fma_json.c_str(),
      all_json.empty() ? "null" : all_json.c_str(), bw_json.c_str(), copy_json.c_str(), json_str(bw_kernel).c_str(),
      logical_cpus, cpu, pinned ? "true" : "false", opt.quick ? "true" : "false", now_seconds() - t_start);
  return 0;
}
