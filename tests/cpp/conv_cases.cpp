// conv2d cases: every algorithm (forced through Conv2dArgs::algorithms) on
// layers with asymmetric pads, strides, dilations, groups, depthwise with a
// channel multiplier and batch > 1; every epilogue (bias, folded batch-norm
// scale/shift, residual, relu / relu6 / clip); 1 and 2 threads; the model's
// own choice; PreparedConv2d; and a clean refusal of an algorithm that does
// not apply to the layer.
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "check.h"
#include "reference.h"

namespace kcheck {
namespace {

using autoconfig::Activation;
constexpr float kInf = __builtin_inff();

struct Layer {
  int64_t N, C, H, W, K, R, S, sh, sw, pt, pl, pb, pr, dh, dw, groups;
  bool planned;   // listed in specs/kernel_check.yaml: the build carries its plan
};

const Layer kLayers[] = {
    {1, 3, 11, 13, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, false},      // 3x3 s1: every dense algorithm
    {2, 8, 9, 7, 12, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, false},       // pointwise, batch 2
    {1, 8, 10, 10, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 1, 1, false},     // strided 1x1: not gemm-1x1
    {1, 17, 9, 11, 33, 3, 3, 1, 1, 0, 2, 1, 0, 1, 1, 1, false},     // asymmetric pads, partial channel blocks
    {1, 3, 16, 14, 5, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 1, false},      // dilation 2
    {1, 5, 15, 15, 7, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 1, false},      // 5x5
    {2, 1, 8, 1, 3, 3, 1, 1, 1, 1, 0, 1, 0, 1, 1, 1, false},        // C = 1, W = 1
    {3, 2, 5, 6, 4, 2, 3, 3, 2, 0, 2, 1, 0, 2, 1, 2, false},        // everything odd, groups 2
    {1, 6, 12, 10, 9, 3, 3, 1, 2, 0, 1, 2, 0, 1, 1, 3, false},      // grouped, asymmetric pads
    {1, 6, 11, 9, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 6, false},       // depthwise
    {1, 4, 9, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 4, false},        // depthwise, multiplier 2, stride 2
    {2, 9, 10, 9, 9, 3, 3, 1, 1, 2, 1, 0, 2, 2, 2, 9, false},       // depthwise, dilation 2, asymmetric pads
    {1, 8, 12, 12, 16, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, true},      // spec layers
    {1, 16, 12, 12, 16, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 16, true},
};

// Bit i of Conv2dArgs::algorithms (autoconfig.h).
const char* const kAlgorithms[] = {"direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise"};
constexpr int kAlgorithmCount = 6;

// Which algorithm can run which layer, from each algorithm's definition.
bool applies(const Layer& l, int alg) {
  const std::string name = kAlgorithms[alg];
  const bool pointwise =
      l.R == 1 && l.S == 1 && l.sh == 1 && l.sw == 1 && l.pt == 0 && l.pl == 0 && l.pb == 0 && l.pr == 0;
  if (name == "direct") return l.groups == 1;
  if (name == "gemm-1x1") return pointwise;
  if (name == "im2col-gemm") return !pointwise;   // a pointwise layer is its own patch matrix: gemm-1x1
  if (name == "depthwise") return l.groups > 1 && l.groups == l.C && l.K % l.C == 0;
  return l.R == 3 && l.S == 3 && l.sh == 1 && l.sw == 1 && l.dh == 1 && l.dw == 1 && l.groups == 1;   // Winograd
}

struct Epilogue {
  const char* name;
  bool bias, bn, residual;
  Activation act;
  float lo, hi;
};

const Epilogue kEpilogues[] = {
    {"plain", false, false, false, Activation::None, -kInf, kInf},
    {"bias+relu", true, false, false, Activation::Relu, -kInf, kInf},
    {"bn+relu6", false, true, false, Activation::Relu6, -kInf, kInf},
    {"bias+residual+relu", true, false, true, Activation::Relu, -kInf, kInf},
    {"bn+residual+clip(-0.25,0.5)", false, true, true, Activation::None, -0.25f, 0.5f},
    {"bias+bn+relu6+clip(0.1,4)", true, true, false, Activation::Relu6, 0.1f, 4.0f},
};

// Winograd's error is relative to the magnitudes that meet in a tile's
// transforms, not to one output's own terms: every output of a tile inherits
// the rounding of its whole (m+2)^2 input patch, amplified by the transform
// coefficients (up to 8 for F(4x4,3x3)). So it is bounded by this factor
// times the largest output magnitude of the channel (the bound
// tests/build/test_winograd_kernel.py checks the kernels against on x86).
double winograd_rtol(const std::string& alg) {
  if (alg == "winograd-f2") return 2e-6;
  if (alg == "winograd-f4") return 2e-5;
  return 0.0;
}

struct Tensors {
  std::vector<float> x, w, bias, scale, shift, residual;
};

Tensors make_tensors(Rng& rng, const Layer& l, int64_t Ho, int64_t Wo) {
  Tensors t;
  t.x = rng.vec(static_cast<size_t>(l.N * l.C * l.H * l.W));
  t.w = rng.vec(static_cast<size_t>(l.K * (l.C / l.groups) * l.R * l.S), 0.5f);
  t.bias = rng.vec(static_cast<size_t>(l.K), 0.5f);
  t.scale = rng.vec(static_cast<size_t>(l.K), 0.5f);
  for (auto& s : t.scale) s += 1.0f;   // batch-norm scales near 1
  t.shift = rng.vec(static_cast<size_t>(l.K), 0.2f);
  t.residual = rng.vec(static_cast<size_t>(l.N * l.K * Ho * Wo));
  return t;
}

autoconfig::Conv2dArgs args_of(const Layer& l, const Tensors& t, const Epilogue& e) {
  autoconfig::Conv2dArgs a;
  a.N = l.N; a.C = l.C; a.H = l.H; a.W = l.W; a.K = l.K; a.R = l.R; a.S = l.S;
  a.stride_h = l.sh; a.stride_w = l.sw;
  a.pad_top = l.pt; a.pad_left = l.pl; a.pad_bottom = l.pb; a.pad_right = l.pr;
  a.dilation_h = l.dh; a.dilation_w = l.dw;
  a.groups = l.groups;
  a.x = t.x.data();
  a.w = t.w.data();
  a.bias = e.bias ? t.bias.data() : nullptr;
  a.scale = e.bn ? t.scale.data() : nullptr;
  a.shift = e.bn ? t.shift.data() : nullptr;
  a.residual = e.residual ? t.residual.data() : nullptr;
  a.act = e.act;
  a.clip_lo = e.lo;
  a.clip_hi = e.hi;
  return a;
}

std::string describe(const Layer& l, const std::string& alg, const Epilogue& e, int threads) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "N=%lld C=%lld %lldx%lld -> K=%lld %lldx%lld stride %lldx%lld pads %lld,%lld,%lld,%lld "
                "dilation %lldx%lld groups %lld: %s, %s, threads=%d",
                (long long)l.N, (long long)l.C, (long long)l.H, (long long)l.W, (long long)l.K, (long long)l.R,
                (long long)l.S, (long long)l.sh, (long long)l.sw, (long long)l.pt, (long long)l.pl, (long long)l.pb,
                (long long)l.pr, (long long)l.dh, (long long)l.dw, (long long)l.groups, alg.c_str(), e.name, threads);
  return buf;
}

