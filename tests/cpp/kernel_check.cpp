// kernel_check: runs autoconfig's kernels (GEMM with every epilogue and edge
// shape, conv2d through every algorithm, a small network through the .acmodel
// executor, fused and unfused attention and GEMM + LayerNorm) against plain double-precision loops
// and prints how many cases passed. Exit status: 0 all passed, 1 a mismatch
// (each is printed), 2 the kernels cannot run on this CPU (check_isa says why).
// Built natively or cross-built for Arm and run under qemu (README, "Arm
// (cross-build)"; tests/cpp/test_arm_emulation.py).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "autoconfig/autoconfig.h"
#include "check.h"

#if defined(__aarch64__) && defined(__linux__)
#include <sys/prctl.h>
#ifndef PR_SVE_GET_VL
#define PR_SVE_GET_VL 51
#endif
#endif

namespace kcheck {

float Rng::next() {
  s_ = s_ * 6364136223846793005ull + 1442695040888963407ull;
  return static_cast<float>((s_ >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
}

std::vector<float> Rng::vec(size_t n, float scale) {
  std::vector<float> v(n);
  for (auto& x : v) x = next() * scale;
  return v;
}

namespace {
constexpr int kMaxReported = 40;       // failing cases printed in full; the rest are only counted
constexpr int kMismatchesShown = 3;    // per failing case
}  // namespace

void Tally::begin(const std::string& section, const std::string& what) {
  section_ = section;
  what_ = what;
  problems_.clear();
}

void Tally::near(const float* got, const double* want, const double* tol, size_t n) {
  size_t bad = 0;
  std::string shown;
  for (size_t i = 0; i < n; ++i) {
    const double err = std::fabs(static_cast<double>(got[i]) - want[i]);
    if (err <= tol[i]) continue;
    if (bad++ < kMismatchesShown) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "\n    [%zu] got %.9g want %.9g err %.3g tol %.3g", i, got[i], want[i], err,
                    tol[i]);
      shown += buf;
    }
  }
  if (bad) expect(false, std::to_string(bad) + " of " + std::to_string(n) + " outside tolerance" + shown);
}

void Tally::ok(const autoconfig::Status& s) {
  if (!s.ok()) expect(false, "status " + std::to_string(s.code) + ": " + s.message);
}

void Tally::expect(bool cond, const std::string& detail) {
  if (!cond) problems_ += "\n  " + detail;
}

bool Tally::end() {
  ++cases_;
  ++per_section_[section_];
  if (problems_.empty()) return true;
  if (++failures_ <= kMaxReported) std::printf("FAILED %s: %s%s\n", section_.c_str(), what_.c_str(), problems_.c_str());
  return false;
}

}  // namespace kcheck

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ",") + s;
  return out;
}

void print_build() {
  const autoconfig::BuildInfo& b = autoconfig::build_info();
  std::printf("build: target %s, isa %s, requires [%s]\n", b.target.c_str(), b.isa.c_str(), join(b.required).c_str());
  std::printf("cpu features: [%s]\n", join(autoconfig::cpu_features()).c_str());
#if defined(__aarch64__) && defined(__linux__)
  const int vl = prctl(PR_SVE_GET_VL);   // bytes in the low 16 bits; -1 without SVE
  if (vl >= 0) std::printf("sve vector length: %d bits\n", (vl & 0xFFFF) * 8);
#elif defined(__riscv)
  const auto features = autoconfig::cpu_features();
  if (std::find(features.begin(), features.end(), "v") != features.end()) {
    unsigned long vlenb = 0;   // CSR 0xc22, VLEN in bytes; readable only with the V extension
    __asm__ volatile("csrr %0, 0xc22" : "=r"(vlenb));
    std::printf("rvv vector length: %lu bits\n", vlenb * 8);
  }
#endif
}

}  // namespace

int main() {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);   // what ran before a crash still reaches the log
  print_build();
  if (const autoconfig::Status s = autoconfig::check_isa(); !s.ok()) {
    std::fprintf(stderr, "kernel_check: %s\n", s.message.c_str());
    return 2;
  }
  kcheck::Tally tally;
  kcheck::run_gemm_cases(tally);
  kcheck::run_conv_cases(tally);
  kcheck::run_nonfinite_cases(tally);
  kcheck::run_model_cases(tally);
  kcheck::run_attention_cases(tally);
  for (const auto& [section, n] : tally.per_section()) std::printf("  %-10s %5d cases\n", section.c_str(), n);
  std::printf("kernel_check: %d cases, %d failed\n", tally.cases(), tally.failures());
  return tally.failures() ? 1 : 0;
}
