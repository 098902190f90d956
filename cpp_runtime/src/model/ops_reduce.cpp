// softmax / log_softmax (with an optional additive mask and scale), lrn,
// reduce_mean, layer_norm.
#include <cmath>

#include "model/ops.h"
#include "model/vmath.h"

namespace autoconfig {
namespace model {

namespace {

constexpr float kInf = __builtin_inff();
inline float max_nan(float acc, float v) { return (v > acc || v != v) ? v : acc; }

// The sum of a row in eight partial sums (a vectorizable reduction).
template <class F>
inline float row_sum(int64_t n, const F& f) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) a[j] += f(i + j);
  for (; i < n; ++i) a[0] += f(i);
  return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

class SoftmaxOp : public Op {
 public:
  bool log_ = false;
  int64_t outer_ = 1, n_ = 1, inner_ = 1;
  // softmax(scale * x + mask) over the last axis: the mask broadcast to x (strides per axis of x)
  bool masked_ = false;
  float scale_ = 1.0f;
  std::vector<int64_t> shape_, mask_strides_;
  bool alias_ok(int i, int, int64_t rel) const override { return i == 0 && rel == 0; }
  Status run(const OpRun& r) const override {
    if (masked_ || scale_ != 1.0f) return run_last_axis(r);
    const int64_t n = n_, inner = inner_;
    parallel_for(r.threads, outer_, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n * inner)), [&](int64_t o0, int64_t o1) {
      float* m = detail::thread_scratch(detail::kScratchConv1, static_cast<size_t>(2 * inner));
      float* s = m + inner;
      for (int64_t o = o0; o < o1; ++o) {
        const float* x = r.in[0] + o * n * inner;
        float* y = r.out[0] + o * n * inner;
        for (int64_t i = 0; i < inner; ++i) { m[i] = -kInf; s[i] = 0.0f; }
        for (int64_t k = 0; k < n; ++k)
          for (int64_t i = 0; i < inner; ++i) m[i] = max_nan(m[i], x[k * inner + i]);
        if (log_) {
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) s[i] += exp_approx(x[k * inner + i] - m[i]);
        } else {
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) y[k * inner + i] = exp_approx(x[k * inner + i] - m[i]);
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) s[i] += y[k * inner + i];
        }
        if (log_) {
          for (int64_t i = 0; i < inner; ++i) s[i] = m[i] + std::log(s[i]);
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) y[k * inner + i] = x[k * inner + i] - s[i];
        } else {
          for (int64_t i = 0; i < inner; ++i) s[i] = 1.0f / s[i];
          for (int64_t k = 0; k < n; ++k)
            for (int64_t i = 0; i < inner; ++i) y[k * inner + i] *= s[i];
        }
      }
    });
    return Status::Ok();
  }

  Status run_last_axis(const OpRun& r) const {
    const int64_t n = n_;
    const float scale = scale_;
    const int64_t ms = masked_ ? mask_strides_.back() : 0;
    parallel_for(r.threads, outer_, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)), [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o) {
        const float* x = r.in[0] + o * n;
        float* y = r.out[0] + o * n;
        if (masked_) {
          const float* mk = r.in[1] + row_offset(shape_, mask_strides_, o);
          for (int64_t k = 0; k < n; ++k) y[k] = scale * x[k] + mk[k * ms];
        } else {
          for (int64_t k = 0; k < n; ++k) y[k] = scale * x[k];
        }
        float m = -kInf;
        for (int64_t k = 0; k < n; ++k) m = max_nan(m, y[k]);
        if (log_) {
          const float s = m + std::log(row_sum(n, [&](int64_t k) { return exp_approx(y[k] - m); }));
          for (int64_t k = 0; k < n; ++k) y[k] -= s;
        } else {
          for (int64_t k = 0; k < n; ++k) y[k] = exp_approx(y[k] - m);
          const float inv = 1.0f / row_sum(n, [&](int64_t k) { return y[k]; });
          for (int64_t k = 0; k < n; ++k) y[k] *= inv;
        }
      }
    });
    return Status::Ok();
  }
};

// y = (x - mean) / sqrt(var + epsilon) * scale + bias over the last n elements
// of each row (ONNX LayerNormalization; var is the biased variance).
class LayerNormOp : public Op {
 public:
  int64_t rows_ = 0, n_ = 1;
  float eps_ = 1e-5f;
  bool scale_scalar_ = false, bias_scalar_ = false, has_bias_ = false;
  bool alias_ok(int i, int, int64_t rel) const override { return i == 0 && rel == 0; }
  Status run(const OpRun& r) const override {
    const int64_t n = n_;
    const float* scale = r.in[1];
    const float* bias = has_bias_ ? r.in[2] : nullptr;  // r.in holds the node's inputs only
    parallel_for(r.threads, rows_, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        const float* x = r.in[0] + row * n;
        float* y = r.out[0] + row * n;
        const float mean = row_sum(n, [&](int64_t k) { return x[k]; }) / static_cast<float>(n);
        const float var = row_sum(n, [&](int64_t k) { return (x[k] - mean) * (x[k] - mean); }) / static_cast<float>(n);
        const float rstd = 1.0f / std::sqrt(var + eps_);
        const int64_t ss = scale_scalar_ ? 0 : 1, bs = bias_scalar_ ? 0 : 1;
        if (bias) {
          for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - mean) * rstd * scale[k * ss] + bias[k * bs];
        } else {
          for (int64_t k = 0; k < n; ++k) y[k] = (x[k] - mean) * rstd * scale[k * ss];
        }
      }
    });
    return Status::Ok();
  }
};

