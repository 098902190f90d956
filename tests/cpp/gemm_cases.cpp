// GEMM cases: every epilogue of GemmArgs (alpha, beta with a separate or
// in-place C_in, bias per column and per row, each activation) on edge shapes
// (1, primes, K = 1, tall and skinny, past the generic plan's kc, mc, nc),
// with and without transposes, on 1 and 2 threads; the spec's shapes must run
// on their specialized entries, every other shape on the generic one.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "reference.h"

namespace kcheck {
namespace {

using autoconfig::Activation;

struct Shape {
  int64_t M, N, K;
};

// Edge shapes; the blocking ones pass the generic plans of the Arm targets
// (kc 512 / 256, mc 252, nc 256 / 512 for armv8-neon / armv8-sve).
const Shape kShapes[] = {
    {1, 1, 1},    {1, 13, 7},    {5, 1, 9},     {2, 3, 1},    {17, 31, 1},   {7, 11, 13},
    {37, 45, 19}, {4, 96, 64},   {61, 67, 71},  {301, 5, 40}, {3, 283, 40},  {1, 517, 33},
    {260, 9, 20}, {9, 530, 20},  {20, 40, 530}, {131, 140, 400},
};

// specs/kernel_check.yaml: these shapes and activations have specialized entries.
struct Specialized {
  Shape shape;
  std::vector<Activation> acts;
};
const Specialized kSpecialized[] = {
    {{37, 45, 19}, {Activation::None, Activation::Relu, Activation::Relu6, Activation::GeluTanh, Activation::GeluErf}},
    {{4, 96, 64}, {Activation::None, Activation::GeluErf}},
    {{131, 140, 400}, {Activation::None, Activation::Relu6}},
};

enum class CIn { None, Separate, InPlace };

struct Epilogue {
  const char* name;
  float alpha, beta;
  CIn cin;
  bool bias_col, bias_row;
  Activation act;
};

// Every activation at least once, every operand of the epilogue at least twice.
const Epilogue kEpilogues[] = {
    {"plain", 1.0f, 0.0f, CIn::None, false, false, Activation::None},
    {"bias_col+relu", 1.0f, 0.0f, CIn::None, true, false, Activation::Relu},
    {"bias_row+relu6", 1.0f, 0.0f, CIn::None, false, true, Activation::Relu6},
    {"c_in+bias_col+gelu_tanh", 1.0f, 1.0f, CIn::Separate, true, false, Activation::GeluTanh},
    {"alpha=0.5,beta=-0.75,c_in+bias_col+bias_row+gelu_erf", 0.5f, -0.75f, CIn::Separate, true, true,
     Activation::GeluErf},
    {"in-place residual+bias_row+relu", 1.0f, 1.0f, CIn::InPlace, false, true, Activation::Relu},
};

// Leading dimensions are this much wider than the matrix: strides are honoured,
// and C's extra columns hold kSentinel, which no kernel may overwrite.
constexpr int64_t kPad = 3;
constexpr float kSentinel = -7777.0f;

bool is_specialized(const Shape& s, Activation act) {
  for (const auto& e : kSpecialized)
    if (e.shape.M == s.M && e.shape.N == s.N && e.shape.K == s.K &&
        std::find(e.acts.begin(), e.acts.end(), act) != e.acts.end())
      return true;
  return false;
}

// Bound of the float32 result's error: a K-term dot product and up to four
// epilogue additions, each rounding at most eps/2 of the magnitudes so far
// (x2 margin, x2 for the activation's slope, <= 1.13 for GELU), plus the
// vectorized GELU's own approximation error (a few eps relative).
double tolerance(int64_t K, double mag, double pre, Activation act) {
  double tol = 2.0 * (static_cast<double>(K) + 4.0) * kEps * mag;
  if (act == Activation::GeluTanh || act == Activation::GeluErf) tol += 16.0 * kEps * std::max(1.0, std::fabs(pre));
  return tol;
}

std::string describe(const Shape& s, const Epilogue& e, bool ta, bool tb, int threads) {
  char buf[200];
  std::snprintf(buf, sizeof buf, "M=%lld N=%lld K=%lld %s%s%s threads=%d", static_cast<long long>(s.M),
                static_cast<long long>(s.N), static_cast<long long>(s.K), e.name, ta ? " trans_a" : "",
                tb ? " trans_b" : "", threads);
  return buf;
}

// prepared: B goes through PreparedGemmB, packed for the kernel of another
// M (prepare_m: a prepared B serves any M, as the executor's row blocks and
// sequence buckets need) and read instead of b.
void run_case(Tally& tally, Rng& rng, const Shape& s, const Epilogue& e, bool ta, bool tb, int threads,
              bool prepared = false, int64_t prepare_m = 0) {
  const int64_t M = s.M, N = s.N, K = s.K;
  // op(A) is M x K: stored M x (K+pad), or K x (M+pad) when transposed; B likewise.
  const int64_t lda = (ta ? M : K) + kPad, ldb = (tb ? K : N) + kPad, ldc = N + kPad;
  const std::vector<float> a = rng.vec(static_cast<size_t>((ta ? K : M) * lda));
  const std::vector<float> b = rng.vec(static_cast<size_t>((tb ? N : K) * ldb));
  const std::vector<float> bias_col = rng.vec(static_cast<size_t>(N)), bias_row = rng.vec(static_cast<size_t>(M));
  std::vector<float> c(static_cast<size_t>(M * ldc), kSentinel);
  std::vector<float> c_in;
  autoconfig::GemmArgs g;
  g.M = M; g.N = N; g.K = K;
  g.A = a.data(); g.rs_a = ta ? 1 : lda; g.cs_a = ta ? lda : 1;
  g.B = b.data(); g.rs_b = tb ? 1 : ldb; g.cs_b = tb ? ldb : 1;
  g.C = c.data(); g.ldc = ldc;
  g.alpha = e.alpha;
  g.beta = e.beta;
  if (e.cin == CIn::Separate) {
    c_in = rng.vec(static_cast<size_t>(M * (N + 1)));
    g.c_in = c_in.data();
    g.ld_cin = N + 1;
  } else if (e.cin == CIn::InPlace) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) c[i * ldc + j] = rng.next();
    g.c_in = c.data();
    g.ld_cin = ldc;
  }
  g.bias_col = e.bias_col ? bias_col.data() : nullptr;
  g.bias_row = e.bias_row ? bias_row.data() : nullptr;
  g.act = e.act;
  g.threads = threads;

