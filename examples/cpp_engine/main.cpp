// A tiny inference "engine" that runs its layers on autoconfig's kernels and
// checks them against plain loops written here (independent of autoconfig).
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <vector>

#include "autoconfig/autoconfig.h"
#include "autoconfig/autoconfig_c.h"

namespace {

struct Rng {  // deterministic LCG, values in [-1, 1)
  uint64_t s = 0x9E3779B97F4A7C15ull;
  float next() {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    return static_cast<float>((s >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
  }
  std::vector<float> vec(size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) x = next() * scale;
    return v;
  }
};

// y[M,N] = act(x[M,K] @ W + b (+ r)); W is [K,N] or, transposed, [N,K].
std::vector<double> reference(const std::vector<float>& x, const std::vector<float>& w, const std::vector<float>& b,
                              const std::vector<float>* r, int M, int N, int K, bool w_transposed, bool relu) {
  std::vector<double> y(static_cast<size_t>(M) * N);
  for (int i = 0; i < M; ++i)
    for (int j = 0; j < N; ++j) {
      double acc = b.empty() ? 0.0 : b[j];
      for (int k = 0; k < K; ++k)
        acc += static_cast<double>(x[i * K + k]) * (w_transposed ? w[j * K + k] : w[k * N + j]);
      if (r) acc += (*r)[i * N + j];
      y[i * N + j] = relu && acc < 0 ? 0.0 : acc;
    }
  return y;
}

bool check(const char* layer, const std::vector<float>& got, const std::vector<double>& want, int K) {
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]) / (1e-3 + std::fabs(want[i]));
    if (err > worst) worst = err;
  }
  const bool ok = worst < 1e-4 * std::sqrt(static_cast<double>(K));
  std::printf("%-14s max rel err %.2e  %s\n", layer, worst, ok ? "ok" : "MISMATCH");
  return ok;
}

bool run(const char* layer, const autoconfig::GemmArgs& g) {
  const auto choice = autoconfig::gemm_choice(g);
  std::printf("%-14s kernel %s (%s, %d thread)\n", layer, choice.kernel.c_str(),
              choice.specialized ? "specialized" : "generic", choice.threads);
  const autoconfig::Status s = autoconfig::gemm(g);
  if (!s.ok()) std::fprintf(stderr, "%s: %s\n", layer, s.message.c_str());
  return s.ok();
}

}  // namespace

int main() {
  char err[512];
  if (ac_check_isa(err, sizeof err) != 0) {  // before any kernel runs
    std::fprintf(stderr, "%s\n", err);
    return 2;
  }
  std::printf("autoconfig kernels for isa %s\n", autoconfig::build_info().isa.c_str());
  const int B = 4, D = 256, H = 512, C = 10;
  Rng rng;
  const auto x = rng.vec(B * D, 1.0f);
  const auto w1 = rng.vec(D * H, 0.06f), b1 = rng.vec(H, 0.1f);
  const auto w2 = rng.vec(H * D, 0.04f), b2 = rng.vec(D, 0.1f);
  const auto wc = rng.vec(C * D, 0.06f);   // classifier weights stored [C, D]: used transposed

  std::vector<float> h(B * H), y(B * D), logits(B * C);
  bool ok = true;

  autoconfig::GemmArgs fc1;  // h = relu(x @ w1 + b1)
  fc1.M = B; fc1.N = H; fc1.K = D;
  fc1.A = x.data(); fc1.rs_a = D; fc1.B = w1.data(); fc1.rs_b = H;
  fc1.C = h.data(); fc1.ldc = H; fc1.bias_col = b1.data(); fc1.act = autoconfig::Activation::Relu;
  fc1.threads = 1;
  ok &= run("fc1+relu", fc1);

  autoconfig::GemmArgs fc2;  // y = h @ w2 + b2 + x   (residual)
  fc2.M = B; fc2.N = D; fc2.K = H;
  fc2.A = h.data(); fc2.rs_a = H; fc2.B = w2.data(); fc2.rs_b = D;
  fc2.C = y.data(); fc2.ldc = D; fc2.bias_col = b2.data();
  fc2.c_in = x.data(); fc2.ld_cin = D; fc2.beta = 1.0f;
  fc2.threads = 1;
  ok &= run("fc2+residual", fc2);

  // logits = y @ wc^T through the C API: a transpose is a stride swap.
  ac_gemm_args cls;
  ac_gemm_args_init(&cls);
  cls.M = B; cls.N = C; cls.K = D;
  cls.A = y.data(); cls.rs_a = D;
  cls.B = wc.data(); cls.rs_b = 1; cls.cs_b = D;
  cls.C = logits.data(); cls.ldc = C;
  cls.threads = 1;
  if (ac_gemm(&cls, err, sizeof err) != 0) {
    std::fprintf(stderr, "classifier: %s\n", err);
    ok = false;
  }

  ok &= check("fc1+relu", h, reference(x, w1, b1, nullptr, B, H, D, false, true), D);
  // Check each layer against its own (autoconfig-computed) input, so errors do not compound.
  ok &= check("fc2+residual", y, reference(h, w2, b2, &x, B, D, H, false, false), H);
  ok &= check("classifier", logits, reference(y, wc, {}, nullptr, B, C, D, true, false), D);

  // A bad call returns a status, never crashes.
  autoconfig::GemmArgs bad = fc1;
  bad.ldc = 3;
  const auto s = autoconfig::gemm(bad);
  std::printf("bad ldc -> %s\n", s.ok() ? "accepted (WRONG)" : s.message.c_str());
  ok &= !s.ok();

  std::printf("%s\n", ok ? "tiny engine: all layers match the reference" : "tiny engine: FAILED");
  return ok ? 0 : 1;
}
