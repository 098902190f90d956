// autoconfig::Model: the .acmodel reader (FORMAT.md) and the executor.
//
// Loading checks, in order: the preamble (magic, version, flags, lengths
// against the file size), the CRC-32 checksum, the zero padding, the header
// JSON (required keys and their types), the tensor table (shapes, layouts,
// blobs inside the blob section, arena ranges inside the arena), the node
// list (known ops, inputs produced before use, single assignment), each
// node's Op (shapes and attributes: ops_*.cpp) and the arena plan (tensors
// sharing arena space must not be alive together, except where the op says
// it reads in place). The first failure is returned, naming what is wrong.
#include "autoconfig/model.h"

#include <array>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <new>

#include <sys/stat.h>
#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>
#define AUTOCONFIG_MAP_FILES 1
#endif

#include "autoconfig/detail/runtime.h"
#include "model/json.h"
#include "model/ops.h"

namespace autoconfig {

using model::TensorInfo;

namespace {

constexpr uint32_t kVersion = 1;
constexpr size_t kPreamble = 32;
constexpr int kMaxRank = 8;
constexpr int kMaxBlock = 64;
constexpr int64_t kMaxElements = int64_t{1} << 40;
constexpr int64_t kMaxArenaFloats = int64_t{1} << 36;

struct AlignedFree {
  void operator()(float* p) const { ::operator delete[](p, std::align_val_t(64)); }
};
using AlignedBuffer = std::unique_ptr<float[], AlignedFree>;

AlignedBuffer aligned_floats(size_t n) {
  float* p = static_cast<float*>(::operator new[](std::max<size_t>(n, 1) * sizeof(float), std::align_val_t(64), std::nothrow));
  if (p) std::memset(p, 0, std::max<size_t>(n, 1) * sizeof(float));
  return AlignedBuffer(p);
}

uint64_t read_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
uint32_t read_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::string hex64(uint64_t v) {
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

bool json_int(const json::Value* v, int64_t lo, int64_t hi, int64_t* out) {
  if (!v || v->kind != json::Value::Number) return false;
  if (!(v->num >= static_cast<double>(lo) && v->num <= static_cast<double>(hi))) return false;
  if (static_cast<double>(static_cast<int64_t>(v->num)) != v->num) return false;
  *out = static_cast<int64_t>(v->num);
  return true;
}

}  // namespace

struct ModelNode {
  std::string name, op;
  std::vector<int> in, out;        // tensor ids (-1: absent optional input)
  int threads = 0;
  std::unique_ptr<model::Op> impl;
  std::unique_ptr<model::Attrs> attrs;
  mutable std::vector<const float*> in_ptr;    // filled per call (sized at load)
  mutable std::vector<float*> out_ptr;
};

struct ModelImpl {
  std::string name, header;
  json::Value doc;
  std::vector<TensorInfo> tensors;
  std::vector<int> inputs, outputs;
  std::vector<ModelNode> nodes;
  AlignedBuffer blobs, arena;  // blobs: the constants read at run time (keep_constants)
  int64_t arena_floats = 0, arena_used = 0;
  int64_t kept_bytes = 0, released_bytes = 0;
  bool mapped = false;               // load(path): the bytes are a read-only file mapping (drop_pages)
  mutable std::vector<float*> ptr;   // per tensor, per call
  mutable std::mutex mu;
  std::string empty;

