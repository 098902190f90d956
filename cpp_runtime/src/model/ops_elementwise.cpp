// Elementwise operators: the unary activations, add/sub/mul/div with numpy
// broadcasting, and channel_affine (an unfused batch-norm).
//
// NaN propagates as in numpy: every select is written so that a NaN operand
// falls through to the result (relu is `x < 0 ? 0 : x`, not `x > 0 ? x : 0`).
#include <cmath>
#include <cstring>

#include "model/loops.h"
#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

constexpr int64_t kGrain = 16384;   // elements below which splitting across threads does not pay

// ---- unary ----

using detail::UnaryKind;

// The loop runs in the active variant's copy (loops.h): AVX2 / AVX-512 where the CPU has them.
class UnaryOp : public Op {
 public:
  UnaryOp(const detail::ModelLoops* loops, UnaryKind k, int64_t n, float p0, float p1)
      : loops_(loops), k_(k), n_(n), p0_(p0), p1_(p1) {}
  bool alias_ok(int, int, int64_t rel) const override { return rel == 0; }
  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    parallel_for(r.threads, n_, kGrain,
                 [&](int64_t b, int64_t e) { loops_->unary(k_, x + b, y + b, e - b, p0_, p1_); });
    return Status::Ok();
  }

 private:
  const detail::ModelLoops* loops_;
  UnaryKind k_;
  int64_t n_;
  float p0_, p1_;
};

// ---- binary ----

using Bin = detail::BinaryKind;
// Rows at least this long go to the variant's loop (an indirect call per row); shorter
// ones (a blocked per-channel vector: rows of B lanes) stay inline here.
constexpr int64_t kLongRow = 64;

// The output's dimensions after dropping 1s and merging neighbours that both
// inputs walk alike; the innermost keeps unit (or zero) strides.
struct BroadcastPlan {
  std::vector<int64_t> size, sa, sb;   // outer -> inner
  int64_t rows = 1, n = 1;             // outer iterations, inner length
  int64_t ia = 1, ib = 1;              // inner strides (0 or 1)
};

template <class F>
void binary_rows(const BroadcastPlan& p, const detail::ModelLoops* loops, Bin k, const float* a, const float* b,
                 float* y, int threads, const F& f) {
  const int64_t n = p.n;
  const int outer = static_cast<int>(p.size.size()) - 1;   // dims before the inner one
  // Rows along the innermost outer dimension are walked by stride bumps: the
  // divisions that locate a row run once per run of it, not once per row (a
  // blocked per-channel multiply has rows of B lanes: a division per 16
  // floats made the SE multiply 5x its bandwidth time).
  const size_t last = static_cast<size_t>(std::max(outer - 1, 0));
  const int64_t run_len = outer > 0 ? p.size[last] : 1;
  const int64_t step_a = outer > 0 ? p.sa[last] : 0, step_b = outer > 0 ? p.sb[last] : 0;
  parallel_for(threads, p.rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
    int64_t oa = 0, ob = 0, run_end = r0;
    for (int64_t row = r0; row < r1; ++row, oa += step_a, ob += step_b) {
      if (row == run_end) {
        oa = ob = 0;
        int64_t rem = row;
        for (int d = outer - 1; d >= 0; --d) {
          const int64_t i = rem % p.size[static_cast<size_t>(d)];
          rem /= p.size[static_cast<size_t>(d)];
          oa += i * p.sa[static_cast<size_t>(d)];
          ob += i * p.sb[static_cast<size_t>(d)];
        }
        run_end = row + (run_len - row % run_len);
      }
      const float* pa = a + oa;
      const float* pb = b + ob;
      float* py = y + row * n;
      if (n >= kLongRow) {
        loops->binary(k, pa, p.ia, pb, p.ib, py, n);
      } else if (p.ia && p.ib) {
        for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], pb[i]);
      } else if (p.ia) {
        const float s = pb[0];
        for (int64_t i = 0; i < n; ++i) py[i] = f(pa[i], s);
      } else if (p.ib) {
        const float s = pa[0];
        for (int64_t i = 0; i < n; ++i) py[i] = f(s, pb[i]);
      } else {
        const float v = f(pa[0], pb[0]);
        for (int64_t i = 0; i < n; ++i) py[i] = v;
      }
    }
  });
}

