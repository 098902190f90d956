// The executor's operators (FORMAT.md, "Ops"): one Op object per node, built
// once at load from the node's attributes and the tensor table's shapes
// (every check happens there), then run with the tensors' addresses.
//
// The loops are plain C++ written for the compiler's vectorizer: unit-stride
// inner loops, no calls or aliasing questions in them (__restrict where the
// buffers cannot overlap), selects instead of branches. Heavy operators split
// their outer loop across the node's threads with detail::parallel_run.
#pragma once
#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/runtime.h"
#include "model/json.h"
#include "model/loops.h"

namespace autoconfig {
namespace model {

// One tensor of the header's table, resolved.
struct TensorInfo {
  enum Kind { Input, Output, Constant, Intermediate };
  std::string name;
  std::vector<int64_t> shape;
  Kind kind = Intermediate;
  int block = 0;              // 0: nchw; B: nchw{B}c (storage N x ceil(C/B) x H x W x B)
  int64_t numel = 1;          // logical elements
  int64_t storage = 1;        // floats it occupies (numel, or the blocked storage)
  int64_t arena = -1;         // intermediate: float offset in the arena
  int64_t blob_offset = 0, blob_bytes = 0;   // constant
  int io_index = -1;          // input / output: position in the header's list
  bool int64 = false;         // an input of dtype int64 (read by gather and cast only)
  const float* data = nullptr;  // constant: the loaded bytes, then the kept copy (null: released)
  int64_t dim(int i) const { return shape[static_cast<size_t>(i)]; }
  int rank() const { return static_cast<int>(shape.size()); }
  std::string layout_name() const { return block ? "nchw" + std::to_string(block) + "c" : "nchw"; }
};

// Attribute reader for one node: remembers the first error (naming the node
// and the key) and returns the default after it.
class Attrs {
 public:
  Attrs(const json::Value* obj, std::string where) : obj_(obj), where_(std::move(where)) {}
  bool has(const char* key) const { return obj_ && obj_->find(key) && obj_->find(key)->kind != json::Value::Null; }
  int64_t integer(const char* key, int64_t def, bool required = false);
  double number(const char* key, double def, bool required = false);
  // null -> def (clip bounds: null = unbounded)
  double number_or_null(const char* key, double def);
  bool boolean(const char* key, bool def);   // true/false or 0/1
  std::string string(const char* key, const std::string& def, bool required = false);
  std::vector<int64_t> ints(const char* key, const std::vector<int64_t>& def, bool required = false);
  std::vector<double> numbers(const char* key, const std::vector<double>& def, bool required = false);
  void error(const std::string& msg);
  const Status& status() const { return st_; }
  const std::string& where() const { return where_; }