  Status parse(const uint8_t* data, size_t size);
  Status parse_tensors(const json::Value& list, const float* blob_section, uint64_t blob_bytes);
  Status parse_nodes(const json::Value& list);
  Status check_arena() const;
  Status keep_constants();
  void drop_pages(const void* p, size_t n) const;
  Status execute(const void* const* inputs, float* const* outputs, int threads, std::vector<double>* ms) const;
};

Status ModelImpl::parse(const uint8_t* data, size_t size) {
  if (size < kPreamble)
    return Status::Error("file too short: " + std::to_string(size) + " bytes, the preamble alone is 32 (truncated?)");
  if (std::memcmp(data, "ACMODEL\0", 8) != 0) return Status::Error("bad magic: not an .acmodel file");
  const uint32_t version = read_u32(data + 8), flags = read_u32(data + 12);
  if (version != kVersion)
    return Status::Error("format version " + std::to_string(version) + ", this reader reads version 1");
  if (flags != 0) return Status::Error("flags " + std::to_string(flags) + ": this reader knows none (expected 0)");
  const uint64_t H = read_u64(data + 16), B = read_u64(data + 24);
  if (H > size || B > size)
    return Status::Error("header length " + std::to_string(H) + " or blob length " + std::to_string(B) +
                         " runs past the end of the " + std::to_string(size) + "-byte file (truncated?)");
  const uint64_t P = (kPreamble + H + 63) / 64 * 64;
  const uint64_t total = P + B + 8;
  if (total > size)
    return Status::Error("file truncated: the lengths in the preamble need " + std::to_string(total) + " bytes, the file has " +
                         std::to_string(size));
  if (total < size)
    return Status::Error(std::to_string(size - total) + " unexpected bytes after the checksum (the lengths in the preamble need " +
                         std::to_string(total) + ")");
  const uint64_t stored = read_u64(data + P + B), computed = acmodel_checksum(data, static_cast<size_t>(P + B));
  if (stored != computed)
    return Status::Error("checksum mismatch (stored " + hex64(stored) + ", computed " + hex64(computed) + "): the file is corrupted");
  for (uint64_t i = kPreamble + H; i < P; ++i)
    if (data[i]) return Status::Error("non-zero byte in the padding after the header at offset " + std::to_string(i));
  header.assign(reinterpret_cast<const char*>(data + kPreamble), static_cast<size_t>(H));
  std::string err;
  if (!json::parse(header.data(), header.size(), &doc, &err)) return Status::Error("header JSON: " + err);
  if (doc.kind != json::Value::Object) return Status::Error("header JSON: the root is not an object");
  const json::Value* f = doc.find("format");
  if (!f || f->kind != json::Value::String || f->str != "acmodel")
    return Status::Error("header: key 'format' must be \"acmodel\"");
  int64_t v;
  if (!json_int(doc.find("version"), 0, 1 << 30, &v))
    return Status::Error("header: key 'version' is missing or not an integer");
  if (v != kVersion) return Status::Error("header: version " + std::to_string(v) + ", this reader reads version 1");
  if (const json::Value* n = doc.find("name")) {
    if (n->kind != json::Value::String) return Status::Error("header: key 'name' must be a string");
    name = n->str;
  }
  if (!json_int(doc.find("arena_floats"), 0, kMaxArenaFloats, &arena_floats))
    return Status::Error("header: key 'arena_floats' is missing or not an integer in [0, 2^36]");
  const json::Value* t = doc.find("tensors");
  if (!t || t->kind != json::Value::Array) return Status::Error("header: key 'tensors' is missing or not an array");
  // The ops prepare from the loaded bytes in place (no copy of every weight
  // beside its packed one); keep_constants() then copies only what they still
  // read at run time, and the caller's bytes can go.
  const uint8_t* blob_section = data + P;
  AlignedBuffer staging;  // bytes not float-aligned (a caller's buffer): one copy to prepare from
  if (reinterpret_cast<uintptr_t>(blob_section) % alignof(float)) {
    staging = aligned_floats(static_cast<size_t>((B + 3) / 4));
    if (!staging) return Status::Error("cannot allocate " + std::to_string(B) + " bytes for the weights");
    if (B) std::memcpy(staging.get(), blob_section, static_cast<size_t>(B));
    blob_section = reinterpret_cast<const uint8_t*>(staging.get());
  }
  drop_pages(blob_section, static_cast<size_t>(B));  // the checksum read it all; the ops fault in what they read
  Status st = parse_tensors(*t, reinterpret_cast<const float*>(blob_section), B);
  if (!st.ok()) return st;
  for (int pass = 0; pass < 2; ++pass) {
    const char* key = pass ? "outputs" : "inputs";
    const TensorInfo::Kind kind = pass ? TensorInfo::Output : TensorInfo::Input;
    std::vector<int>& ids = pass ? outputs : inputs;
    const json::Value* l = doc.find(key);
    if (!l || l->kind != json::Value::Array) return Status::Error(std::string("header: key '") + key + "' is missing or not an array");
    for (const json::Value& e : l->arr) {
      if (e.kind != json::Value::String) return Status::Error(std::string("header: '") + key + "' must list tensor names");
      int id = -1;
      for (size_t i = 0; i < tensors.size(); ++i)
        if (tensors[i].name == e.str) id = static_cast<int>(i);
      if (id < 0) return Status::Error(std::string("header: ") + key + " lists '" + e.str + "', which is not in the tensor table");
      TensorInfo& ti = tensors[static_cast<size_t>(id)];
      if (ti.kind != kind) return Status::Error(std::string("header: ") + key + " lists '" + e.str + "', a tensor of another kind");
      if (ti.io_index >= 0) return Status::Error(std::string("header: ") + key + " lists '" + e.str + "' twice");
      ti.io_index = static_cast<int>(ids.size());
      ids.push_back(id);
    }
  }
  for (const TensorInfo& ti : tensors)
    if ((ti.kind == TensorInfo::Input || ti.kind == TensorInfo::Output) && ti.io_index < 0)
      return Status::Error("tensor '" + ti.name + "' is of kind " + (ti.kind == TensorInfo::Input ? "input" : "output") +
                           " but not listed in '" + (ti.kind == TensorInfo::Input ? "inputs" : "outputs") + "'");
  if (outputs.empty()) return Status::Error("header: the model has no outputs");
  const json::Value* nl = doc.find("nodes");
  if (!nl || nl->kind != json::Value::Array) return Status::Error("header: key 'nodes' is missing or not an array");
  st = parse_nodes(*nl);
  if (!st.ok()) return st;
  st = check_arena();
  if (!st.ok()) return st;
  st = keep_constants();
  if (!st.ok()) return st;
  // arena_floats bounds the plan; the tensors' ranges say how much of it is used
  int64_t used = 0;
  for (const TensorInfo& ti : tensors)
    if (ti.kind == TensorInfo::Intermediate) used = std::max(used, ti.arena + ti.storage);
  arena_used = used;
  arena = aligned_floats(static_cast<size_t>(used));
  if (!arena) return Status::Error("cannot allocate the arena (" + std::to_string(used) + " floats)");
  ptr.assign(tensors.size(), nullptr);
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].kind == TensorInfo::Constant) ptr[i] = const_cast<float*>(tensors[i].data);
    if (tensors[i].kind == TensorInfo::Intermediate) ptr[i] = arena.get() + tensors[i].arena;
  }
  return Status::Ok();
}

