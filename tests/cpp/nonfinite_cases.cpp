// NaN cases: a NaN stays NaN through every GEMM path and activation and
// through every conv2d algorithm and clamp, as numpy and ONNX keep it (x86
// max/min return their second operand on NaN, RVV's vfmax/vfmin the number,
// so the emitted epilogues must order or select). Run on every target, so the
// Arm and RVV emitters are checked under qemu too. tests/runtime/test_nonfinite.py
// checks Inf and the full pattern against float64 on the host build.
#include <cmath>
#include <string>
#include <vector>

#include "check.h"

namespace kcheck {
namespace {

using autoconfig::Activation;
constexpr float kInf = __builtin_inff();
const float kNaN = std::nanf("");

const Activation kActs[] = {Activation::None, Activation::Relu, Activation::Relu6, Activation::GeluTanh,
                            Activation::GeluErf};

// A NaN in row i0 of A makes row i0 of C NaN; a NaN bias makes column j0 NaN;
// C_in's NaN at (i1, j1) survives beta = 0 (0 * NaN); the rest stays finite.
void gemm_case(Tally& tally, int64_t M, int64_t N, int64_t K, Activation act, int threads) {
  Rng rng(static_cast<uint64_t>(M * 131 + N * 7 + K));
  std::vector<float> a = rng.vec(static_cast<size_t>(M * K)), b = rng.vec(static_cast<size_t>(K * N));
  std::vector<float> bias = rng.vec(static_cast<size_t>(N)), cin = rng.vec(static_cast<size_t>(M * N));
  std::vector<float> c(static_cast<size_t>(M * N), -1.0f);
  const int64_t i0 = M / 2, j0 = N - 1, i1 = M - 1, j1 = N / 3;
  a[static_cast<size_t>(i0 * K + K / 2)] = kNaN;
  bias[static_cast<size_t>(j0)] = kNaN;
  cin[static_cast<size_t>(i1 * N + j1)] = kNaN;
  autoconfig::GemmArgs g;
  g.M = M; g.N = N; g.K = K;
  g.A = a.data(); g.rs_a = K; g.cs_a = 1;
  g.B = b.data(); g.rs_b = N; g.cs_b = 1;
  g.C = c.data(); g.ldc = N;
  g.c_in = cin.data(); g.ld_cin = N; g.beta = 0.0f;
  g.bias_col = bias.data();
  g.act = act;
  g.threads = threads;
  tally.begin("nonfinite", "gemm " + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) + " " +
                               autoconfig::activation_name(act) + " threads=" + std::to_string(threads));
  tally.ok(autoconfig::gemm(g));
  int wrong = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      const float v = c[static_cast<size_t>(i * N + j)];
      const bool nan = i == i0 || j == j0 || (i == i1 && j == j1);
      if (nan != std::isnan(v) || (!nan && !std::isfinite(v))) ++wrong;
    }
  tally.expect(wrong == 0, std::to_string(wrong) + " entries with the wrong NaN/finite class");
  tally.end();
}

struct Conv {
  const char* algorithm;
  int bit;   // of Conv2dArgs::algorithms
  int64_t C, H, W, K, R, S, pad, groups;
};

// One NaN pixel of input channel 0 at (py, px): every output whose receptive
// field holds it is NaN under every clamp, and no output is -inf; away from it
// (outside Winograd's tiles, which may spread it) outputs are finite.
void conv_case(Tally& tally, const Conv& l, Activation act, float lo, float hi, int threads) {
  Rng rng(static_cast<uint64_t>(l.C * 31 + l.K));
  std::vector<float> x = rng.vec(static_cast<size_t>(l.C * l.H * l.W));
  std::vector<float> w = rng.vec(static_cast<size_t>(l.K * (l.C / l.groups) * l.R * l.S), 0.5f);
  std::vector<float> bias = rng.vec(static_cast<size_t>(l.K), 0.5f);
  const int64_t py = l.H / 2, px = l.W / 2;
  x[static_cast<size_t>(py * l.W + px)] = kNaN;
  autoconfig::Conv2dArgs a;
  a.N = 1; a.C = l.C; a.H = l.H; a.W = l.W; a.K = l.K; a.R = l.R; a.S = l.S;
  a.pad_top = a.pad_left = a.pad_bottom = a.pad_right = l.pad;
  a.groups = l.groups;
  a.x = x.data(); a.w = w.data(); a.bias = bias.data();
  a.act = act; a.clip_lo = lo; a.clip_hi = hi;
  a.algorithms = 1u << l.bit;
  a.threads = threads;
  const int64_t Ho = autoconfig::conv2d_output_h(a), Wo = autoconfig::conv2d_output_w(a);
  std::vector<float> y(static_cast<size_t>(l.K * Ho * Wo), -1.0f);
  a.y = y.data();
  tally.begin("nonfinite", std::string("conv2d ") + l.algorithm + " " + autoconfig::activation_name(act) +
                               " clip(" + std::to_string(lo) + "," + std::to_string(hi) + ") threads=" +
                               std::to_string(threads));
  tally.ok(autoconfig::conv2d(a));
  const bool winograd = std::string(l.algorithm).rfind("winograd", 0) == 0;
  const int64_t Kg = l.K / l.groups;   // output channels that read input channel 0
  int wrong = 0;
  for (int64_t k = 0; k < l.K; ++k)
    for (int64_t oy = 0; oy < Ho; ++oy)
      for (int64_t ox = 0; ox < Wo; ++ox) {
        const float v = y[static_cast<size_t>((k * Ho + oy) * Wo + ox)];
        const int64_t dy = py + l.pad - oy, dx = px + l.pad - ox;
        const bool field = k < Kg && dy >= 0 && dy < l.R && dx >= 0 && dx < l.S;
        if (std::isinf(v) && v < 0) ++wrong;
        else if (field && !std::isnan(v)) ++wrong;
        else if (!field && !winograd && !std::isfinite(v)) ++wrong;
      }
  tally.expect(wrong == 0, std::to_string(wrong) + " outputs with the wrong NaN/finite class");
  tally.end();
}

}  // namespace

void run_nonfinite_cases(Tally& tally) {
  const int64_t shapes[][3] = {{1, 13, 7}, {3, 5, 7}, {37, 45, 19}, {4, 96, 64}, {61, 67, 71}};
  for (const auto& s : shapes)
    for (Activation act : kActs)
      for (int threads : {1, 2}) gemm_case(tally, s[0], s[1], s[2], act, threads);
  const Conv layers[] = {
      {"direct", 0, 5, 9, 11, 10, 3, 3, 1, 1},      {"gemm-1x1", 1, 6, 7, 9, 5, 1, 1, 0, 1},
      {"im2col-gemm", 2, 5, 9, 11, 10, 3, 3, 1, 1}, {"winograd-f2", 3, 5, 9, 11, 10, 3, 3, 1, 1},
      {"winograd-f4", 4, 5, 9, 11, 10, 3, 3, 1, 1}, {"depthwise", 5, 6, 9, 11, 12, 3, 3, 1, 6},
  };
  for (const Conv& l : layers) {
    for (int threads : {1, 2}) {
      conv_case(tally, l, Activation::None, -kInf, kInf, threads);
      conv_case(tally, l, Activation::Relu, -kInf, kInf, threads);
      conv_case(tally, l, Activation::Relu6, -kInf, kInf, threads);
      conv_case(tally, l, Activation::None, -0.5f, 1.5f, threads);
    }
  }
}

}  // namespace kcheck
