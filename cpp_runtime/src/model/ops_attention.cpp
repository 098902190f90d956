// attention (scaled dot-product attention over heads, autoconfig::attention)
// and matmul_layer_norm (GEMM + bias + residual + LayerNorm,
// autoconfig::gemm_layernorm): the transformer patterns the graph planner
// fuses (FORMAT.md, "Ops").
#include <cmath>
#include <string>

#include "autoconfig/attention.h"
#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

bool parse_algorithm(const std::string& s, AttentionAlgorithm* a) {
  if (s == "auto")
    *a = AttentionAlgorithm::Auto;
  else if (s == "fused")
    *a = AttentionAlgorithm::Fused;
  else if (s == "unfused")
    *a = AttentionAlgorithm::Unfused;
  else
    return false;
  return true;
}

// Each of q, k, v and the output is one of
//   rank 3 [B, rows, width]: head h in columns [offset + h*D, offset + (h+1)*D)
//     (the projections' outputs before the head split; q, k, v may be one
//     packed tensor at three offsets; the output is [B, S, H*D], offset 0);
//   rank 4, a permutation of the logical [B, H, rows, D]: logical axis i is
//     the tensor's axis perm[i] ([0, 2, 1, 3]: [B, rows, H, D], the head
//     split as a view; identity: [B, H, rows, D]); D must stay last.
// The mask, if any, is broadcast to [B, H, S, Sk] by its strides (0 on a
// broadcast axis).
class AttentionOp : public Op {
 public:
  AttentionArgs a_;
  int64_t q_off_ = 0, k_off_ = 0, v_off_ = 0;
  bool masked_ = false;
  Status run(const OpRun& r) const override {
    AttentionArgs a = a_;
    a.q = r.in[0] + q_off_;
    a.k = r.in[1] + k_off_;
    a.v = r.in[2] + v_off_;
    a.mask = masked_ ? r.in[3] : nullptr;
    a.o = r.out[0];
    a.threads = r.threads;
    return attention(a);
  }
};

// (batch, head, row) strides of one operand with `rows` rows, or an error.
struct Strided {
  int64_t batch = 0, head = 0, row = 0, offset = 0;
};

Status operand(const OpBuild& b, Attrs& at, const TensorInfo& t, const char* name, int64_t B, int64_t H, int64_t rows,
               int64_t D, Strided* s) {
  const std::string n(name);
  const std::string want =
      "[" + std::to_string(B) + ", " + std::to_string(H) + ", " + std::to_string(rows) + ", " + std::to_string(D) + "]";
  if (t.rank() == 3) {
    s->offset = at.integer((n + "_offset").c_str(), 0);
    if (t.dim(0) != B || t.dim(1) != rows || s->offset < 0 || s->offset + H * D > t.dim(2))
      return b.error(n + " " + shape_str(t.shape) + " (offset " + std::to_string(s->offset) + ") does not hold " +
                     std::to_string(H) + " heads of " + std::to_string(D) + " for " + std::to_string(B) + " x " +
                     std::to_string(rows) + " rows");
    s->batch = rows * t.dim(2), s->head = D, s->row = t.dim(2);
    return Status::Ok();
  }
  if (t.rank() != 4) return b.error(n + " " + shape_str(t.shape) + " must be of rank 3 or 4");
  const std::vector<int64_t> perm = at.ints((n + "_perm").c_str(), {0, 1, 2, 3});
  if (!at.status().ok()) return at.status();
  std::vector<bool> seen(4, false);
  bool ok = perm.size() == 4 && perm[3] == 3;
  for (size_t i = 0; ok && i < 4; ++i) {
    ok = perm[i] >= 0 && perm[i] < 4 && !seen[static_cast<size_t>(perm[i])];
    if (ok) seen[static_cast<size_t>(perm[i])] = true;
  }
  if (!ok) return b.error(n + "_perm must be a permutation of 0..3 keeping the last axis (head_size) last");
  int64_t dense[4] = {0, 0, 0, 1};
  for (int d = 2; d >= 0; --d) dense[d] = dense[d + 1] * t.dim(d + 1);
  const int64_t logical[4] = {B, H, rows, D};
  for (int i = 0; i < 4; ++i)
    if (t.dim(static_cast<int>(perm[static_cast<size_t>(i)])) != logical[i])
      return b.error(n + " " + shape_str(t.shape) + " permuted by " + n + "_perm is not " + want);
  s->batch = dense[perm[0]], s->head = dense[perm[1]], s->row = dense[perm[2]];
  return Status::Ok();
}

}  // namespace