Status ModelImpl::parse_tensors(const json::Value& list, const float* blob_section, uint64_t blob_bytes) {
  for (size_t i = 0; i < list.arr.size(); ++i) {
    const json::Value& e = list.arr[i];
    const std::string where = "tensor #" + std::to_string(i);
    if (e.kind != json::Value::Object) return Status::Error(where + ": not an object");
    TensorInfo t;
    const json::Value* n = e.find("name");
    if (!n || n->kind != json::Value::String || n->str.empty())
      return Status::Error(where + ": key 'name' is missing or not a non-empty string");
    t.name = n->str;
    const std::string tw = "tensor '" + t.name + "'";
    for (const TensorInfo& o : tensors)
      if (o.name == t.name) return Status::Error(tw + " is listed twice");
    const json::Value* s = e.find("shape");
    if (!s || s->kind != json::Value::Array) return Status::Error(tw + ": key 'shape' is missing or not an array");
    if (s->arr.size() > kMaxRank) return Status::Error(tw + ": rank " + std::to_string(s->arr.size()) + " exceeds 8");
    for (const json::Value& d : s->arr) {
      int64_t x;
      if (!json_int(&d, 0, kMaxElements, &x)) return Status::Error(tw + ": shape entries must be integers >= 0");
      t.shape.push_back(x);
      if (x && t.numel > kMaxElements / x) return Status::Error(tw + ": more than 2^40 elements");
      t.numel *= x;
    }
    const json::Value* k = e.find("kind");
    if (!k || k->kind != json::Value::String) return Status::Error(tw + ": key 'kind' is missing or not a string");
    if (k->str == "input") t.kind = TensorInfo::Input;
    else if (k->str == "output") t.kind = TensorInfo::Output;
    else if (k->str == "constant") t.kind = TensorInfo::Constant;
    else if (k->str == "intermediate") t.kind = TensorInfo::Intermediate;
    else return Status::Error(tw + ": kind '" + k->str + "' is not input, output, constant or intermediate");
    if (const json::Value* l = e.find("layout")) {
      if (l->kind != json::Value::String) return Status::Error(tw + ": key 'layout' must be a string");
      const std::string& ls = l->str;
      if (ls != "nchw") {
        int b = 0;
        bool ok = ls.size() > 5 && ls.compare(0, 4, "nchw") == 0 && ls.back() == 'c' && ls.size() <= 7;
        for (size_t j = 4; ok && j + 1 < ls.size(); ++j) {
          if (ls[j] < '0' || ls[j] > '9') ok = false;
          else b = b * 10 + (ls[j] - '0');
        }
        if (!ok || b < 1 || b > kMaxBlock) return Status::Error(tw + ": layout '" + ls + "' is not nchw or nchw{B}c (1 <= B <= 64)");
        if (t.rank() != 4) return Status::Error(tw + ": layout " + ls + " needs a 4-D NCHW shape, not " + model::shape_str(t.shape));
        if (t.kind == TensorInfo::Input || t.kind == TensorInfo::Output || t.kind == TensorInfo::Constant)
          return Status::Error(tw + ": inputs, outputs and constants are nchw, not " + ls);
        t.block = b;
      }
    }
    if (const json::Value* dt = e.find("dtype")) {
      if (dt->kind != json::Value::String || (dt->str != "float32" && dt->str != "int64"))
        return Status::Error(tw + ": dtype must be \"float32\" or \"int64\"");
      t.int64 = dt->str == "int64";
      if (t.int64 && t.kind != TensorInfo::Input)
        return Status::Error(tw + ": only inputs may be int64 (every other tensor is float32)");
      if (t.int64 && t.block) return Status::Error(tw + ": an int64 input is nchw");
    }
    t.storage = t.block ? t.dim(0) * ((t.dim(1) + t.block - 1) / t.block) * t.dim(2) * t.dim(3) * t.block : t.numel;
    if (t.kind == TensorInfo::Constant) {
      if (!json_int(e.find("offset"), 0, INT64_MAX / 2, &t.blob_offset))
        return Status::Error(tw + ": key 'offset' is missing or not an integer >= 0");
      if (!json_int(e.find("bytes"), 0, INT64_MAX / 2, &t.blob_bytes))
        return Status::Error(tw + ": key 'bytes' is missing or not an integer >= 0");
      if (t.blob_bytes != 4 * t.numel)
        return Status::Error(tw + ": " + std::to_string(t.blob_bytes) + " bytes for " + std::to_string(t.numel) +
                             " float32 elements (expected " + std::to_string(4 * t.numel) + ")");
      if (t.blob_offset % 64) return Status::Error(tw + ": blob offset " + std::to_string(t.blob_offset) + " is not 64-byte aligned");
      if (static_cast<uint64_t>(t.blob_offset) + static_cast<uint64_t>(t.blob_bytes) > blob_bytes)
        return Status::Error(tw + ": blob [" + std::to_string(t.blob_offset) + ", " + std::to_string(t.blob_offset + t.blob_bytes) +
                             ") lies outside the " + std::to_string(blob_bytes) + "-byte blob section");
      t.data = blob_section + t.blob_offset / 4;
    } else if (t.kind == TensorInfo::Intermediate) {
      if (!json_int(e.find("arena"), 0, kMaxArenaFloats, &t.arena))
        return Status::Error(tw + ": key 'arena' is missing or not an integer >= 0");
      if (t.arena + t.storage > arena_floats)
        return Status::Error(tw + ": arena range [" + std::to_string(t.arena) + ", " + std::to_string(t.arena + t.storage) +
                             ") runs past arena_floats " + std::to_string(arena_floats));
    }
    tensors.push_back(std::move(t));
  }
  return Status::Ok();
}

