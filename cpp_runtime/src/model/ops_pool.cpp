// max_pool, avg_pool, global_avg_pool, global_max_pool in nchw and nchw{B}c.
//
// Both layouts are walked as planes of H x W pixels of L lanes: nchw is
// N*C planes of one lane, nchw{B}c is N*ceil(C/B) planes of B lanes (the
// lane loop is the vector loop). Window bounds per output row and column are
// computed once at load.
#include <cmath>

#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

constexpr int kMaxLanes = 64;
constexpr float kInf = __builtin_inff();

// max that keeps a NaN from either side, written as two selects (maxss-like,
// then the NaN) so that scalar code has no unpredictable branch
inline float max_nan(float acc, float v) {
  const float m = v > acc ? v : acc;
  return v != v ? v : m;
}

// Taps [k0, k1) of a window that fall inside the input, and the divisor's share.
struct Window { int64_t start, k0, k1, count_pad; };

std::vector<Window> windows(int64_t out, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  // closed forms (a hostile file's kernel size must not make loading slow)
  std::vector<Window> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    Window& x = w[static_cast<size_t>(o)];
    x.start = o * s - pb;
    // taps t with 0 <= start + t d < in
    x.k0 = x.start >= 0 ? 0 : std::min(k, (-x.start + d - 1) / d);
    const int64_t last_in = in - 1 - x.start;     // t d <= last_in
    x.k1 = last_in < 0 ? x.k0 : std::max(x.k0, std::min(k, last_in / d + 1));
    // taps inside the padded extent [-pb, in + pe): start >= -pb always
    const int64_t last_pad = in + pe - 1 - x.start;
    x.count_pad = last_pad < 0 ? 0 : std::min(k, last_pad / d + 1);
  }
  return w;
}

class PoolOp : public Op {
 public:
  bool max_ = true, include_pad_ = false;
  int64_t planes_ = 0, H_ = 0, W_ = 0, Ho_ = 0, Wo_ = 0, L_ = 1, dh_ = 1, dw_ = 1;
  std::vector<Window> wh_, ww_;

  Status run(const OpRun& r) const override {
    // nchw (1 lane): plain scalar code instead of a one-trip lane loop per tap
    // (measured here: a 3x3 max_pool of 64 x 111 x 111, 14.7 ms -> less); the
    // blocked lanes stay a run-time loop, which the vectorizer already handles
    return L_ == 1 ? run_lanes<1>(r) : run_lanes<0>(r);
  }

  template <int LC>
  Status run_lanes(const OpRun& r) const {
    const float* x = r.in[0];
    float* y = r.out[0];
    const int64_t L = LC > 0 ? LC : L_;
    parallel_for(r.threads, planes_ * Ho_, std::max<int64_t>(1, 4096 / (Wo_ * L)), [&](int64_t r0, int64_t r1) {
      float acc[kMaxLanes];
      for (int64_t row = r0; row < r1; ++row) {
        const int64_t p = row / Ho_, oh = row % Ho_;
        const Window& h = wh_[static_cast<size_t>(oh)];
        const float* xp = x + p * H_ * W_ * L;
        float* yp = y + (p * Ho_ + oh) * Wo_ * L;
        for (int64_t ow = 0; ow < Wo_; ++ow) {
          const Window& w = ww_[static_cast<size_t>(ow)];
          for (int64_t l = 0; l < L; ++l) acc[l] = max_ ? -kInf : 0.0f;
          for (int64_t kh = h.k0; kh < h.k1; ++kh) {
            const float* xr = xp + (h.start + kh * dh_) * W_ * L;
            for (int64_t kw = w.k0; kw < w.k1; ++kw) {
              const float* xv = xr + (w.start + kw * dw_) * L;
              if (max_) {
                for (int64_t l = 0; l < L; ++l) acc[l] = max_nan(acc[l], xv[l]);
              } else {
                for (int64_t l = 0; l < L; ++l) acc[l] += xv[l];
              }
            }
          }
          float* yv = yp + ow * L;
          if (max_) {
            for (int64_t l = 0; l < L; ++l) yv[l] = acc[l];
          } else {
            const int64_t n = include_pad_ ? h.count_pad * w.count_pad : (h.k1 - h.k0) * (w.k1 - w.k0);
            const float inv = n > 0 ? 1.0f / static_cast<float>(n) : 0.0f;
            for (int64_t l = 0; l < L; ++l) yv[l] = acc[l] * inv;
          }
        }
      }
    });
    return Status::Ok();
  }
};