class BinaryOp : public Op {
 public:
  BinaryOp(const detail::ModelLoops* loops, Bin k, BroadcastPlan p, bool same_a, bool same_b)
      : loops_(loops), k_(k), p_(std::move(p)), same_a_(same_a), same_b_(same_b) {}
  bool alias_ok(int i, int, int64_t rel) const override { return rel == 0 && (i == 0 ? same_a_ : same_b_); }
  Status run(const OpRun& r) const override {
    const float* a = r.in[0];
    const float* b = r.in[1];
    float* y = r.out[0];
    switch (k_) {
      case Bin::Add: binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u + v; }); break;
      case Bin::Sub: binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u - v; }); break;
      case Bin::Mul: binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u * v; }); break;
      case Bin::Div: binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u / v; }); break;
      case Bin::Pow:
        binary_rows(p_, loops_, k_, a, b, y, r.threads,
                    [](float u, float v) { return v == 2.0f ? u * u : std::pow(u, v); });
        break;
      // comparisons give 1 or 0 (booleans are float32 0/1 in the executor, FORMAT.md)
      case Bin::Equal:
        binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u == v ? 1.0f : 0.0f; });
        break;
      case Bin::Less:
        binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u < v ? 1.0f : 0.0f; });
        break;
      case Bin::Greater:
        binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u > v ? 1.0f : 0.0f; });
        break;
      // NaN propagates (numpy's maximum / minimum)
      case Bin::Max:
        binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u != u || u > v ? u : v; });
        break;
      case Bin::Min:
        binary_rows(p_, loops_, k_, a, b, y, r.threads, [](float u, float v) { return u != u || u < v ? u : v; });
        break;
    }
    return Status::Ok();
  }

 private:
  const detail::ModelLoops* loops_;
  Bin k_;
  BroadcastPlan p_;
  bool same_a_, same_b_;
};

// ---- channel_affine ----

class ChannelAffineOp : public Op {
 public:
  ChannelAffineOp(int64_t N, int64_t C, int64_t inner, int block, bool relu)
      : N_(N), C_(C), inner_(inner), block_(block), relu_(relu) {}
  bool alias_ok(int i, int, int64_t rel) const override { return i == 0 && rel == 0; }
  std::vector<float> scale_, shift_;   // blocked: padded to whole blocks (constants)
  bool reads_at_run(int i) const override { return i == 0 || !block_; }
  int64_t prepared_bytes() const override {
    return static_cast<int64_t>((scale_.capacity() + shift_.capacity()) * sizeof(float));
  }
  Status run(const OpRun& r) const override {
    const float* x = r.in[0];
    float* y = r.out[0];
    if (!block_) {
      const float* sc = r.in[1];
      const float* sh = r.in[2];
      parallel_for(r.threads, N_ * C_, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner_)), [&](int64_t p0, int64_t p1) {
        for (int64_t p = p0; p < p1; ++p) {
          const int64_t c = p % C_;
          const float s = sc[c], t = sh[c];
          const float* px = x + p * inner_;
          float* py = y + p * inner_;
          if (relu_) {
            for (int64_t i = 0; i < inner_; ++i) py[i] = relu(px[i] * s + t);
          } else {
            for (int64_t i = 0; i < inner_; ++i) py[i] = px[i] * s + t;
          }
        }
      });
      return Status::Ok();
    }
    const int64_t B = block_, CB = (C_ + B - 1) / B;
    parallel_for(r.threads, N_ * CB, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner_ * B)), [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        const float* sc = scale_.data() + (p % CB) * B;
        const float* sh = shift_.data() + (p % CB) * B;
        const float* px = x + p * inner_ * B;
        float* py = y + p * inner_ * B;
        if (relu_) {
          for (int64_t i = 0; i < inner_; ++i)
            for (int64_t l = 0; l < B; ++l) py[i * B + l] = relu(px[i * B + l] * sc[l] + sh[l]);
        } else {
          for (int64_t i = 0; i < inner_; ++i)
            for (int64_t l = 0; l < B; ++l) py[i * B + l] = px[i * B + l] * sc[l] + sh[l];
        }
      }
    });
    return Status::Ok();
  }

 private:
  static float relu(float v) { return v < 0.0f ? 0.0f : v; }  // NaN stays NaN
  int64_t N_, C_, inner_;
  int block_;
  bool relu_;  // a relu after it, fused (DenseNet's pre-activation batch-norm + relu)
};

