// conv (PreparedConv2d: weights folded and packed once, at load), gemm and
// matmul (autoconfig::gemm).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

bool parse_activation(const std::string& s, Activation* a) {
  for (int i = 0; i < kNumActivations; ++i) {
    if (s == activation_name(static_cast<Activation>(i))) {
      *a = static_cast<Activation>(i);
      return true;
    }
  }
  // FORMAT.md spells them none / relu / relu6 / gelu_tanh / gelu_erf
  static const char* kNames[] = {"none", "relu", "relu6", "gelu_tanh", "gelu_erf"};
  for (int i = 0; i < 5; ++i) {
    if (s == kNames[i]) {
      *a = static_cast<Activation>(i);
      return true;
    }
  }
  return false;
}

const char* const kConvAlgorithms[] = {"direct", "gemm-1x1", "im2col-gemm", "winograd-f2", "winograd-f4", "depthwise"};

class ConvOp : public Op {
 public:
  PreparedConv2d conv_;
  int64_t N_ = 0;
  Status run(const OpRun& r) const override {
    return conv_.run(r.in[0], N_, r.out[0], has_residual_ ? r.in[3] : nullptr, r.threads);
  }
  bool has_residual_ = false;
  const char* algorithm() const override { return conv_.algorithm(); }
  bool reads_at_run(int i) const override { return i == 0 || i == 3; }  // w and bias live in conv_
  int64_t prepared_bytes() const override { return static_cast<int64_t>(conv_.bytes()); }
};

// A grouped (not depthwise) conv the plan runs as "direct": one direct conv
// per group on its channel slice, the direct kernel being written for one
// group (conv2d.cpp). An image's channels of a group are contiguous in nchw,
// and in nchw{B}c when every group holds whole blocks. Groups narrower than
// a block (B a multiple of C/G) run f = B / (C/G) at a time as one conv with
// block-diagonal weights (zeros between the groups): f times the flops, at
// the direct kernel's rate rather than im2col's. graph/planner.py
// (_grouped_direct) makes the same choice of f.
class GroupedDirectConvOp : public Op {
 public:
  std::vector<PreparedConv2d> groups_;
  std::vector<std::vector<float>> merged_w_;  // f > 1: the block-diagonal weights the groups were prepared from
  int64_t N_ = 0, in_image_ = 0, in_slice_ = 0, out_image_ = 0, out_slice_ = 0;
  bool has_residual_ = false;
  Status run(const OpRun& r) const override {
    for (int64_t n = 0; n < N_; ++n)
      for (size_t g = 0; g < groups_.size(); ++g) {
        const int64_t gi = static_cast<int64_t>(g);
        const int64_t out = n * out_image_ + gi * out_slice_;
        Status st = groups_[g].run(r.in[0] + n * in_image_ + gi * in_slice_, 1, r.out[0] + out,
                                   has_residual_ ? r.in[3] + out : nullptr, r.threads);
        if (!st.ok()) return st;
      }
    return Status::Ok();
  }
  const char* algorithm() const override { return "direct"; }
  bool reads_at_run(int i) const override { return i == 0 || i == 3; }  // w and bias live in the groups
  int64_t prepared_bytes() const override {
    size_t b = 0;
    for (const PreparedConv2d& c : groups_) b += c.bytes();
    for (const std::vector<float>& w : merged_w_) b += w.capacity() * sizeof(float);
    return static_cast<int64_t>(b);
  }
};

