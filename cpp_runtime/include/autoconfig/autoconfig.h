// autoconfig public C++ API: host-tuned float32 kernels generated ahead of time.
//
// Every entry point returns a Status instead of throwing, so no exception has
// to cross into an engine. Shapes and strides are explicit (in elements).
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#if defined(_WIN32)
#define AUTOCONFIG_API
#else
#define AUTOCONFIG_API __attribute__((visibility("default")))
#endif

namespace autoconfig {

enum class Activation : int { None = 0, Relu = 1, Relu6 = 2, GeluTanh = 3, GeluErf = 4 };
constexpr int kNumActivations = 5;
AUTOCONFIG_API const char* activation_name(Activation a);

struct Status {
  int code = 0;             // 0 = ok
  std::string message;
  bool ok() const { return code == 0; }
  static Status Ok() { return {}; }
  static Status Error(std::string msg, int code = 1) { return Status{code, std::move(msg)}; }
};

// C = act(alpha * op(A) op(B) + beta * C_in + bias_col[j] + bias_row[i])
// op(A) is M x K with element strides (rs_a, cs_a); op(B) is K x N with (rs_b, cs_b):
// a transpose is only a swap of strides. C is row-major with leading dimension ldc.
// C_in may alias C (in-place accumulate / residual add) but must not overlap A or B.
class PreparedGemmB;

struct GemmArgs {
  int64_t M = 0, N = 0, K = 0;
  const float* A = nullptr; int64_t rs_a = 0, cs_a = 1;
  const float* B = nullptr; int64_t rs_b = 0, cs_b = 1;
  float* C = nullptr; int64_t ldc = 0;
  float alpha = 1.0f;
  const float* c_in = nullptr; int64_t ld_cin = 0; float beta = 0.0f;
  const float* bias_col = nullptr;   // N values, added to every row
  const float* bias_row = nullptr;   // M values, added to every column
  Activation act = Activation::None;
  int threads = 0;                   // 0: the plan's choice for this shape
  // B packed once ahead (a layer's weights): read instead of B, and the kernel
  // it was packed for runs, whatever M is (N, K and act must be the prepared ones).
  const PreparedGemmB* prepared_b = nullptr;
};

// Runs the shape-specialized kernel when the build has one for (M, N, K, act),
// the generic kernel otherwise.
AUTOCONFIG_API Status gemm(const GemmArgs& args);

// op(B) packed once for many products with it (a layer's weights), in the
// layout of the kernel gemm() picks for the prepare() arguments: calls that
// pass it (GemmArgs::prepared_b) skip B's copy into packed panels and, on
// several threads, the barrier after each packed block. A call may have
// another M (row blocks, sequence lengths): the same kernel runs.
class AUTOCONFIG_API PreparedGemmB {
 public:
  // Takes M, N, K, B (rs_b, cs_b), act and threads as the calls will pass
  // them; A, C and the epilogue pointers are ignored.
  Status prepare(const GemmArgs& args);
  bool ready() const { return kernel_ != nullptr; }
  int64_t N() const { return N_; }
  int64_t K() const { return K_; }
  Activation act() const { return act_; }
  const char* kernel() const;  // the kernel the layout is for
  const float* data() const { return packed_.data() + offset_; }
  const void* kernel_entry() const { return kernel_; }                 // detail::GemmKernel
  size_t bytes() const { return packed_.capacity() * sizeof(float); }  // what the packed copy holds

