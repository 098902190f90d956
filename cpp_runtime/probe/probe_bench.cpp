// See probe_bench.h. The timed loops are inline asm so the compiler cannot
// reorder, vectorize or drop them; each function that names vector registers
// carries a target attribute so the file compiles with baseline flags.
#include "probe_bench.h"

#include <ctime>

#include "cpu_features.h"

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace autoconfig {
namespace probe {

double now_seconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// String repetition for unrolled asm bodies.
#define AC_R2(x) x x
#define AC_R4(x) AC_R2(x) AC_R2(x)
#define AC_R8(x) AC_R4(x) AC_R4(x)
#define AC_R16(x) AC_R8(x) AC_R8(x)
#define AC_R32(x) AC_R16(x) AC_R16(x)
#define AC_R128(x) AC_R32(AC_R4(x))

// Apply M to register numbers 0..13 / 0..23 (the accumulators).
#define AC_LIST14(M) M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13)
#define AC_LIST24(M) AC_LIST14(M) M(14) M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23)

#if defined(__x86_64__)

// ---------------------------------------------------------------- clock
void add_chain(uint64_t iters) {
  if (iters == 0) return;
  // Register-register adds: Golden Cove and later fold `add reg, imm` chains
  // at rename, so an immediate operand would run faster than 1 per cycle.
  uint64_t acc = 0;
  uint64_t step = 1;
  __asm__ volatile(
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R128("add %[step], %[acc]\n\t")
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [acc] "+r"(acc), [n] "+r"(iters), [step] "+r"(step)
      :
      : "cc");
}

// ---------------------------------------------------------------- AVX-512
#define AC_ZZERO(i) "vpxord %%zmm" #i ", %%zmm" #i ", %%zmm" #i "\n\t"
#define AC_ZFMA(i) "vfmadd231ps %%zmm30, %%zmm31, %%zmm" #i "\n\t"
#define AC_X32_CLOBBERS                                                                       \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",    \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "xmm16", "xmm17", "xmm18", "xmm19",        \
      "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25", "xmm26", "xmm27", "xmm28",        \
      "xmm29", "xmm30", "xmm31"
#define AC_X16_CLOBBERS                                                                       \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10",    \
      "xmm11", "xmm12", "xmm13", "xmm14", "xmm15"

// Zeros in, zeros out: no denormals, no overflow, and the FMA units do not
// shortcut on zero operands.
__attribute__((target("avx512f"))) static void fma_lat_avx512(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_ZZERO(0) AC_ZZERO(30) AC_ZZERO(31)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R32(AC_ZFMA(0))
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X32_CLOBBERS);
}

__attribute__((target("avx512f"))) static void fma_thr_avx512(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_LIST24(AC_ZZERO) AC_ZZERO(30) AC_ZZERO(31)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_LIST24(AC_ZFMA)
      AC_LIST24(AC_ZFMA)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X32_CLOBBERS);
}

// ---------------------------------------------------------------- AVX2 (ymm, 16 registers)
#define AC_YZERO(i) "vxorps %%ymm" #i ", %%ymm" #i ", %%ymm" #i "\n\t"
#define AC_YFMA(i) "vfmadd231ps %%ymm14, %%ymm15, %%ymm" #i "\n\t"