Status ModelImpl::parse_nodes(const json::Value& list) {
  std::vector<bool> ready(tensors.size(), false), produced(tensors.size(), false);
  for (size_t i = 0; i < tensors.size(); ++i)
    ready[i] = tensors[i].kind == TensorInfo::Input || tensors[i].kind == TensorInfo::Constant;
  auto find = [&](const std::string& n) -> int {
    for (size_t i = 0; i < tensors.size(); ++i)
      if (tensors[i].name == n) return static_cast<int>(i);
    return -1;
  };
  // the last node whose preparation reads each constant: its bytes can go after it (drop_pages)
  std::vector<size_t> last_reader(tensors.size(), 0);
  if (mapped)
    for (size_t ni = 0; ni < list.arr.size(); ++ni)
      if (const json::Value* l = list.arr[ni].kind == json::Value::Object ? list.arr[ni].find("inputs") : nullptr)
        if (l->kind == json::Value::Array)
          for (const json::Value& x : l->arr) {
            const int id = x.kind == json::Value::String ? find(x.str) : -1;
            if (id >= 0) last_reader[static_cast<size_t>(id)] = ni;
          }
  nodes.reserve(list.arr.size());
  for (size_t ni = 0; ni < list.arr.size(); ++ni) {
    const json::Value& e = list.arr[ni];
    std::string where = "node #" + std::to_string(ni);
    if (e.kind != json::Value::Object) return Status::Error(where + ": not an object");
    ModelNode node;
    const json::Value* n = e.find("name");
    if (!n || n->kind != json::Value::String || n->str.empty())
      return Status::Error(where + ": key 'name' is missing or not a non-empty string");
    node.name = n->str;
    where = "node '" + node.name + "'";
    for (const ModelNode& o : nodes)
      if (o.name == node.name) return Status::Error(where + " appears twice");
    const json::Value* op = e.find("op");
    if (!op || op->kind != json::Value::String) return Status::Error(where + ": key 'op' is missing or not a string");
    node.op = op->str;
    const model::OpFactory make = model::find_op(node.op);
    if (!make) return Status::Error(where + ": unknown op '" + node.op + "' (the executor knows " + model::known_ops() + ")");
    where += " (" + node.op + ")";
    for (int pass = 0; pass < 2; ++pass) {
      const char* key = pass ? "outputs" : "inputs";
      const json::Value* l = e.find(key);
      if (!l || l->kind != json::Value::Array) return Status::Error(where + ": key '" + key + "' is missing or not an array");
      for (const json::Value& x : l->arr) {
        if (x.kind != json::Value::String) return Status::Error(where + ": '" + key + "' must list tensor names");
        if (x.str.empty()) {
          if (pass) return Status::Error(where + ": an output name is empty");
          node.in.push_back(-1);
          continue;
        }
        const int id = find(x.str);
        if (id < 0) return Status::Error(where + ": " + (pass ? "output '" : "input '") + x.str + "' is not in the tensor table");
        (pass ? node.out : node.in).push_back(id);
      }
    }
    const json::Value* attrs = e.find("attrs");
    if (attrs && attrs->kind != json::Value::Object) return Status::Error(where + ": key 'attrs' must be an object");
    if (const json::Value* th = e.find("threads")) {
      int64_t t;
      if (!json_int(th, 0, 1 << 16, &t)) return Status::Error(where + ": key 'threads' must be an integer >= 0");
      node.threads = static_cast<int>(t);
    }
    // execution order: inputs ready, outputs assigned once
    for (int id : node.in) {
      if (id < 0) continue;
      if (!ready[static_cast<size_t>(id)])
        return Status::Error(where + " reads '" + tensors[static_cast<size_t>(id)].name +
                             "' before any node produces it (nodes must be listed in execution order, without cycles)");
    }
    for (int id : node.out) {
      const TensorInfo& t = tensors[static_cast<size_t>(id)];
      if (t.kind != TensorInfo::Intermediate && t.kind != TensorInfo::Output)
        return Status::Error(where + " writes '" + t.name + "', a tensor of kind " + (t.kind == TensorInfo::Input ? "input" : "constant"));
      if (produced[static_cast<size_t>(id)]) return Status::Error(where + " writes '" + t.name + "', which an earlier node (or this one) already wrote");
      produced[static_cast<size_t>(id)] = true;
    }
    for (int id : node.out) ready[static_cast<size_t>(id)] = true;
    node.attrs.reset(new model::Attrs(attrs, where));
    model::OpBuild b;
    b.name = node.name;
    b.op = node.op;
    for (int id : node.in) b.in.push_back(id < 0 ? nullptr : &tensors[static_cast<size_t>(id)]);
    for (int id : node.out) b.out.push_back(&tensors[static_cast<size_t>(id)]);
    b.attrs = node.attrs.get();
    b.threads = node.threads;
    for (size_t i = 0; i < b.in.size(); ++i) {
      // int64 data is read by the two ops that convert it; everything else computes on float32
      if (b.in[i] && b.in[i]->int64 && !((node.op == "gather" && i == 1) || (node.op == "cast" && i == 0)))
        return Status::Error(where + ": reads the int64 input '" + b.in[i]->name + "' as input " + std::to_string(i) +
                             "; only gather (indices) and cast read int64 tensors");
    }
    Status st = make(b, &node.impl);
    if (!st.ok()) return st;
    if (!node.attrs->status().ok()) return node.attrs->status();
    for (int id : node.in)
      if (id >= 0 && tensors[static_cast<size_t>(id)].kind == TensorInfo::Constant &&
          last_reader[static_cast<size_t>(id)] == ni)
        drop_pages(tensors[static_cast<size_t>(id)].data,
                   static_cast<size_t>(tensors[static_cast<size_t>(id)].blob_bytes));
    node.in_ptr.assign(node.in.size(), nullptr);
    node.out_ptr.assign(node.out.size(), nullptr);
    nodes.push_back(std::move(node));
  }
  for (int id : outputs)
    if (!produced[static_cast<size_t>(id)])
      return Status::Error("output '" + tensors[static_cast<size_t>(id)].name + "' is not produced by any node");
  return Status::Ok();
}

