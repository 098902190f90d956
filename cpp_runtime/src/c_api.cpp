// C API over the C++ one (autoconfig_c.h).
#include "autoconfig/autoconfig_c.h"

#include <cstring>
#include <string>

#include "autoconfig/autoconfig.h"

namespace {

int report(const autoconfig::Status& s, char* err, size_t err_len) {
  if (err && err_len) {
    const size_t n = s.message.size() < err_len - 1 ? s.message.size() : err_len - 1;
    std::memcpy(err, s.message.data(), n);
    err[n] = '\0';
  }
  return s.code;
}

}  // namespace

extern "C" {

void ac_gemm_args_init(ac_gemm_args* a) {
  if (!a) return;
  std::memset(a, 0, sizeof *a);
  a->alpha = 1.0f;
  a->cs_a = 1;
  a->cs_b = 1;
}

int ac_gemm(const ac_gemm_args* a, char* err, size_t err_len) {
  if (!a) return report(autoconfig::Status::Error("ac_gemm: args is NULL"), err, err_len);
  autoconfig::GemmArgs g;
  g.M = a->M; g.N = a->N; g.K = a->K;
  g.A = a->A; g.rs_a = a->rs_a; g.cs_a = a->cs_a;
  g.B = a->B; g.rs_b = a->rs_b; g.cs_b = a->cs_b;
  g.C = a->C; g.ldc = a->ldc;
  g.alpha = a->alpha;
  g.c_in = a->c_in; g.ld_cin = a->ld_cin; g.beta = a->beta;
  g.bias_col = a->bias_col;
  g.bias_row = a->bias_row;
  if (a->activation < 0 || a->activation >= autoconfig::kNumActivations)
    return report(autoconfig::Status::Error("ac_gemm: activation " + std::to_string(a->activation) +
                                            " is not an ac_activation (0..4)"), err, err_len);
  g.act = static_cast<autoconfig::Activation>(a->activation);
  g.threads = a->threads;
  return report(autoconfig::gemm(g), err, err_len);
}

int ac_check_isa(char* err, size_t err_len) { return report(autoconfig::check_isa(), err, err_len); }
const char* ac_build_isa(void) { return autoconfig::build_info().isa.c_str(); }
const char* ac_host_profile_json(void) { return autoconfig::host_profile_json(); }
const char* ac_plans_json(void) { return autoconfig::plans_json(); }

}  // extern "C"