__attribute__((target("avx2,fma"))) static void fma_lat_avx2(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_YZERO(0) AC_YZERO(14) AC_YZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R32(AC_YFMA(0))
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

__attribute__((target("avx2,fma"))) static void fma_thr_avx2(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_LIST14(AC_YZERO) AC_YZERO(14) AC_YZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_LIST14(AC_YFMA)
      AC_LIST14(AC_YFMA)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

// ---------------------------------------------------------------- 128-bit (xmm, 16 registers)
#define AC_XZERO(i) "vxorps %%xmm" #i ", %%xmm" #i ", %%xmm" #i "\n\t"
#define AC_XFMA(i) "vfmadd231ps %%xmm14, %%xmm15, %%xmm" #i "\n\t"

__attribute__((target("fma"))) static void fma_lat_sse(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_XZERO(0) AC_XZERO(14) AC_XZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R32(AC_XFMA(0))
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

__attribute__((target("fma"))) static void fma_thr_sse(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_LIST14(AC_XZERO) AC_XZERO(14) AC_XZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_LIST14(AC_XFMA)
      AC_LIST14(AC_XFMA)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      "vzeroupper\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

// No FMA unit (pre-Haswell): a dependent mulps+addps pair stands in for one FMA.
#define AC_SZERO(i) "xorps %%xmm" #i ", %%xmm" #i "\n\t"
#define AC_SMULADD(i) "mulps %%xmm14, %%xmm" #i "\n\t" "addps %%xmm15, %%xmm" #i "\n\t"

static void fma_lat_sse_emul(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_SZERO(0) AC_SZERO(14) AC_SZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R32(AC_SMULADD(0))
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

static void fma_thr_sse_emul(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_LIST14(AC_SZERO) AC_SZERO(14) AC_SZERO(15)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_LIST14(AC_SMULADD)
      AC_LIST14(AC_SMULADD)
      "dec %[n]\n\t"
      "jnz 1b\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_X16_CLOBBERS);
}

std::vector<FmaKernel> available_fma_kernels() {
  const auto& f = cpu::host_features();
  std::vector<FmaKernel> out;
  if (f.has("avx512f"))
    out.push_back({"avx512", 16, 24, false, 32, 48, &fma_lat_avx512, &fma_thr_avx512});
  if (f.has("avx2") && f.has("fma"))
    out.push_back({"avx2", 8, 14, false, 32, 28, &fma_lat_avx2, &fma_thr_avx2});
  if (f.has("fma"))
    out.push_back({"sse", 4, 14, false, 32, 28, &fma_lat_sse, &fma_thr_sse});
  else
    out.push_back({"sse", 4, 14, true, 32, 28, &fma_lat_sse_emul, &fma_thr_sse_emul});
  return out;
}

// ---------------------------------------------------------------- read kernels
__attribute__((target("avx512f"))) static float read_avx512(const float* p, size_t n,
                                                            uint64_t reps) {
  __m512 a[16];
  for (auto& v : a) v = _mm512_setzero_ps();
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 256) {
#pragma GCC unroll 16
      for (int k = 0; k < 16; ++k) a[k] = _mm512_add_ps(a[k], _mm512_load_ps(p + i + 16 * k));
    }
  }
  for (int k = 1; k < 16; ++k) a[0] = _mm512_add_ps(a[0], a[k]);
  alignas(64) float t[16];
  _mm512_store_ps(t, a[0]);
  float s = 0;
  for (float x : t) s += x;
  return s;
}

__attribute__((target("avx2"))) static float read_avx2(const float* p, size_t n, uint64_t reps) {
  __m256 a[8];
  for (auto& v : a) v = _mm256_setzero_ps();
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 64) {
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) a[k] = _mm256_add_ps(a[k], _mm256_load_ps(p + i + 8 * k));
    }
  }
  for (int k = 1; k < 8; ++k) a[0] = _mm256_add_ps(a[0], a[k]);
  alignas(32) float t[8];
  _mm256_store_ps(t, a[0]);
  float s = 0;
  for (float x : t) s += x;
  return s;
}

static float read_sse2(const float* p, size_t n, uint64_t reps) {
  __m128 a[8];
  for (auto& v : a) v = _mm_setzero_ps();
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 32) {
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) a[k] = _mm_add_ps(a[k], _mm_load_ps(p + i + 4 * k));
    }
  }
  for (int k = 1; k < 8; ++k) a[0] = _mm_add_ps(a[0], a[k]);
  alignas(16) float t[4];
  _mm_store_ps(t, a[0]);
  return t[0] + t[1] + t[2] + t[3];
}

ReadKernel best_read_kernel() {
  const auto& f = cpu::host_features();
  if (f.has("avx512f")) return {"avx512", &read_avx512};
  if (f.has("avx2")) return {"avx2", &read_avx2};
  return {"sse2", &read_sse2};
}

// ---------------------------------------------------------------- copy kernels
// The empty asm with a memory clobber between repetitions keeps the compiler
// from merging the repeated (identical) copies into one.
__attribute__((target("avx512f"))) static void copy_avx512(const float* src, float* dst, size_t n, uint64_t reps) {
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 64) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) _mm512_store_ps(dst + i + 16 * k, _mm512_load_ps(src + i + 16 * k));
    }
    __asm__ volatile("" ::: "memory");
  }
}

__attribute__((target("avx2"))) static void copy_avx2(const float* src, float* dst, size_t n, uint64_t reps) {
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 32) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) _mm256_store_ps(dst + i + 8 * k, _mm256_load_ps(src + i + 8 * k));
    }
    __asm__ volatile("" ::: "memory");
  }
}

static void copy_sse2(const float* src, float* dst, size_t n, uint64_t reps) {
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 16) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) _mm_store_ps(dst + i + 4 * k, _mm_load_ps(src + i + 4 * k));
    }
    __asm__ volatile("" ::: "memory");
  }
}