 private:
  const json::Value* get(const char* key, bool required);
  const json::Value* obj_;
  std::string where_;
  Status st_;
};

// What a node's Op is built from.
struct OpBuild {
  std::string name, op;
  std::vector<const TensorInfo*> in;    // nullptr: absent optional input
  std::vector<const TensorInfo*> out;
  Attrs* attrs;
  int threads;                          // the node's planned count (0: the run's)
  std::string where() const { return "node '" + name + "' (" + op + ")"; }
  Status error(const std::string& msg) const { return Status::Error(where() + ": " + msg); }
};

// Buffers of one call: in[i] / out[i] as in OpBuild (nullptr: absent input).
struct OpRun {
  const float* const* in;
  float* const* out;
  int threads;    // >= 1, already capped
};

class Op {
 public:
  virtual ~Op() = default;
  virtual Status run(const OpRun& r) const = 0;
  // Whether input `i` and output `j` may share arena space with input offset
  // - output offset = `rel` floats (an in-place elementwise op: rel 0; a
  // concat input or split output written in place: its slice's offset).
  virtual bool alias_ok(int /*i*/, int /*j*/, int64_t /*rel*/) const { return false; }
  // conv: the algorithm prepared; "" for other ops.
  virtual const char* algorithm() const { return ""; }
  // Whether run() reads input `i` (default: every input). An op that packed
  // or copied a constant input at load says false for it: the executor then
  // releases that constant unless another node reads it, and run() gets
  // nullptr for it.
  virtual bool reads_at_run(int /*i*/) const { return true; }
  // Bytes the op allocated at load for what it prepared (packed weights,
  // folded or copied constants, scratch sized once).
  virtual int64_t prepared_bytes() const { return 0; }
};

using OpFactory = Status (*)(const OpBuild& b, std::unique_ptr<Op>* op);
// The factory for an op name of the vocabulary, or nullptr.
OpFactory find_op(const std::string& op);
// The op names the executor knows, comma-separated (for errors).
std::string known_ops();

// factories, one family per file
Status make_unary(const OpBuild& b, std::unique_ptr<Op>* op);          // ops_elementwise.cpp
Status make_binary(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_channel_affine(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_pool(const OpBuild& b, std::unique_ptr<Op>* op);           // ops_pool.cpp
Status make_global_pool(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_concat(const OpBuild& b, std::unique_ptr<Op>* op);         // ops_tensor.cpp
Status make_split(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_reshape(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_transpose(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_pad(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_to_layout(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_softmax(const OpBuild& b, std::unique_ptr<Op>* op);        // ops_reduce.cpp
Status make_lrn(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_reduce_mean(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_layer_norm(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_gather(const OpBuild& b, std::unique_ptr<Op>* op);  // ops_index.cpp
Status make_cast(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_where(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_expand(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_conv(const OpBuild& b, std::unique_ptr<Op>* op);           // ops_linear.cpp
Status make_gemm(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_matmul(const OpBuild& b, std::unique_ptr<Op>* op);
Status make_attention(const OpBuild& b, std::unique_ptr<Op>* op);  // ops_attention.cpp
Status make_matmul_layer_norm(const OpBuild& b, std::unique_ptr<Op>* op);

// ---- helpers shared by the op files ----

// Checks the node's input/output counts (max_in < 0: no upper bound) and that
// required inputs are present.
Status check_arity(const OpBuild& b, int min_in, int max_in, int n_out);
// Requires every listed tensor to be nchw.
Status require_nchw(const OpBuild& b);
// check_arity, then require_nchw: the prologue of the ops that read and write dense NCHW.
Status check_nchw_arity(const OpBuild& b, int min_in, int max_in, int n_out);
// The active kernel variant's executor loops (loops.h), or check_isa()'s
// Status when no variant of this build runs on the CPU.
Status model_loops(const detail::ModelLoops** out);
std::string shape_str(const std::vector<int64_t>& s);
int64_t product(const std::vector<int64_t>& s, size_t from = 0, size_t to = SIZE_MAX);

// numpy broadcasting of `in` to `out`: per output axis the input's stride
// (0 where the input has 1 or lacks the axis); false when it does not broadcast.
bool broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out, std::vector<int64_t>* strides);
// The offset in an input with `strides` of output row `row` (all axes but the last).
inline int64_t row_offset(const std::vector<int64_t>& out, const std::vector<int64_t>& strides, int64_t row) {
  int64_t off = 0;
  for (int d = static_cast<int>(out.size()) - 2; d >= 0; --d) {
    const int64_t n = out[static_cast<size_t>(d)];
    off += (row % n) * strides[static_cast<size_t>(d)];
    row /= n;
  }
  return off;
}

// Splits [0, n) into chunks over up to `threads` threads (fewer when a chunk
// would fall below `grain` items) and calls f(begin, end) for each.
template <class F>
void parallel_for(int threads, int64_t n, int64_t grain, const F& f) {
  if (n <= 0) return;
  int64_t t = threads < 1 ? 1 : threads;
  if (grain < 1) grain = 1;
  if (t > n / grain) t = n / grain;
  if (t <= 1) {
    f(int64_t{0}, n);
    return;
  }
  struct Ctx { const F* f; int64_t n; };
  Ctx ctx{&f, n};
  detail::parallel_run(static_cast<int>(t), [](void* p, int tid, int nt) {
    const Ctx& c = *static_cast<const Ctx*>(p);
    const int64_t b = c.n * tid / nt, e = c.n * (tid + 1) / nt;
    if (b < e) (*c.f)(b, e);
  }, &ctx);
}

}  // namespace model
}  // namespace autoconfig