Status ModelImpl::check_arena() const {
  // lifetime of each intermediate: [its producer, its last reader]
  const size_t T = tensors.size();
  std::vector<int64_t> first(T, -1), last(T, -1);
  for (size_t k = 0; k < nodes.size(); ++k) {
    for (int id : nodes[k].out)
      if (first[static_cast<size_t>(id)] < 0) first[static_cast<size_t>(id)] = last[static_cast<size_t>(id)] = static_cast<int64_t>(k);
    for (int id : nodes[k].in)
      if (id >= 0) last[static_cast<size_t>(id)] = static_cast<int64_t>(k);
  }
  std::vector<size_t> live;
  for (size_t i = 0; i < T; ++i)
    if (tensors[i].kind == TensorInfo::Intermediate && first[i] >= 0 && tensors[i].storage > 0) live.push_back(i);
  std::sort(live.begin(), live.end(), [&](size_t a, size_t b) { return tensors[a].arena < tensors[b].arena; });
  for (size_t x = 0; x < live.size(); ++x) {
    const TensorInfo& a = tensors[live[x]];
    for (size_t y = x + 1; y < live.size(); ++y) {
      const TensorInfo& b = tensors[live[y]];
      if (b.arena >= a.arena + a.storage) break;   // sorted by start: no later one overlaps a
      const int64_t lo = std::max(first[live[x]], first[live[y]]), hi = std::min(last[live[x]], last[live[y]]);
      if (lo > hi) continue;   // lifetimes disjoint
      bool ok = false;
      if (lo == hi) {
        // alive together only at node lo: fine when one is its input, the other its output, and the op reads in place
        const ModelNode& n = nodes[static_cast<size_t>(lo)];
        for (int pass = 0; pass < 2 && !ok; ++pass) {
          const size_t in_t = pass ? live[y] : live[x], out_t = pass ? live[x] : live[y];
          for (size_t i = 0; i < n.in.size() && !ok; ++i) {
            if (n.in[i] != static_cast<int>(in_t)) continue;
            for (size_t j = 0; j < n.out.size() && !ok; ++j)
              if (n.out[j] == static_cast<int>(out_t))
                ok = n.impl->alias_ok(static_cast<int>(i), static_cast<int>(j), tensors[in_t].arena - tensors[out_t].arena);
          }
        }
      }
      if (!ok)
        return Status::Error("arena plan: '" + a.name + "' [" + std::to_string(a.arena) + ", " + std::to_string(a.arena + a.storage) +
                             ") and '" + b.name + "' [" + std::to_string(b.arena) + ", " + std::to_string(b.arena + b.storage) +
                             ") share arena space while both are alive (nodes " + std::to_string(lo) + " to " + std::to_string(hi) + ")");
    }
  }
  return Status::Ok();
}