// want +- tol for every output of a (the call's arguments), run by `alg`.
void compare(Tally& tally, const autoconfig::Conv2dArgs& a, const std::string& alg, const std::vector<float>& y) {
  const Reference ref = conv_reference(a);
  const int64_t P = autoconfig::conv2d_output_h(a) * autoconfig::conv2d_output_w(a);
  const double taps = static_cast<double>((a.C / a.groups) * a.R * a.S);
  const double rtol = winograd_rtol(alg);
  std::vector<double> tol(ref.value.size());
  for (int64_t k = 0; k < a.K; ++k) {
    double channel_mag = 0.0;
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t p = 0; p < P; ++p) channel_mag = std::fmax(channel_mag, ref.mag[(n * a.K + k) * P + p]);
    for (int64_t n = 0; n < a.N; ++n)
      for (int64_t p = 0; p < P; ++p) {
        const size_t o = static_cast<size_t>((n * a.K + k) * P + p);
        tol[o] = 2.0 * (taps + 4.0) * kEps * ref.mag[o] + rtol * channel_mag;
      }
  }
  tally.near(y.data(), ref.value.data(), tol.data(), y.size());
}

void run_forced(Tally& tally, const Layer& l, const Tensors& t, int alg, const Epilogue& e, int threads,
                int64_t out_size) {
  autoconfig::Conv2dArgs a = args_of(l, t, e);
  std::vector<float> y(static_cast<size_t>(out_size), -1.0f);
  a.y = y.data();
  a.threads = threads;
  a.algorithms = 1u << alg;
  tally.begin("conv", describe(l, kAlgorithms[alg], e, threads));
  const std::string chosen = autoconfig::conv2d_algorithm(a);
  tally.expect(chosen == kAlgorithms[alg], "conv2d_algorithm says " + chosen);
  tally.ok(autoconfig::conv2d(a));
  compare(tally, a, kAlgorithms[alg], y);
  tally.end();
}

