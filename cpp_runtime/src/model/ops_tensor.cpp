// Data movement: concat, split, reshape, transpose, pad (constant), to_layout.
#include <cstring>

#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

constexpr int64_t kCopyGrain = 1 << 15;   // floats per thread below which a copy stays on one thread

void copy(float* dst, const float* src, int64_t n) {
  if (dst != src && n > 0) std::memmove(dst, src, sizeof(float) * static_cast<size_t>(n));
}

// concat and split: `outer` rows; part i owns `chunk[i]` contiguous floats of each row.
class SlicesOp : public Op {
 public:
  bool concat_ = true;
  int64_t outer_ = 1, row_ = 0;
  std::vector<int64_t> chunk_, start_;   // per part: floats per row, offset in the row

  bool alias_ok(int i, int j, int64_t rel) const override {
    // a part written in place: only when its slice is one contiguous block
    if (outer_ != 1) return false;
    const int part = concat_ ? i : j;
    return concat_ ? rel == start_[static_cast<size_t>(part)] : -rel == start_[static_cast<size_t>(part)];
  }
  Status run(const OpRun& r) const override {
    const int parts = static_cast<int>(chunk_.size());
    parallel_for(r.threads, outer_ * parts, std::max<int64_t>(1, kCopyGrain / std::max<int64_t>(1, row_ / parts)),
                 [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t o = t / parts;
        const size_t p = static_cast<size_t>(t % parts);
        if (concat_)
          copy(r.out[0] + o * row_ + start_[p], r.in[p] + o * chunk_[p], chunk_[p]);
        else
          copy(r.out[p] + o * chunk_[p], r.in[0] + o * row_ + start_[p], chunk_[p]);
      }
    });
    return Status::Ok();
  }
};

Status make_slices(const OpBuild& b, bool concat, std::unique_ptr<Op>* op) {
  Status st = concat ? check_arity(b, 1, -1, 1) : check_arity(b, 1, 1, -1);
  if (!st.ok()) return st;
  const TensorInfo& whole = concat ? *b.out[0] : *b.in[0];
  std::vector<const TensorInfo*> parts = concat ? b.in : b.out;
  for (const TensorInfo* p : parts)
    if (!p) return b.error("an input is absent");
  Attrs& at = *b.attrs;
  const int64_t axis = at.integer("axis", 0, true);
  if (!at.status().ok()) return at.status();
  if (axis < 0 || axis >= whole.rank())
    return b.error("axis " + std::to_string(axis) + " is out of range for " + shape_str(whole.shape));
  int64_t total = 0;
  for (const TensorInfo* p : parts) {
    if (p->rank() != whole.rank()) return b.error("'" + p->name + "' " + shape_str(p->shape) + " differs in rank from " + shape_str(whole.shape));
    for (int d = 0; d < whole.rank(); ++d)
      if (d != axis && p->dim(d) != whole.dim(d))
        return b.error("'" + p->name + "' " + shape_str(p->shape) + " differs from " + shape_str(whole.shape) +
                       " outside axis " + std::to_string(axis));
    total += p->dim(static_cast<int>(axis));
    if (p->block != whole.block) return b.error("'" + p->name + "' is " + p->layout_name() + ", '" + whole.name + "' is " + whole.layout_name());
  }
  if (total != whole.dim(static_cast<int>(axis)))
    return b.error("the parts' sizes along axis " + std::to_string(axis) + " add up to " + std::to_string(total) +
                   ", not " + std::to_string(whole.dim(static_cast<int>(axis))));
  auto* o = new SlicesOp;
  op->reset(o);
  o->concat_ = concat;
  if (whole.block) {
    // blocked: whole channel blocks only (storage N x C/B x H x W x B)
    if (axis != 1 || whole.rank() != 4) return b.error("a blocked tensor is only split/concatenated along channels");
    for (const TensorInfo* p : parts)
      if (p->dim(1) % whole.block)
        return b.error("'" + p->name + "' has " + std::to_string(p->dim(1)) + " channels, not a multiple of the block " +
                       std::to_string(whole.block));
  }
  o->outer_ = product(whole.shape, 0, static_cast<size_t>(axis));
  const int64_t inner = product(whole.shape, static_cast<size_t>(axis) + 1);
  int64_t start = 0;
  for (const TensorInfo* p : parts) {
    const int64_t c = p->dim(static_cast<int>(axis)) * inner;
    o->chunk_.push_back(c);
    o->start_.push_back(start);
    start += c;
  }
  o->row_ = start;
  return Status::Ok();
}