// Copies the constants some node reads at run time (Op::reads_at_run) into
// blobs, each 64-byte aligned, and forgets the rest: the ops hold what they
// prepared from them. Runs after every op is built, while the loaded bytes
// are still there.
Status ModelImpl::keep_constants() {
  std::vector<bool> read(tensors.size(), false);
  for (const ModelNode& n : nodes)
    for (size_t i = 0; i < n.in.size(); ++i)
      if (n.in[i] >= 0 && n.impl->reads_at_run(static_cast<int>(i))) read[static_cast<size_t>(n.in[i])] = true;
  const auto slot = [](const TensorInfo& t) { return static_cast<size_t>((t.numel + 15) / 16 * 16); };
  size_t floats = 0;
  for (size_t i = 0; i < tensors.size(); ++i)
    if (tensors[i].kind == TensorInfo::Constant && read[i]) floats += slot(tensors[i]);
  blobs = aligned_floats(floats);
  if (!blobs)
    return Status::Error("cannot allocate " + std::to_string(4 * floats) + " bytes for the constants read at run time");
  size_t at = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    TensorInfo& t = tensors[i];
    if (t.kind != TensorInfo::Constant) continue;
    if (!read[i]) {
      released_bytes += t.blob_bytes;
      t.data = nullptr;
      continue;
    }
    // in chunks, each dropped once copied: a mapped file's copy of a large
    // table (an embedding) is never resident whole beside the kept one
    constexpr int64_t kChunk = int64_t{4} << 20;
    const char* src = reinterpret_cast<const char*>(t.data);
    char* dst = reinterpret_cast<char*>(blobs.get() + at);
    for (int64_t o = 0; o < t.blob_bytes; o += kChunk) {
      const size_t n = static_cast<size_t>(std::min(kChunk, t.blob_bytes - o));
      std::memcpy(dst + o, src + o, n);
      drop_pages(src + o, n);
    }
    t.data = blobs.get() + at;
    kept_bytes += t.blob_bytes;
    at += slot(t);
  }
  return Status::Ok();
}

// A file mapping's pages holding [p, p + n) go back to the kernel (they stay
// in the page cache; a later read faults them in again from the file): with
// a weight dropped once the last op preparing from it is built, the load's
// peak stays near what the Model keeps, not the file plus its prepared copy.
// A no-op for a caller's bytes.
void ModelImpl::drop_pages(const void* p, size_t n) const {
#ifdef AUTOCONFIG_MAP_FILES
  if (!mapped || !n) return;
  const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t b = reinterpret_cast<uintptr_t>(p) / page * page;
  const uintptr_t e = (reinterpret_cast<uintptr_t>(p) + n + page - 1) / page * page;
  ::madvise(reinterpret_cast<void*>(b), e - b, MADV_DONTNEED);
#else
  (void)p;
  (void)n;
#endif
}

Status ModelImpl::execute(const void* const* in, float* const* out, int threads, std::vector<double>* ms) const {
  if (threads < 0) return Status::Error("run: threads must be >= 0, got " + std::to_string(threads));
  if (!in && !inputs.empty()) return Status::Error("run: the inputs array is null");
  if (!out) return Status::Error("run: the outputs array is null");
  struct Range { const char* b; const char* e; const std::string* what; };   // no allocation per call
  Range ranges[64];
  size_t nr = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const TensorInfo& t = tensors[static_cast<size_t>(inputs[i])];
    if (!in[i] && t.numel) return Status::Error("run: input " + std::to_string(i) + " ('" + t.name + "') is null");
  }
  for (size_t i = 0; i < outputs.size(); ++i) {
    const TensorInfo& t = tensors[static_cast<size_t>(outputs[i])];
    if (!out[i] && t.numel) return Status::Error("run: output " + std::to_string(i) + " ('" + t.name + "') is null");
    const char* b = reinterpret_cast<const char*>(out[i]);
    const char* e = b + t.numel * 4;
    // an output buffer must not overlap another output or an input (checked for the first 64 buffers)
    for (size_t j = 0; j < inputs.size() && t.numel; ++j) {
      const TensorInfo& u = tensors[static_cast<size_t>(inputs[j])];
      const char* ib = reinterpret_cast<const char*>(in[j]);
      if (u.numel && ib < e && b < ib + u.numel * (u.int64 ? 8 : 4))
        return Status::Error("run: output '" + t.name + "' overlaps input '" + u.name + "'");
    }
    for (size_t j = 0; j < nr; ++j)
      if (ranges[j].b < e && b < ranges[j].e) return Status::Error("run: output '" + t.name + "' overlaps output '" + *ranges[j].what + "'");
    if (nr < 64 && t.numel) ranges[nr++] = Range{b, e, &t.name};
  }
  std::lock_guard<std::mutex> lock(mu);
  // an int64 input travels as a float pointer to the ops that read it (gather, cast), which know its type
  for (size_t i = 0; i < inputs.size(); ++i)
    ptr[static_cast<size_t>(inputs[i])] = static_cast<float*>(const_cast<void*>(in[i]));
  for (size_t i = 0; i < outputs.size(); ++i) ptr[static_cast<size_t>(outputs[i])] = out[i];
  const int cap = threads > 0 ? threads : detail::available_cpus();
  if (ms) ms->assign(nodes.size(), 0.0);
  for (size_t k = 0; k < nodes.size(); ++k) {
    const ModelNode& n = nodes[k];
    for (size_t i = 0; i < n.in.size(); ++i) n.in_ptr[i] = n.in[i] < 0 ? nullptr : ptr[static_cast<size_t>(n.in[i])];
    for (size_t j = 0; j < n.out.size(); ++j) n.out_ptr[j] = ptr[static_cast<size_t>(n.out[j])];
    model::OpRun r{n.in_ptr.data(), n.out_ptr.data(), std::max(1, n.threads > 0 ? std::min(n.threads, cap) : cap)};
    const auto t0 = std::chrono::steady_clock::now();
    Status st = n.impl->run(r);
    if (ms) (*ms)[k] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    if (!st.ok()) return Status::Error("node '" + n.name + "' (" + n.op + "): " + st.message);
  }
  return Status::Ok();
}

