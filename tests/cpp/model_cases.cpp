// autoconfig::Model from C++: a small network written here byte by byte
// (FORMAT.md) runs and matches double-precision loops; the same file cut at
// every length and with every byte flipped loads as an error, never a crash.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "autoconfig/model.h"
#include "check.h"

namespace kcheck {

namespace {

void put_u32(std::vector<uint8_t>* b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b->push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>* b, uint64_t v) {
  for (int i = 0; i < 8; ++i) b->push_back(static_cast<uint8_t>(v >> (8 * i)));
}

std::vector<uint8_t> acmodel(const std::string& header, const std::vector<float>& blobs) {
  std::vector<uint8_t> f = {'A', 'C', 'M', 'O', 'D', 'E', 'L', 0};
  put_u32(&f, 1);
  put_u32(&f, 0);
  put_u64(&f, header.size());
  put_u64(&f, blobs.size() * 4);
  f.insert(f.end(), header.begin(), header.end());
  while (f.size() % 64) f.push_back(0);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(blobs.data());
  f.insert(f.end(), p, p + blobs.size() * 4);
  put_u64(&f, autoconfig::acmodel_checksum(f.data(), f.size()));
  return f;
}

}  // namespace

// x [1,3,6,6] -> conv 3x3 pad 1 (+bias, relu) [1,4,6,6] -> max_pool 2x2/2 [1,4,3,3]
// -> global_avg_pool [1,4,1,1] -> reshape [1,4] -> softmax -> y
void run_model_cases(Tally& tally) {
  Rng rng(77);
  const std::vector<float> w = rng.vec(4 * 3 * 3 * 3, 0.5f), b = rng.vec(4, 0.5f), x = rng.vec(3 * 6 * 6);
  std::vector<float> blobs(w.begin(), w.end());
  while (blobs.size() % 16) blobs.push_back(0.0f);   // the next blob at a 64-byte offset
  const size_t b_off = blobs.size() * 4;
  blobs.insert(blobs.end(), b.begin(), b.end());
  const std::string header = std::string(R"({"format": "acmodel", "version": 1, "name": "cpp_check",
    "inputs": ["x"], "outputs": ["y"], "arena_floats": 256,
    "tensors": [
      {"name": "x", "shape": [1, 3, 6, 6], "kind": "input", "layout": "nchw"},
      {"name": "w", "shape": [4, 3, 3, 3], "kind": "constant", "offset": 0, "bytes": 432},
      {"name": "b", "shape": [4], "kind": "constant", "offset": )") + std::to_string(b_off) + R"(, "bytes": 16},
      {"name": "c", "shape": [1, 4, 6, 6], "kind": "intermediate", "layout": "nchw", "arena": 0},
      {"name": "p", "shape": [1, 4, 3, 3], "kind": "intermediate", "layout": "nchw", "arena": 144},
      {"name": "g", "shape": [1, 4, 1, 1], "kind": "intermediate", "layout": "nchw", "arena": 0},
      {"name": "f", "shape": [1, 4], "kind": "intermediate", "layout": "nchw", "arena": 0},
      {"name": "y", "shape": [1, 4], "kind": "output", "layout": "nchw"}],
    "nodes": [
      {"name": "conv", "op": "conv", "inputs": ["x", "w", "b", ""], "outputs": ["c"], "threads": 1,
       "attrs": {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "groups": 1, "activation": "relu"}},
      {"name": "pool", "op": "max_pool", "inputs": ["c"], "outputs": ["p"],
       "attrs": {"kernel": [2, 2], "strides": [2, 2], "pads": [0, 0, 0, 0], "dilations": [1, 1], "ceil_mode": 0}},
      {"name": "gap", "op": "global_avg_pool", "inputs": ["p"], "outputs": ["g"], "attrs": {}},
      {"name": "flat", "op": "reshape", "inputs": ["g"], "outputs": ["f"], "attrs": {}},
      {"name": "prob", "op": "softmax", "inputs": ["f"], "outputs": ["y"], "attrs": {"axis": 1}}]})";
  const std::vector<uint8_t> file = acmodel(header, blobs);