// The layer prepared once for alg (epilogue e without its residual), then run
// without and with a residual.
void run_prepared(Tally& tally, const Layer& l, const Tensors& t, int alg, const Epilogue& e, int64_t out_size) {
  autoconfig::Conv2dArgs a = args_of(l, t, e);
  a.residual = nullptr;
  a.algorithms = 1u << alg;
  a.threads = 1;
  autoconfig::PreparedConv2d layer;
  const autoconfig::Status prepared = layer.prepare(a);
  for (bool with_residual : {false, true}) {
    tally.begin("prepared", describe(l, kAlgorithms[alg], e, 1) + (with_residual ? " +residual at run" : ""));
    tally.ok(prepared);
    tally.expect(std::string(layer.algorithm()) == kAlgorithms[alg],
                 std::string("prepared for ") + layer.algorithm());
    std::vector<float> y(static_cast<size_t>(out_size), -1.0f);
    const float* res = with_residual ? t.residual.data() : nullptr;
    tally.ok(layer.run(t.x.data(), l.N, y.data(), res, 2));
    autoconfig::Conv2dArgs want = a;
    want.residual = res;
    compare(tally, want, kAlgorithms[alg], y);
    tally.end();
  }
}

// No algorithm restriction: the model's (or the spec's) choice must be correct
// too, and a spec layer must report its build-time plan.
void run_chosen(Tally& tally, const Layer& l, const Tensors& t, int64_t out_size) {
  const Epilogue& e = kEpilogues[3];
  autoconfig::Conv2dArgs a = args_of(l, t, e);
  std::vector<float> y(static_cast<size_t>(out_size));
  a.y = y.data();
  a.threads = 1;
  const autoconfig::Conv2dChoice choice = autoconfig::conv2d_choice(a);  // conv2d()'s: run + preparation
  const autoconfig::Conv2dChoice planned = autoconfig::conv2d_choice(a, /*prepared=*/true);
  tally.begin("conv", describe(l, "model's choice " + choice.algorithm, e, 1));
  tally.expect(planned.planned == l.planned, std::string("planned=") + (planned.planned ? "true" : "false") +
                                                 ", the spec " + (l.planned ? "lists" : "does not list") + " it");
  tally.ok(autoconfig::conv2d(a));
  compare(tally, a, choice.algorithm, y);
  tally.end();
}

void run_refused(Tally& tally, const Layer& l, const Tensors& t, int alg, int64_t out_size) {
  autoconfig::Conv2dArgs a = args_of(l, t, kEpilogues[0]);
  std::vector<float> y(static_cast<size_t>(out_size));
  a.y = y.data();
  a.algorithms = 1u << alg;
  tally.begin("conv", describe(l, kAlgorithms[alg], kEpilogues[0], 1) + " (does not apply)");
  tally.expect(!autoconfig::conv2d(a).ok(), "conv2d accepted an algorithm that does not apply to the layer");
  tally.end();
}

}  // namespace

void run_conv_cases(Tally& tally) {
  Rng rng(2);
  int prepared_epilogue = 0;
  for (const Layer& l : kLayers) {
    autoconfig::Conv2dArgs shape = args_of(l, Tensors(), kEpilogues[0]);
    const int64_t out_size = l.N * l.K * autoconfig::conv2d_output_h(shape) * autoconfig::conv2d_output_w(shape);
    const Tensors t = make_tensors(rng, l, autoconfig::conv2d_output_h(shape), autoconfig::conv2d_output_w(shape));
    for (int alg = 0; alg < kAlgorithmCount; ++alg) {
      if (!applies(l, alg)) {
        run_refused(tally, l, t, alg, out_size);
        continue;
      }
      for (const Epilogue& e : kEpilogues)
        for (int threads : {1, 2}) run_forced(tally, l, t, alg, e, threads, out_size);
      run_prepared(tally, l, t, alg, kEpilogues[prepared_epilogue++ % (sizeof kEpilogues / sizeof kEpilogues[0])], out_size);
    }
    run_chosen(tally, l, t, out_size);
  }
}

}  // namespace kcheck