Status make_grouped_direct(const OpBuild& b, const Conv2dArgs& a, bool has_residual, std::unique_ptr<Op>* op) {
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  const int64_t G = a.groups, Cg = a.C / G, Kg = a.K / G, B = conv2d_block(), RS = a.R * a.S;
  const int64_t f = Cg % B && B % Cg == 0 && G % (B / Cg) == 0 ? B / Cg : 1;  // groups per conv
  const int64_t Gm = G / f, Cm = Cg * f, Km = Kg * f;
  if ((X.block && Cm % X.block) || (Y.block && Km % Y.block))
    return b.error("a grouped conv run as direct needs whole channel blocks per group in nchw{B}c (C/groups = " +
                   std::to_string(Cg) + ", K/groups = " + std::to_string(Kg) +
                   ", B = " + std::to_string(X.block ? X.block : Y.block) + ")");
  auto* o = new GroupedDirectConvOp;
  op->reset(o);
  o->N_ = a.N;
  o->has_residual_ = has_residual;
  // whole blocks per group: the blocked storage of an image is C x H x W floats, as nchw
  o->in_slice_ = Cm * a.H * a.W;
  o->in_image_ = (X.block ? (a.C + X.block - 1) / X.block * X.block : a.C) * a.H * a.W;
  o->out_slice_ = Km * Y.dim(2) * Y.dim(3);
  o->out_image_ = (Y.block ? (a.K + Y.block - 1) / Y.block * Y.block : a.K) * Y.dim(2) * Y.dim(3);
  o->groups_.resize(static_cast<size_t>(Gm));
  for (int64_t gm = 0; gm < Gm; ++gm) {
    Conv2dArgs s = a;
    s.N = 1;
    s.C = Cm;
    s.K = Km;
    s.groups = 1;
    // w is K x C/G x R x S: group g's filters are rows [g Kg, (g+1) Kg), and so are its biases
    s.w = a.w + gm * Km * Cg * RS;
    s.bias = a.bias ? a.bias + gm * Km : nullptr;
    if (f > 1) {  // the f groups' filters on the block diagonal of Km x Cm
      o->merged_w_.emplace_back(static_cast<size_t>(Km * Cm * RS), 0.0f);
      float* wm = o->merged_w_.back().data();
      for (int64_t j = 0; j < f; ++j)
        for (int64_t k = 0; k < Kg; ++k)
          std::memcpy(wm + ((j * Kg + k) * Cm + j * Cg) * RS, s.w + (j * Kg + k) * Cg * RS,
                      sizeof(float) * static_cast<size_t>(Cg * RS));
      s.w = wm;
    }
    Status st = o->groups_[static_cast<size_t>(gm)].prepare(s);
    if (!st.ok()) return b.error("group " + std::to_string(gm * f) + ": " + st.message);
  }
  return Status::Ok();
}

// gemm: Y = act(alpha op(A) op(B) + beta C)
class GemmOp : public Op {
 public:
  GemmArgs g_;                        // A, B (when constant), C and the pointers are filled per call
  bool a_in_ = true, b_const_ = false;
  enum CMode { CNone, CBiasCol, CBiasRow, CFull, CScratch } c_mode_ = CNone;
  bool c_const_ = false;
  std::vector<float> c_owned_;        // constants: beta * C broadcast as the mode needs
  mutable std::vector<float> c_scratch_;   // activation C with another shape (sized at load)
  std::vector<int64_t> c_shape_;      // activation C broadcast: its shape (rank <= 2)
  std::vector<float> b_owned_;        // a constant transposed b, stored K x N at load (M = 1)
  PreparedGemmB b_prepared_;          // a constant b packed at load (M > 1)
  Status run(const OpRun& r) const override {
    GemmArgs g = g_;
    g.A = r.in[0];
    g.B = b_owned_.empty() ? r.in[1] : b_owned_.data();
    g.prepared_b = b_prepared_.ready() ? &b_prepared_ : nullptr;
    g.C = r.out[0];
    g.threads = r.threads;
    const float* c = c_mode_ == CNone ? nullptr : r.in[2];
    switch (c_mode_) {
      case CNone: break;
      case CBiasCol: g.bias_col = c_const_ ? c_owned_.data() : c; break;
      case CBiasRow: g.bias_row = c_const_ ? c_owned_.data() : c; break;
      case CFull:
        g.c_in = c_const_ ? c_owned_.data() : c;
        g.ld_cin = g.N;
        g.beta = c_const_ ? 1.0f : g_.beta;
        break;
      case CScratch: {
        // unidirectional broadcast of a (rank <= 2) C into M x N
        const int64_t cr = c_shape_.size() == 2 ? c_shape_[0] : 1;
        const int64_t cc = c_shape_.empty() ? 1 : c_shape_.back();
        for (int64_t i = 0; i < g.M; ++i)
          for (int64_t j = 0; j < g.N; ++j)
            c_scratch_[static_cast<size_t>(i * g.N + j)] = c[(cr == 1 ? 0 : i) * cc + (cc == 1 ? 0 : j)];
        g.c_in = c_scratch_.data();
        g.ld_cin = g.N;
        g.beta = g_.beta;
        break;
      }
    }
    return gemm(g);
  }
  bool reads_at_run(int i) const override {
    if (i == 1) return !b_prepared_.ready() && b_owned_.empty();
    if (i == 2) return c_mode_ != CNone && !c_const_;
    return true;
  }
  int64_t prepared_bytes() const override {
    return static_cast<int64_t>(b_prepared_.bytes() +
                                (c_owned_.capacity() + c_scratch_.capacity() + b_owned_.capacity()) * sizeof(float));
  }
};

}  // namespace