// ---- Model ----

Model::Model() : impl_(new ModelImpl) {}
Model::~Model() = default;

std::unique_ptr<Model> Model::load_from_memory(const void* data, size_t size, Status* status) {
  return load_bytes(data, size, false, status);
}

std::unique_ptr<Model> Model::load_bytes(const void* data, size_t size, bool mapped, Status* status) {
  Status local;
  Status& st = status ? *status : local;
  if (!data && size) {
    st = Status::Error("acmodel: data is null");
    return nullptr;
  }
  std::unique_ptr<Model> m(new Model);
  m->impl_->mapped = mapped;
  try {
    st = m->impl_->parse(static_cast<const uint8_t*>(data), size);
  } catch (const std::bad_alloc&) {
    st = Status::Error("out of memory while loading");
  }
  if (!st.ok()) {
    st.message = "acmodel: " + st.message;
    return nullptr;
  }
  return m;
}

std::unique_ptr<Model> Model::load(const std::string& path, Status* status) {
  Status local;
  Status& st = status ? *status : local;
  struct stat sb;
  if (::stat(path.c_str(), &sb) == 0 && !S_ISREG(sb.st_mode)) {
    st = Status::Error(path + ": not a regular file");
    return nullptr;
  }
#ifdef AUTOCONFIG_MAP_FILES
  // Mapped rather than read, so the weights' pages can go back during the load (drop_pages).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    struct stat fs;
    void* p = MAP_FAILED;
    size_t n = 0;
    if (::fstat(fd, &fs) == 0 && S_ISREG(fs.st_mode) && fs.st_size > 0) {
      n = static_cast<size_t>(fs.st_size);
      p = ::mmap(nullptr, n, PROT_READ, MAP_PRIVATE, fd, 0);
    }
    ::close(fd);
    if (p != MAP_FAILED) {
      auto m = load_bytes(p, n, true, &st);
      ::munmap(p, n);
      if (!m) st.message = path + ": " + st.message.substr(st.message.rfind("acmodel: ", 0) == 0 ? 9 : 0);
      return m;
    }
  }
#endif
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) {
    st = Status::Error(path + ": cannot open the file");
    return nullptr;
  }
  const std::streamoff size = f.tellg();
  if (size < 0) {
    st = Status::Error(path + ": cannot read the file's size");
    return nullptr;
  }
  std::vector<uint8_t> bytes;
  try {
    bytes.resize(static_cast<size_t>(size));
  } catch (const std::bad_alloc&) {
    st = Status::Error(path + ": out of memory reading " + std::to_string(size) + " bytes");
    return nullptr;
  }
  f.seekg(0);
  if (size && !f.read(reinterpret_cast<char*>(bytes.data()), size)) {
    st = Status::Error(path + ": read error");
    return nullptr;
  }
  auto m = load_from_memory(bytes.data(), bytes.size(), &st);
  if (!m) st.message = path + ": " + st.message.substr(st.message.rfind("acmodel: ", 0) == 0 ? 9 : 0);
  return m;
}

const std::string& Model::name() const { return impl_->name; }
int Model::num_inputs() const { return static_cast<int>(impl_->inputs.size()); }
int Model::num_outputs() const { return static_cast<int>(impl_->outputs.size()); }

namespace {
const TensorInfo* io(const ModelImpl& m, const std::vector<int>& ids, int i) {
  if (i < 0 || i >= static_cast<int>(ids.size())) return nullptr;
  return &m.tensors[static_cast<size_t>(ids[static_cast<size_t>(i)])];
}
}  // namespace