CopyKernel best_copy_kernel() {
  const auto& f = cpu::host_features();
  if (f.has("avx512f")) return {"avx512", &copy_avx512};
  if (f.has("avx2")) return {"avx2", &copy_avx2};
  return {"sse2", &copy_sse2};
}

#elif defined(__aarch64__)

// ---------------------------------------------------------------- clock
void add_chain(uint64_t iters) {
  if (iters == 0) return;
  uint64_t acc = 0;
  uint64_t step = 1;  // register operand: no renamer can fold it (see the x86 version)
  __asm__ volatile(
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R128("add %[acc], %[acc], %[step]\n\t")
      "subs %[n], %[n], #1\n\t"
      "b.ne 1b\n\t"
      : [acc] "+r"(acc), [n] "+r"(iters), [step] "+r"(step)
      :
      : "cc");
}

// ---------------------------------------------------------------- NEON (128-bit, 32 registers)
#define AC_VZERO(i) "movi v" #i ".4s, #0\n\t"
#define AC_VFMLA(i) "fmla v" #i ".4s, v30.4s, v31.4s\n\t"
#define AC_V32_CLOBBERS                                                                      \
  "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10", "v11", "v12", "v13",    \
      "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",    \
      "v26", "v27", "v28", "v29", "v30", "v31"

static void fma_lat_neon(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_VZERO(0) AC_VZERO(30) AC_VZERO(31)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_R32(AC_VFMLA(0))
      "subs %[n], %[n], #1\n\t"
      "b.ne 1b\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_V32_CLOBBERS);
}

static void fma_thr_neon(uint64_t iters) {
  if (iters == 0) return;
  __asm__ volatile(
      AC_LIST24(AC_VZERO) AC_VZERO(30) AC_VZERO(31)
      ".p2align 5\n\t"
      "1:\n\t"
      AC_LIST24(AC_VFMLA)
      AC_LIST24(AC_VFMLA)
      "subs %[n], %[n], #1\n\t"
      "b.ne 1b\n\t"
      : [n] "+r"(iters)
      :
      : "cc", AC_V32_CLOBBERS);
}

std::vector<FmaKernel> available_fma_kernels() {
  std::vector<FmaKernel> out;
  // Advanced SIMD is mandatory on AArch64.
  out.push_back({"neon", 4, 24, false, 32, 48, &fma_lat_neon, &fma_thr_neon});
  return out;
}

static float read_neon(const float* p, size_t n, uint64_t reps) {
  float32x4_t a[8];
  for (auto& v : a) v = vdupq_n_f32(0.0f);
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 32) {
#pragma GCC unroll 8
      for (int k = 0; k < 8; ++k) a[k] = vaddq_f32(a[k], vld1q_f32(p + i + 4 * k));
    }
  }
  for (int k = 1; k < 8; ++k) a[0] = vaddq_f32(a[0], a[k]);
  return vaddvq_f32(a[0]);
}

ReadKernel best_read_kernel() { return {"neon", &read_neon}; }

static void copy_neon(const float* src, float* dst, size_t n, uint64_t reps) {
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; i += 16) {
#pragma GCC unroll 4
      for (int k = 0; k < 4; ++k) vst1q_f32(dst + i + 4 * k, vld1q_f32(src + i + 4 * k));
    }
    __asm__ volatile("" ::: "memory");
  }
}

CopyKernel best_copy_kernel() { return {"neon", &copy_neon}; }

#else  // other architectures: portable C++ only

void add_chain(uint64_t iters) {
  volatile uint64_t acc = 0;
  for (uint64_t i = 0; i < iters * kAddsPerIter; ++i) acc = acc + 1;
}

std::vector<FmaKernel> available_fma_kernels() { return {}; }

static float read_scalar(const float* p, size_t n, uint64_t reps) {
  float a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (uint64_t r = 0; r < reps; ++r)
    for (size_t i = 0; i < n; i += 8)
      for (int k = 0; k < 8; ++k) a[k] += p[i + k];
  float s = 0;
  for (float x : a) s += x;
  return s;
}

ReadKernel best_read_kernel() { return {"scalar", &read_scalar}; }

static void copy_scalar(const float* src, float* dst, size_t n, uint64_t reps) {
  for (uint64_t r = 0; r < reps; ++r) {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
    __asm__ volatile("" ::: "memory");
  }
}

CopyKernel best_copy_kernel() { return {"scalar", &copy_scalar}; }

#endif

}  // namespace probe
}  // namespace autoconfig