Status make_conv(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_arity(b, 2, 4, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Wt = *b.in[1], &Y = *b.out[0];
  const TensorInfo* bias = b.in.size() > 2 ? b.in[2] : nullptr;
  const TensorInfo* res = b.in.size() > 3 ? b.in[3] : nullptr;
  if (X.rank() != 4 || Wt.rank() != 4 || Y.rank() != 4)
    return b.error("takes 4-D x, w and y (got " + shape_str(X.shape) + ", " + shape_str(Wt.shape) + " -> " + shape_str(Y.shape) + ")");
  if (!Wt.data) return b.error("weights '" + Wt.name + "' must be a constant");
  if (bias && (!bias->data || bias->numel != Wt.dim(0)))
    return b.error("bias '" + bias->name + "' must be a constant of K = " + std::to_string(Wt.dim(0)) + " values");
  Attrs& at = *b.attrs;
  const auto s = at.ints("strides", {1, 1});
  const auto p = at.ints("pads", {0, 0, 0, 0});
  const auto d = at.ints("dilations", {1, 1});
  const int64_t groups = at.integer("groups", 1);
  const std::string act = at.string("activation", "none");
  const auto clip = at.numbers("clip", {});
  const std::string algo = at.string("algorithm", "");
  if (!at.status().ok()) return at.status();
  if (s.size() != 2 || p.size() != 4 || d.size() != 2)
    return b.error("strides and dilations need 2 values, pads 4 (top, left, bottom, right)");
  constexpr int64_t kMax = int64_t{1} << 20;
  for (int i = 0; i < 2; ++i)
    if (s[i] < 1 || d[i] < 1 || s[i] > kMax || d[i] > kMax) return b.error("strides and dilations must be in [1, 2^20]");
  for (int i = 0; i < 4; ++i)
    if (p[i] < 0 || p[i] > kMax) return b.error("pads must be in [0, 2^20]");
  Conv2dArgs a;
  a.N = X.dim(0);
  a.C = X.dim(1);
  a.H = X.dim(2);
  a.W = X.dim(3);
  a.K = Wt.dim(0);
  a.R = Wt.dim(2);
  a.S = Wt.dim(3);
  a.stride_h = s[0];
  a.stride_w = s[1];
  a.pad_top = p[0];
  a.pad_left = p[1];
  a.pad_bottom = p[2];
  a.pad_right = p[3];
  a.dilation_h = d[0];
  a.dilation_w = d[1];
  a.groups = groups;
  if (groups < 1 || a.C % groups || a.K % groups || Wt.dim(1) * groups != a.C)
    return b.error("weights " + shape_str(Wt.shape) + " do not fit " + std::to_string(a.C) + " input channels in " +
                   std::to_string(groups) + " groups");
  if (!parse_activation(act, &a.act) || !(a.act == Activation::None || a.act == Activation::Relu || a.act == Activation::Relu6))
    return b.error("activation '" + act + "' is not a conv epilogue (none, relu, relu6)");
  if (!clip.empty()) {
    if (clip.size() != 2) return b.error("clip needs [lo, hi] (null: unbounded)");
    a.clip_lo = std::isnan(clip[0]) ? -__builtin_inff() : static_cast<float>(clip[0]);
    a.clip_hi = std::isnan(clip[1]) ? __builtin_inff() : static_cast<float>(clip[1]);
  }
  if (!algo.empty()) {
    unsigned mask = 0;
    for (unsigned i = 0; i < sizeof kConvAlgorithms / sizeof kConvAlgorithms[0]; ++i)
      if (algo == kConvAlgorithms[i]) mask = 1u << i;
    if (!mask)
      return b.error("algorithm '" + algo + "' is not one of direct, gemm-1x1, im2col-gemm, winograd-f2, winograd-f4, depthwise");
    a.algorithms = mask;
  }
  const int64_t Ho = conv2d_output_h(a), Wo = conv2d_output_w(a);
  if (Ho <= 0 || Wo <= 0 || Y.dim(0) != a.N || Y.dim(1) != a.K || Y.dim(2) != Ho || Y.dim(3) != Wo)
    return b.error("output " + shape_str(Y.shape) + " does not match the input, weights and attributes (expected " +
                   shape_str({a.N, a.K, Ho, Wo}) + ")");
  if (res && (res->shape != Y.shape || res->block != Y.block))
    return b.error("residual '" + res->name + "' (" + res->layout_name() + " " + shape_str(res->shape) +
                   ") must match the output (" + Y.layout_name() + " " + shape_str(Y.shape) + ")");
  const int blk = conv2d_block();
  for (const TensorInfo* t : {&X, &Y, res})
    if (t && t->block && t->block != blk)
      return b.error("'" + t->name + "' is " + t->layout_name() + " but this build's conv kernels use nchw" +
                     std::to_string(blk) + "c");
  a.x_layout = X.block ? ConvLayout::Blocked : ConvLayout::NCHW;
  a.y_layout = Y.block ? ConvLayout::Blocked : ConvLayout::NCHW;
  a.w = Wt.data;
  a.bias = bias ? bias->data : nullptr;
  a.threads = b.threads;
  if (groups > 1 && !(groups == a.C && a.K % a.C == 0) && algo == "direct")
    return make_grouped_direct(b, a, res != nullptr, op);
  auto* o = new ConvOp;
  op->reset(o);
  o->N_ = a.N;
  o->has_residual_ = res != nullptr;
  st = o->conv_.prepare(a);
  if (!st.ok()) return b.error(st.message);
  return Status::Ok();
}

Status make_gemm(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 2, 3, 1);
  if (!st.ok()) return st;
  const TensorInfo &A = *b.in[0], &B = *b.in[1], &Y = *b.out[0];
  const TensorInfo* C = b.in.size() > 2 ? b.in[2] : nullptr;
  Attrs& at = *b.attrs;
  const float alpha = static_cast<float>(at.number("alpha", 1.0));
  const float beta = static_cast<float>(at.number("beta", 1.0));
  const bool ta = at.boolean("trans_a", false), tb = at.boolean("trans_b", false);
  const std::string act = at.string("activation", "none");
  if (!at.status().ok()) return at.status();
  if (A.rank() != 2 || B.rank() != 2 || Y.rank() != 2)
    return b.error("takes 2-D a and b (got " + shape_str(A.shape) + ", " + shape_str(B.shape) + ")");
  const int64_t M = ta ? A.dim(1) : A.dim(0), K = ta ? A.dim(0) : A.dim(1);
  const int64_t Kb = tb ? B.dim(1) : B.dim(0), N = tb ? B.dim(0) : B.dim(1);
  if (K != Kb) return b.error("a " + shape_str(A.shape) + " and b " + shape_str(B.shape) + " do not multiply (trans_a " +
                              std::to_string(ta) + ", trans_b " + std::to_string(tb) + ")");
  if (Y.dim(0) != M || Y.dim(1) != N) return b.error("output " + shape_str(Y.shape) + " should be " + shape_str({M, N}));
  auto* o = new GemmOp;
  op->reset(o);
  GemmArgs& g = o->g_;
  g.M = M;
  g.N = N;
  g.K = K;
  g.rs_a = ta ? 1 : K;
  g.cs_a = ta ? M : 1;
  g.rs_b = tb ? 1 : N;
  g.cs_b = tb ? K : 1;
  const bool prepare_b = B.data && M > 1 && K > 0 && N > 0;  // packed once below, at load
  if (tb && B.data && !prepare_b) {
    // A classifier's weights (N x K, trans_b) stored K x N once: the GEMM
    // (and its M = 1 GEMV entries) then reads b with unit stride along N
    // instead of gathering a column per K step on every call.
    o->b_owned_.resize(static_cast<size_t>(K * N));
    for (int64_t n = 0; n < N; ++n)
      for (int64_t k = 0; k < K; ++k) o->b_owned_[static_cast<size_t>(k * N + n)] = B.data[n * K + k];
    g.rs_b = N;
    g.cs_b = 1;
  }
  g.ldc = N;
  g.alpha = alpha;
  g.beta = beta;
  if (!parse_activation(act, &g.act)) return b.error("activation '" + act + "' is not one of none, relu, relu6, gelu_tanh, gelu_erf");
  if (C && beta != 0.0f) {
    if (C->rank() > 2) return b.error("c " + shape_str(C->shape) + " has more than 2 dimensions");
    const int64_t cr = C->rank() == 2 ? C->dim(0) : 1, cc = C->rank() >= 1 ? C->dim(C->rank() - 1) : 1;
    if ((cr != 1 && cr != M) || (cc != 1 && cc != N))
      return b.error("c " + shape_str(C->shape) + " does not broadcast to " + shape_str({M, N}));
    o->c_shape_ = C->shape;
    o->c_const_ = C->data != nullptr;
    if (o->c_const_) {
      // beta * C, laid out as the epilogue reads it
      if (cr == 1 && (cc == N || M > 1 || N == 1)) {
        o->c_mode_ = GemmOp::CBiasCol;
        o->c_owned_.resize(static_cast<size_t>(N));
        for (int64_t j = 0; j < N; ++j) o->c_owned_[static_cast<size_t>(j)] = beta * C->data[cc == 1 ? 0 : j];
      } else if (cc == 1) {
        o->c_mode_ = GemmOp::CBiasRow;
        o->c_owned_.resize(static_cast<size_t>(M));
        for (int64_t i = 0; i < M; ++i) o->c_owned_[static_cast<size_t>(i)] = beta * C->data[i];
      } else {
        o->c_mode_ = GemmOp::CFull;
        o->c_owned_.resize(static_cast<size_t>(M * N));
        for (int64_t i = 0; i < M * N; ++i) o->c_owned_[static_cast<size_t>(i)] = beta * C->data[i];
      }
    } else if (cr == M && cc == N) {
      o->c_mode_ = GemmOp::CFull;
    } else if (beta == 1.0f && cr == 1 && cc == N) {
      o->c_mode_ = GemmOp::CBiasCol;
    } else if (beta == 1.0f && cc == 1 && cr == M) {
      o->c_mode_ = GemmOp::CBiasRow;
    } else {
      o->c_mode_ = GemmOp::CScratch;
      o->c_scratch_.resize(static_cast<size_t>(M * N));
    }
  }
  if (prepare_b) {
    // The weights packed for the kernel once, instead of on every call.
    GemmArgs p = g;
    p.B = B.data;
    p.threads = b.threads;
    st = o->b_prepared_.prepare(p);
    if (!st.ok()) return b.error(st.message);
  }
  return Status::Ok();
}