class LrnOp : public Op {
 public:
  int64_t N_ = 0, C_ = 0, HW_ = 0, size_ = 1;
  float alpha_ = 1e-4f, beta_ = 0.75f, bias_ = 1.0f;
  Status run(const OpRun& r) const override {
    const int64_t lo_off = (size_ - 1) / 2, hi_off = size_ - 1 - lo_off;   // floor / ceil of (size - 1) / 2
    const float k = alpha_ / static_cast<float>(size_);
    parallel_for(r.threads, N_ * C_, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, HW_ * size_)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n = p / C_, c = p % C_;
        const int64_t c0 = c - lo_off < 0 ? 0 : c - lo_off, c1 = c + hi_off >= C_ ? C_ - 1 : c + hi_off;
        float* y = r.out[0] + p * HW_;
        const float* x = r.in[0] + p * HW_;
        for (int64_t i = 0; i < HW_; ++i) y[i] = 0.0f;
        for (int64_t cc = c0; cc <= c1; ++cc) {
          const float* xc = r.in[0] + (n * C_ + cc) * HW_;
          for (int64_t i = 0; i < HW_; ++i) y[i] += xc[i] * xc[i];
        }
        if (beta_ == 0.75f) {
          // the usual beta (AlexNet, GoogLeNet): d^0.75 = sqrt(d) sqrt(sqrt(d)), a loop the vectorizer takes
          for (int64_t i = 0; i < HW_; ++i) {
            const float d = bias_ + k * y[i];
            const float r = std::sqrt(d);
            y[i] = x[i] / (r * std::sqrt(r));
          }
        } else {
          for (int64_t i = 0; i < HW_; ++i) y[i] = x[i] / std::pow(bias_ + k * y[i], beta_);
        }
      }
    });
    return Status::Ok();
  }
};

class ReduceMeanOp : public Op {
 public:
  std::vector<int64_t> shape_;
  std::vector<bool> reduced_;
  int64_t rows_ = 1, n_ = 1;     // suffix case: rows x n
  bool suffix_ = false;
  int64_t in_numel_ = 0, out_numel_ = 0;
  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    const float inv = n_ > 0 ? 1.0f / static_cast<float>(n_) : NAN;
    if (suffix_) {
      const int64_t n = n_;
      parallel_for(r.threads, rows_, std::max<int64_t>(1, 16384 / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
        for (int64_t row = r0; row < r1; ++row) {
          const float* xp = x + row * n;
          float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
          int64_t i = 0;
          for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; ++j) a[j] += xp[i + j];
          for (; i < n; ++i) a[0] += xp[i];
          y[row] = (((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]))) * inv;
        }
      });
      return Status::Ok();
    }
    // general axes: walk the input once, adding each element to its output
    for (int64_t i = 0; i < out_numel_; ++i) y[i] = 0.0f;
    const int R = static_cast<int>(shape_.size());
    int64_t idx[8] = {0, 0, 0, 0, 0, 0, 0, 0};   // rank <= 8 (the reader's limit)
    for (int64_t i = 0; i < in_numel_; ++i) {
      int64_t off = 0;
      for (int d = 0; d < R; ++d)
        if (!reduced_[static_cast<size_t>(d)]) off = off * shape_[static_cast<size_t>(d)] + idx[static_cast<size_t>(d)];
      y[off] += x[i];
      for (int d = R - 1; d >= 0; --d) {
        if (++idx[static_cast<size_t>(d)] < shape_[static_cast<size_t>(d)]) break;
        idx[static_cast<size_t>(d)] = 0;
      }
    }
    for (int64_t i = 0; i < out_numel_; ++i) y[i] *= inv;
    return Status::Ok();
  }
};

}  // namespace

