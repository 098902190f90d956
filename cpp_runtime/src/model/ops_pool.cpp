// max_pool, avg_pool, global_avg_pool, global_max_pool in nchw and nchw{B}c.
//
// Both layouts are walked as planes of H x W pixels of L lanes: nchw is
// N*C planes of one lane, nchw{B}c is N*ceil(C/B) planes of B lanes (the
// lane loop is the vector loop). Window bounds per output row and column are
// computed once at load; the loops are the active variant's (loops.h).
#include <cmath>

#include "model/loops.h"
#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

constexpr int kMaxLanes = 64;

using detail::PoolWindow;

std::vector<PoolWindow> windows(int64_t out, int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe) {
  // closed forms (a hostile file's kernel size must not make loading slow)
  std::vector<PoolWindow> w(static_cast<size_t>(out));
  for (int64_t o = 0; o < out; ++o) {
    PoolWindow& x = w[static_cast<size_t>(o)];
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

// Rows of output split across the threads; the loop over a row's windows is
// the active variant's (loops.h: lane counts 1, 4, 8, 16 as constants, so a
// blocked pixel is whole vectors of the variant's ISA).
class PoolOp : public Op {
 public:
  const detail::ModelLoops* loops_ = nullptr;
  int64_t planes_ = 0;
  std::vector<PoolWindow> wh_, ww_;
  detail::PoolShape shape_{};

  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    const detail::PoolShape& s = shape_;
    parallel_for(r.threads, planes_ * s.Ho, std::max<int64_t>(1, 4096 / (s.Wo * s.L)),
                 [&](int64_t r0, int64_t r1) { loops_->pool_rows(s, x, y, r0, r1); });
    return Status::Ok();
  }
};

class GlobalPoolOp : public Op {
 public:
  const detail::ModelLoops* loops_ = nullptr;
  bool max_ = true;
  int64_t N_ = 0, C_ = 0, HW_ = 0, L_ = 1, CB_ = 0;
  bool out_nchw_from_blocked_ = false;

  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    const int64_t L = L_, HW = HW_;
    const int64_t planes = L == 1 ? N_ * C_ : N_ * CB_;
    parallel_for(r.threads, planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, HW * L)), [&](int64_t p0, int64_t p1) {
      float res[kMaxLanes];
      for (int64_t p = p0; p < p1; ++p) {
        loops_->global_pool(max_, x + p * HW * L, HW, L, res);
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
  const detail::ModelLoops* loops = nullptr;
  st = model_loops(&loops);
  if (!st.ok()) return st;
  auto* o = new PoolOp;
  op->reset(o);
  o->loops_ = loops;
  o->planes_ = X.block ? N * ((C + X.block - 1) / X.block) : N * C;
  o->wh_ = windows(Y.dim(2), H, k[0], s[0], d[0], pads[0], pads[2]);
  o->ww_ = windows(Y.dim(3), W, k[1], s[1], d[1], pads[1], pads[3]);
  detail::PoolShape& sh = o->shape_;
  sh.H = H;
  sh.W = W;
  sh.Ho = Y.dim(2);
  sh.Wo = Y.dim(3);
  sh.L = X.block ? X.block : 1;
  sh.dh = d[0];
  sh.dw = d[1];
  sh.wh = o->wh_.data();
  sh.ww = o->ww_.data();
  sh.max = b.op == "max_pool";
  sh.include_pad = include_pad;
  // the interior columns: every tap inside the row (windows() gives k0 = 0, k1 = count_pad = k there)
  sh.kw = k[1];
  sh.sw = s[1];
  auto whole = [&](int64_t ow) {
    const PoolWindow& w = o->ww_[static_cast<size_t>(ow)];
    return w.k0 == 0 && w.k1 == k[1] && w.count_pad == k[1];
  };
  sh.c0 = 0;
  while (sh.c0 < sh.Wo && !whole(sh.c0)) ++sh.c0;
  sh.c1 = sh.c0;
  while (sh.c1 < sh.Wo && whole(sh.c1)) ++sh.c1;
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
  const detail::ModelLoops* loops = nullptr;
  st = model_loops(&loops);
  if (!st.ok()) return st;
  auto* o = new GlobalPoolOp;
  op->reset(o);
  o->loops_ = loops;
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