// matmul: Y = permute(act(alpha * A' B' + bias + residual), perm_y), A' = permute(a, perm_a),
// B' = permute(b, perm_b), numpy batch broadcasting. The permutations are
// strides: a transposed operand (the per-head Q, K^T, V of attention) is read
// in place by the GEMM's packing, a permuted output written in place.
namespace {

struct Operand {
  std::vector<int64_t> shape, strides;  // logical (after the permutation), in elements
};

bool permuted(const TensorInfo& t, const std::vector<int64_t>& perm, Operand* o) {
  const int R = t.rank();
  std::vector<int64_t> dense(static_cast<size_t>(R), 1);
  for (int d = R - 2; d >= 0; --d) dense[static_cast<size_t>(d)] = dense[static_cast<size_t>(d) + 1] * t.dim(d + 1);
  o->shape.clear();
  o->strides.clear();
  if (perm.empty()) {
    o->shape = t.shape;
    o->strides = dense;
    return true;
  }
  if (static_cast<int>(perm.size()) != R) return false;
  std::vector<bool> seen(static_cast<size_t>(R), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= R || seen[static_cast<size_t>(p)]) return false;
    seen[static_cast<size_t>(p)] = true;
    o->shape.push_back(t.dim(static_cast<int>(p)));
    o->strides.push_back(dense[static_cast<size_t>(p)]);
  }
  return true;
}

