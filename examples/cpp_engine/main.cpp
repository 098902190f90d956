// A tiny inference "engine" that runs its layers on autoconfig's kernels and
// checks them against plain loops written here (independent of autoconfig).
#include <algorithm>
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

// Normwise relative error, max |got - want| / max |want|: the measure of the
// library's documented Winograd error bounds and of the ONNX comparisons. An
// element-wise ratio is dominated by outputs near zero, where a Winograd
// transform's rounding (absolute, about 1e-6 of the largest output) is all
// there is: 1.4e-3 on conv3x3+bn's F(2x2) though its normwise error is ~1e-7.
bool check(const char* layer, const std::vector<float>& got, const std::vector<double>& want, int K) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    diff = std::max(diff, std::fabs(got[i] - want[i]));
    scale = std::max(scale, std::fabs(want[i]));
  }
  const double worst = diff / std::max(scale, 1e-30);
  const bool ok = worst < 1e-5 * std::sqrt(static_cast<double>(K));
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

// Direct convolution, NCHW, symmetric pads, written here from the definition.
std::vector<double> conv_reference(const std::vector<float>& x, int C, int H, int W, const std::vector<float>& w,
                                   int K, int R, int S, int stride, int pad, int groups,
                                   const std::vector<float>& scale, const std::vector<float>& shift,
                                   const std::vector<float>& bias, bool relu, int* Ho_out, int* Wo_out) {
  const int Ho = (H + 2 * pad - R) / stride + 1, Wo = (W + 2 * pad - S) / stride + 1;
  const int Cg = C / groups, Kg = K / groups;
  std::vector<double> y(static_cast<size_t>(K) * Ho * Wo);
  for (int k = 0; k < K; ++k)
    for (int oh = 0; oh < Ho; ++oh)
      for (int ow = 0; ow < Wo; ++ow) {
        double acc = bias.empty() ? 0.0 : bias[k];
        const int g = k / Kg;
        for (int c = 0; c < Cg; ++c)
          for (int r = 0; r < R; ++r)
            for (int s = 0; s < S; ++s) {
              const int ih = oh * stride - pad + r, iw = ow * stride - pad + s;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += static_cast<double>(x[(static_cast<size_t>(g * Cg + c) * H + ih) * W + iw]) *
                     w[((static_cast<size_t>(k) * Cg + c) * R + r) * S + s];
            }
        if (!scale.empty()) acc = acc * scale[k] + shift[k];
        y[(static_cast<size_t>(k) * Ho + oh) * Wo + ow] = relu && acc < 0 ? 0.0 : acc;
      }
  *Ho_out = Ho;
  *Wo_out = Wo;
  return y;
}

// A small CNN block on prepared conv layers: conv3x3+bn+relu, depthwise
// 3x3/2 + relu, 1x1 projection. Weights are prepared once, as an engine would.
bool run_cnn_block(Rng& rng) {
  const int C = 8, H = 12, W = 12, K1 = 16, K3 = 32;
  const auto x = rng.vec(C * H * W, 1.0f);
  const auto w1 = rng.vec(K1 * C * 9, 0.2f), s1 = rng.vec(K1, 0.5f), t1 = rng.vec(K1, 0.2f);
  const auto w2 = rng.vec(K1 * 9, 0.3f);
  const auto w3 = rng.vec(K3 * K1, 0.25f), b3 = rng.vec(K3, 0.1f);
  std::vector<float> scale1(K1);
  for (int k = 0; k < K1; ++k) scale1[k] = 1.0f + s1[k];   // batch-norm scale near 1

  autoconfig::Conv2dArgs l1;   // 3x3, pad 1, folded batch-norm, relu
  l1.C = C; l1.H = H; l1.W = W; l1.K = K1; l1.R = 3; l1.S = 3;
  l1.pad_top = l1.pad_left = l1.pad_bottom = l1.pad_right = 1;
  l1.w = w1.data(); l1.scale = scale1.data(); l1.shift = t1.data(); l1.act = autoconfig::Activation::Relu;
  autoconfig::Conv2dArgs l2 = autoconfig::Conv2dArgs();   // depthwise 3x3 stride 2, relu
  l2.C = K1; l2.H = H; l2.W = W; l2.K = K1; l2.R = 3; l2.S = 3; l2.groups = K1;
  l2.stride_h = l2.stride_w = 2;
  l2.pad_top = l2.pad_left = l2.pad_bottom = l2.pad_right = 1;
  l2.w = w2.data(); l2.act = autoconfig::Activation::Relu;
  autoconfig::Conv2dArgs l3;   // 1x1 projection with bias
  l3.C = K1; l3.H = 6; l3.W = 6; l3.K = K3; l3.R = 1; l3.S = 1;
  l3.w = w3.data(); l3.bias = b3.data();

  autoconfig::PreparedConv2d p1, p2, p3;
  for (auto* pr : {&p1, &p2, &p3}) {
    const autoconfig::Conv2dArgs& l = pr == &p1 ? l1 : pr == &p2 ? l2 : l3;
    const autoconfig::Status s = pr->prepare(l);
    if (!s.ok()) {
      std::fprintf(stderr, "prepare: %s\n", s.message.c_str());
      return false;
    }
  }
  std::vector<float> a1(K1 * H * W), a2(K1 * 6 * 6), a3(K3 * 6 * 6);
  const autoconfig::PreparedConv2d* layers[] = {&p1, &p2, &p3};
  const float* inputs[] = {x.data(), a1.data(), a2.data()};
  float* outputs[] = {a1.data(), a2.data(), a3.data()};
  for (int i = 0; i < 3; ++i) {
    const autoconfig::Status s = layers[i]->run(inputs[i], 1, outputs[i], nullptr, 1);
    if (!s.ok()) {
      std::fprintf(stderr, "conv: %s\n", s.message.c_str());
      return false;
    }
  }
  int ho, wo;
  bool ok = check("conv3x3+bn", a1, conv_reference(x, C, H, W, w1, K1, 3, 3, 1, 1, 1, scale1, t1, {}, true, &ho, &wo), C * 9);
  ok &= check("depthwise/2", a2, conv_reference(a1, K1, H, W, w2, K1, 3, 3, 2, 1, K1, {}, {}, {}, true, &ho, &wo), 9);
  ok &= check("conv1x1", a3, conv_reference(a2, K1, 6, 6, w3, K3, 1, 1, 1, 0, 1, {}, {}, b3, false, &ho, &wo), K1);
  std::printf("conv algorithms: %s, %s, %s\n", autoconfig::conv2d_algorithm(l1), autoconfig::conv2d_algorithm(l2),
              autoconfig::conv2d_algorithm(l3));
  return ok;
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
  bool ok = run_cnn_block(rng);

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
