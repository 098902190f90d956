// autoconfig transformer kernels: fused scaled-dot-product attention and
// GEMM + bias + residual + LayerNorm. Like autoconfig.h, every entry point
// returns a Status and never throws; shapes and strides are in elements.
#pragma once
#include <cstdint>
#include <string>

#include "autoconfig/autoconfig.h"

namespace autoconfig {

enum class AttentionAlgorithm : int { Auto = 0, Fused = 1, Unfused = 2 };
AUTOCONFIG_API const char* attention_algorithm_name(AttentionAlgorithm a);

// Scaled dot-product attention, per batch b < B and head h < H:
//   O[b, h] = softmax(scale * Q[b, h] K[b, h]^T + mask[b, h]) V[b, h]
// Q and O are S x D, K and V are Sk x D, the mask S x Sk (additive). Each
// tensor is addressed by its (batch, head, row) strides with the last axis
// (D; Sk for the mask) contiguous, so Q, K and V can be read in place from a
// packed projection [B, S, 3*H*D] (strides {S*3*H*D, D, 3*H*D}, K at +H*D, V
// at +2*H*D) and O written as [B, S, H*D]: no head split or merge copies. A
// zero stride broadcasts (BERT's extended mask [B, 1, 1, Sk]: head and row
// strides 0). NaN and Inf give what the unfused ONNX graph gives: a row with a
// NaN score, or a +inf one, is NaN; a row whose scores are all -inf is NaN.
struct AttentionArgs {
  int64_t B = 0, H = 0, S = 0, Sk = 0, D = 0;
  const float* q = nullptr;
  int64_t q_batch = 0, q_head = 0, q_row = 0;
  const float* k = nullptr;
  int64_t k_batch = 0, k_head = 0, k_row = 0;
  const float* v = nullptr;
  int64_t v_batch = 0, v_head = 0, v_row = 0;
  const float* mask = nullptr;  // optional
  int64_t mask_batch = 0, mask_head = 0, mask_row = 0;
  float* o = nullptr;
  int64_t o_batch = 0, o_head = 0, o_row = 0;
  float scale = 1.0f;                                       // callers pass 1/sqrt(D) for the usual attention
  int threads = 0;                                          // 0: the model's choice
  AttentionAlgorithm algorithm = AttentionAlgorithm::Auto;  // Auto: the model's choice
  // Fused: keys per block of the online softmax (0: the plan's; tests force
  // small blocks to exercise the rescaling).
  int64_t key_block = 0;
  // Fused: skip key blocks whose softmax weight is provably exactly 0 (a
  // padding mask far below the row's largest value); the result is the same
  // bits. false walks every key (tests compare the two).
  bool skip_zero_keys = true;
};
AUTOCONFIG_API Status attention(const AttentionArgs& args);

// What attention() runs for these arguments and why: the model's estimate of
// each algorithm (seconds) split into its named terms.
struct AttentionChoice {
  std::string algorithm;  // "fused" | "unfused" ("" if the arguments are invalid)
  int threads = 1;
  int64_t key_block = 0;  // fused: keys per block
  int tile_rows = 0;      // fused: query rows per register tile
  double fused_s = 0, unfused_s = 0;
  std::vector<std::pair<std::string, double>> fused_terms, unfused_terms;
};
AUTOCONFIG_API AttentionChoice attention_choice(const AttentionArgs& args);

// Y = LayerNorm(act(A B + bias + residual)) over each row of N, with ONNX
// LayerNormalization semantics: (x - mean) / sqrt(var + epsilon) * gamma + beta
// (var the biased variance). g is an ordinary GemmArgs (alpha, c_in/beta as
// the residual, bias_col, act); gamma and beta hold N values (beta optional).
// Fused: row blocks whose output fits in L2 are computed by one thread each
// and normalized while in cache; Unfused: the whole GEMM, then a pass over Y.
struct LayerNormEpilogue {
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float epsilon = 1e-5f;
  AttentionAlgorithm algorithm = AttentionAlgorithm::Auto;  // Fused / Unfused / the model's
};
AUTOCONFIG_API Status gemm_layernorm(const GemmArgs& g, const LayerNormEpilogue& ln);

// What gemm_layernorm() runs: the algorithm, the rows per block (fused), the
// thread count and the model's estimates (seconds).
struct GemmLayerNormChoice {
  std::string algorithm;
  int64_t block_rows = 0;
  int threads = 1;
  double fused_s = 0, unfused_s = 0;
};
AUTOCONFIG_API GemmLayerNormChoice gemm_layernorm_choice(const GemmArgs& g, const LayerNormEpilogue& ln);

}  // namespace autoconfig