class MatmulOp : public Op {
 public:
  GemmArgs g_;                         // M, N, K, strides, alpha, act, bias (constant)
  std::vector<int64_t> batch_;         // batch dims of the result (broadcast)
  std::vector<int64_t> sa_, sb_, sy_;  // per batch dim: element strides of a, b, y (0: broadcast)
  int64_t nbatch_ = 1;
  bool has_bias_ = false, has_res_ = false;
  PreparedGemmB b_prepared_;  // a constant b shared by the batch, packed once at load
  bool reads_at_run(int i) const override { return i != 1 || !b_prepared_.ready(); }
  int64_t prepared_bytes() const override { return static_cast<int64_t>(b_prepared_.bytes()); }
  Status run(const OpRun& r) const override {
    const float* bias = has_bias_ ? r.in[2] : nullptr;
    const float* res = has_res_ ? r.in[3] : nullptr;
    if (nbatch_ == 1) return one(r, 0, bias, res, r.threads);
    if (nbatch_ >= r.threads) {
      // one GEMM per thread at a time: the heads of attention are independent
      std::mutex mu;
      Status err;
      parallel_for(r.threads, nbatch_, 1, [&](int64_t b0, int64_t b1) {
        for (int64_t i = b0; i < b1; ++i) {
          Status s = one(r, i, bias, res, 1);
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            err = s;
          }
        }
      });
      return err;
    }
    for (int64_t i = 0; i < nbatch_; ++i) {
      Status s = one(r, i, bias, res, r.threads);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

 private:
  Status one(const OpRun& r, int64_t b, const float* bias, const float* res, int threads) const {
    int64_t oa = 0, ob = 0, oy = 0, rem = b;
    for (int d = static_cast<int>(batch_.size()) - 1; d >= 0; --d) {
      const int64_t i = rem % batch_[static_cast<size_t>(d)];
      rem /= batch_[static_cast<size_t>(d)];
      oa += i * sa_[static_cast<size_t>(d)];
      ob += i * sb_[static_cast<size_t>(d)];
      oy += i * sy_[static_cast<size_t>(d)];
    }
    GemmArgs g = g_;
    g.A = r.in[0] + oa;
    g.B = r.in[1] + ob;
    g.prepared_b = b_prepared_.ready() ? &b_prepared_ : nullptr;
    g.C = r.out[0] + oy;
    g.bias_col = bias;
    if (res) {
      g.c_in = res + oy;
      g.ld_cin = g.ldc;
      g.beta = 1.0f;
    }
    g.threads = threads;
    return gemm(g);
  }
};

}  // namespace