Status make_attention(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 3, 4, 1);
  if (!st.ok()) return st;
  Attrs& at = *b.attrs;
  const int64_t H = at.integer("heads", 0, true);
  const int64_t D = at.integer("head_size", 0, true);
  const double scale = at.number("scale", 0.0, true);
  const std::string alg = at.string("algorithm", "auto");
  if (!at.status().ok()) return at.status();
  auto* o = new AttentionOp;
  op->reset(o);
  if (!parse_algorithm(alg, &o->a_.algorithm))
    return b.error("algorithm '" + alg + "': expected auto, fused or unfused");
  if (H < 1 || D < 1) return b.error("heads and head_size must be >= 1");
  if (!std::isfinite(scale)) return b.error("scale must be finite");
  const TensorInfo &Q = *b.in[0], &K = *b.in[1], &V = *b.in[2], &Y = *b.out[0];
  if (Q.rank() < 3 || K.rank() < 3) return b.error("q and k must be of rank 3 or 4");
  const int64_t B = Q.dim(0);
  // rows: axis 1 of a rank-3 tensor, else the logical axis 2 of the permutation
  auto rows_of = [&](const TensorInfo& t, const char* name) -> int64_t {
    if (t.rank() == 3) return t.dim(1);
    const std::vector<int64_t> perm = at.ints((std::string(name) + "_perm").c_str(), {0, 1, 2, 3});
    return perm.size() == 4 && perm[2] >= 0 && perm[2] < 4 ? t.dim(static_cast<int>(perm[2])) : -1;
  };
  const int64_t S = rows_of(Q, "q"), Sk = rows_of(K, "k");
  Strided q, k, v, y;
  if (!(st = operand(b, at, Q, "q", B, H, S, D, &q)).ok()) return st;
  if (!(st = operand(b, at, K, "k", B, H, Sk, D, &k)).ok()) return st;
  if (!(st = operand(b, at, V, "v", B, H, Sk, D, &v)).ok()) return st;
  if (!(st = operand(b, at, Y, "y", B, H, S, D, &y)).ok()) return st;
  if (y.offset != 0 || (Y.rank() == 3 && Y.dim(2) != H * D))
    return b.error("output " + shape_str(Y.shape) + " must hold exactly the heads");
  AttentionArgs& a = o->a_;
  a.B = B, a.H = H, a.S = S, a.Sk = Sk, a.D = D;
  a.q_batch = q.batch, a.q_head = q.head, a.q_row = q.row;
  a.k_batch = k.batch, a.k_head = k.head, a.k_row = k.row;
  a.v_batch = v.batch, a.v_head = v.head, a.v_row = v.row;
  a.o_batch = y.batch, a.o_head = y.head, a.o_row = y.row;
  o->q_off_ = q.offset, o->k_off_ = k.offset, o->v_off_ = v.offset;
  a.scale = static_cast<float>(scale);
  if (b.in.size() > 3 && b.in[3]) {
    const TensorInfo& M = *b.in[3];
    const std::vector<int64_t> full{B, H, S, Sk};
    if (M.rank() > 4 || M.rank() < 1 || M.dim(M.rank() - 1) != Sk)
      return b.error("mask " + shape_str(M.shape) + " must end with Sk = " + std::to_string(Sk) + " and broadcast to " +
                     shape_str(full));
    // strides of the mask seen as [B, H, S, Sk] (right-aligned, 0 where broadcast)
    int64_t strides[4] = {0, 0, 0, 1}, step = 1;
    for (int i = M.rank() - 1, d = 3; i >= 0; --i, --d) {
      if (M.dim(i) != 1 && M.dim(i) != full[static_cast<size_t>(d)])
        return b.error("mask " + shape_str(M.shape) + " does not broadcast to " + shape_str(full));
      strides[d] = M.dim(i) == 1 && d != 3 ? 0 : step;
      step *= M.dim(i);
    }
    a.mask_batch = strides[0], a.mask_head = strides[1], a.mask_row = strides[2];
    o->masked_ = true;
  }
  return Status::Ok();
}

