// Operators that select or convert rather than compute: gather (embedding
// lookups, indices from an int64 input or a float32 tensor), cast (int64 ->
// float32, and the float32 -> bool / int conversions of mask arithmetic),
// where and expand (numpy broadcasting). Booleans and integers other than an
// int64 input are float32 values (FORMAT.md, "Element types").
#include <cmath>
#include <cstring>

#include "model/ops.h"

namespace autoconfig {
namespace model {

namespace {

constexpr int64_t kGrain = 16384;
// float32 holds every integer of magnitude up to 2^24 exactly.
constexpr double kExactInt = 16777216.0;

// ---- gather ----

class GatherOp : public Op {
 public:
  int64_t outer_ = 1, axis_len_ = 1, inner_ = 1, count_ = 0;  // data: outer x axis_len x inner; count indices
  bool int64_ = false;
  std::string index_name_;
  Status run(const OpRun& r) const override {
    const float* data = r.in[0];
    float* y = r.out[0];
    // check every index first: a bad one is an error, never a read out of bounds
    for (int64_t j = 0; j < count_; ++j) {
      const double v = index(r.in[1], j);
      if (!(v >= -static_cast<double>(axis_len_) && v < static_cast<double>(axis_len_)) || std::floor(v) != v)
        return Status::Error("index " + std::to_string(v) + " at position " + std::to_string(j) + " of '" +
                             index_name_ + "' is outside [-" + std::to_string(axis_len_) + ", " +
                             std::to_string(axis_len_) + ")");
    }
    const int64_t inner = inner_, count = count_, len = axis_len_;
    parallel_for(r.threads, outer_ * count, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, inner)),
                 [&](int64_t p0, int64_t p1) {
                   for (int64_t p = p0; p < p1; ++p) {
                     const int64_t o = p / count, j = p % count;
                     int64_t i = static_cast<int64_t>(index(r.in[1], j));
                     if (i < 0) i += len;
                     std::memcpy(y + p * inner, data + (o * len + i) * inner,
                                 sizeof(float) * static_cast<size_t>(inner));
                   }
                 });
    return Status::Ok();
  }

 private:
  double index(const float* idx, int64_t j) const {
    return int64_ ? static_cast<double>(reinterpret_cast<const int64_t*>(idx)[j]) : static_cast<double>(idx[j]);
  }
};

// ---- cast ----

enum class CastTo { Float, Bool, Int };

class CastOp : public Op {
 public:
  CastTo to_ = CastTo::Float;
  bool from_int64_ = false;
  int64_t n_ = 0;
  std::string name_;
  bool alias_ok(int, int, int64_t rel) const override { return rel == 0 && !from_int64_; }
  Status run(const OpRun& r) const override {
    float* y = r.out[0];
    if (from_int64_) {
      const int64_t* x = reinterpret_cast<const int64_t*>(r.in[0]);
      for (int64_t i = 0; i < n_; ++i) {
        const int64_t v = x[i];
        if (to_ != CastTo::Bool && (v > static_cast<int64_t>(kExactInt) || v < -static_cast<int64_t>(kExactInt)))
          return Status::Error("value " + std::to_string(v) + " at position " + std::to_string(i) + " of '" + name_ +
                               "' is beyond 2^24, which float32 does not hold exactly");
        y[i] = to_ == CastTo::Bool ? (v != 0 ? 1.0f : 0.0f) : static_cast<float>(v);
      }
      return Status::Ok();
    }
    const float* x = r.in[0];
    const CastTo to = to_;
    parallel_for(r.threads, n_, kGrain, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float v = x[i];
        y[i] = to == CastTo::Bool ? (v != 0.0f ? 1.0f : 0.0f) : to == CastTo::Int ? std::trunc(v) : v;
      }
    });
    return Status::Ok();
  }
};

// ---- where / expand: n-ary broadcasting over output rows ----

class BroadcastOp : public Op {
 public:
  std::vector<int64_t> out_;                   // output shape (rank >= 1)
  std::vector<std::vector<int64_t>> strides_;  // per input
  bool where_ = false;
  Status run(const OpRun& r) const override {
    const int64_t n = out_.back();
    int64_t rows = 1;
    for (size_t d = 0; d + 1 < out_.size(); ++d) rows *= out_[d];
    float* y = r.out[0];
    parallel_for(r.threads, rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, n)), [&](int64_t r0, int64_t r1) {
      for (int64_t row = r0; row < r1; ++row) {
        float* py = y + row * n;
        const float* p0 = r.in[0] + row_offset(out_, strides_[0], row);
        const int64_t s0 = strides_[0].back();
        if (!where_) {
          for (int64_t i = 0; i < n; ++i) py[i] = p0[i * s0];
          continue;
        }
        const float* p1 = r.in[1] + row_offset(out_, strides_[1], row);
        const float* p2 = r.in[2] + row_offset(out_, strides_[2], row);
        const int64_t s1 = strides_[1].back(), s2 = strides_[2].back();
        for (int64_t i = 0; i < n; ++i) py[i] = p0[i * s0] != 0.0f ? p1[i * s1] : p2[i * s2];
      }
    });
    return Status::Ok();
  }
};