class ReshapeOp : public Op {
 public:
  explicit ReshapeOp(int64_t n) : n_(n) {}
  bool alias_ok(int, int, int64_t rel) const override { return rel == 0; }
  Status run(const OpRun& r) const override {
    if (r.out[0] == r.in[0]) return Status::Ok();
    parallel_for(r.threads, n_, kCopyGrain, [&](int64_t b, int64_t e) { copy(r.out[0] + b, r.in[0] + b, e - b); });
    return Status::Ok();
  }

 private:
  int64_t n_;
};

class TransposeOp : public Op {
 public:
  std::vector<int64_t> out_shape_, in_stride_;   // in_stride_[d]: input stride of output dim d
  int64_t rows_ = 1, n_ = 1;
  Status run(const OpRun& r) const override {
    const int R = static_cast<int>(out_shape_.size());
    const int64_t n = n_, is = R ? in_stride_[static_cast<size_t>(R - 1)] : 1;
    parallel_for(r.threads, rows_, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        int64_t off = 0, rem = row;
        for (int d = R - 2; d >= 0; --d) {
          off += (rem % out_shape_[static_cast<size_t>(d)]) * in_stride_[static_cast<size_t>(d)];
          rem /= out_shape_[static_cast<size_t>(d)];
        }
        const float* src = r.in[0] + off;
        float* dst = r.out[0] + row * n;
        for (int64_t i = 0; i < n; ++i) dst[i] = src[i * is];
      }
    });
    return Status::Ok();
  }
};

class PadOp : public Op {
 public:
  std::vector<int64_t> in_shape_, out_shape_, begin_;
  float value_ = 0.0f;
  int64_t rows_ = 1;
  Status run(const OpRun& r) const override {
    const int R = static_cast<int>(out_shape_.size());
    const int64_t on = out_shape_[static_cast<size_t>(R - 1)], in_n = in_shape_[static_cast<size_t>(R - 1)];
    const int64_t b = begin_[static_cast<size_t>(R - 1)];
    // input columns [lo, hi) land at output columns [lo + b, hi + b)
    int64_t lo = b < 0 ? -b : 0, hi = in_n;
    if (hi + b > on) hi = on - b;
    parallel_for(r.threads, rows_, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, on)), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        float* dst = r.out[0] + row * on;
        int64_t off = 0, rem = row, stride = in_n;
        bool inside = true;
        for (int d = R - 2; d >= 0; --d) {
          const int64_t i = rem % out_shape_[static_cast<size_t>(d)] - begin_[static_cast<size_t>(d)];
          rem /= out_shape_[static_cast<size_t>(d)];
          if (i < 0 || i >= in_shape_[static_cast<size_t>(d)]) inside = false;
          off += i * stride;
          stride *= in_shape_[static_cast<size_t>(d)];
        }
        if (!inside || hi <= lo) {
          for (int64_t i = 0; i < on; ++i) dst[i] = value_;
          continue;
        }
        const float* src = r.in[0] + off;
        for (int64_t i = 0; i < lo + b; ++i) dst[i] = value_;
        for (int64_t i = lo; i < hi; ++i) dst[i + b] = src[i];
        for (int64_t i = hi + b; i < on; ++i) dst[i] = value_;
      }
    });
    return Status::Ok();
  }
};

