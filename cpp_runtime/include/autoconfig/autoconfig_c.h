/* autoconfig C API: the same kernels as autoconfig.h, for engines written in C.
 * Every call returns 0 on success; otherwise a non-zero code and, when err is
 * not NULL, a NUL-terminated message in err (truncated to err_len). */
#ifndef AUTOCONFIG_C_H
#define AUTOCONFIG_C_H
#include <stddef.h>
#include <stdint.h>

#if defined(_WIN32)
#define AUTOCONFIG_C_API
#else
#define AUTOCONFIG_C_API __attribute__((visibility("default")))
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
  AC_ACT_NONE = 0,
  AC_ACT_RELU = 1,
  AC_ACT_RELU6 = 2,
  AC_ACT_GELU_TANH = 3,
  AC_ACT_GELU_ERF = 4
} ac_activation;

/* C = act(alpha * op(A) op(B) + beta * C_in + bias_col[j] + bias_row[i]);
 * strides in elements; a transpose is a swap of (rs, cs). Zero-initialize and
 * set what you use: alpha defaults to 1 only through ac_gemm_args_init(). */
typedef struct {
  int64_t M, N, K;
  const float* A; int64_t rs_a, cs_a;
  const float* B; int64_t rs_b, cs_b;
  float* C; int64_t ldc;
  float alpha;
  const float* c_in; int64_t ld_cin; float beta;
  const float* bias_col;
  const float* bias_row;
  int activation;   /* ac_activation */
  int threads;      /* 0: the plan's choice */
} ac_gemm_args;

AUTOCONFIG_C_API void ac_gemm_args_init(ac_gemm_args* args);
AUTOCONFIG_C_API int ac_gemm(const ac_gemm_args* args, char* err, size_t err_len);
/* 0 when this CPU has the ISA the kernels were generated for. */
AUTOCONFIG_C_API int ac_check_isa(char* err, size_t err_len);
AUTOCONFIG_C_API const char* ac_build_isa(void);
AUTOCONFIG_C_API const char* ac_host_profile_json(void);
AUTOCONFIG_C_API const char* ac_plans_json(void);

#ifdef __cplusplus
}
#endif
#endif /* AUTOCONFIG_C_H */
