// Runs a planned network saved as an .acmodel file (autoconfig import-onnx
// writes them; python/autoconfig/graph/FORMAT.md describes them) with no
// Python at run time.
//
//   run_acmodel model.acmodel [--threads N] [--input x.bin ...] [--output y.bin ...] [--profile]
//
// Inputs come from raw files, one per model input, in order: float32 (dense
// NCHW) or, for an int64 input (a transformer's token ids and attention
// mask), int64 little-endian. Without --input, float inputs get a fixed
// pseudo-random sequence and int64 inputs all ones (token id 1 everywhere,
// every position attended: valid for any vocabulary). Outputs are written as
// raw float32 with --output; the program prints each output's shape, a
// checksum and its first values either way.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "autoconfig/model.h"

namespace {

std::string shape_str(const std::vector<int64_t>& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

// Reads exactly v->size() bytes (the input's elements times its element size).
bool read_exact(const std::string& path, std::vector<unsigned char>* v) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) return false;
  const std::streamoff n = f.tellg();
  if (n != static_cast<std::streamoff>(v->size())) {
    std::fprintf(stderr, "%s: %lld bytes, the model input needs %zu\n", path.c_str(), static_cast<long long>(n),
                 v->size());
    return false;
  }
  f.seekg(0);
  return static_cast<bool>(f.read(reinterpret_cast<char*>(v->data()), n));
}

int usage() {
  std::fprintf(stderr, "usage: run_acmodel MODEL.acmodel [--threads N] [--input X.bin]... [--output Y.bin]... [--profile]\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage();
  const std::string path = argv[1];
  int threads = 0;
  bool profile = false;
  std::vector<std::string> in_files, out_files;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--input" && i + 1 < argc) in_files.push_back(argv[++i]);
    else if (a == "--output" && i + 1 < argc) out_files.push_back(argv[++i]);
    else if (a == "--profile") profile = true;
    else return usage();
  }

  autoconfig::Status st;
  std::unique_ptr<autoconfig::Model> model = autoconfig::Model::load(path, &st);
  if (!model) {
    std::fprintf(stderr, "error: %s\n", st.message.c_str());
    return 1;
  }
  std::printf("model '%s': %d nodes, arena %" PRId64 " floats\n", model->name().c_str(), model->num_nodes(),
              model->arena_floats());
  const autoconfig::ModelMemory mem = model->memory();
  std::printf("memory: %.1f MiB (arena %.1f, prepared weights %.1f, constants kept %.1f; released after load %.1f)\n",
              mem.total() / 1048576.0, mem.arena / 1048576.0, mem.prepared / 1048576.0, mem.constants / 1048576.0,
              mem.released / 1048576.0);
  if (!in_files.empty() && static_cast<int>(in_files.size()) != model->num_inputs()) {
    std::fprintf(stderr, "error: the model takes %d inputs, %zu --input files given\n", model->num_inputs(), in_files.size());
    return 2;
  }

  // Raw bytes per input: float32 or int64 elements, as input_dtype(i) says.
  std::vector<std::vector<unsigned char>> inputs(static_cast<size_t>(model->num_inputs()));
  std::vector<const void*> in_ptr;
  uint64_t lcg = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < model->num_inputs(); ++i) {
    const bool int64 = model->input_dtype(i) == autoconfig::DType::Int64;
    const size_t n = static_cast<size_t>(model->input_size(i));
    auto& v = inputs[static_cast<size_t>(i)];
    v.resize(n * (int64 ? sizeof(int64_t) : sizeof(float)));
    if (!in_files.empty()) {
      if (!read_exact(in_files[static_cast<size_t>(i)], &v)) {
        std::fprintf(stderr, "error: cannot read input %d (%s) from %s\n", i, int64 ? "int64" : "float32",
                     in_files[static_cast<size_t>(i)].c_str());
        return 1;
      }
    } else if (int64) {
      for (size_t j = 0; j < n; ++j) {
        const int64_t one = 1;
        std::memcpy(v.data() + j * sizeof(int64_t), &one, sizeof(one));
      }
    } else {
      for (size_t j = 0; j < n; ++j) {
        lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
        const float x = static_cast<float>((lcg >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
        std::memcpy(v.data() + j * sizeof(float), &x, sizeof(x));
      }
    }
    std::printf("input  %s %s %s\n", model->input_name(i).c_str(), shape_str(model->input_shape(i)).c_str(),
                int64 ? "int64" : "float32");
    in_ptr.push_back(v.data());
  }
  std::vector<std::vector<float>> outputs(static_cast<size_t>(model->num_outputs()));
  std::vector<float*> out_ptr;
  for (int i = 0; i < model->num_outputs(); ++i) {
    outputs[static_cast<size_t>(i)].resize(static_cast<size_t>(model->output_size(i)));
    out_ptr.push_back(outputs[static_cast<size_t>(i)].data());
  }

  std::vector<double> ms;
  st = profile ? model->run_profiled(in_ptr.data(), out_ptr.data(), threads, &ms)
               : model->run(in_ptr.data(), out_ptr.data(), threads);
  if (!st.ok()) {
    std::fprintf(stderr, "error: %s\n", st.message.c_str());
    return 1;
  }
  for (int i = 0; i < model->num_outputs(); ++i) {
    const auto& v = outputs[static_cast<size_t>(i)];
    double sum = 0.0;
    for (float x : v) sum += x;
    std::printf("output %s %s sum %.9g first", model->output_name(i).c_str(), shape_str(model->output_shape(i)).c_str(), sum);
    for (size_t j = 0; j < v.size() && j < 5; ++j) std::printf(" %.7g", v[j]);
    std::printf("\n");
    if (i < static_cast<int>(out_files.size())) {
      std::ofstream f(out_files[static_cast<size_t>(i)], std::ios::binary);
      f.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
      if (!f) {
        std::fprintf(stderr, "error: cannot write %s\n", out_files[static_cast<size_t>(i)].c_str());
        return 1;
      }
    }
  }
  if (profile) {
    double total = 0.0;
    for (int k = 0; k < model->num_nodes(); ++k) {
      total += ms[static_cast<size_t>(k)];
      const std::string algo = model->node_algorithm(k);
      std::printf("  %-24s %-16s %-12s %8.3f ms\n", model->node_name(k).c_str(), model->node_op(k).c_str(),
                  algo.c_str(), ms[static_cast<size_t>(k)]);
    }
    std::printf("  total %.3f ms\n", total);
  }
  return 0;
}