class ToLayoutOp : public Op {
 public:
  int64_t N_ = 0, C_ = 0, HW_ = 0, H_ = 0, W_ = 0;
  int from_ = 0, to_ = 0;   // block sizes (0: nchw)
  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    if (from_ == to_) {
      const int64_t n = from_ ? N_ * ((C_ + from_ - 1) / from_) * HW_ * from_ : N_ * C_ * HW_;
      parallel_for(r.threads, n, kCopyGrain, [&](int64_t b, int64_t e) { copy(y + b, x + b, e - b); });
      return Status::Ok();
    }
    if (from_ == 0 && to_ == conv2d_block()) return conv2d_to_blocked(x, N_, C_, H_, W_, y, r.threads);
    if (to_ == 0 && from_ == conv2d_block()) return conv2d_from_blocked(x, N_, C_, H_, W_, y, r.threads);
    // any other pair goes through plain loops, one (n, channel block) at a time
    if (from_) {   // blocked -> nchw (to_ == 0, or another block through the same index map)
      const int64_t B = from_, CB = (C_ + B - 1) / B;
      parallel_for(r.threads, N_ * CB, 1, [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t n = p / CB, cb = p % CB;
          for (int64_t l = 0; l < B && cb * B + l < C_; ++l) {
            const int64_t c = cb * B + l;
            for (int64_t i = 0; i < HW_; ++i) {
              const float v = x[(p * HW_ + i) * B + l];
              if (to_ == 0) {
                y[(n * C_ + c) * HW_ + i] = v;
              } else {
                const int64_t T = to_, CT = (C_ + T - 1) / T;
                y[((n * CT + c / T) * HW_ + i) * T + c % T] = v;
              }
            }
          }
        }
      });
      if (to_) {   // zero the target's padded lanes
        const int64_t T = to_, CT = (C_ + T - 1) / T;
        for (int64_t n = 0; n < N_; ++n)
          for (int64_t c = C_; c < CT * T; ++c)
            for (int64_t i = 0; i < HW_; ++i) y[((n * CT + c / T) * HW_ + i) * T + c % T] = 0.0f;
      }
      return Status::Ok();
    }
    const int64_t B = to_, CB = (C_ + B - 1) / B;
    parallel_for(r.threads, N_ * CB, 1, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const int64_t n = p / CB, cb = p % CB;
        for (int64_t i = 0; i < HW_; ++i)
          for (int64_t l = 0; l < B; ++l) {
            const int64_t c = cb * B + l;
            y[(p * HW_ + i) * B + l] = c < C_ ? x[(n * C_ + c) * HW_ + i] : 0.0f;
          }
      }
    });
    return Status::Ok();
  }
};

}  // namespace

Status make_concat(const OpBuild& b, std::unique_ptr<Op>* op) { return make_slices(b, true, op); }
Status make_split(const OpBuild& b, std::unique_ptr<Op>* op) { return make_slices(b, false, op); }

Status make_reshape(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 1, 2, 1);   // an ONNX-style shape input may be kept; it is not read
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  if (X.block || Y.block) return b.error("reshape takes and writes nchw tensors");
  if (X.numel != Y.numel)
    return b.error("'" + X.name + "' " + shape_str(X.shape) + " and '" + Y.name + "' " + shape_str(Y.shape) +
                   " hold different element counts");
  op->reset(new ReshapeOp(X.numel));
  return Status::Ok();
}