Status make_matmul(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 2, 4, 1);
  if (!st.ok()) return st;
  const TensorInfo &A = *b.in[0], &B = *b.in[1], &Y = *b.out[0];
  const TensorInfo* bias = b.in.size() > 2 ? b.in[2] : nullptr;
  const TensorInfo* res = b.in.size() > 3 ? b.in[3] : nullptr;
  Attrs& at = *b.attrs;
  const auto pa = at.ints("perm_a", {}), pb = at.ints("perm_b", {}), py = at.ints("perm_y", {});
  const float alpha = static_cast<float>(at.number("alpha", 1.0));
  const std::string act = at.string("activation", "none");
  if (!at.status().ok()) return at.status();
  if (A.rank() < 1 || B.rank() < 1)
    return b.error("a and b need at least 1 dimension (got " + shape_str(A.shape) + ", " + shape_str(B.shape) + ")");
  // numpy's vectors: a 1-D a is one row [1, K], a 1-D b one column [K, 1], and
  // the axis added for it is not in the output
  const bool a_vec = A.rank() == 1, b_vec = B.rank() == 1;
  if ((a_vec || b_vec) && !(pa.empty() && pb.empty() && py.empty()))
    return b.error("perm_a, perm_b and perm_y need a and b of at least 2 dimensions");
  Operand a, bb;
  if (!permuted(A, pa, &a)) return b.error("perm_a is not a permutation of a's " + std::to_string(A.rank()) + " axes");
  if (!permuted(B, pb, &bb)) return b.error("perm_b is not a permutation of b's " + std::to_string(B.rank()) + " axes");
  if (a_vec) {
    a.shape.insert(a.shape.begin(), 1);
    a.strides.insert(a.strides.begin(), A.shape[0]);
  }
  if (b_vec) {
    bb.shape.push_back(1);
    bb.strides.push_back(1);
  }
  const int ra = a.shape.size(), rb = bb.shape.size();
  const int64_t M = a.shape[ra - 2], K = a.shape[ra - 1], N = bb.shape[rb - 1];
  if (bb.shape[rb - 2] != K)
    return b.error("a " + shape_str(a.shape) + " and b " + shape_str(bb.shape) + " do not multiply");
  // the result's batch: numpy broadcasting of the two batch shapes
  const int nb = std::max(ra, rb) - 2;
  std::vector<int64_t> batch(static_cast<size_t>(nb)), sa(static_cast<size_t>(nb), 0), sbv(static_cast<size_t>(nb), 0);
  for (int d = 0; d < nb; ++d) {
    const int da = d - (nb - (ra - 2)), db = d - (nb - (rb - 2));
    const int64_t xa = da >= 0 ? a.shape[static_cast<size_t>(da)] : 1,
                  xb = db >= 0 ? bb.shape[static_cast<size_t>(db)] : 1;
    if (xa != xb && xa != 1 && xb != 1)
      return b.error("batch dimensions of a " + shape_str(a.shape) + " and b " + shape_str(bb.shape) +
                     " do not broadcast");
    batch[static_cast<size_t>(d)] = xa == 1 ? xb : xa;
    if (da >= 0 && xa != 1) sa[static_cast<size_t>(d)] = a.strides[static_cast<size_t>(da)];
    if (db >= 0 && xb != 1) sbv[static_cast<size_t>(d)] = bb.strides[static_cast<size_t>(db)];
  }
  std::vector<int64_t> result = batch;
  result.push_back(M);
  result.push_back(N);
  // y: the result permuted by perm_y; the strides of the result's axes in y's dense storage
  const int ry = static_cast<int>(result.size());
  std::vector<int64_t> want(static_cast<size_t>(ry)), ystride(static_cast<size_t>(ry));
  if (!py.empty()) {
    if (static_cast<int>(py.size()) != ry) return b.error("perm_y needs " + std::to_string(ry) + " axes");
    std::vector<bool> seen(static_cast<size_t>(ry), false);
    for (int64_t p : py) {
      if (p < 0 || p >= ry || seen[static_cast<size_t>(p)]) return b.error("perm_y is not a permutation");
      seen[static_cast<size_t>(p)] = true;
    }
    if (py.back() != ry - 1)
      return b.error("perm_y must keep the last axis last (the GEMM writes rows with unit stride)");
  }
  for (int d = 0; d < ry; ++d)
    want[static_cast<size_t>(d)] = result[static_cast<size_t>(py.empty() ? d : py[static_cast<size_t>(d)])];
  std::vector<int64_t> want_y = want;
  if (a_vec) want_y.erase(want_y.end() - 2);  // M
  if (b_vec) want_y.erase(want_y.end() - 1);  // N
  if (Y.shape != want_y) return b.error("output " + shape_str(Y.shape) + " should be " + shape_str(want_y));
  {
    std::vector<int64_t> dense(static_cast<size_t>(ry), 1);
    for (int d = ry - 2; d >= 0; --d)
      dense[static_cast<size_t>(d)] = dense[static_cast<size_t>(d) + 1] * want[static_cast<size_t>(d) + 1];
    for (int d = 0; d < ry; ++d)
      ystride[static_cast<size_t>(py.empty() ? d : py[static_cast<size_t>(d)])] = dense[static_cast<size_t>(d)];
  }
  if (bias && (!bias->data || bias->numel != N))
    return b.error("bias '" + bias->name + "' must be a constant of N = " + std::to_string(N) + " values");
  if (res && res->shape != Y.shape)
    return b.error("residual '" + res->name + "' " + shape_str(res->shape) + " must have the output's shape " +
                   shape_str(Y.shape));
  auto* o = new MatmulOp;
  op->reset(o);
  GemmArgs& g = o->g_;
  if (!parse_activation(act, &g.act))
    return b.error("activation '" + act + "' is not one of none, relu, relu6, gelu_tanh, gelu_erf");
  g.M = M;
  g.N = N;
  g.K = K;
  g.rs_a = a.strides[static_cast<size_t>(ra - 2)];
  g.cs_a = a.strides[static_cast<size_t>(ra - 1)];
  g.rs_b = bb.strides[static_cast<size_t>(rb - 2)];
  g.cs_b = bb.strides[static_cast<size_t>(rb - 1)];
  g.ldc = ystride[static_cast<size_t>(ry - 2)];
  g.alpha = alpha;
  o->has_bias_ = bias != nullptr;
  o->has_res_ = res != nullptr;
  // Fold batch dims into M where a and y walk them as more rows and b does not
  // move (x @ W with a 2-D weight): one large GEMM instead of many small ones.
  while (!batch.empty()) {
    const size_t d = batch.size() - 1;
    if (sbv[d] != 0 || sa[d] != g.M * g.rs_a || ystride[d] != g.M * g.ldc) break;
    g.M *= batch[d];
    batch.pop_back();
    sa.pop_back();
    sbv.pop_back();
  }
  o->batch_ = batch;
  o->sa_ = sa;
  o->sb_ = sbv;
  o->sy_.assign(ystride.begin(), ystride.begin() + static_cast<long>(batch.size()));
  o->nbatch_ = product(batch);
  if (Y.numel == 0) o->nbatch_ = 0;
  // Constant weights (x @ W, every batch reading the same b): packed once
  // here instead of on every call. A single row (M = 1) streams b's rows
  // in place instead (gemm_run's GEMV path).
  const bool b_shared = std::all_of(sbv.begin(), sbv.end(), [](int64_t s) { return s == 0; });
  if (B.data && b_shared && g.M > 1 && g.K > 0 && g.N > 0 && o->nbatch_ > 0) {
    GemmArgs p = g;
    p.B = B.data;
    p.threads = b.threads;
    st = o->b_prepared_.prepare(p);
    if (!st.ok()) return b.error(st.message);
  }
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
