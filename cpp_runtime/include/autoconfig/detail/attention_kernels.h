// The transformer kernels of one variant, as the runtime sees them (plain
// function pointers: no template crosses the ISA boundary). Each variant's
// generated attention_kernels_<variant>.cpp defines one AttentionKernels table.
#pragma once
#include <cstdint>

#include "autoconfig/attention.h"

namespace autoconfig {
namespace detail {

struct AttentionKernels {
  const char* isa_suffix;
  int tile_rows;      // query rows per register tile (models/attention.py: tile)
  int tile_cols;      // columns per register tile (vectors x lanes)
  int64_t key_block;  // keys per block: the score tile (tile_rows x key_block) stays in L1
  // The fused kernel on `threads` pool threads; key_block > 0, a multiple of tile_cols.
  void (*fused)(const AttentionArgs& a, int64_t key_block, int threads);
  // Keys the fused kernel walks for the first register tile of head (0, 0):
  // Sk unless a mask lets it skip weightless key blocks (the model charges these).
  int64_t (*walked_keys)(const AttentionArgs& a, int64_t key_block);
  // Rows r < rows of s (row stride ld, cols values): s = softmax(scale * s + mask row), in place;
  // mask (or null) has row stride mask_ld (0: one row for all).
  void (*softmax_rows)(float* s, int64_t ld, int64_t rows, int64_t cols, float scale, const float* mask,
                       int64_t mask_ld);
  // Rows r < rows of y (row stride ld, n values): y = (y - mean) / sqrt(var + eps) * gamma + beta.
  void (*layernorm_rows)(float* y, int64_t ld, int64_t rows, int64_t n, const float* gamma, const float* beta,
                         float eps);
};

}  // namespace detail
}  // namespace autoconfig
