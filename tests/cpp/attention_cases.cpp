// Attention and GEMM + LayerNorm cases: the fused kernel (several key blocks,
// so the online softmax rescales), the unfused sequence, masks with padding
// and a fully masked row, a NaN score and a packed QKV projection read in
// place; GEMM + bias + residual + LayerNorm fused and unfused. Against double
// loops, on every target (the Arm and RVV builds' emitters under qemu).
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "autoconfig/attention.h"
#include "check.h"

namespace kcheck {
namespace {

using autoconfig::AttentionAlgorithm;
constexpr double kNegInf = -std::numeric_limits<double>::infinity();

// Q, K, V as views of one packed projection [B, S, 3*H*D] (Sk == S) or as
// separate [B, H, rows, D] tensors; the mask [B, 1, 1, Sk] with the last
// `pad` keys masked by `fill`; row `dead` (if >= 0) of batch 0 fully masked.
void attention_case(Tally& tally, int64_t B, int64_t H, int64_t S, int64_t Sk, int64_t D, bool packed, int64_t pad,
                    float fill, int64_t dead, AttentionAlgorithm alg, int64_t key_block, int threads) {
  if (packed) Sk = S;
  Rng rng(static_cast<uint64_t>(B * 1000003 + H * 10007 + S * 101 + Sk * 7 + D));
  const int64_t HD = H * D;
  std::vector<float> q, k, v, qkv;
  autoconfig::AttentionArgs a;
  a.B = B, a.H = H, a.S = S, a.Sk = Sk, a.D = D;
  if (packed) {
    qkv = rng.vec(static_cast<size_t>(B * S * 3 * HD));
    a.q = qkv.data(), a.k = qkv.data() + HD, a.v = qkv.data() + 2 * HD;
    a.q_batch = a.k_batch = a.v_batch = S * 3 * HD;
    a.q_head = a.k_head = a.v_head = D;
    a.q_row = a.k_row = a.v_row = 3 * HD;
  } else {
    q = rng.vec(static_cast<size_t>(B * H * S * D));
    k = rng.vec(static_cast<size_t>(B * H * Sk * D));
    v = rng.vec(static_cast<size_t>(B * H * Sk * D));
    a.q = q.data(), a.k = k.data(), a.v = v.data();
    a.q_batch = H * S * D, a.q_head = S * D, a.q_row = D;
    a.k_batch = a.v_batch = H * Sk * D, a.k_head = a.v_head = Sk * D, a.k_row = a.v_row = D;
  }
  // mask [B, 1, S, Sk] (broadcast over heads): padding for every row, row `dead` all `fill`
  std::vector<float> mask(static_cast<size_t>(B * S * Sk), 0.0f);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < Sk; ++j)
        if (j >= Sk - pad || (b == 0 && i == dead)) mask[static_cast<size_t>((b * S + i) * Sk + j)] = fill;
  a.mask = mask.data(), a.mask_batch = S * Sk, a.mask_head = 0, a.mask_row = Sk;
  std::vector<float> o(static_cast<size_t>(B * S * HD), -7.0f);  // heads merged: [B, S, H*D]
  a.o = o.data(), a.o_batch = S * HD, a.o_head = D, a.o_row = HD;
  a.scale = static_cast<float>(1.0 / std::sqrt(double(D)));
  a.threads = threads, a.algorithm = alg, a.key_block = key_block;

  std::vector<double> want(o.size()), tol(o.size());
  std::vector<double> p(static_cast<size_t>(Sk));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < S; ++i) {
        const float* qi = a.q + b * a.q_batch + h * a.q_head + i * a.q_row;
        double m = kNegInf;
        for (int64_t j = 0; j < Sk; ++j) {
          const float* kj = a.k + b * a.k_batch + h * a.k_head + j * a.k_row;
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += double(qi[d]) * kj[d];
          // the score as the graph's float32 tensors hold it (a float32 mask minimum swallows it)
          p[j] = double(static_cast<float>(static_cast<float>(s) * a.scale) +
                        mask[static_cast<size_t>((b * S + i) * Sk + j)]);
          m = std::max(m, p[j]);
        }
        double sum = 0;
        for (int64_t j = 0; j < Sk; ++j) sum += (p[j] = std::exp(p[j] - m));  // all -inf: NaN, as ONNX gives
        for (int64_t d = 0; d < D; ++d) {
          double acc = 0, mag = 0;
          for (int64_t j = 0; j < Sk; ++j) {
            const double vv = a.v[b * a.v_batch + h * a.v_head + j * a.v_row + d];
            acc += p[j] / sum * vv;
            mag += p[j] / sum * std::fabs(vv);
          }
          const size_t at = static_cast<size_t>((b * S + i) * HD + h * D + d);
          want[at] = acc;
          tol[at] = 64 * kEps * (mag + 1e-3) * std::sqrt(double(Sk + D));
        }
      }
  char what[200];
  std::snprintf(what, sizeof what, "B=%lld H=%lld S=%lld Sk=%lld D=%lld %s pad=%lld fill=%g dead=%lld %s kb=%lld t=%d",
                (long long)B, (long long)H, (long long)S, (long long)Sk, (long long)D, packed ? "packed" : "split",
                (long long)pad, fill, (long long)dead, autoconfig::attention_algorithm_name(alg), (long long)key_block,
                threads);
  tally.begin("attention", what);
  tally.ok(autoconfig::attention(a));
  // NaN where the reference is NaN (the fully masked row with fill -inf), near elsewhere
  std::vector<float> got_finite;
  std::vector<double> want_finite, tol_finite;
  for (size_t i = 0; i < o.size(); ++i) {
    if (std::isnan(want[i])) {
      tally.expect(std::isnan(o[i]), "element " + std::to_string(i) + " should be NaN (a fully masked row)");
      continue;
    }
    got_finite.push_back(o[i]);
    want_finite.push_back(want[i]);
    tol_finite.push_back(tol[i]);
  }
  tally.near(got_finite.data(), want_finite.data(), tol_finite.data(), got_finite.size());
  tally.end();
}

