// nanobind bindings: thin, checked by the Python layer (runtime/) first.
// The GIL is released while a kernel runs.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

#include "autoconfig/attention.h"
#include "autoconfig/autoconfig.h"
#include "autoconfig/model.h"

namespace nb = nanobind;
using namespace nb::literals;

using In2 = nb::ndarray<const float, nb::ndim<2>, nb::device::cpu>;
using Out2 = nb::ndarray<float, nb::ndim<2>, nb::device::cpu>;
using In1 = nb::ndarray<const float, nb::ndim<1>, nb::device::cpu>;

namespace {

void gemm_binding(In2 a, In2 b, Out2 c, std::optional<In2> c_in, std::optional<In1> bias_col,
                  std::optional<In1> bias_row, float alpha, float beta, int act, int threads) {
  autoconfig::GemmArgs g;
  g.M = static_cast<int64_t>(a.shape(0));
  g.K = static_cast<int64_t>(a.shape(1));
  g.N = static_cast<int64_t>(b.shape(1));
  if (static_cast<int64_t>(b.shape(0)) != g.K) throw std::invalid_argument("b: rows must equal a's columns");
  if (static_cast<int64_t>(c.shape(0)) != g.M || static_cast<int64_t>(c.shape(1)) != g.N)
    throw std::invalid_argument("out: shape must be (M, N)");
  if (g.N > 1 && c.stride(1) != 1) throw std::invalid_argument("out: last axis must be contiguous");
  g.A = a.data();
  g.rs_a = a.stride(0);
  g.cs_a = a.stride(1);
  g.B = b.data();
  g.rs_b = b.stride(0);
  g.cs_b = b.stride(1);
  g.C = c.data();
  g.ldc = g.M > 1 ? c.stride(0) : g.N;
  g.alpha = alpha;
  if (c_in) {
    if (static_cast<int64_t>(c_in->shape(0)) != g.M || static_cast<int64_t>(c_in->shape(1)) != g.N)
      throw std::invalid_argument("c_in: shape must be (M, N)");
    if (g.N > 1 && c_in->stride(1) != 1) throw std::invalid_argument("c_in: last axis must be contiguous");
    g.c_in = c_in->data();
    g.ld_cin = g.M > 1 ? c_in->stride(0) : g.N;
    g.beta = beta;
  }
  if (bias_col) {
    if (static_cast<int64_t>(bias_col->shape(0)) != g.N || (g.N > 1 && bias_col->stride(0) != 1))
      throw std::invalid_argument("bias: must be a contiguous vector of length N");
    g.bias_col = bias_col->data();
  }
  if (bias_row) {
    if (static_cast<int64_t>(bias_row->shape(0)) != g.M || (g.M > 1 && bias_row->stride(0) != 1))
      throw std::invalid_argument("row bias: must be a contiguous vector of length M");
    g.bias_row = bias_row->data();
  }
  g.act = static_cast<autoconfig::Activation>(act);
  g.threads = threads;
  autoconfig::Status s;
  {
    // Every Python object is read above; the ndarrays keep their arrays alive
    // until return. Released for every size, so that calling threads run
    // concurrently (and meet in the thread pool as C++ callers do).
    nb::gil_scoped_release release;
    s = autoconfig::gemm(g);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

using OutNew = nb::ndarray<nb::numpy, float, nb::ndim<2>>;

// Fast path for the common call: a fresh (M, N) result, no residual. The
// Python layer has already checked dtypes, ranks and shapes.
OutNew matmul_new_binding(In2 a, In2 b, std::optional<In1> bias, int act, int threads) {
  const size_t M = a.shape(0), N = b.shape(1);
  float* data = new float[M * N > 0 ? M * N : 1];
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<float*>(p); });
  OutNew out(data, {M, N}, owner);
  if (M * N > 0) gemm_binding(a, b, Out2(data, {M, N}), std::nullopt, bias, std::nullopt, 1.0f, 0.0f, act, threads);
  return out;
}

// Byte range [lo, hi) spanned by a 2-D view (strides may be negative).
template <class T>
std::pair<const char*, const char*> span2d(const T& x) {
  const char* base = reinterpret_cast<const char*>(x.data());
  const char* lo = base;
  const char* hi = base + sizeof(float);
  for (size_t d = 0; d < 2; ++d) {
    if (x.shape(d) == 0) return {base, base};
    const int64_t ext = (static_cast<int64_t>(x.shape(d)) - 1) * x.stride(d) * static_cast<int64_t>(sizeof(float));
    if (ext < 0) lo += ext; else hi += ext;
  }
  return {lo, hi};
}

template <class T, class U>
bool overlaps(const T& x, const U& y) {
  auto a = span2d(x);
  auto b = span2d(y);
  return a.first < b.second && b.first < a.second;
}

// Fast path with a caller's `out`: false when out overlaps an input, its
// rows are not contiguous or do not follow each other at a positive stride
// of at least a row (negative, zero: the Python layer then takes its general path).
bool matmul_into_binding(In2 a, In2 b, std::optional<In1> bias, Out2 out, int act, int threads) {
  if (out.shape(0) != a.shape(0) || out.shape(1) != b.shape(1)) throw std::invalid_argument("out: wrong shape");
  if (out.shape(1) > 1 && out.stride(1) != 1) return false;
  if (out.shape(0) > 1 && out.stride(0) < std::max<int64_t>(static_cast<int64_t>(out.shape(1)), 1)) return false;
  if (overlaps(out, a) || overlaps(out, b)) return false;
  if (bias && overlaps(out, *bias)) return false;
  if (out.shape(0) * out.shape(1) == 0) return true;
  gemm_binding(a, b, out, std::nullopt, bias, std::nullopt, 1.0f, 0.0f, act, threads);
  return true;
}

// The whole common call in one step: returns None whenever anything is
// unusual (a dtype, rank, shape, stride, read-only or overlapping `out`), and
// the Python layer then takes its checked path, which explains the problem.
// No implicit conversions: a float64 array must not be silently copied.
nb::object matmul_fast_binding(nb::handle a_h, nb::handle b_h, nb::handle bias_h, nb::handle out_h, int act,
                               int threads) {
  In2 a, b;
  if (!nb::try_cast(a_h, a, false) || !nb::try_cast(b_h, b, false)) return nb::none();
  if (a.shape(1) != b.shape(0)) return nb::none();
  std::optional<In1> bias;
  if (!bias_h.is_none()) {
    In1 v;
    if (!nb::try_cast(bias_h, v, false) || v.shape(0) != b.shape(1) || (v.shape(0) > 1 && v.stride(0) != 1))
      return nb::none();
    bias = v;
  }
  if (out_h.is_none()) {
    return nb::cast(matmul_new_binding(a, b, bias, act, threads));
  }
  Out2 out;
  if (!nb::try_cast(out_h, out, false)) return nb::none();
  if (out.shape(0) != a.shape(0) || out.shape(1) != b.shape(1)) return nb::none();
  if (!matmul_into_binding(a, b, bias, out, act, threads)) return nb::none();
  return nb::borrow(out_h);
}

using In4 = nb::ndarray<const float, nb::ndim<4>, nb::c_contig, nb::device::cpu>;
using Out4 = nb::ndarray<float, nb::ndim<4>, nb::c_contig, nb::device::cpu>;
using In1c = nb::ndarray<const float, nb::ndim<1>, nb::c_contig, nb::device::cpu>;

// A layer's shapes and attributes (no tensors). choice: [algorithm mask,
// direct tile, input, order, reduction blocks] (Conv2dArgs::algorithms, direct_*).
autoconfig::Conv2dArgs conv_layer(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                                  const std::vector<int64_t>& strides, const std::vector<int64_t>& pads,
                                  const std::vector<int64_t>& dilations, int64_t groups, int threads,
                                  const std::vector<int64_t>& choice, float tolerance) {
  autoconfig::Conv2dArgs a;
  a.N = N; a.C = C; a.H = H; a.W = W;
  a.K = K; a.R = R; a.S = S;
  a.stride_h = strides.at(0); a.stride_w = strides.at(1);
  a.pad_top = pads.at(0); a.pad_left = pads.at(1); a.pad_bottom = pads.at(2); a.pad_right = pads.at(3);
  a.dilation_h = dilations.at(0); a.dilation_w = dilations.at(1);
  a.groups = groups;
  a.threads = threads;
  a.algorithms = static_cast<unsigned>(choice.at(0));
  a.direct_tile = static_cast<int>(choice.at(1));
  a.direct_input = static_cast<int>(choice.at(2));
  a.direct_order = static_cast<int>(choice.at(3));
  a.direct_cblocks = static_cast<int>(choice.at(4));
  a.tolerance = tolerance;
  return a;
}

// Dense NCHW / KCRS tensors; the Python layer checks shapes and makes them contiguous.
void conv2d_binding(In4 x, In4 w, Out4 y, std::optional<In1c> bias, std::optional<In1c> scale,
                    std::optional<In1c> shift, std::optional<In4> residual, std::vector<int64_t> strides,
                    std::vector<int64_t> pads, std::vector<int64_t> dilations, int64_t groups, int act,
                    float clip_lo, float clip_hi, int threads, std::vector<int64_t> algorithms, float tolerance) {
  autoconfig::Conv2dArgs a = conv_layer(x.shape(0), x.shape(1), x.shape(2), x.shape(3), w.shape(0), w.shape(2),
                                        w.shape(3), strides, pads, dilations, groups, threads, algorithms, tolerance);
  a.x = x.data(); a.w = w.data(); a.y = y.data();
  a.bias = bias ? bias->data() : nullptr;
  a.scale = scale ? scale->data() : nullptr;
  a.shift = shift ? shift->data() : nullptr;
  a.residual = residual ? residual->data() : nullptr;
  a.act = static_cast<autoconfig::Activation>(act);
  a.clip_lo = clip_lo;
  a.clip_hi = clip_hi;
  if (static_cast<int64_t>(w.shape(1)) * a.groups != a.C) throw std::invalid_argument("w: wrong C/groups");
  if (static_cast<int64_t>(y.shape(0)) != a.N || static_cast<int64_t>(y.shape(1)) != a.K ||
      static_cast<int64_t>(y.shape(2)) != autoconfig::conv2d_output_h(a) ||
      static_cast<int64_t>(y.shape(3)) != autoconfig::conv2d_output_w(a))
    throw std::invalid_argument("out: wrong shape");
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = autoconfig::conv2d(a);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

// A prepared layer: weights folded and re-laid out once (PreparedConv2d).
struct PreparedConvBinding {
  autoconfig::PreparedConv2d layer;
  int64_t C = 0, H = 0, W = 0, K = 0, Ho = 0, Wo = 0;
};

autoconfig::ConvLayout layout_of(int code) {
  if (code != 0 && code != 1) throw std::invalid_argument("layout: expected 0 (nchw) or 1 (blocked)");
  return static_cast<autoconfig::ConvLayout>(code);
}

PreparedConvBinding* prepare_conv2d_binding(In4 w, std::optional<In1c> bias, std::optional<In1c> scale,
                                            std::optional<In1c> shift, int64_t C, int64_t H, int64_t W,
                                            std::vector<int64_t> strides, std::vector<int64_t> pads,
                                            std::vector<int64_t> dilations, int64_t groups, int act,
                                            float clip_lo, float clip_hi, int threads, std::vector<int64_t> algorithms,
                                            float tolerance, int x_layout, int y_layout) {
  autoconfig::Conv2dArgs a = conv_layer(1, C, H, W, w.shape(0), w.shape(2), w.shape(3), strides, pads, dilations,
                                        groups, threads, algorithms, tolerance);
  a.w = w.data();
  a.bias = bias ? bias->data() : nullptr;
  a.scale = scale ? scale->data() : nullptr;
  a.shift = shift ? shift->data() : nullptr;
  a.act = static_cast<autoconfig::Activation>(act);
  a.clip_lo = clip_lo;
  a.clip_hi = clip_hi;
  a.x_layout = layout_of(x_layout);
  a.y_layout = layout_of(y_layout);
  auto* p = new PreparedConvBinding;
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = p->layer.prepare(a);
  }
  if (!s.ok()) {
    delete p;
    throw std::invalid_argument(s.message);
  }
  p->C = C; p->H = H; p->W = W; p->K = a.K;
  p->Ho = autoconfig::conv2d_output_h(a);
  p->Wo = autoconfig::conv2d_output_w(a);
  return p;
}

using AnyIn = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using AnyOut = nb::ndarray<float, nb::c_contig, nb::device::cpu>;

// Floats of one image of C channels of H x W in a layout.
int64_t image_floats(autoconfig::ConvLayout l, int64_t C, int64_t H, int64_t W) {
  const int64_t B = autoconfig::conv2d_block();
  return (l == autoconfig::ConvLayout::Blocked ? (C + B - 1) / B * B : C) * H * W;
}

// x, y, residual: dense tensors of N images in the prepared layouts (the Python layer checks their shapes).
void prepared_run_binding(const PreparedConvBinding& p, AnyIn x, int64_t N, AnyOut y, std::optional<AnyIn> residual,
                          int threads) {
  const autoconfig::Conv2dArgs& l = p.layer.layer();
  if (static_cast<int64_t>(x.size()) != N * image_floats(l.x_layout, p.C, p.H, p.W))
    throw std::invalid_argument("x: size does not match the prepared layer");
  const int64_t out = N * image_floats(l.y_layout, p.K, p.Ho, p.Wo);
  if (static_cast<int64_t>(y.size()) != out) throw std::invalid_argument("out: wrong size");
  if (residual && static_cast<int64_t>(residual->size()) != out) throw std::invalid_argument("residual: wrong size");
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = p.layer.run(x.data(), N, y.data(), residual ? residual->data() : nullptr, threads);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

// Layout conversions of N images (x NCHW, xb blocked); sizes checked against N, C, H, W.
void to_blocked_binding(AnyIn x, AnyOut xb, int64_t N, int64_t C, int64_t H, int64_t W, int threads) {
  if (static_cast<int64_t>(x.size()) != N * C * H * W ||
      static_cast<int64_t>(xb.size()) != N * image_floats(autoconfig::ConvLayout::Blocked, C, H, W))
    throw std::invalid_argument("to_blocked: sizes do not match N, C, H, W");
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = autoconfig::conv2d_to_blocked(x.data(), N, C, H, W, xb.data(), threads);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

void from_blocked_binding(AnyIn xb, AnyOut x, int64_t N, int64_t C, int64_t H, int64_t W, int threads) {
  if (static_cast<int64_t>(x.size()) != N * C * H * W ||
      static_cast<int64_t>(xb.size()) != N * image_floats(autoconfig::ConvLayout::Blocked, C, H, W))
    throw std::invalid_argument("from_blocked: sizes do not match N, C, H, W");
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = autoconfig::conv2d_from_blocked(xb.data(), N, C, H, W, x.data(), threads);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

nb::dict conv2d_choice_binding(int64_t N, int64_t C, int64_t H, int64_t W, int64_t K, int64_t R, int64_t S,
                               std::vector<int64_t> strides, std::vector<int64_t> pads, std::vector<int64_t> dilations,
                               int64_t groups, int threads, std::vector<int64_t> algorithms, float tolerance,
                               int x_layout, int y_layout, bool prepared, bool scale) {
  autoconfig::Conv2dArgs a = conv_layer(N, C, H, W, K, R, S, strides, pads, dilations, groups, threads, algorithms,
                                        tolerance);
  a.x_layout = layout_of(x_layout);
  a.y_layout = layout_of(y_layout);
  a.w = reinterpret_cast<const float*>(&a);   // the choice never reads tensors
  if (scale) a.scale = a.w;                   // only whether there is one matters
  const auto c = autoconfig::conv2d_choice(a, prepared);
  nb::dict d;
  d["algorithm"] = c.algorithm;
  d["tile"] = c.tile;
  d["plain_input"] = c.plain_input;
  d["groups_inner"] = c.groups_inner;
  d["chunk"] = c.chunk;
  d["cblocks"] = c.cblocks;
  d["pack_groups"] = c.pack_groups;
  d["threads"] = c.threads;
  d["planned"] = c.planned;
  d["prepared"] = c.prepared;
  nb::dict est, prep;
  for (const auto& e : c.estimates) est[e.first.c_str()] = e.second;
  for (const auto& e : c.prepare) prep[e.first.c_str()] = e.second;
  d["estimates"] = est;
  d["prepare"] = prep;
  return d;
}

// conv2d()'s weight preparation alone (bench --op conv2d times it); returns
// the seconds of its fold and re-layout (without checks and model choice).
double conv2d_prepare_weights_binding(In4 w, std::optional<In1c> scale, int64_t C, int64_t H, int64_t W,
                                      std::vector<int64_t> strides, std::vector<int64_t> pads,
                                      std::vector<int64_t> dilations, int64_t groups, int threads,
                                      std::vector<int64_t> algorithms) {
  autoconfig::Conv2dArgs a = conv_layer(1, C, H, W, w.shape(0), w.shape(2), w.shape(3), strides, pads, dilations,
                                        groups, threads, algorithms, 0.0f);
  if (static_cast<int64_t>(w.shape(1)) * a.groups != a.C) throw std::invalid_argument("w: wrong C/groups");
  a.w = w.data();
  a.scale = scale ? scale->data() : nullptr;
  autoconfig::Status s;
  double pack_seconds = 0.0;
  {
    nb::gil_scoped_release release;
    s = autoconfig::conv2d_prepare_weights(a, &pack_seconds);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
  return pack_seconds;
}

nb::dict gemm_choice_binding(int64_t M, int64_t N, int64_t K, int act, int threads) {
  autoconfig::GemmArgs g;
  g.M = M;
  g.N = N;
  g.K = K;
  g.act = static_cast<autoconfig::Activation>(act);
  g.threads = threads;
  const auto c = autoconfig::gemm_choice(g);
  nb::dict d;
  d["kernel"] = c.kernel;
  d["threads"] = c.threads;
  d["specialized"] = c.specialized;
  return d;
}

// Attention on 4-D views (batch, head, row, d) of any strides with the last
// axis contiguous (runtime/attention.py makes them so): a packed projection's
// Q, K, V are such views, as is an output written with its heads merged.
using In4s = nb::ndarray<const float, nb::ndim<4>, nb::device::cpu>;
using Out4s = nb::ndarray<float, nb::ndim<4>, nb::device::cpu>;

void attention_binding(In4s q, In4s k, In4s v, std::optional<In4s> mask, Out4s o, float scale, int threads,
                       int algorithm, int64_t key_block, bool skip_zero_keys) {
  autoconfig::AttentionArgs a;
  a.B = static_cast<int64_t>(q.shape(0));
  a.H = static_cast<int64_t>(q.shape(1));
  a.S = static_cast<int64_t>(q.shape(2));
  a.D = static_cast<int64_t>(q.shape(3));
  a.Sk = static_cast<int64_t>(k.shape(2));
  auto same = [&](const auto& x, int64_t rows, const char* name) {
    if (static_cast<int64_t>(x.shape(0)) != a.B || static_cast<int64_t>(x.shape(1)) != a.H ||
        static_cast<int64_t>(x.shape(2)) != rows || static_cast<int64_t>(x.shape(3)) != a.D)
      throw std::invalid_argument(std::string(name) + ": shape does not match q");
    if (a.D > 1 && x.stride(3) != 1) throw std::invalid_argument(std::string(name) + ": last axis must be contiguous");
  };
  same(k, a.Sk, "k");
  same(v, a.Sk, "v");
  same(o, a.S, "out");
  a.q = q.data();
  a.q_batch = q.stride(0), a.q_head = q.stride(1), a.q_row = q.stride(2);
  a.k = k.data();
  a.k_batch = k.stride(0), a.k_head = k.stride(1), a.k_row = k.stride(2);
  a.v = v.data();
  a.v_batch = v.stride(0), a.v_head = v.stride(1), a.v_row = v.stride(2);
  a.o = o.data();
  a.o_batch = o.stride(0), a.o_head = o.stride(1), a.o_row = a.S > 1 ? o.stride(2) : a.D;
  if (mask) {
    if (static_cast<int64_t>(mask->shape(0)) != a.B || static_cast<int64_t>(mask->shape(1)) != a.H ||
        static_cast<int64_t>(mask->shape(2)) != a.S || static_cast<int64_t>(mask->shape(3)) != a.Sk)
      throw std::invalid_argument("mask: shape must be (B, H, S, Sk)");
    if (a.Sk > 1 && mask->stride(3) != 1) throw std::invalid_argument("mask: last axis must be contiguous");
    a.mask = mask->data();
    a.mask_batch = mask->stride(0), a.mask_head = mask->stride(1), a.mask_row = mask->stride(2);
  }
  a.scale = scale;
  a.threads = threads;
  a.algorithm = static_cast<autoconfig::AttentionAlgorithm>(algorithm);
  a.key_block = key_block;
  a.skip_zero_keys = skip_zero_keys;
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = autoconfig::attention(a);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

nb::dict attention_choice_binding(int64_t B, int64_t H, int64_t S, int64_t Sk, int64_t D, int threads, int algorithm,
                                  int64_t key_block) {
  autoconfig::AttentionArgs a;
  a.B = B, a.H = H, a.S = S, a.Sk = Sk, a.D = D;
  a.threads = threads;
  a.algorithm = static_cast<autoconfig::AttentionAlgorithm>(algorithm);
  a.key_block = key_block;
  const auto c = autoconfig::attention_choice(a);
  nb::dict d;
  d["algorithm"] = c.algorithm;
  d["threads"] = c.threads;
  d["key_block"] = c.key_block;
  d["tile_rows"] = c.tile_rows;
  d["fused_s"] = c.fused_s;
  d["unfused_s"] = c.unfused_s;
  d["fused_terms"] = c.fused_terms;
  d["unfused_terms"] = c.unfused_terms;
  return d;
}

void gemm_layernorm_binding(In2 a, In2 b, Out2 c, std::optional<In2> residual, std::optional<In1> bias, In1 gamma,
                            std::optional<In1> beta, float epsilon, int threads, int algorithm) {
  autoconfig::GemmArgs g;
  g.M = static_cast<int64_t>(a.shape(0));
  g.K = static_cast<int64_t>(a.shape(1));
  g.N = static_cast<int64_t>(b.shape(1));
  if (static_cast<int64_t>(b.shape(0)) != g.K) throw std::invalid_argument("b: rows must equal a's columns");
  if (static_cast<int64_t>(c.shape(0)) != g.M || static_cast<int64_t>(c.shape(1)) != g.N)
    throw std::invalid_argument("out: shape must be (M, N)");
  if (g.N > 1 && c.stride(1) != 1) throw std::invalid_argument("out: last axis must be contiguous");
  g.A = a.data(), g.rs_a = a.stride(0), g.cs_a = a.stride(1);
  g.B = b.data(), g.rs_b = b.stride(0), g.cs_b = b.stride(1);
  g.C = c.data();
  g.ldc = g.M > 1 ? c.stride(0) : g.N;
  if (residual) {
    if (static_cast<int64_t>(residual->shape(0)) != g.M || static_cast<int64_t>(residual->shape(1)) != g.N ||
        (g.N > 1 && residual->stride(1) != 1))
      throw std::invalid_argument("residual: must be (M, N) with a contiguous last axis");
    g.c_in = residual->data();
    g.ld_cin = g.M > 1 ? residual->stride(0) : g.N;
    g.beta = 1.0f;
  }
  auto vec = [&](const In1& x, const char* name) {
    if (static_cast<int64_t>(x.shape(0)) != g.N || (g.N > 1 && x.stride(0) != 1))
      throw std::invalid_argument(std::string(name) + ": must be a contiguous vector of length N");
    return x.data();
  };
  if (bias) g.bias_col = vec(*bias, "bias");
  autoconfig::LayerNormEpilogue ln;
  ln.gamma = vec(gamma, "gamma");
  if (beta) ln.beta = vec(*beta, "beta");
  ln.epsilon = epsilon;
  ln.algorithm = static_cast<autoconfig::AttentionAlgorithm>(algorithm);
  g.threads = threads;
  autoconfig::Status s;
  {
    nb::gil_scoped_release release;
    s = autoconfig::gemm_layernorm(g, ln);
  }
  if (!s.ok()) throw std::invalid_argument(s.message);
}

nb::dict gemm_layernorm_choice_binding(int64_t M, int64_t N, int64_t K, int threads, int algorithm) {
  autoconfig::GemmArgs g;
  g.M = M, g.N = N, g.K = K;
  g.threads = threads;
  float one = 1.0f;
  autoconfig::LayerNormEpilogue ln;
  ln.gamma = &one;  // only checked for presence
  ln.algorithm = static_cast<autoconfig::AttentionAlgorithm>(algorithm);
  const auto c = autoconfig::gemm_layernorm_choice(g, ln);
  nb::dict d;
  d["algorithm"] = c.algorithm;
  d["block_rows"] = c.block_rows;
  d["threads"] = c.threads;
  d["fused_s"] = c.fused_s;
  d["unfused_s"] = c.unfused_s;
  return d;
}

// An .acmodel executor. The Python layer (runtime/model.py) checks dtypes and
// shapes first; the binding checks element counts again so a bad call is an
// exception, never a crash.
using InAny = nb::ndarray<nb::ro, nb::c_contig, nb::device::cpu>;  // float32, or int64 where the model says
using OutF = nb::ndarray<float, nb::c_contig, nb::device::cpu>;

struct ModelBinding {
  std::unique_ptr<autoconfig::Model> m;

  void gather(const std::vector<InAny>& xs, const std::vector<OutF>& ys, std::vector<const void*>* in,
              std::vector<float*>* out) const {
    if (static_cast<int>(xs.size()) != m->num_inputs())
      throw std::invalid_argument("the model takes " + std::to_string(m->num_inputs()) + " inputs, got " +
                                  std::to_string(xs.size()));
    if (static_cast<int>(ys.size()) != m->num_outputs())
      throw std::invalid_argument("the model has " + std::to_string(m->num_outputs()) + " outputs, got " +
                                  std::to_string(ys.size()) + " buffers");
    for (size_t i = 0; i < xs.size(); ++i) {
      const bool i64 = m->input_dtype(static_cast<int>(i)) == autoconfig::DType::Int64;
      if (xs[i].dtype() != (i64 ? nb::dtype<int64_t>() : nb::dtype<float>()))
        throw std::invalid_argument("input '" + m->input_name(static_cast<int>(i)) + "' must be " +
                                    (i64 ? "int64" : "float32"));
      if (static_cast<int64_t>(xs[i].size()) != m->input_size(static_cast<int>(i)))
        throw std::invalid_argument("input '" + m->input_name(static_cast<int>(i)) + "' needs " +
                                    std::to_string(m->input_size(static_cast<int>(i))) + " elements");
      in->push_back(xs[i].data());
    }
    for (size_t i = 0; i < ys.size(); ++i) {
      if (static_cast<int64_t>(ys[i].size()) != m->output_size(static_cast<int>(i)))
        throw std::invalid_argument("output '" + m->output_name(static_cast<int>(i)) + "' needs " +
                                    std::to_string(m->output_size(static_cast<int>(i))) + " elements");
      out->push_back(ys[i].data());
    }
  }

  void run(const std::vector<InAny>& xs, const std::vector<OutF>& ys, int threads) const {
    std::vector<const void*> in;
    std::vector<float*> out;
    gather(xs, ys, &in, &out);
    autoconfig::Status st;
    {
      nb::gil_scoped_release release;
      st = m->run(in.data(), out.data(), threads);
    }
    if (!st.ok()) throw std::runtime_error(st.message);
  }

  std::vector<double> run_profiled(const std::vector<InAny>& xs, const std::vector<OutF>& ys, int threads) const {
    std::vector<const void*> in;
    std::vector<float*> out;
    gather(xs, ys, &in, &out);
    autoconfig::Status st;
    std::vector<double> ms;
    {
      nb::gil_scoped_release release;
      st = m->run_profiled(in.data(), out.data(), threads, &ms);
    }
    if (!st.ok()) throw std::runtime_error(st.message);
    return ms;
  }

  std::vector<std::string> names(bool inputs) const {
    std::vector<std::string> r;
    for (int i = 0; i < (inputs ? m->num_inputs() : m->num_outputs()); ++i)
      r.push_back(inputs ? m->input_name(i) : m->output_name(i));
    return r;
  }
  std::vector<std::string> input_dtypes() const {
    std::vector<std::string> r;
    for (int i = 0; i < m->num_inputs(); ++i)
      r.push_back(m->input_dtype(i) == autoconfig::DType::Int64 ? "int64" : "float32");
    return r;
  }
  std::vector<std::vector<int64_t>> shapes(bool inputs) const {
    std::vector<std::vector<int64_t>> r;
    for (int i = 0; i < (inputs ? m->num_inputs() : m->num_outputs()); ++i)
      r.push_back(inputs ? m->input_shape(i) : m->output_shape(i));
    return r;
  }
  nb::list nodes() const {
    nb::list r;
    for (int i = 0; i < m->num_nodes(); ++i) {
      nb::dict d;
      d["name"] = m->node_name(i);
      d["op"] = m->node_op(i);
      d["threads"] = m->node_threads(i);
      d["algorithm"] = m->node_algorithm(i);
      r.append(d);
    }
    return r;
  }
};

ModelBinding model_load_binding(const std::string& path) {
  autoconfig::Status st;
  ModelBinding b;
  {
    nb::gil_scoped_release release;
    b.m = autoconfig::Model::load(path, &st);
  }
  if (!b.m) throw std::invalid_argument(st.message);
  return b;
}

ModelBinding model_load_bytes_binding(nb::bytes data) {
  autoconfig::Status st;
  ModelBinding b;
  b.m = autoconfig::Model::load_from_memory(data.c_str(), data.size(), &st);
  if (!b.m) throw std::invalid_argument(st.message);
  return b;
}

}  // namespace

NB_MODULE(_autoconfig_ext, m) {
  m.doc() = "autoconfig compiled kernels (generated for this build's target)";
  m.def("gemm", &gemm_binding, "a"_a, "b"_a, "c"_a, "c_in"_a.none(), "bias_col"_a.none(),
        "bias_row"_a.none(), "alpha"_a, "beta"_a, "act"_a, "threads"_a);
  m.def("matmul_new", &matmul_new_binding, "a"_a, "b"_a, "bias"_a.none(), "act"_a, "threads"_a);
  m.def("matmul_into", &matmul_into_binding, "a"_a, "b"_a, "bias"_a.none(), "out"_a, "act"_a, "threads"_a);
  m.def("matmul_fast", &matmul_fast_binding, "a"_a.none(), "b"_a.none(), "bias"_a.none(), "out"_a.none(),
        "act"_a, "threads"_a);
  m.def("conv2d", &conv2d_binding, "x"_a, "w"_a, "y"_a, "bias"_a.none(), "scale"_a.none(), "shift"_a.none(),
        "residual"_a.none(), "strides"_a, "pads"_a, "dilations"_a, "groups"_a, "act"_a, "clip_lo"_a, "clip_hi"_a,
        "threads"_a, "algorithms"_a, "tolerance"_a);
  m.def("conv2d_choice", &conv2d_choice_binding, "N"_a, "C"_a, "H"_a, "W"_a, "K"_a, "R"_a, "S"_a, "strides"_a, "pads"_a,
        "dilations"_a, "groups"_a, "threads"_a, "algorithms"_a, "tolerance"_a = 0.0f, "x_layout"_a = 0,
        "y_layout"_a = 0, "prepared"_a = true, "scale"_a = false);
  m.def("conv2d_prepare_weights", &conv2d_prepare_weights_binding, "w"_a, "scale"_a.none(), "C"_a, "H"_a, "W"_a,
        "strides"_a, "pads"_a, "dilations"_a, "groups"_a, "threads"_a, "algorithms"_a);
  nb::class_<PreparedConvBinding>(m, "PreparedConv2d")
      .def("run", &prepared_run_binding, "x"_a, "N"_a, "y"_a, "residual"_a.none(), "threads"_a)
      .def_prop_ro("algorithm", [](const PreparedConvBinding& p) { return std::string(p.layer.algorithm()); });
  m.def("prepare_conv2d", &prepare_conv2d_binding, "w"_a, "bias"_a.none(), "scale"_a.none(), "shift"_a.none(),
        "C"_a, "H"_a, "W"_a, "strides"_a, "pads"_a, "dilations"_a, "groups"_a, "act"_a, "clip_lo"_a, "clip_hi"_a,
        "threads"_a, "algorithms"_a, "tolerance"_a, "x_layout"_a = 0, "y_layout"_a = 0, nb::rv_policy::take_ownership);
  nb::class_<ModelBinding>(m, "Model")
      .def("run", &ModelBinding::run, "inputs"_a, "outputs"_a, "threads"_a)
      .def("run_profiled", &ModelBinding::run_profiled, "inputs"_a, "outputs"_a, "threads"_a)
      .def_prop_ro("name", [](const ModelBinding& b) { return b.m->name(); })
      .def_prop_ro("input_names", [](const ModelBinding& b) { return b.names(true); })
      .def_prop_ro("output_names", [](const ModelBinding& b) { return b.names(false); })
      .def_prop_ro("input_shapes", [](const ModelBinding& b) { return b.shapes(true); })
      .def_prop_ro("input_dtypes", &ModelBinding::input_dtypes)
      .def_prop_ro("output_shapes", [](const ModelBinding& b) { return b.shapes(false); })
      .def_prop_ro("nodes", &ModelBinding::nodes)
      .def_prop_ro("header_json", [](const ModelBinding& b) { return b.m->header_json(); })
      .def_prop_ro("arena_floats", [](const ModelBinding& b) { return b.m->arena_floats(); })
      .def("memory", [](const ModelBinding& b) {
        const autoconfig::ModelMemory mm = b.m->memory();
        nb::dict d;
        d["arena"] = mm.arena;
        d["prepared"] = mm.prepared;
        d["constants"] = mm.constants;
        d["released"] = mm.released;
        d["total"] = mm.total();
        return d;
      });
  m.def("model_load", &model_load_binding, "path"_a);
  m.def("model_load_bytes", &model_load_bytes_binding, "data"_a);
  m.def("conv2d_block", &autoconfig::conv2d_block);
  m.def("conv2d_direct_tiles", &autoconfig::conv2d_direct_tiles);
  m.def("conv2d_layout_conversions", &autoconfig::conv2d_layout_conversions);
  m.def("conv2d_to_blocked", &to_blocked_binding, "x"_a, "xb"_a, "N"_a, "C"_a, "H"_a, "W"_a, "threads"_a);
  m.def("conv2d_from_blocked", &from_blocked_binding, "xb"_a, "x"_a, "N"_a, "C"_a, "H"_a, "W"_a, "threads"_a);
  m.def("attention", &attention_binding, "q"_a, "k"_a, "v"_a, "mask"_a.none(), "out"_a, "scale"_a, "threads"_a,
        "algorithm"_a, "key_block"_a, "skip_zero_keys"_a = true);
  m.def("attention_choice", &attention_choice_binding, "B"_a, "H"_a, "S"_a, "Sk"_a, "D"_a, "threads"_a = 0,
        "algorithm"_a = 0, "key_block"_a = 0);
  m.def("gemm_layernorm", &gemm_layernorm_binding, "a"_a, "b"_a, "out"_a, "residual"_a.none(), "bias"_a.none(),
        "gamma"_a, "beta"_a.none(), "epsilon"_a, "threads"_a, "algorithm"_a);
  m.def("gemm_layernorm_choice", &gemm_layernorm_choice_binding, "M"_a, "N"_a, "K"_a, "threads"_a = 0,
        "algorithm"_a = 0);
  m.def("gemm_choice", &gemm_choice_binding, "M"_a, "N"_a, "K"_a, "act"_a = 0, "threads"_a = 0);
  m.def("missing_cpu_features", &autoconfig::missing_cpu_features);
  m.def("isa_error", [] { return autoconfig::check_isa().message; });
  m.def("cpu_features", [] { return autoconfig::cpu_features(); });
  m.def("build_variants", [] {
    nb::list out;
    for (const auto& v : autoconfig::build_variants()) {
      nb::dict d;
      d["target"] = v.target;
      d["isa"] = v.isa;
      d["level"] = v.level;
      d["required_features"] = v.required;
      d["active"] = v.active;
      out.append(d);
    }
    return out;
  });
  m.def("build_isa", [] { return autoconfig::build_info().isa; });
  m.def("build_target", [] { return autoconfig::build_info().target; });
  m.def("required_features", [] { return autoconfig::build_info().required; });
  m.def("host_profile_json", [] { return std::string(autoconfig::host_profile_json()); });
  m.def("plans_json", [] { return std::string(autoconfig::plans_json()); });
}