Status same_shape_layout(const OpBuild& b, const TensorInfo& x, const TensorInfo& y) {
  if (x.shape != y.shape)
    return b.error("output '" + y.name + "' has shape " + shape_str(y.shape) + ", input '" + x.name + "' has " +
                   shape_str(x.shape));
  if (x.block != y.block)
    return b.error("input '" + x.name + "' is " + x.layout_name() + " but output '" + y.name + "' is " +
                   y.layout_name());
  return Status::Ok();
}

}  // namespace

Status make_unary(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  st = same_shape_layout(b, *b.in[0], *b.out[0]);
  if (!st.ok()) return st;
  const detail::ModelLoops* loops = nullptr;
  st = model_loops(&loops);
  if (!st.ok()) return st;
  Attrs& at = *b.attrs;
  UnaryKind k;
  float p0 = 0.0f, p1 = 0.0f;
  if (b.op == "relu") {
    k = UnaryKind::Relu;
  } else if (b.op == "leaky_relu") {
    k = UnaryKind::LeakyRelu;
    p0 = static_cast<float>(at.number("alpha", 0.01));
  } else if (b.op == "clip") {
    k = UnaryKind::Clip;
    p0 = static_cast<float>(at.number_or_null("min", -HUGE_VAL));
    p1 = static_cast<float>(at.number_or_null("max", HUGE_VAL));
  } else if (b.op == "sigmoid") {
    k = UnaryKind::Sigmoid;
  } else if (b.op == "silu") {
    k = UnaryKind::Silu;
  } else if (b.op == "hard_sigmoid") {
    k = UnaryKind::HardSigmoid;
    p0 = static_cast<float>(at.number("alpha", 0.2));
    p1 = static_cast<float>(at.number("beta", 0.5));
  } else if (b.op == "hard_swish") {
    k = UnaryKind::HardSwish;
  } else if (b.op == "erf") {
    k = UnaryKind::Erf;
  } else if (b.op == "sqrt") {
    k = UnaryKind::Sqrt;
  } else if (b.op == "exp") {
    k = UnaryKind::Exp;
  } else if (b.op == "neg") {
    k = UnaryKind::Neg;
  } else if (b.op == "reciprocal") {
    k = UnaryKind::Reciprocal;
  } else if (b.op == "gelu") {
    const std::string approx = at.string("approximate", "none");
    if (approx != "none" && approx != "tanh")
      return b.error("approximate must be 'none' (erf) or 'tanh', got '" + approx + "'");
    k = approx == "tanh" ? UnaryKind::GeluTanh : UnaryKind::GeluErf;
  } else {
    k = UnaryKind::Tanh;
  }
  if (b.in[0]->block && k >= UnaryKind::Erf)
    return b.error("runs on nchw only (input '" + b.in[0]->name + "' is " + b.in[0]->layout_name() + ")");
  if (!at.status().ok()) return at.status();
  // blocked storage: the padded lanes go through the function too (finite in, finite out)
  op->reset(new UnaryOp(loops, k, b.in[0]->storage, p0, p1));
  return Status::Ok();
}