class GlobalPoolOp : public Op {
 public:
  bool max_ = true;
  int64_t N_ = 0, C_ = 0, HW_ = 0, L_ = 1, CB_ = 0;
  bool out_nchw_from_blocked_ = false;

  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    const int64_t L = L_, HW = HW_;
    const float inv = HW > 0 ? 1.0f / static_cast<float>(HW) : 0.0f;
    const int64_t planes = L == 1 ? N_ * C_ : N_ * CB_;
    parallel_for(r.threads, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, HW * L)), [&](int64_t p0, int64_t p1) {
      float res[kMaxLanes];
      for (int64_t p = p0; p < p1; ++p) {
        const float* xp = x + p * HW * L;
        if (L == 1) {
          // eight partial results: a reduction the vectorizer keeps in one register
          float a[8];
          for (int j = 0; j < 8; ++j) a[j] = max_ ? -kInf : 0.0f;
          int64_t i = 0;
          if (max_) {
            for (; i + 8 <= HW; i += 8)
              for (int j = 0; j < 8; ++j) a[j] = max_nan(a[j], xp[i + j]);
            for (; i < HW; ++i) a[0] = max_nan(a[0], xp[i]);
            float m = a[0];
            for (int j = 1; j < 8; ++j) m = max_nan(m, a[j]);
            res[0] = m;
          } else {
            for (; i + 8 <= HW; i += 8)
              for (int j = 0; j < 8; ++j) a[j] += xp[i + j];
            for (; i < HW; ++i) a[0] += xp[i];
            res[0] = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) * inv;
          }
        } else {
          for (int64_t l = 0; l < L; ++l) res[l] = max_ ? -kInf : 0.0f;
          for (int64_t i = 0; i < HW; ++i) {
            const float* v = xp + i * L;
            if (max_) {
              for (int64_t l = 0; l < L; ++l) res[l] = max_nan(res[l], v[l]);
            } else {
              for (int64_t l = 0; l < L; ++l) res[l] += v[l];
            }
          }
          if (!max_)
            for (int64_t l = 0; l < L; ++l) res[l] *= inv;
        }
        if (L == 1) {
          y[p] = res[0];
        } else if (out_nchw_from_blocked_) {
          const int64_t n = p / CB_, cb = p % CB_;
          for (int64_t l = 0; l < L && cb * L + l < C_; ++l) y[n * C_ + cb * L + l] = res[l];
        } else {
          for (int64_t l = 0; l < L; ++l) y[p * L + l] = res[l];
        }
      }
    });
    return Status::Ok();
  }
};

}  // namespace

Status make_pool(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  if (X.rank() != 4 || Y.rank() != 4)
    return b.error("takes 4-D NCHW tensors, got " + shape_str(X.shape) + " -> " + shape_str(Y.shape));
  if (X.block != Y.block) return b.error("input and output layouts differ (" + X.layout_name() + ", " + Y.layout_name() + ")");
  Attrs& at = *b.attrs;
  const auto k = at.ints("kernel", {}, true);
  const auto s = at.ints("strides", {1, 1});
  const auto pads = at.ints("pads", {0, 0, 0, 0});
  const auto d = at.ints("dilations", {1, 1});
  const bool ceil_mode = at.boolean("ceil_mode", false);
  const bool include_pad = at.boolean("count_include_pad", false);
  if (!at.status().ok()) return at.status();
  if (k.size() != 2 || s.size() != 2 || pads.size() != 4 || d.size() != 2)
    return b.error("kernel, strides and dilations need 2 values, pads 4 (top, left, bottom, right)");
  constexpr int64_t kMax = int64_t{1} << 20;
  for (int i = 0; i < 2; ++i)
    if (k[i] < 1 || s[i] < 1 || d[i] < 1 || k[i] > kMax || s[i] > kMax || d[i] > kMax)
      return b.error("kernel, strides and dilations must be in [1, 2^20]");
  for (int i = 0; i < 4; ++i)
    if (pads[i] < 0 || pads[i] > kMax) return b.error("pads must be in [0, 2^20]");
  const int64_t N = X.dim(0), C = X.dim(1), H = X.dim(2), W = X.dim(3);
  if (Y.dim(0) != N || Y.dim(1) != C) return b.error("output " + shape_str(Y.shape) + " must keep N and C of " + shape_str(X.shape));
  const int64_t ins[2] = {H, W};
  for (int i = 0; i < 2; ++i) {
    const int64_t span = ins[i] + pads[i] + pads[i + 2] - ((k[i] - 1) * d[i] + 1);
    if (span < 0) return b.error("the window is larger than the padded input " + shape_str(X.shape));
    const int64_t lo = span / s[i] + 1, hi = (span + s[i] - 1) / s[i] + 1;
    const int64_t got = Y.dim(2 + i);
    // ceil_mode: ceil, or one less when the last window would start in the end padding
    if (ceil_mode ? (got < lo || got > hi) : got != lo)
      return b.error("output " + (i ? std::string("width ") : std::string("height ")) + std::to_string(got) +
                     " does not match the input, kernel, strides, pads and ceil_mode (expected " +
                     std::to_string(ceil_mode ? hi : lo) + ")");
  }
  auto* o = new PoolOp;
  op->reset(o);
  o->max_ = b.op == "max_pool";
  o->include_pad_ = include_pad;
  o->L_ = X.block ? X.block : 1;
  o->planes_ = X.block ? N * ((C + X.block - 1) / X.block) : N * C;
  o->H_ = H;
  o->W_ = W;
  o->Ho_ = Y.dim(2);
  o->Wo_ = Y.dim(3);
  o->dh_ = d[0];
  o->dw_ = d[1];
  o->wh_ = windows(o->Ho_, H, k[0], s[0], d[0], pads[0], pads[2]);
  o->ww_ = windows(o->Wo_, W, k[1], s[1], d[1], pads[1], pads[3]);
  return Status::Ok();
}

Status make_global_pool(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  if (X.rank() < 3) return b.error("input " + shape_str(X.shape) + " needs N, C and spatial axes");
  std::vector<int64_t> want = {X.dim(0), X.dim(1)};
  for (int i = 2; i < X.rank(); ++i) want.push_back(1);
  if (Y.shape != want) return b.error("output " + shape_str(Y.shape) + " must be " + shape_str(want));
  if (Y.block && Y.block != X.block)
    return b.error("output layout " + Y.layout_name() + " differs from the input's " + X.layout_name());
  auto* o = new GlobalPoolOp;
  op->reset(o);
  o->max_ = b.op == "global_max_pool";
  o->N_ = X.dim(0);
  o->C_ = X.dim(1);
  o->HW_ = product(X.shape, 2);
  o->L_ = X.block ? X.block : 1;
  o->CB_ = X.block ? (o->C_ + X.block - 1) / X.block : o->C_;
  o->out_nchw_from_blocked_ = X.block && !Y.block;
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