  tally.begin("gemm", describe(s, e, ta, tb, threads) +
                          (prepared ? " prepared_b (for M=" + std::to_string(prepare_m) + ")" : ""));
  const Reference ref = gemm_reference(g);   // before the call: C may be its own C_in
  autoconfig::PreparedGemmB pb;
  if (prepared) {
    autoconfig::GemmArgs p = g;
    p.M = prepare_m;
    tally.ok(pb.prepare(p));
    g.prepared_b = &pb;
    g.B = nullptr;  // the prepared copy is all the call reads
    const autoconfig::GemmChoice choice = autoconfig::gemm_choice(g);
    tally.expect(choice.kernel == pb.kernel(),
                 "gemm_choice names " + choice.kernel + ", the prepared B is for " + pb.kernel());
  } else {
    const bool want_specialized = is_specialized(s, e.act);
    const autoconfig::GemmChoice choice = autoconfig::gemm_choice(g);
    tally.expect(choice.specialized == want_specialized,
                 std::string("ran the ") + (choice.specialized ? "specialized" : "generic") + " kernel " +
                     choice.kernel + ", expected a " + (want_specialized ? "specialized" : "generic") + " one");
  }
  tally.ok(autoconfig::gemm(g));
  std::vector<float> got(static_cast<size_t>(M * N));
  std::vector<double> tol(got.size());
  bool pad_kept = true;
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      const size_t o = static_cast<size_t>(i * N + j);
      got[o] = c[i * ldc + j];
      tol[o] = tolerance(K, ref.mag[o], ref.pre[o], e.act);
    }
    for (int64_t j = N; j < ldc; ++j) pad_kept &= c[i * ldc + j] == kSentinel;
  }
  tally.near(got.data(), ref.value.data(), tol.data(), got.size());
  tally.expect(pad_kept, "wrote into C's columns past N (ldc padding)");
  tally.end();
}

