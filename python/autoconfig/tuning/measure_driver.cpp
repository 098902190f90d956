// The timing driver of autoconfig.tuning.measure: runs a batch of candidate
// kernels, each checked against a double-precision reference before it is
// timed. Compiled with the batch's generated sources (tune_entries.cpp: the
// GEMM candidates' entry points; the registry of the batch) and the runtime.
//
// Usage: measure_driver JOBS_FILE REPEATS
// One job per line:
//   gemm ENTRY M N K THREADS TOL
//   conv C H W K R S SH SW PT PL PB PR DH DW G THREADS ALG TILE INPUT ORDER CBLOCKS TOL
// (ALG: index in Conv2dOptions::algorithms; TILE/INPUT/ORDER/CBLOCKS: -1 or
// the Conv2dOptions::direct_* value.) One line out per job, in order:
//   ok I SECONDS   |   wrong I RELATIVE_ERROR   |   error I MESSAGE
// "start I" goes to stderr before each job, so the caller can name the
// candidate that crashed the process.
#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"

namespace autoconfig {
namespace detail {
using GemmEntryFn = void (*)(const GemmArgs& g, int threads);
extern const GemmEntryFn kTuneEntries[];  // tune_entries.cpp
extern const int kTuneEntryCount;
}  // namespace detail
}  // namespace autoconfig

namespace {

using Clock = std::chrono::steady_clock;
// A timed sample repeats the call until it lasts at least this long, so the
// clock's resolution and the call overhead stay small beside it.
constexpr double kMinSampleSeconds = 2e-3;

std::vector<float> random_values(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 6364136223846793005ull + 1442695040888963407ull;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>(static_cast<int64_t>(s >> 40) - (1 << 23)) / static_cast<float>(1 << 23);
  }
  return v;
}

// max |y - ref| / max |ref|; NaN anywhere counts as wrong.
double relative_error(const std::vector<float>& y, const std::vector<double>& ref) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double d = std::fabs(static_cast<double>(y[i]) - ref[i]);
    if (!(d == d)) return INFINITY;
    num = std::max(num, d);
    den = std::max(den, std::fabs(ref[i]));
  }
  return den > 0 ? num / den : num;
}

// Best (over `repeats` samples) of the mean seconds per call.
template <class F>
double time_best(F&& call, int repeats) {
  auto t0 = Clock::now();
  call();
  const double once = std::max(1e-9, std::chrono::duration<double>(Clock::now() - t0).count());
  const int64_t inner = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(kMinSampleSeconds / once)));
  double best = INFINITY;
  for (int r = 0; r < repeats; ++r) {
    t0 = Clock::now();
    for (int64_t i = 0; i < inner; ++i) call();
    best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count() / static_cast<double>(inner));
  }
  return best;
}

void pin_to_first_cpus(int n) {
  cpu_set_t allowed, want;
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return;
  CPU_ZERO(&want);
  int taken = 0;
  for (int c = 0; c < CPU_SETSIZE && taken < n; ++c)
    if (CPU_ISSET(c, &allowed)) {
      CPU_SET(c, &want);
      ++taken;
    }
  sched_setaffinity(0, sizeof(want), &want);
}

struct Reference {
  std::string key;
  std::vector<float> a, b;
  std::vector<double> out;
};

void gemm_reference(int64_t M, int64_t N, int64_t K, Reference* r) {
  r->a = random_values(static_cast<size_t>(M * K), 1);
  r->b = random_values(static_cast<size_t>(K * N), 2);
  r->out.assign(static_cast<size_t>(M * N), 0.0);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t k = 0; k < K; ++k) {
      const double a = r->a[i * K + k];
      for (int64_t j = 0; j < N; ++j) r->out[i * N + j] += a * r->b[k * N + j];
    }
}

void conv_reference(const autoconfig::Conv2dLayer& L, Reference* r) {
  const int64_t Ho = autoconfig::conv2d_output_h(L), Wo = autoconfig::conv2d_output_w(L);
  const int64_t Cg = L.C / L.groups, Kg = L.K / L.groups;
  r->a = random_values(static_cast<size_t>(L.C * L.H * L.W), 3);
  r->b = random_values(static_cast<size_t>(L.K * Cg * L.R * L.S), 4);
  r->out.assign(static_cast<size_t>(L.K * Ho * Wo), 0.0);
  for (int64_t k = 0; k < L.K; ++k) {
    const int64_t g = k / Kg;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t u = 0; u < L.R; ++u)
        for (int64_t v = 0; v < L.S; ++v) {
          const double w = r->b[((k * Cg + c) * L.R + u) * L.S + v];
          const float* x = r->a.data() + (g * Cg + c) * L.H * L.W;
          for (int64_t oh = 0; oh < Ho; ++oh) {
            const int64_t ih = oh * L.stride_h - L.pad_top + u * L.dilation_h;
            if (ih < 0 || ih >= L.H) continue;
            double* o = r->out.data() + (k * Ho + oh) * Wo;
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const int64_t iw = ow * L.stride_w - L.pad_left + v * L.dilation_w;
              if (iw >= 0 && iw < L.W) o[ow] += w * x[ih * L.W + iw];
            }
          }
        }
  }
}