 private:
  const void* kernel_ = nullptr;
  std::vector<float> packed_;
  size_t offset_ = 0;  // to the first 64-byte aligned float
  int64_t N_ = 0, K_ = 0;
  Activation act_ = Activation::None;
};

// Activation layouts for conv2d: plain NCHW, or channel-blocked NCHW[B]c:
// N x ceil(C/B) x H x W x B floats, B = conv2d_block() (the vector lanes of
// the running variant), channel c at block c / B, lane c % B. Lanes past C
// hold finite values (zeros when made by conv2d_to_blocked). Layers that keep
// activations blocked between them skip a layout conversion per layer.
enum class ConvLayout : int { NCHW = 0, Blocked = 1 };
AUTOCONFIG_API int conv2d_block();
// The direct kernel's register tiles in this variant: (output columns, output-channel blocks).
AUTOCONFIG_API std::vector<std::pair<int, int>> conv2d_direct_tiles();
// xb (blocked) <- x (NCHW), and back; threads 0: one per CPU that helps.
AUTOCONFIG_API Status conv2d_to_blocked(const float* x, int64_t N, int64_t C, int64_t H, int64_t W, float* xb,
                                        int threads = 0);
AUTOCONFIG_API Status conv2d_from_blocked(const float* xb, int64_t N, int64_t C, int64_t H, int64_t W, float* x,
                                          int threads = 0);
// Activation tensors conv2d calls have converted between NCHW and NCHW[B]c so
// far in this process (inputs, outputs, residuals; the explicit conversions
// above are not counted): a network that keeps its activations blocked sees
// this stay put across direct layers.
AUTOCONFIG_API uint64_t conv2d_layout_conversions();

// 2-D convolution with ONNX Conv semantics on NCHW float32 tensors:
//   y[n, k, oh, ow] = act(scale[k] * (sum_{c,r,s} x[n, g*C/G + c, ih, iw] * w[k, c, r, s] + bias[k])
//                         + shift[k] + residual[n, k, oh, ow])
// with ih = oh*stride_h - pad_top + r*dilation_h (likewise iw), zero outside the
// input, g = k / (K/G). x, w, y (and residual) are dense NCHW / KCRS.
//
// What is computed: the layer, its tensors and their layouts.
struct Conv2dLayer {
  int64_t N = 0, C = 0, H = 0, W = 0;     // input
  int64_t K = 0, R = 0, S = 0;            // output channels, kernel height, width
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_left = 0, pad_bottom = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  const float* x = nullptr;
  const float* w = nullptr;               // K x C/groups x R x S
  const float* bias = nullptr;            // K, optional
  const float* scale = nullptr;           // K, optional (folded batch-norm)
  const float* shift = nullptr;           // K, optional (folded batch-norm)
  const float* residual = nullptr;        // N x K x Ho x Wo, optional; added before the activation
  Activation act = Activation::None;     // None, Relu or Relu6 (GELU is not a conv epilogue)
  // clip(lo, hi) after the activation (ONNX Clip); the defaults clip nothing.
  float clip_lo = -__builtin_inff(), clip_hi = __builtin_inff();
  float* y = nullptr;                     // N x K x Ho x Wo
  ConvLayout x_layout = ConvLayout::NCHW;  // layout of x
  ConvLayout y_layout = ConvLayout::NCHW;  // layout of y and residual
};

// How it is computed: the knobs that restrict or fix the model's choices.
struct Conv2dOptions {
  int threads = 0;                        // 0: the plans' choice
  // Restrict the choice to these algorithms (bit i: "direct", "gemm-1x1",
  // "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise"); ~0: any.
  unsigned algorithms = ~0u;
  // Restrict direct to one register tile (index into conv2d_direct_tiles()),
  // input layout (0: NCHW[B]c, 1: plain NCHW), work order (0: groups outer,
  // 1: groups inner) and number of reduction blocks (>= 1, groups outer);
  // -1: the model's choice.
  int direct_tile = -1, direct_input = -1, direct_order = -1, direct_cblocks = -1;
  // Largest relative error (max|y - exact| / max|exact|) the result may
  // carry: algorithms whose documented error bound exceeds it (Winograd) are
  // not chosen. 0: no limit.
  float tolerance = 0.0f;
};

// What conv2d() takes: the layer and the options, every field reachable as
// before (a.N, a.threads, a.algorithms, ...). Build one from the two parts
// with Conv2dArgs{layer, options}.
struct Conv2dArgs : Conv2dLayer, Conv2dOptions {
  const Conv2dLayer& layer() const { return *this; }
  const Conv2dOptions& options() const { return *this; }
};

// Output height/width of a layer (<= 0 when the layer is invalid); a Conv2dArgs is one.
AUTOCONFIG_API int64_t conv2d_output_h(const Conv2dLayer& a);
AUTOCONFIG_API int64_t conv2d_output_w(const Conv2dLayer& a);
// Runs the convolution; the algorithm is chosen per layer (see conv2d_algorithm)
// by run time + weight preparation, which a one-off call pays every time (no
// cache: the packed weights are rebuilt from w on every call).
AUTOCONFIG_API Status conv2d(const Conv2dArgs& args);
// The algorithm conv2d() uses for these arguments ("direct", "gemm-1x1",
// "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise"), or "" if invalid.
AUTOCONFIG_API const char* conv2d_algorithm(const Conv2dArgs& args);
// Why: the choice, whether a spec planned it, the thread count, and the
// model's estimate (seconds) for every algorithm (< 0: not applicable).
struct Conv2dChoice {
  std::string algorithm;
  int tile = 0;              // direct: register tile index
  bool plain_input = false;  // direct: input read as NCHW (one channel per tap), not NCHW[B]c
  bool groups_inner = false; // direct: work ordered by column chunk, then output-block group
  int64_t chunk = 0;         // direct: output columns per work item
  int64_t cblocks = 1;       // direct: reduction blocks of input channels
  bool pack_groups = false;  // direct, one-off: each group's weights packed just before it is computed
  int threads = 1;
  bool planned = false;      // a spec listed this layer (else the run-time model chose)
  bool prepared = false;     // the choice of a prepared layer (run time alone), else of conv2d() (run + prepare)
  std::vector<std::pair<std::string, double>> estimates;
  std::vector<std::pair<std::string, double>> prepare;  // each estimate's weight preparation (< 0: n/a)
};
// prepared = false: what conv2d() chooses; true: what PreparedConv2d::prepare() chooses.
AUTOCONFIG_API Conv2dChoice conv2d_choice(const Conv2dArgs& args, bool prepared = false);
// The weight preparation a one-off conv2d() call of these arguments does (into
// this thread's scratch), alone: for timing it (autoconfig bench --op conv2d).
// pack_seconds (or null) receives the time of the fold and re-layout alone
// (the call minus its argument checks and the model's choice).
AUTOCONFIG_API Status conv2d_prepare_weights(const Conv2dArgs& args, double* pack_seconds = nullptr);

// A conv layer's weights prepared once (batch-norm folded into them, the
// layer's attributes fixed) and reused across calls: no per-call weight work.
class AUTOCONFIG_API PreparedConv2d {
 public:
  // Takes the layer's shapes, attributes, w, bias, scale, shift, act, clip,
  // layouts and threads; x, y, residual and N are ignored (they come with run()).
  // The algorithm is chosen here (for layer.threads) and the weights are
  // re-laid out or transformed for it once.
  Status prepare(const Conv2dArgs& layer);
  // y = the layer applied to x (N x C x H x W, the prepared C, H, W), in the
  // layouts given to prepare() (residual: like y).
  Status run(const float* x, int64_t N, float* y, const float* residual = nullptr, int threads = 0) const;
  const Conv2dArgs& layer() const { return layer_; }
  const char* algorithm() const;
  // What the prepared layer holds: folded weights and bias, the packed layout.
  size_t bytes() const {
    return (w_.capacity() + bias_.capacity() + packed_.capacity() + bias_blocked_.capacity()) * sizeof(float);
  }