Status make_softmax(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 2, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  if (X.shape != Y.shape) return b.error("output " + shape_str(Y.shape) + " differs from input " + shape_str(X.shape));
  int64_t axis = b.attrs->integer("axis", -1);
  const bool flatten = b.attrs->boolean("flatten", false);
  const double scale = b.attrs->number("scale", 1.0);
  if (!b.attrs->status().ok()) return b.attrs->status();
  const int R = X.rank();
  if (axis < 0) axis += R;
  if (R == 0 || axis < 0 || axis >= R) return b.error("axis out of range for " + shape_str(X.shape));
  auto* o = new SoftmaxOp;
  op->reset(o);
  o->scale_ = static_cast<float>(scale);
  const TensorInfo* M = b.in.size() > 1 ? b.in[1] : nullptr;
  if ((M || scale != 1.0) && (axis != R - 1 || flatten))
    return b.error("a mask or a scale needs the softmax over the last axis (axis " + std::to_string(axis) + " of " +
                   shape_str(X.shape) + ")");
  if (M) {
    o->masked_ = true;
    o->shape_ = X.shape;
    if (!broadcast_strides(M->shape, X.shape, &o->mask_strides_))
      return b.error("mask '" + M->name + "' " + shape_str(M->shape) + " does not broadcast to " + shape_str(X.shape));
  }
  o->log_ = b.op == "log_softmax";
  o->outer_ = product(X.shape, 0, static_cast<size_t>(axis));
  if (flatten) {
    o->n_ = product(X.shape, static_cast<size_t>(axis));
    o->inner_ = 1;
  } else {
    o->n_ = X.dim(static_cast<int>(axis));
    o->inner_ = product(X.shape, static_cast<size_t>(axis) + 1);
  }
  if (X.numel == 0) o->outer_ = 0;
  return Status::Ok();
}

Status make_layer_norm(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 2, 3, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &S = *b.in[1], &Y = *b.out[0];
  const TensorInfo* B = b.in.size() > 2 ? b.in[2] : nullptr;
  int64_t axis = b.attrs->integer("axis", -1);
  const double eps = b.attrs->number("epsilon", 1e-5);
  if (!b.attrs->status().ok()) return b.attrs->status();
  const int R = X.rank();
  if (axis < 0) axis += R;
  if (R == 0 || axis < 0 || axis >= R) return b.error("axis out of range for " + shape_str(X.shape));
  if (X.shape != Y.shape) return b.error("output " + shape_str(Y.shape) + " differs from input " + shape_str(X.shape));
  auto* o = new LayerNormOp;
  op->reset(o);
  o->n_ = product(X.shape, static_cast<size_t>(axis));
  o->rows_ = X.numel ? X.numel / o->n_ : 0;
  o->eps_ = static_cast<float>(eps);
  for (const TensorInfo* t : {&S, B}) {
    if (!t) continue;
    if (t->numel != o->n_ && t->numel != 1)
      return b.error("'" + t->name + "' " + shape_str(t->shape) + " must hold the " + std::to_string(o->n_) +
                     " normalized elements (or one)");
  }
  o->scale_scalar_ = S.numel == 1;
  o->bias_scalar_ = B && B->numel == 1;
  o->has_bias_ = B != nullptr;
  return Status::Ok();
}

Status make_lrn(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  if (X.shape != Y.shape || X.rank() < 3)
    return b.error("takes N x C x spatial input and output of one shape, got " + shape_str(X.shape) + " -> " + shape_str(Y.shape));
  Attrs& at = *b.attrs;
  auto* o = new LrnOp;
  op->reset(o);
  o->size_ = at.integer("size", 1, true);
  o->alpha_ = static_cast<float>(at.number("alpha", 1e-4));
  o->beta_ = static_cast<float>(at.number("beta", 0.75));
  o->bias_ = static_cast<float>(at.number("bias", 1.0));
  if (!at.status().ok()) return at.status();
  if (o->size_ < 1) return b.error("size must be >= 1");
  o->N_ = X.dim(0);
  o->C_ = X.dim(1);
  o->HW_ = product(X.shape, 2);
  return Status::Ok();
}

Status make_reduce_mean(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  Attrs& at = *b.attrs;
  auto axes = at.ints("axes", {});
  const bool keep = at.boolean("keepdims", true);
  if (!at.status().ok()) return at.status();
  const int R = X.rank();
  auto* o = new ReduceMeanOp;
  op->reset(o);
  o->shape_ = X.shape;
  o->reduced_.assign(static_cast<size_t>(R), axes.empty());   // no axes: all of them
  for (int64_t a : axes) {
    const int64_t d = a < 0 ? a + R : a;
    if (d < 0 || d >= R) return b.error("axis " + std::to_string(a) + " is out of range for " + shape_str(X.shape));
    if (o->reduced_[static_cast<size_t>(d)]) return b.error("axis " + std::to_string(a) + " is listed twice");
    o->reduced_[static_cast<size_t>(d)] = true;
  }
  std::vector<int64_t> want;
  o->n_ = 1;
  for (int d = 0; d < R; ++d) {
    if (o->reduced_[static_cast<size_t>(d)]) {
      o->n_ *= X.dim(d);
      if (keep) want.push_back(1);
    } else {
      want.push_back(X.dim(d));
    }
  }
  if (Y.shape != want) return b.error("output " + shape_str(Y.shape) + " should be " + shape_str(want));
  int first = R;
  while (first > 0 && o->reduced_[static_cast<size_t>(first - 1)]) --first;
  bool suffix = true;
  for (int d = 0; d < first; ++d)
    if (o->reduced_[static_cast<size_t>(d)] && X.dim(d) != 1) suffix = false;
  o->suffix_ = suffix;
  o->rows_ = product(X.shape, 0, static_cast<size_t>(first));
  o->in_numel_ = X.numel;
  o->out_numel_ = Y.numel;
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
