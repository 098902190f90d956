// Attribute reading, arity checks and the op table.
#include <cmath>
#include <cstring>

#include "autoconfig/detail/registry.h"
#include "model/ops.h"

namespace autoconfig {
namespace model {

void Attrs::error(const std::string& msg) {
  if (st_.ok()) st_ = Status::Error(where_ + ": " + msg);
}

const json::Value* Attrs::get(const char* key, bool required) {
  const json::Value* v = obj_ ? obj_->find(key) : nullptr;
  if (!v && required) error(std::string("attribute '") + key + "' is missing");
  return v;
}

static bool as_int(const json::Value& v, int64_t* out) {
  if (v.kind == json::Value::Bool) { *out = v.b ? 1 : 0; return true; }
  if (v.kind != json::Value::Number) return false;
  if (!(std::fabs(v.num) <= 9.0e15) || std::floor(v.num) != v.num) return false;
  *out = static_cast<int64_t>(v.num);
  return true;
}

int64_t Attrs::integer(const char* key, int64_t def, bool required) {
  const json::Value* v = get(key, required);
  if (!v) return def;
  int64_t x;
  if (!as_int(*v, &x)) {
    error(std::string("attribute '") + key + "' must be an integer");
    return def;
  }
  return x;
}

double Attrs::number(const char* key, double def, bool required) {
  const json::Value* v = get(key, required);
  if (!v) return def;
  if (v->kind != json::Value::Number) {
    error(std::string("attribute '") + key + "' must be a number");
    return def;
  }
  return v->num;
}

double Attrs::number_or_null(const char* key, double def) {
  const json::Value* v = get(key, false);
  if (!v || v->kind == json::Value::Null) return def;
  return number(key, def);
}

bool Attrs::boolean(const char* key, bool def) {
  const json::Value* v = get(key, false);
  if (!v) return def;
  if (v->kind == json::Value::Bool) return v->b;
  int64_t x;
  if (as_int(*v, &x) && (x == 0 || x == 1)) return x == 1;
  error(std::string("attribute '") + key + "' must be true/false (or 0/1)");
  return def;
}

std::string Attrs::string(const char* key, const std::string& def, bool required) {
  const json::Value* v = get(key, required);
  if (!v) return def;
  if (v->kind != json::Value::String) {
    error(std::string("attribute '") + key + "' must be a string");
    return def;
  }
  return v->str;
}

std::vector<int64_t> Attrs::ints(const char* key, const std::vector<int64_t>& def, bool required) {
  const json::Value* v = get(key, required);
  if (!v) return def;
  std::vector<int64_t> out;
  if (v->kind != json::Value::Array) {
    error(std::string("attribute '") + key + "' must be an array of integers");
    return def;
  }
  for (const auto& e : v->arr) {
    int64_t x;
    if (!as_int(e, &x)) {
      error(std::string("attribute '") + key + "' must be an array of integers");
      return def;
    }
    out.push_back(x);
  }
  return out;
}

std::vector<double> Attrs::numbers(const char* key, const std::vector<double>& def, bool required) {
  const json::Value* v = get(key, required);
  if (!v) return def;
  std::vector<double> out;
  if (v->kind != json::Value::Array) {
    error(std::string("attribute '") + key + "' must be an array of numbers");
    return def;
  }
  for (const auto& e : v->arr) {
    if (e.kind == json::Value::Null) { out.push_back(NAN); continue; }
    if (e.kind != json::Value::Number) {
      error(std::string("attribute '") + key + "' must be an array of numbers");
      return def;
    }
    out.push_back(e.num);
  }
  return out;
}

Status check_arity(const OpBuild& b, int min_in, int max_in, int n_out) {
  const int ni = static_cast<int>(b.in.size());
  if (ni < min_in || (max_in >= 0 && ni > max_in)) {
    std::string want = max_in < 0 ? "at least " + std::to_string(min_in)
                       : min_in == max_in ? std::to_string(min_in)
                                          : std::to_string(min_in) + " to " + std::to_string(max_in);
    return b.error("takes " + want + " inputs, got " + std::to_string(ni));
  }
  for (int i = 0; i < min_in; ++i)
    if (!b.in[static_cast<size_t>(i)]) return b.error("input " + std::to_string(i) + " is required");
  if (n_out >= 0 && static_cast<int>(b.out.size()) != n_out)
    return b.error("has " + std::to_string(b.out.size()) + " outputs, expected " + std::to_string(n_out));
  if (b.out.empty()) return b.error("has no outputs");
  return Status::Ok();
}

Status require_nchw(const OpBuild& b) {
  for (const TensorInfo* t : b.in)
    if (t && t->block) return b.error("input '" + t->name + "' is " + t->layout_name() + ": this op takes nchw");
  for (const TensorInfo* t : b.out)
    if (t->block) return b.error("output '" + t->name + "' is " + t->layout_name() + ": this op writes nchw");
  return Status::Ok();
}

Status check_nchw_arity(const OpBuild& b, int min_in, int max_in, int n_out) {
  Status st = check_arity(b, min_in, max_in, n_out);
  return st.ok() ? require_nchw(b) : st;
}

Status model_loops(const detail::ModelLoops** out) {
  const detail::Registry* r = detail::active_registry();
  if (!r) return check_isa();
  *out = r->model_loops;
  return Status::Ok();
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

int64_t product(const std::vector<int64_t>& s, size_t from, size_t to) {
  int64_t p = 1;
  for (size_t i = from; i < s.size() && i < to; ++i) p *= s[i];
  return p;
}

bool broadcast_strides(const std::vector<int64_t>& in, const std::vector<int64_t>& out, std::vector<int64_t>* strides) {
  const int R = static_cast<int>(out.size()), r = static_cast<int>(in.size());
  if (r > R) return false;
  strides->assign(static_cast<size_t>(R), 0);
  int64_t stride = 1;
  for (int d = R - 1, e = r - 1; e >= 0; --d, --e) {
    const int64_t td = in[static_cast<size_t>(e)], od = out[static_cast<size_t>(d)];
    if (td != od && td != 1) return false;
    (*strides)[static_cast<size_t>(d)] = td == 1 ? 0 : stride;
    stride *= td;
  }
  return true;
}

namespace {
struct OpEntry { const char* name; OpFactory make; };
const OpEntry kOps[] = {
    {"conv", make_conv},
    {"gemm", make_gemm},
    {"matmul", make_matmul},
    {"relu", make_unary},
    {"leaky_relu", make_unary},
    {"clip", make_unary},
    {"sigmoid", make_unary},
    {"silu", make_unary},
    {"hard_sigmoid", make_unary},
    {"hard_swish", make_unary},
    {"tanh", make_unary},
    {"erf", make_unary},
    {"sqrt", make_unary},
    {"exp", make_unary},
    {"neg", make_unary},
    {"reciprocal", make_unary},
    {"gelu", make_unary},
    {"add", make_binary},
    {"sub", make_binary},
    {"mul", make_binary},
    {"div", make_binary},
    {"pow", make_binary},
    {"equal", make_binary},
    {"less", make_binary},
    {"greater", make_binary},
    {"max", make_binary},
    {"min", make_binary},
    {"where", make_where},
    {"expand", make_expand},
    {"gather", make_gather},
    {"cast", make_cast},
    {"layer_norm", make_layer_norm},
    {"channel_affine", make_channel_affine},
    {"concat", make_concat},
    {"split", make_split},
    {"max_pool", make_pool},
    {"avg_pool", make_pool},
    {"global_avg_pool", make_global_pool},
    {"global_max_pool", make_global_pool},
    {"reshape", make_reshape},
    {"transpose", make_transpose},
    {"softmax", make_softmax},
    {"log_softmax", make_softmax},
    {"lrn", make_lrn},
    {"pad", make_pad},
    {"reduce_mean", make_reduce_mean},
    {"to_layout", make_to_layout},
    {"attention", make_attention},
    {"matmul_layer_norm", make_matmul_layer_norm},
};
}  // namespace

OpFactory find_op(const std::string& op) {
  for (const OpEntry& e : kOps)
    if (op == e.name) return e.make;
  return nullptr;
}

std::string known_ops() {
  std::string r;
  for (const OpEntry& e : kOps) r += (r.empty() ? "" : ", ") + std::string(e.name);
  return r;
}

}  // namespace model
}  // namespace autoconfig