// K = 0: the product is empty; only beta * C_in + biases and the activation remain.
void run_empty_k(Tally& tally, Rng& rng) {
  const int64_t M = 3, N = 5;
  std::vector<float> c(M * N), c_in = rng.vec(M * N), bias = rng.vec(N);
  autoconfig::GemmArgs g;
  g.M = M; g.N = N; g.K = 0;
  g.C = c.data(); g.ldc = N;
  g.c_in = c_in.data(); g.ld_cin = N; g.beta = 2.0f;
  g.bias_col = bias.data();
  g.act = Activation::Relu;
  tally.begin("gemm", "K=0: epilogue only");
  const Reference ref = gemm_reference(g);
  tally.ok(autoconfig::gemm(g));
  std::vector<double> tol(c.size());
  for (size_t i = 0; i < tol.size(); ++i) tol[i] = tolerance(0, ref.mag[i], ref.pre[i], g.act);
  tally.near(c.data(), ref.value.data(), tol.data(), c.size());
  tally.end();
}

// A prepared B used with another N, K or activation, or never prepared: a
// Status naming what differs, never a product with the wrong layout.
void run_prepared_errors(Tally& tally, Rng& rng) {
  const int64_t M = 6, N = 10, K = 7;
  const std::vector<float> a = rng.vec(M * K), b = rng.vec(K * N);
  std::vector<float> c(M * N);
  autoconfig::GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.A = a.data();
  g.rs_a = K;
  g.B = b.data();
  g.rs_b = N;
  g.C = c.data();
  g.ldc = N;
  autoconfig::PreparedGemmB pb;
  struct Bad {
    const char* what;
    int64_t n, k;
    Activation act;
    const char* expect;
  };
  tally.begin("gemm", "prepared_b: not prepared, other N, other K, other activation");
  g.prepared_b = &pb;
  autoconfig::Status st = autoconfig::gemm(g);
  tally.expect(!st.ok() && st.message.find("not prepared") != std::string::npos, "unprepared: " + st.message);
  tally.ok(pb.prepare(g));
  const Bad bad[] = {{"N", N - 1, K, Activation::None, "N=10"},
                     {"K", N, K - 1, Activation::None, "K=7"},
                     {"act", N, K, Activation::Relu, "activation none"}};
  for (const Bad& x : bad) {
    autoconfig::GemmArgs h = g;
    h.N = x.n;
    h.K = x.k;
    h.act = x.act;
    st = autoconfig::gemm(h);
    tally.expect(!st.ok() && st.message.find(x.expect) != std::string::npos,
                 std::string("other ") + x.what + ": '" + st.message + "' should name " + x.expect);
  }
  autoconfig::GemmArgs z = g;
  z.K = 0;
  st = pb.prepare(z);
  tally.expect(!st.ok() && st.message.find("K=0") != std::string::npos, "prepare with K=0: " + st.message);
  tally.end();
}

}  // namespace

void run_gemm_cases(Tally& tally) {
  Rng rng(1);
  for (const Shape& s : kShapes)
    for (const Epilogue& e : kEpilogues)
      for (int t = 0; t < 4; ++t)
        for (int threads : {1, 2}) run_case(tally, rng, s, e, t & 1, t & 2, threads);
  // B prepared once: every shape with two of the epilogues (each epilogue on
  // a third of the shapes; the emulated Arm checks run these too), B plain
  // and transposed, packed for the call's own M (1 thread) and for another M
  // (2 threads: another kernel, the same layout rule).
  constexpr int kEpilogueCount = sizeof kEpilogues / sizeof kEpilogues[0];
  int si = 0;
  for (const Shape& s : kShapes) {
    for (int ei : {si % kEpilogueCount, (si + kEpilogueCount / 2) % kEpilogueCount})
      for (int tb = 0; tb < 2; ++tb)
        for (int threads : {1, 2})
          run_case(tally, rng, s, kEpilogues[ei], false, tb, threads, true, threads == 1 ? s.M : s.M + 1);
    ++si;
  }
  run_prepared_errors(tally, rng);
  run_empty_k(tally, rng);
}

}  // namespace kcheck