std::string run_gemm(std::istringstream& in, int repeats, Reference* ref) {
  int entry, threads;
  int64_t M, N, K;
  double tol;
  if (!(in >> entry >> M >> N >> K >> threads >> tol)) return "error bad gemm job line";
  if (entry < 0 || entry >= autoconfig::detail::kTuneEntryCount) return "error entry index out of range";
  const std::string key = "gemm " + std::to_string(M) + " " + std::to_string(N) + " " + std::to_string(K);
  if (ref->key != key) {
    gemm_reference(M, N, K, ref);
    ref->key = key;
  }
  std::vector<float> c(static_cast<size_t>(M * N), NAN);
  autoconfig::GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = ref->a.data();
  g.rs_a = K;
  g.B = ref->b.data();
  g.rs_b = N;
  g.C = c.data();
  g.ldc = N;
  g.threads = threads;
  const autoconfig::detail::GemmEntryFn fn = autoconfig::detail::kTuneEntries[entry];
  fn(g, threads);
  const double err = relative_error(c, ref->out);
  char buf[64];
  if (!(err <= tol)) {
    std::snprintf(buf, sizeof(buf), "wrong %.3g", err);
    return buf;
  }
  std::snprintf(buf, sizeof(buf), "ok %.9g", time_best([&] { fn(g, threads); }, repeats));
  return buf;
}

std::string run_conv(std::istringstream& in, int repeats, Reference* ref) {
  autoconfig::Conv2dArgs a;
  int alg;
  double tol;
  if (!(in >> a.C >> a.H >> a.W >> a.K >> a.R >> a.S >> a.stride_h >> a.stride_w >> a.pad_top >> a.pad_left >>
        a.pad_bottom >> a.pad_right >> a.dilation_h >> a.dilation_w >> a.groups >> a.threads >> alg >> a.direct_tile >>
        a.direct_input >> a.direct_order >> a.direct_cblocks >> tol))
    return "error bad conv job line";
  a.N = 1;
  a.algorithms = 1u << alg;
  std::ostringstream key;
  key << "conv " << a.C << " " << a.H << " " << a.W << " " << a.K << " " << a.R << " " << a.S << " " << a.stride_h
      << " " << a.stride_w << " " << a.pad_top << " " << a.pad_left << " " << a.pad_bottom << " " << a.pad_right << " "
      << a.dilation_h << " " << a.dilation_w << " " << a.groups;
  if (ref->key != key.str()) {
    conv_reference(a, ref);
    ref->key = key.str();
  }
  a.w = ref->b.data();
  autoconfig::PreparedConv2d layer;
  autoconfig::Status st = layer.prepare(a);
  if (!st.ok()) return "error " + st.message;
  std::vector<float> y(ref->out.size(), NAN);
  st = layer.run(ref->a.data(), 1, y.data(), nullptr, a.threads);
  if (!st.ok()) return "error " + st.message;
  const double err = relative_error(y, ref->out);
  char buf[64];
  if (!(err <= tol)) {
    std::snprintf(buf, sizeof(buf), "wrong %.3g", err);
    return buf;
  }
  const double s = time_best([&] { (void)layer.run(ref->a.data(), 1, y.data(), nullptr, a.threads); }, repeats);
  std::snprintf(buf, sizeof(buf), "ok %.9g", s);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s JOBS_FILE REPEATS\n", argv[0]);
    return 2;
  }
  std::ifstream jobs(argv[1]);
  const int repeats = std::max(1, std::atoi(argv[2]));
  std::vector<std::string> lines;
  int most_threads = 1;
  for (std::string line; std::getline(jobs, line);) {
    if (line.empty()) continue;
    lines.push_back(line);
    std::istringstream in(line);
    std::string op;
    in >> op;
    int64_t v = 0;
    const int before = op == "gemm" ? 4 : 15;  // fields before THREADS
    for (int i = 0; i < before && (in >> v); ++i) {
    }
    int t = 1;
    if (in >> t) most_threads = std::max(most_threads, t);
  }
  // The process (and so every pool thread it starts) stays on the first CPUs it may use.
  pin_to_first_cpus(most_threads);
  if (auto st = autoconfig::check_isa(); !st.ok()) {
    std::fprintf(stderr, "%s\n", st.message.c_str());
    return 3;
  }
  Reference ref;
  for (size_t i = 0; i < lines.size(); ++i) {
    std::fprintf(stderr, "start %zu\n", i);
    std::fflush(stderr);
    std::istringstream in(lines[i]);
    std::string op;
    in >> op;
    std::string out = op == "gemm"   ? run_gemm(in, repeats, &ref)
                      : op == "conv" ? run_conv(in, repeats, &ref)
                                     : "error unknown job " + op;
    const size_t sp = out.find(' ');
    std::printf("%s %zu %s\n", out.substr(0, sp).c_str(), i, out.substr(sp + 1).c_str());
    std::fflush(stdout);
  }
  return 0;
}