// v broadcasts over a blocked y's H and W only (FORMAT.md, "Blocked tensors"):
// a (1 or N) x C x 1 x 1 activation in y's layout, or a constant of C floats
// (C x 1 x 1 or 1 x C x 1 x 1) with C a multiple of B (then its dense storage
// is the blocked one).
static bool blocked_per_channel(const TensorInfo& v, const TensorInfo& y) {
  if (!y.block || y.rank() != 4) return false;
  const int64_t C = y.dim(1);
  if (v.block == y.block && v.rank() == 4)
    return v.dim(1) == C && v.dim(2) == 1 && v.dim(3) == 1 && (v.dim(0) == 1 || v.dim(0) == y.dim(0));
  if (v.block || v.kind != TensorInfo::Constant || v.numel != C || C % y.block) return false;
  return v.shape == std::vector<int64_t>{C, 1, 1} || v.shape == std::vector<int64_t>{1, C, 1, 1};
}

Status make_binary(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 2, 2, 1);
  if (!st.ok()) return st;
  const detail::ModelLoops* loops = nullptr;
  st = model_loops(&loops);
  if (!st.ok()) return st;
  const TensorInfo &A = *b.in[0], &B = *b.in[1], &Y = *b.out[0];
  const char* const names[] = {"add", "sub", "mul", "div", "pow", "equal", "less", "greater", "max", "min"};
  Bin k = Bin::Add;
  for (int i = 0; i < 10; ++i)
    if (b.op == names[i]) k = static_cast<Bin>(i);
  if (k > Bin::Div && (A.block || B.block || Y.block)) return b.error("runs on nchw only");
  BroadcastPlan p;
  const bool same_a = A.shape == Y.shape && A.block == Y.block, same_b = B.shape == Y.shape && B.block == Y.block;
  if (same_a && same_b && Y.block) {
    // blocked, one shape and layout on all three: the storage is walked flat
    p.size = {Y.storage};
    p.sa = {1};
    p.sb = {1};
  } else if ((same_a || same_b) && blocked_per_channel(same_a ? B : A, Y)) {
    // blocked y = x op v[c]: storage N x CB x HW x B; v is (1 or N) x CB x 1 x 1 x B (a constant of C
    // floats with C a multiple of B is that too), so the inner B lanes run with stride 1 on both
    const TensorInfo& V = same_a ? B : A;
    const int64_t blk = Y.block, N = Y.dim(0), CB = (Y.dim(1) + blk - 1) / blk, HW = Y.dim(2) * Y.dim(3);
    const std::vector<int64_t> full = {CB * HW * blk, HW * blk, blk, 1};
    const std::vector<int64_t> vec = {V.rank() == 4 && V.dim(0) == N && N > 1 ? CB * blk : 0, blk, 0, 1};
    p.size = {N, CB, HW, blk};
    p.sa = same_a ? full : vec;
    p.sb = same_a ? vec : full;
  } else if (A.block || B.block || Y.block) {
    return b.error(
        "blocked layouts need inputs and output of one shape and layout, or one of them a per-channel "
        "vector (got " +
        A.layout_name() + " " + shape_str(A.shape) + ", " + B.layout_name() + " " + shape_str(B.shape) + " -> " +
        Y.layout_name() + " " + shape_str(Y.shape) + ")");
  } else {
    const int R = Y.rank();
    if (A.rank() > R || B.rank() > R)
      return b.error("an input has more dimensions than the output " + shape_str(Y.shape));
    std::vector<int64_t> sa(static_cast<size_t>(R), 0), sb(static_cast<size_t>(R), 0);
    for (int pass = 0; pass < 2; ++pass) {
      const TensorInfo& T = pass ? B : A;
      std::vector<int64_t>& s = pass ? sb : sa;
      int64_t stride = 1;
      for (int d = R - 1, e = T.rank() - 1; d >= 0; --d, --e) {
        const int64_t od = Y.dim(d);
        if (e < 0) continue;   // missing leading dim: broadcast (stride 0)
        const int64_t td = T.dim(e);
        if (td == od) {
          s[static_cast<size_t>(d)] = td == 1 ? 0 : stride;
        } else if (td != 1) {
          return b.error("input '" + T.name + "' " + shape_str(T.shape) + " does not broadcast to the output " +
                         shape_str(Y.shape));
        }
        stride *= td;
      }
    }
    for (int d = 0; d < R; ++d) {   // the output must be exactly the broadcast shape
      const int64_t da = d - (R - A.rank()) >= 0 ? A.dim(d - (R - A.rank())) : 1;
      const int64_t db = d - (R - B.rank()) >= 0 ? B.dim(d - (R - B.rank())) : 1;
      const int64_t want = da == 1 ? db : da;
      if (Y.dim(d) != want)
        return b.error("output shape " + shape_str(Y.shape) + " is not the broadcast of " + shape_str(A.shape) +
                       " and " + shape_str(B.shape));
    }
    for (int d = 0; d < R; ++d) {
      const int64_t n = Y.dim(d);
      if (n == 1) continue;
      const int64_t a_ = sa[static_cast<size_t>(d)], b_ = sb[static_cast<size_t>(d)];
      if (!p.size.empty() && p.sa.back() == a_ * n && p.sb.back() == b_ * n) {
        p.size.back() *= n;    // merge into the outer neighbour
        p.sa.back() = a_;
        p.sb.back() = b_;
      } else {
        p.size.push_back(n);
        p.sa.push_back(a_);
        p.sb.push_back(b_);
      }
    }
    if (p.size.empty()) {
      p.size = {1};
      p.sa = {0};
      p.sb = {0};
    }
  }
  p.n = p.size.back();
  p.ia = p.sa.back() ? 1 : 0;
  p.ib = p.sb.back() ? 1 : 0;
  p.rows = Y.numel == 0 ? 0 : (Y.block ? Y.storage : Y.numel) / p.n;
  if (p.n > 1 && ((p.ia && p.sa.back() != 1) || (p.ib && p.sb.back() != 1)))
    return b.error("internal: inner broadcast stride is not 1");
  op->reset(new BinaryOp(loops, k, std::move(p), same_a, same_b));
  return Status::Ok();
}