const std::string& Model::input_name(int i) const {
  const TensorInfo* t = io(*impl_, impl_->inputs, i);
  return t ? t->name : impl_->empty;
}
const std::string& Model::output_name(int i) const {
  const TensorInfo* t = io(*impl_, impl_->outputs, i);
  return t ? t->name : impl_->empty;
}
std::vector<int64_t> Model::input_shape(int i) const {
  const TensorInfo* t = io(*impl_, impl_->inputs, i);
  return t ? t->shape : std::vector<int64_t>{};
}
std::vector<int64_t> Model::output_shape(int i) const {
  const TensorInfo* t = io(*impl_, impl_->outputs, i);
  return t ? t->shape : std::vector<int64_t>{};
}
int64_t Model::input_size(int i) const {
  const TensorInfo* t = io(*impl_, impl_->inputs, i);
  return t ? t->numel : -1;
}
DType Model::input_dtype(int i) const {
  const TensorInfo* t = io(*impl_, impl_->inputs, i);
  return t && t->int64 ? DType::Int64 : DType::Float32;
}
int64_t Model::output_size(int i) const {
  const TensorInfo* t = io(*impl_, impl_->outputs, i);
  return t ? t->numel : -1;
}

Status Model::run(const void* const* inputs, float* const* outputs, int threads) const {
  return impl_->execute(inputs, outputs, threads, nullptr);
}

Status Model::run(const float* const* inputs, float* const* outputs, int threads) const {
  for (int i : impl_->inputs)
    if (impl_->tensors[static_cast<size_t>(i)].int64)
      return Status::Error("run: input '" + impl_->tensors[static_cast<size_t>(i)].name +
                           "' is int64; pass the inputs as const void* const* (Model::run overload)");
  return impl_->execute(reinterpret_cast<const void* const*>(inputs), outputs, threads, nullptr);
}

Status Model::run_profiled(const void* const* inputs, float* const* outputs, int threads,
                           std::vector<double>* ms_per_node) const {
  std::vector<double> local;
  return impl_->execute(inputs, outputs, threads, ms_per_node ? ms_per_node : &local);
}

Status Model::run_profiled(const float* const* inputs, float* const* outputs, int threads,
                           std::vector<double>* ms_per_node) const {
  for (int i : impl_->inputs)
    if (impl_->tensors[static_cast<size_t>(i)].int64)
      return Status::Error("run: input '" + impl_->tensors[static_cast<size_t>(i)].name +
                           "' is int64; pass the inputs as const void* const* (Model::run_profiled overload)");
  std::vector<double> local;
  return impl_->execute(reinterpret_cast<const void* const*>(inputs), outputs, threads,
                        ms_per_node ? ms_per_node : &local);
}

int Model::num_nodes() const { return static_cast<int>(impl_->nodes.size()); }
const std::string& Model::node_name(int i) const {
  return i >= 0 && i < num_nodes() ? impl_->nodes[static_cast<size_t>(i)].name : impl_->empty;
}
const std::string& Model::node_op(int i) const {
  return i >= 0 && i < num_nodes() ? impl_->nodes[static_cast<size_t>(i)].op : impl_->empty;
}
int Model::node_threads(int i) const {
  return i >= 0 && i < num_nodes() ? impl_->nodes[static_cast<size_t>(i)].threads : 0;
}
std::string Model::node_algorithm(int i) const {
  return i >= 0 && i < num_nodes() ? impl_->nodes[static_cast<size_t>(i)].impl->algorithm() : "";
}
const std::string& Model::header_json() const { return impl_->header; }
int64_t Model::arena_floats() const { return impl_->arena_floats; }

ModelMemory Model::memory() const {
  ModelMemory m;
  m.arena = 4 * impl_->arena_used;
  for (const ModelNode& n : impl_->nodes) m.prepared += n.impl->prepared_bytes();
  m.constants = impl_->kept_bytes;
  m.released = impl_->released_bytes;
  return m;
}

// Slicing by 8: eight 256-entry tables let the loop fold 8 bytes per step
// (a ResNet-50 file is ~100 MB: byte-at-a-time would cost ~0.2 s of the load).
uint64_t acmodel_checksum(const void* data, size_t n) {
  static const auto tables = [] {
    std::array<std::array<uint32_t, 256>, 8> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (int s = 1; s < 8; ++s)
      for (uint32_t i = 0; i < 256; ++i) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xFF];
    return t;
  }();
  const uint8_t* p = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (; n >= 8; n -= 8, p += 8) {
    const uint32_t lo = crc ^ (uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24);
    const uint32_t hi = uint32_t(p[4]) | uint32_t(p[5]) << 8 | uint32_t(p[6]) << 16 | uint32_t(p[7]) << 24;
    crc = tables[7][lo & 0xFF] ^ tables[6][(lo >> 8) & 0xFF] ^ tables[5][(lo >> 16) & 0xFF] ^ tables[4][lo >> 24] ^
          tables[3][hi & 0xFF] ^ tables[2][(hi >> 8) & 0xFF] ^ tables[1][(hi >> 16) & 0xFF] ^ tables[0][hi >> 24];
  }
  for (; n > 0; --n, ++p) crc = tables[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

}  // namespace autoconfig