Status make_transpose(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  const int R = X.rank();
  std::vector<int64_t> def;
  for (int d = R - 1; d >= 0; --d) def.push_back(d);   // ONNX default: reverse the axes
  const auto perm = b.attrs->ints("perm", def);
  if (!b.attrs->status().ok()) return b.attrs->status();
  if (static_cast<int>(perm.size()) != R) return b.error("perm needs " + std::to_string(R) + " entries");
  std::vector<bool> seen(static_cast<size_t>(R), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= R || seen[static_cast<size_t>(p)]) return b.error("perm " + shape_str(perm) + " is not a permutation");
    seen[static_cast<size_t>(p)] = true;
  }
  std::vector<int64_t> in_stride(static_cast<size_t>(R), 1);
  for (int d = R - 2; d >= 0; --d) in_stride[static_cast<size_t>(d)] = in_stride[static_cast<size_t>(d) + 1] * X.dim(d + 1);
  auto* o = new TransposeOp;
  op->reset(o);
  for (int d = 0; d < R; ++d) {
    o->out_shape_.push_back(X.dim(static_cast<int>(perm[static_cast<size_t>(d)])));
    o->in_stride_.push_back(in_stride[static_cast<size_t>(perm[static_cast<size_t>(d)])]);
  }
  if (o->out_shape_ != Y.shape)
    return b.error("output " + shape_str(Y.shape) + " is not " + shape_str(X.shape) + " permuted by " + shape_str(perm));
  o->n_ = R ? o->out_shape_.back() : 1;
  o->rows_ = (Y.numel == 0 || o->n_ == 0) ? 0 : Y.numel / o->n_;
  return Status::Ok();
}

Status make_pad(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  Attrs& at = *b.attrs;
  const auto pads = at.ints("pads", {}, true);
  const double value = at.number("value", 0.0);
  const std::string mode = at.string("mode", "constant");
  if (!at.status().ok()) return at.status();
  if (mode != "constant") return b.error("pad mode '" + mode + "' is not supported (only constant)");
  const int R = X.rank();
  if (R < 1) return b.error("cannot pad a scalar");
  if (static_cast<int>(pads.size()) != 2 * R) return b.error("pads needs " + std::to_string(2 * R) + " values (all begins, then all ends)");
  auto* o = new PadOp;
  op->reset(o);
  o->in_shape_ = X.shape;
  o->value_ = static_cast<float>(value);
  for (int d = 0; d < R; ++d) {
    const int64_t n = X.dim(d) + pads[static_cast<size_t>(d)] + pads[static_cast<size_t>(d + R)];
    if (n < 0) return b.error("pads " + shape_str(pads) + " crop more than " + shape_str(X.shape) + " holds");
    o->out_shape_.push_back(n);
    o->begin_.push_back(pads[static_cast<size_t>(d)]);
  }
  if (o->out_shape_ != Y.shape)
    return b.error("output " + shape_str(Y.shape) + " is not " + shape_str(X.shape) + " padded by " + shape_str(pads) +
                   " (" + shape_str(o->out_shape_) + ")");
  o->rows_ = Y.numel == 0 ? 0 : Y.numel / Y.dim(R - 1);
  return Status::Ok();
}

Status make_to_layout(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  const std::string layout = b.attrs->string("layout", "", true);
  if (!b.attrs->status().ok()) return b.attrs->status();
  if (layout != Y.layout_name())
    return b.error("attribute layout '" + layout + "' differs from output '" + Y.name + "' (" + Y.layout_name() + ")");
  if (X.shape != Y.shape) return b.error("input " + shape_str(X.shape) + " and output " + shape_str(Y.shape) + " differ");
  if ((X.block || Y.block) && X.rank() != 4) return b.error("blocked layouts need 4-D NCHW shapes");
  auto* o = new ToLayoutOp;
  op->reset(o);
  o->from_ = X.block;
  o->to_ = Y.block;
  if (X.rank() == 4) {
    o->N_ = X.dim(0);
    o->C_ = X.dim(1);
    o->H_ = X.dim(2);
    o->W_ = X.dim(3);
  } else {
    o->N_ = 1;
    o->C_ = 1;
    o->H_ = 1;
    o->W_ = X.numel;
  }
  o->HW_ = o->H_ * o->W_;
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