namespace {

// Y = LayerNorm(X W + bias + residual) over the last axis (N): X [..., K],
// W [K, N] (constant), bias, gamma, beta [N], residual like Y.
class MatmulLayerNormOp : public Op {
 public:
  GemmArgs g_;
  LayerNormEpilogue ln_;
  PreparedGemmB w_;  // W packed once, at load
  bool has_bias_ = false, has_res_ = false, has_beta_ = false;
  Status run(const OpRun& r) const override {
    GemmArgs g = g_;
    g.A = r.in[0];
    g.B = r.in[1];
    g.prepared_b = w_.ready() ? &w_ : nullptr;
    g.bias_col = has_bias_ ? r.in[2] : nullptr;
    if (has_res_) {
      g.c_in = r.in[3];
      g.ld_cin = g.N;
      g.beta = 1.0f;
    }
    g.C = r.out[0];
    g.threads = r.threads;
    LayerNormEpilogue ln = ln_;
    ln.gamma = r.in[4];
    ln.beta = has_beta_ ? r.in[5] : nullptr;
    return gemm_layernorm(g, ln);
  }
  // the residual may be the output itself (an in-place residual add)
  bool alias_ok(int i, int, int64_t rel) const override { return i == 3 && rel == 0; }
  bool reads_at_run(int i) const override { return i != 1 || !w_.ready(); }
  int64_t prepared_bytes() const override { return static_cast<int64_t>(w_.bytes()); }
};

}  // namespace

Status make_matmul_layer_norm(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 5, 6, 1);
  if (!st.ok()) return st;
  Attrs& at = *b.attrs;
  const double eps = at.number("epsilon", 1e-5);
  const std::string alg = at.string("algorithm", "auto");
  if (!at.status().ok()) return at.status();
  auto* o = new MatmulLayerNormOp;
  op->reset(o);
  if (!parse_algorithm(alg, &o->ln_.algorithm))
    return b.error("algorithm '" + alg + "': expected auto, fused or unfused");
  if (!(eps >= 0) || !std::isfinite(eps)) return b.error("epsilon must be finite and >= 0");
  const TensorInfo &X = *b.in[0], &W = *b.in[1], &Y = *b.out[0];
  if (W.rank() != 2 || X.rank() < 1 || X.dim(X.rank() - 1) != W.dim(0))
    return b.error("x " + shape_str(X.shape) + " and w " + shape_str(W.shape) + " do not multiply (w must be K x N)");
  const int64_t N = W.dim(1);
  std::vector<int64_t> want(X.shape.begin(), X.shape.end() - 1);
  want.push_back(N);
  if (Y.shape != want) return b.error("output " + shape_str(Y.shape) + " should be " + shape_str(want));
  const char* names[] = {"", "", "bias", "residual", "gamma", "beta"};
  for (size_t i = 2; i < b.in.size(); ++i) {
    if (!b.in[i]) continue;
    const bool ok = i == 3 ? b.in[i]->shape == Y.shape : b.in[i]->numel == N;
    if (!ok)
      return b.error(std::string(names[i]) + " " + shape_str(b.in[i]->shape) +
                     " does not fit N = " + std::to_string(N));
  }
  if (!b.in[4]) return b.error("gamma (input 4) is required");
  o->has_bias_ = b.in[2] != nullptr;
  o->has_res_ = b.in[3] != nullptr;
  o->has_beta_ = b.in.size() > 5 && b.in[5] != nullptr;
  GemmArgs& g = o->g_;
  g.M = product(X.shape, 0, X.shape.size() - 1);
  g.N = N;
  g.K = W.dim(0);
  g.rs_a = g.K, g.cs_a = 1, g.rs_b = N, g.cs_b = 1, g.ldc = N;
  o->ln_.epsilon = static_cast<float>(eps);
  if (W.data && g.M > 1) {
    GemmArgs p = g;
    p.B = W.data;
    p.threads = b.threads;
    st = o->w_.prepare(p);
    if (!st.ok()) return b.error(st.message);
  }
  return Status::Ok();
}

}  // namespace model
}  // namespace autoconfig