// A NaN in one query row makes exactly that row NaN, fused and unfused.
void nan_row_case(Tally& tally, AttentionAlgorithm alg, int64_t key_block) {
  const int64_t S = 9, D = 32;
  Rng rng(99);
  std::vector<float> q = rng.vec(S * D), k = rng.vec(S * D), v = rng.vec(S * D), o(S * D, 0.0f);
  q[4 * D + 3] = std::nanf("");
  autoconfig::AttentionArgs a;
  a.B = 1, a.H = 1, a.S = S, a.Sk = S, a.D = D;
  a.q = q.data(), a.k = k.data(), a.v = v.data(), a.o = o.data();
  a.q_row = a.k_row = a.v_row = a.o_row = D;
  a.scale = 0.125f, a.algorithm = alg, a.key_block = key_block, a.threads = 1;
  tally.begin("attention", std::string("NaN query row, ") + autoconfig::attention_algorithm_name(alg));
  tally.ok(autoconfig::attention(a));
  for (int64_t i = 0; i < S; ++i)
    for (int64_t d = 0; d < D; ++d)
      tally.expect(std::isnan(o[i * D + d]) == (i == 4), "row " + std::to_string(i) + " NaN pattern");
  tally.end();
}

void layernorm_case(Tally& tally, int64_t M, int64_t N, int64_t K, AttentionAlgorithm alg, int threads) {
  Rng rng(static_cast<uint64_t>(M * 7919 + N * 31 + K));
  std::vector<float> a = rng.vec(M * K), b = rng.vec(K * N), bias = rng.vec(N), res = rng.vec(M * N);
  std::vector<float> gamma = rng.vec(N), beta = rng.vec(N), y(M * N, -3.0f);
  autoconfig::GemmArgs g;
  g.M = M, g.N = N, g.K = K;
  g.A = a.data(), g.rs_a = K, g.B = b.data(), g.rs_b = N, g.C = y.data(), g.ldc = N;
  g.c_in = res.data(), g.ld_cin = N, g.beta = 1.0f, g.bias_col = bias.data(), g.threads = threads;
  autoconfig::LayerNormEpilogue ln;
  ln.gamma = gamma.data(), ln.beta = beta.data(), ln.epsilon = 1e-5f, ln.algorithm = alg;
  std::vector<double> want(M * N), tol(M * N), row(N);
  for (int64_t i = 0; i < M; ++i) {
    double mean = 0;
    for (int64_t j = 0; j < N; ++j) {
      double s = double(bias[j]) + res[i * N + j];
      for (int64_t kk = 0; kk < K; ++kk) s += double(a[i * K + kk]) * b[kk * N + j];
      row[j] = s;
      mean += s;
    }
    mean /= double(N);
    double var = 0;
    for (int64_t j = 0; j < N; ++j) var += (row[j] - mean) * (row[j] - mean);
    const double rstd = 1.0 / std::sqrt(var / double(N) + 1e-5);
    for (int64_t j = 0; j < N; ++j) {
      want[i * N + j] = (row[j] - mean) * rstd * gamma[j] + beta[j];
      tol[i * N + j] = 256 * kEps * (std::fabs(gamma[j]) * (1 + std::sqrt(double(K))) + std::fabs(beta[j]));
    }
  }
  char what[160];
  std::snprintf(what, sizeof what, "M=%lld N=%lld K=%lld %s t=%d", (long long)M, (long long)N, (long long)K,
                autoconfig::attention_algorithm_name(alg), threads);
  tally.begin("layernorm", what);
  tally.ok(autoconfig::gemm_layernorm(g, ln));
  tally.near(y.data(), want.data(), tol.data(), y.size());
  tally.end();
}

}  // namespace

void run_attention_cases(Tally& tally) {
  const float kMinF = -std::numeric_limits<float>::max(), kInfF = std::numeric_limits<float>::infinity();
  for (AttentionAlgorithm alg : {AttentionAlgorithm::Fused, AttentionAlgorithm::Unfused, AttentionAlgorithm::Auto}) {
    for (int64_t kb : {int64_t(0), int64_t(8)}) {
      if (alg != AttentionAlgorithm::Fused && kb) continue;
      for (int threads : {1, 2}) {
        attention_case(tally, 1, 1, 1, 1, 32, false, 0, 0.0f, -1, alg, kb, threads);
        attention_case(tally, 2, 3, 7, 13, 64, false, 3, -10000.0f, -1, alg, kb, threads);
        attention_case(tally, 1, 2, 17, 5, 80, false, 1, kMinF, 4, alg, kb, threads);
        attention_case(tally, 2, 2, 19, 19, 64, true, 4, -kInfF, 6, alg, kb, threads);
        attention_case(tally, 1, 4, 31, 31, 32, true, 0, 0.0f, -1, alg, kb, threads);
        attention_case(tally, 1, 1, 3, 70, 80, false, 10, -kInfF, -1, alg, kb, threads);
      }
    }
    nan_row_case(tally, alg, 8);
  }
  for (AttentionAlgorithm alg : {AttentionAlgorithm::Fused, AttentionAlgorithm::Unfused})
    for (int threads : {1, 2}) {
      layernorm_case(tally, 1, 64, 32, alg, threads);
      layernorm_case(tally, 13, 17, 7, alg, threads);
      layernorm_case(tally, 37, 96, 64, alg, threads);
    }
}

}  // namespace kcheck