  // reference
  double conv[4][6][6], pooled[4][3][3], g[4];
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 6; ++i)
      for (int j = 0; j < 6; ++j) {
        double acc = b[static_cast<size_t>(k)];
        for (int c = 0; c < 3; ++c)
          for (int r = 0; r < 3; ++r)
            for (int s = 0; s < 3; ++s) {
              const int ih = i + r - 1, iw = j + s - 1;
              if (ih < 0 || ih >= 6 || iw < 0 || iw >= 6) continue;
              acc += static_cast<double>(x[static_cast<size_t>((c * 6 + ih) * 6 + iw)]) * w[static_cast<size_t>(((k * 3 + c) * 3 + r) * 3 + s)];
            }
        conv[k][i][j] = acc < 0 ? 0 : acc;
      }
  for (int k = 0; k < 4; ++k) {
    g[k] = 0;
    for (int i = 0; i < 3; ++i)
      for (int j = 0; j < 3; ++j) {
        pooled[k][i][j] = std::max(std::max(conv[k][2 * i][2 * j], conv[k][2 * i][2 * j + 1]),
                                   std::max(conv[k][2 * i + 1][2 * j], conv[k][2 * i + 1][2 * j + 1]));
        g[k] += pooled[k][i][j] / 9.0;
      }
  }
  double m = g[0], sum = 0, want[4], tol[4];
  for (int k = 1; k < 4; ++k) m = std::max(m, g[k]);
  for (int k = 0; k < 4; ++k) sum += std::exp(g[k] - m);
  for (int k = 0; k < 4; ++k) {
    want[k] = std::exp(g[k] - m) / sum;
    tol[k] = 1e-5;
  }

  for (int threads : {0, 1, 2}) {
    tally.begin("model", "small network, threads " + std::to_string(threads));
    autoconfig::Status st;
    auto model = autoconfig::Model::load_from_memory(file.data(), file.size(), &st);
    tally.ok(st);
    if (model) {
      tally.expect(model->num_inputs() == 1 && model->num_outputs() == 1 && model->output_size(0) == 4,
                   "inputs/outputs as declared");
      tally.expect(model->input_shape(0) == std::vector<int64_t>({1, 3, 6, 6}), "input shape");
      float y[4] = {0, 0, 0, 0};
      const float* in[] = {x.data()};
      float* out[] = {y};
      tally.ok(model->run(in, out, threads));
      tally.near(y, want, tol, 4);
      std::vector<double> ms;
      tally.ok(model->run_profiled(in, out, threads, &ms));
      tally.expect(ms.size() == 5, "one time per node");
      // bad calls are errors: an output over the input, a null buffer, negative threads
      std::vector<float> xcopy = x;
      const float* in2[] = {xcopy.data()};
      float* over[] = {xcopy.data() + 8};
      tally.expect(!model->run(in2, over, threads).ok(), "an output overlapping the input was accepted");
      const float* none[] = {nullptr};
      tally.expect(!model->run(none, out, threads).ok(), "a null input was accepted");
      tally.expect(!model->run(in, out, -1).ok(), "threads -1 was accepted");
    }
    tally.end();
  }

  // The model owns what it keeps: bytes at any alignment (an odd offset is
  // copied once to prepare from), overwritten after load, change nothing.
  for (size_t offset : {size_t{0}, size_t{1}, size_t{2}}) {
    tally.begin("model", "loaded from bytes at offset " + std::to_string(offset) + " from 64, then overwritten");
    std::vector<uint8_t> buf(file.size() + 128);
    uint8_t* base = buf.data() + (64 - reinterpret_cast<uintptr_t>(buf.data()) % 64) + offset;
    std::memcpy(base, file.data(), file.size());
    autoconfig::Status st;
    auto model = autoconfig::Model::load_from_memory(base, file.size(), &st);
    tally.ok(st);
    std::memset(buf.data(), 0xFF, buf.size());
    if (model) {
      const autoconfig::ModelMemory mem = model->memory();
      tally.expect(mem.prepared > 0 && mem.released > 0, "the conv's weights prepared and released");
      float y[4] = {0, 0, 0, 0};
      const float* in[] = {x.data()};
      float* out[] = {y};
      tally.ok(model->run(in, out, 1));
      tally.near(y, want, tol, 4);
    }
    tally.end();
  }

  tally.begin("model", "truncated at every length");
  for (size_t n = 0; n < file.size(); ++n) {
    autoconfig::Status st;
    auto model = autoconfig::Model::load_from_memory(file.data(), n, &st);
    if (model || st.ok() || st.message.empty()) {
      tally.expect(false, "a file cut at " + std::to_string(n) + " bytes loaded");
      break;
    }
  }
  tally.end();

  tally.begin("model", "every byte flipped");
  std::vector<uint8_t> bad = file;
  for (size_t i = 0; i < bad.size(); ++i) {
    bad[i] ^= 0x20;
    autoconfig::Status st;
    auto model = autoconfig::Model::load_from_memory(bad.data(), bad.size(), &st);
    bad[i] ^= 0x20;
    if (model || st.message.empty()) {
      tally.expect(false, "a file with byte " + std::to_string(i) + " flipped loaded");
      break;
    }
  }
  tally.end();

  tally.begin("model", "missing file");
  autoconfig::Status st;
  tally.expect(!autoconfig::Model::load("/nonexistent/model.acmodel", &st) && st.message.find("cannot open") != std::string::npos,
               "a missing file: " + st.message);
  tally.end();
}

}  // namespace kcheck
