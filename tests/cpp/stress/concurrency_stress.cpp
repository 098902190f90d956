// concurrency_stress: caller threads share autoconfig's thread pool. Each
// caller runs randomly chosen calls (GEMM of several shapes, one-off conv2d
// of several algorithms, a prepared conv layer) with a per-call thread count
// drawn from {1, 2, 3, 0 = the plan's}, and compares every result bit for bit
// with the result of the same call and thread count made by one caller alone
// before the stress starts (a call's partition of work depends only on its
// arguments and thread count, so its result is deterministic).
// Prints "N passed, N failed" and exits 1 on any mismatch or error. Run under
// ASan/UBSan and TSan by tests/runtime/test_concurrency_cpp.py.
//   concurrency_stress [--seconds S] [--callers C] [--only SUBSTRING]
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/runtime.h"

namespace {

constexpr int kThreadCounts[] = {1, 2, 3, 0};
constexpr int kNumThreadCounts = 4;

std::vector<float> random_vec(size_t n, uint64_t seed) {
  std::vector<float> v(n);
  uint64_t s = seed * 2654435761u + 1;
  for (auto& x : v) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    x = static_cast<float>((s >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
  }
  return v;
}

// One call the callers repeat: its inputs are shared (read-only), its output
// is the caller's own buffer.
struct Case {
  std::string name;
  size_t out_size = 0;
  virtual ~Case() = default;
  virtual autoconfig::Status run(float* out, int threads) const = 0;
  std::vector<float> reference[kNumThreadCounts];
};

struct GemmCase : Case {
  int64_t M, N, K;
  autoconfig::Activation act;
  std::vector<float> a, b, bias, residual;
  GemmCase(int64_t m, int64_t n, int64_t k, autoconfig::Activation ac) : M(m), N(n), K(k), act(ac) {
    name = "gemm " + std::to_string(m) + "x" + std::to_string(n) + "x" + std::to_string(k);
    out_size = static_cast<size_t>(M * N);
    a = random_vec(M * K, 1);
    b = random_vec(K * N, 2);
    bias = random_vec(N, 3);
    residual = random_vec(M * N, 4);
  }
  autoconfig::Status run(float* out, int threads) const override {
    autoconfig::GemmArgs g;
    g.M = M; g.N = N; g.K = K;
    g.A = a.data(); g.rs_a = K; g.cs_a = 1;
    g.B = b.data(); g.rs_b = N; g.cs_b = 1;
    g.C = out; g.ldc = N;
    g.c_in = residual.data(); g.ld_cin = N; g.beta = 1.0f;
    g.bias_col = bias.data();
    g.act = act;
    g.threads = threads;
    return autoconfig::gemm(g);
  }
};

autoconfig::Conv2dArgs conv_layer(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                  int64_t stride, int64_t pad, int64_t groups) {
  autoconfig::Conv2dArgs c;
  c.N = N; c.C = C; c.H = H; c.W = W; c.K = K; c.R = R; c.S = S;
  c.stride_h = c.stride_w = stride;
  c.pad_top = c.pad_left = c.pad_bottom = c.pad_right = pad;
  c.groups = groups;
  return c;
}

struct ConvCase : Case {
  autoconfig::Conv2dArgs layer;
  std::vector<float> x, w, bias;
  bool prepared = false;
  autoconfig::PreparedConv2d prep;
  ConvCase(const std::string& what, autoconfig::Conv2dArgs l, unsigned algorithms, bool prepare_once)
      : layer(l), prepared(prepare_once) {
    layer.algorithms = algorithms;
    x = random_vec(layer.N * layer.C * layer.H * layer.W, 5);
    w = random_vec(layer.K * (layer.C / layer.groups) * layer.R * layer.S, 6);
    bias = random_vec(layer.K, 7);
    layer.x = x.data(); layer.w = w.data(); layer.bias = bias.data();
    layer.act = autoconfig::Activation::Relu;
    out_size = static_cast<size_t>(layer.N * layer.K * autoconfig::conv2d_output_h(layer) *
                                   autoconfig::conv2d_output_w(layer));
    name = (prepared ? "prepared " : "conv2d ") + what + " (" + autoconfig::conv2d_algorithm(layer) + ")";
    if (prepared) {
      autoconfig::Conv2dArgs p = layer;
      p.threads = 2;   // the plan is made for 2 threads; run() may use others
      const autoconfig::Status s = prep.prepare(p);
      if (!s.ok()) {
        std::fprintf(stderr, "%s: prepare failed: %s\n", name.c_str(), s.message.c_str());
        std::exit(1);
      }
    }
  }
  autoconfig::Status run(float* out, int threads) const override {
    if (prepared) return prep.run(x.data(), layer.N, out, nullptr, threads);
    autoconfig::Conv2dArgs c = layer;
    c.y = out;
    c.threads = threads;
    return autoconfig::conv2d(c);
  }
};

// The pool's contract itself: every tid of a call runs exactly once, and
// after parallel_run returns no thread touches the call's (stack) job. The job
// counts runs per tid; the caller checks the counts, then scribbles over the
// job so a late worker's write shows up in the next call's counts.
struct PoolJob {
  std::atomic<int> runs[8];
  std::atomic<int> spin{0};
};

void pool_task(void* ctx, int tid, int nthreads) {
  PoolJob& j = *static_cast<PoolJob*>(ctx);
  for (int i = 0; i < 200 * (tid + 1); ++i) j.spin.fetch_add(1, std::memory_order_relaxed);   // uneven work
  j.runs[tid].fetch_add(1, std::memory_order_relaxed);
  (void)nthreads;
}

struct PoolCase : Case {
  PoolCase() { name = "parallel_run 1..4 threads"; out_size = 8; }
  autoconfig::Status run(float* out, int threads) const override {
    const int n = threads > 0 ? threads + 1 : 4;   // 2, 3, 4, 4
    PoolJob job;
    for (auto& r : job.runs) r.store(0);
    autoconfig::detail::parallel_run(n, &pool_task, &job);
    for (int t = 0; t < 8; ++t) {
      const int want = t < n ? 1 : 0;
      out[t] = static_cast<float>(want);
      if (job.runs[t].load() != want)
        return autoconfig::Status::Error("tid " + std::to_string(t) + " of " + std::to_string(n) + " ran " +
                                         std::to_string(job.runs[t].load()) + " times");
    }
    return autoconfig::Status::Ok();
  }
};

unsigned bit(int i) { return 1u << i; }   // Conv2dArgs::algorithms: direct, gemm-1x1, im2col-gemm, wino-f2, wino-f4, depthwise

std::vector<std::unique_ptr<Case>> make_cases() {
  std::vector<std::unique_ptr<Case>> cases;
  cases.emplace_back(new PoolCase());
  cases.emplace_back(new GemmCase(37, 45, 19, autoconfig::Activation::Relu));      // specialized, tile edges
  cases.emplace_back(new GemmCase(131, 140, 400, autoconfig::Activation::None));   // several blocks: barriers
  cases.emplace_back(new GemmCase(200, 67, 129, autoconfig::Activation::GeluErf)); // generic kernel
  cases.emplace_back(new GemmCase(3, 96, 64, autoconfig::Activation::None));       // few rows
  // The reproducer: strides (2, 1), pads (1, 2, 0, 1), dilations (1, 2), 2 groups.
  autoconfig::Conv2dArgs odd = conv_layer(2, 16, 17, 19, 24, 3, 5, 1, 0, 2);
  odd.stride_h = 2; odd.pad_top = 1; odd.pad_left = 2; odd.pad_bottom = 0; odd.pad_right = 1; odd.dilation_w = 2;
  cases.emplace_back(new ConvCase("2x16x17x19 k24 3x5 g2", odd, ~0u, false));
  const autoconfig::Conv2dArgs c3 = conv_layer(1, 16, 14, 14, 32, 3, 3, 1, 1, 1);
  cases.emplace_back(new ConvCase("16x14x14 k32 3x3", c3, bit(0), false));
  cases.emplace_back(new ConvCase("16x14x14 k32 3x3", c3, bit(3), false));
  cases.emplace_back(new ConvCase("16x14x14 k32 3x3", c3, bit(4), false));
  cases.emplace_back(new ConvCase("16x14x14 k32 3x3", c3, bit(2), false));
  cases.emplace_back(new ConvCase("32x9x9 k16 1x1", conv_layer(1, 32, 9, 9, 16, 1, 1, 1, 0, 1), bit(1), false));
  cases.emplace_back(new ConvCase("24x13x13 dw 3x3", conv_layer(1, 24, 13, 13, 24, 3, 3, 1, 1, 24), bit(5), false));
  cases.emplace_back(new ConvCase("16x14x14 k32 3x3", c3, ~0u, true));
  cases.emplace_back(new ConvCase("24x13x13 dw 3x3", conv_layer(1, 24, 13, 13, 24, 3, 3, 2, 1, 24), ~0u, true));
  return cases;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = 5.0;
  int callers = 4;
  std::string only;   // keep the cases whose name contains this
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--seconds")) seconds = std::atof(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--callers")) callers = std::atoi(argv[i + 1]);
    else if (!std::strcmp(argv[i], "--only")) only = argv[i + 1];
    else { std::fprintf(stderr, "usage: %s [--seconds S] [--callers C] [--only SUBSTRING]\n", argv[0]); return 2; }
  }
  const autoconfig::Status isa = autoconfig::check_isa();
  if (!isa.ok()) { std::fprintf(stderr, "%s\n", isa.message.c_str()); return 2; }

  std::vector<std::unique_ptr<Case>> cases = make_cases();
  for (size_t i = cases.size(); i-- > 0;)
    if (cases[i]->name.find(only) == std::string::npos) cases.erase(cases.begin() + static_cast<long>(i));
  if (cases.empty()) { std::fprintf(stderr, "no case matches --only '%s'\n", only.c_str()); return 2; }
  for (auto& c : cases) {
    for (int t = 0; t < kNumThreadCounts; ++t) {
      c->reference[t].assign(c->out_size, 0.0f);
      const autoconfig::Status s = c->run(c->reference[t].data(), kThreadCounts[t]);
      if (!s.ok()) { std::fprintf(stderr, "%s: %s\n", c->name.c_str(), s.message.c_str()); return 1; }
    }
  }

  std::atomic<long> passed{0}, failed{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::vector<std::thread> threads;
  for (int id = 0; id < callers; ++id) {
    threads.emplace_back([&, id] {
      uint64_t s = 0x9E3779B97F4A7C15ull * (id + 1);
      std::vector<float> out;
      while (std::chrono::steady_clock::now() < deadline) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        const Case& c = *cases[(s >> 33) % cases.size()];
        const int t = static_cast<int>((s >> 20) % kNumThreadCounts);
        out.assign(c.out_size, -12345.0f);
        const autoconfig::Status st = c.run(out.data(), kThreadCounts[t]);
        if (!st.ok() || std::memcmp(out.data(), c.reference[t].data(), c.out_size * sizeof(float)) != 0) {
          if (failed.fetch_add(1) < 10)
            std::fprintf(stderr, "caller %d: %s, threads %d: %s\n", id, c.name.c_str(), kThreadCounts[t],
                         st.ok() ? "result differs from the single-caller result" : st.message.c_str());
        } else {
          passed.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  std::printf("cases:");
  for (auto& c : cases) std::printf(" [%s]", c->name.c_str());
  std::printf("\n%d callers, %.1f s\n", callers, seconds);
  std::printf("%ld passed, %ld failed\n", passed.load(), failed.load());
  return failed.load() == 0 ? 0 : 1;
}