Status broadcast_op(const OpBuild& b, int n_in, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, n_in, n_in, 1);
  if (!st.ok()) return st;
  const TensorInfo& Y = *b.out[0];
  auto* o = new BroadcastOp;
  op->reset(o);
  o->where_ = n_in == 3;
  o->out_ = Y.shape.empty() ? std::vector<int64_t>{1} : Y.shape;
  std::vector<int64_t> want(o->out_.size(), 1);
  for (int i = 0; i < n_in; ++i) {
    const TensorInfo& X = *b.in[static_cast<size_t>(i)];
    std::vector<int64_t> s;
    if (!broadcast_strides(X.shape, o->out_, &s))
      return b.error("input '" + X.name + "' " + shape_str(X.shape) + " does not broadcast to the output " +
                     shape_str(Y.shape));
    for (size_t d = 0, off = o->out_.size() - X.shape.size(); d < X.shape.size(); ++d)
      if (X.shape[d] != 1) want[d + off] = X.shape[d];
    o->strides_.push_back(s);
  }
  // where: the output is the broadcast of the inputs; expand: of the input and the shape it was given
  if (o->where_ && want != o->out_ && !Y.shape.empty())
    return b.error("output " + shape_str(Y.shape) + " is not the broadcast of its inputs (" + shape_str(want) + ")");
  return Status::Ok();
}

}  // namespace

Status make_gather(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 2, 2, 1);
  if (!st.ok()) return st;
  const TensorInfo &D = *b.in[0], &I = *b.in[1], &Y = *b.out[0];
  int64_t axis = b.attrs->integer("axis", 0);
  if (!b.attrs->status().ok()) return b.attrs->status();
  if (D.rank() < 1) return b.error("data '" + D.name + "' must have at least one dimension");
  if (axis < 0) axis += D.rank();
  if (axis < 0 || axis >= D.rank()) return b.error("axis out of range for data " + shape_str(D.shape));
  std::vector<int64_t> want(D.shape.begin(), D.shape.begin() + axis);
  want.insert(want.end(), I.shape.begin(), I.shape.end());
  want.insert(want.end(), D.shape.begin() + axis + 1, D.shape.end());
  if (Y.shape != want) return b.error("output " + shape_str(Y.shape) + " should be " + shape_str(want));
  auto* o = new GatherOp;
  op->reset(o);
  o->outer_ = product(D.shape, 0, static_cast<size_t>(axis));
  o->axis_len_ = D.dim(static_cast<int>(axis));
  o->inner_ = product(D.shape, static_cast<size_t>(axis) + 1);
  o->count_ = I.numel;
  o->int64_ = I.int64;
  o->index_name_ = I.name;
  return Status::Ok();
}

Status make_cast(const OpBuild& b, std::unique_ptr<Op>* op) {
  Status st = check_nchw_arity(b, 1, 1, 1);
  if (!st.ok()) return st;
  const TensorInfo &X = *b.in[0], &Y = *b.out[0];
  const std::string to = b.attrs->string("to", "", true);
  if (!b.attrs->status().ok()) return b.attrs->status();
  if (X.shape != Y.shape)
    return b.error("output " + shape_str(Y.shape) + " should have the input's shape " + shape_str(X.shape));
  auto* o = new CastOp;
  op->reset(o);
  if (to == "float32")
    o->to_ = CastTo::Float;
  else if (to == "bool")
    o->to_ = CastTo::Bool;
  else if (to == "int")
    o->to_ = CastTo::Int;
  else
    return b.error("to must be float32, bool or int, got '" + to + "'");
  o->from_int64_ = X.int64;
  o->n_ = X.numel;
  o->name_ = X.name;
  return Status::Ok();
}

Status make_where(const OpBuild& b, std::unique_ptr<Op>* op) { return broadcast_op(b, 3, op); }

Status make_expand(const OpBuild& b, std::unique_ptr<Op>* op) {
  // ONNX's second input (the shape) may stay in the node; the output's shape is the target
  if (b.in.size() == 2) {
    OpBuild one = b;
    one.in.resize(1);
    return broadcast_op(one, 1, op);
  }
  return broadcast_op(b, 1, op);
}

}  // namespace model
}  // namespace autoconfig