Status make_channel_affine(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 3, 3, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &S = *b.in[1], &T = *b.in[2];
  st = same_shape_layout(b, X, *b.out[0]);
  if (!st.ok()) return st;
  if (X.rank() < 2) return b.error("input '" + X.name + "' needs at least 2 dimensions (N, C, ...)");
  const int64_t C = X.dim(1);
  if (S.numel != C || T.numel != C || S.block || T.block)
    return b.error("scale and shift must hold C = " + std::to_string(C) + " values (got " + shape_str(S.shape) +
                   " and " + shape_str(T.shape) + ")");
  const bool relu = b.attrs->boolean("relu", false);
  if (!b.attrs->status().ok()) return b.attrs->status();
  auto* o = new ChannelAffineOp(X.dim(0), C, product(X.shape, 2), X.block, relu);
  op->reset(o);
  if (X.block) {
    if (!S.data || !T.data) return b.error("a blocked channel_affine needs constant scale and shift");
    const int64_t Cp = (C + X.block - 1) / X.block * X.block;
    o->scale_.assign(static_cast<size_t>(Cp), 0.0f);
    o->shift_.assign(static_cast<size_t>(Cp), 0.0f);
    std::memcpy(o->scale_.data(), S.data, sizeof(float) * static_cast<size_t>(C));
    std::memcpy(o->shift_.data(), T.data, sizeof(float) * static_cast<size_t>(C));
  }
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