 private:
  Conv2dArgs layer_;
  std::vector<float> w_, bias_;     // batch-norm folded (K x C/G x R x S; K)
  std::vector<float> packed_;       // the algorithm's weight layout (direct, Winograd)
  std::vector<float> bias_blocked_; // direct: bias padded to whole channel blocks
  int algorithm_ = -1;
  int direct_tile_ = 0;              // direct: the plan's schedule (detail::DirectSchedule)
  bool direct_plain_ = false, direct_groups_inner_ = false;
  int64_t direct_chunk_ = 0, direct_cblocks_ = 1;
  bool ready_ = false;
};

// Name of the kernel gemm() would run for these arguments, and the thread count it would use.
struct GemmChoice { std::string kernel; int threads = 1; bool specialized = false; };
AUTOCONFIG_API GemmChoice gemm_choice(const GemmArgs& args);

// Build facts: the ISA the kernels were generated for and what the running CPU lacks.
struct BuildInfo {
  std::string isa;                        // avx512 | avx2 | generic
  std::vector<std::string> required;      // cpu features the kernels execute
  std::string target;                     // host | x86-64-v3 | ...
};
AUTOCONFIG_API const BuildInfo& build_info();

// Every kernel variant in the build (several for target `portable`), best first;
// `active` marks the one this process runs (AUTOCONFIG_MAX_ISA=v2|v3|v4 caps it).
struct BuildVariant {
  std::string target, isa;
  int level = 0;
  std::vector<std::string> required;
  bool active = false;
};
AUTOCONFIG_API std::vector<BuildVariant> build_variants();

// Features of the running CPU (lower-case cpuid / hwcap names), or the list in
// AUTOCONFIG_FAKE_CPU_FEATURES when set (tests simulate older CPUs with it).
AUTOCONFIG_API std::vector<std::string> cpu_features();
// Features the kernels need that this CPU (or AUTOCONFIG_FAKE_CPU_FEATURES) lacks.
AUTOCONFIG_API std::vector<std::string> missing_cpu_features();
// Ok when the kernels can run here; otherwise a message naming the missing features.
AUTOCONFIG_API Status check_isa();

// JSON text of the HostProfile and of the plans the build was generated from.
AUTOCONFIG_API const char* host_profile_json();
AUTOCONFIG_API const char* plans_json();

}  // namespace autoconfig
