// autoconfig::Model: runs a planned network saved as an .acmodel file
// (python/autoconfig/graph/FORMAT.md), the executor Python's autoconfig.load
// and C++ engines share. No Python and no onnx at run time.
//
//   autoconfig::Status st;
//   std::unique_ptr<autoconfig::Model> m = autoconfig::Model::load("resnet50.acmodel", &st);
//   if (!m) { fprintf(stderr, "%s\n", st.message.c_str()); return 1; }
//   std::vector<float> x(...), y(...);          // sizes from input_shape(0) / output_shape(0)
//   const float* in[] = {x.data()};
//   float* out[] = {y.data()};
//   st = m->run(in, out, /*threads=*/0);
//
// Loading validates the whole file (lengths, checksum, header, every node's
// shapes and attributes, the order of the nodes, the arena plan): a
// truncated, corrupted or inconsistent file gives a Status naming what is
// wrong and a null pointer, never a crash. Weights are prepared once at load
// (conv weights packed for their algorithm, constant GEMM operands packed for
// the kernel), the file's constants no node reads any more are released
// (memory() says what is kept) and the activation arena is allocated once:
// a run allocates nothing (the kernels' per-thread scratch grows on the first
// run only).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"

namespace autoconfig {

struct ModelImpl;

// What a loaded Model holds, in bytes (Model::memory()).
struct ModelMemory {
  int64_t arena = 0;      // the activation arena (allocated once at load)
  int64_t prepared = 0;   // what the ops made at load: packed GEMM B, folded and packed conv weights, copied constants
  int64_t constants = 0;  // the file's constants still read at run time (kept beside the prepared copies)
  int64_t released = 0;   // the file's constants no op reads after preparation (freed after load, not counted in total)
  int64_t total() const { return arena + prepared + constants; }
};

// Element type of a model input: float32, or int64 (token ids and attention
// masks of a transformer; FORMAT.md). Every other tensor is float32.
enum class DType : int { Float32 = 0, Int64 = 1 };

class AUTOCONFIG_API Model {
 public:
  // The model, or nullptr with *status (may be null) saying why. A Model owns
  // everything it uses: the file or buffer can go away after the call. load()
  // maps the file and hands each weight's pages back once the last op
  // preparing from it is built (the peak stays near what the Model keeps).
  // The file must not change while load() runs: as with any memory-mapped
  // loader, a file another process truncates meanwhile ends the process with
  // SIGBUS, and one rewritten meanwhile can yield weights of the new contents
  // after the checksum passed. load_from_memory() of bytes the caller read
  // has neither risk, at the cost of a higher peak (bytes + prepared copies).
  static std::unique_ptr<Model> load(const std::string& path, Status* status);
  static std::unique_ptr<Model> load_from_memory(const void* data, size_t size, Status* status);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const std::string& name() const;
  int num_inputs() const;
  int num_outputs() const;
  const std::string& input_name(int i) const;    // i out of range: ""
  const std::string& output_name(int i) const;
  std::vector<int64_t> input_shape(int i) const;   // i out of range: {}
  std::vector<int64_t> output_shape(int i) const;
  int64_t input_size(int i) const;  // elements; -1 out of range
  DType input_dtype(int i) const;   // Float32 out of range
  int64_t output_size(int i) const;

  // inputs[i]: input_size(i) floats (dense NCHW, input_shape(i)); outputs[i]:
  // output_size(i) floats, written. Output buffers must not overlap each
  // other or the inputs. threads 0: each node's planned count capped at the
  // CPUs this process may use; n > 0: every node capped at n. Calls on one
  // Model are serialized (they share its arena); distinct Models run
  // concurrently only if their thread counts are 1 (the thread pool runs one
  // parallel call at a time).
  Status run(const float* const* inputs, float* const* outputs, int threads = 0) const;
  // The same for models with int64 inputs: inputs[i] points at input_size(i)
  // elements of input_dtype(i) (int64_t or float).
  Status run(const void* const* inputs, float* const* outputs, int threads = 0) const;
  // run() that also measures each node: (*ms)[i] = milliseconds of node i.
  Status run_profiled(const float* const* inputs, float* const* outputs, int threads,
                      std::vector<double>* ms_per_node) const;
  Status run_profiled(const void* const* inputs, float* const* outputs, int threads,
                      std::vector<double>* ms_per_node) const;

  // The nodes in execution order (for profiles and explain()).
  int num_nodes() const;
  const std::string& node_name(int i) const;
  const std::string& node_op(int i) const;
  int node_threads(int i) const;                   // the plan's count (0: the run's)
  // What a conv node runs ("direct", "winograd-f4", ...; "" for other ops).
  std::string node_algorithm(int i) const;
  // The header JSON as stored (the plan's explanation: predicted_ms, fused, why).
  const std::string& header_json() const;
  int64_t arena_floats() const;
  // The bytes the Model holds by kind. A constant an op packed or copied at
  // load is released once every node reading it has done so; one still read
  // at run time (an embedding table, a weight shared with an op that did not
  // prepare it) is kept. The kernels' per-thread scratch is not included.
  ModelMemory memory() const;

 private:
  Model();
  // load_from_memory; mapped: data is load()'s read-only file mapping, whose
  // pages may be dropped once the ops have prepared from them.
  static std::unique_ptr<Model> load_bytes(const void* data, size_t size, bool mapped, Status* status);
  std::unique_ptr<ModelImpl> impl_;
};

// The .acmodel trailer: CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320,
// as zlib's crc32) of the n bytes before it, zero-extended. For engines that
// write or verify files themselves.
AUTOCONFIG_API uint64_t acmodel_checksum(const void* data, size_t n);

}  // namespace autoconfig
