// What the kernel check's case files share: deterministic data, and the
// tally that compares results with their reference and counts cases.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "autoconfig/autoconfig.h"

namespace kcheck {

// Deterministic LCG: the same data on every target, values in [-1, 1).
class Rng {
 public:
  explicit Rng(uint64_t seed) : s_(seed * 0x9E3779B97F4A7C15ull + 1) {}
  float next();
  std::vector<float> vec(size_t n, float scale = 1.0f);

 private:
  uint64_t s_;
};

// Counts cases per section. A case is begun, checked any number of times
// (values within tolerance, statuses, dispatch facts) and ended; it fails if
// any check failed, and a failing case is printed with its first mismatches.
class Tally {
 public:
  void begin(const std::string& section, const std::string& what);
  // got[i] vs want[i] within tol[i] (a NaN never is), i < n.
  void near(const float* got, const double* want, const double* tol, size_t n);
  void ok(const autoconfig::Status& s);
  void expect(bool cond, const std::string& detail);
  bool end();   // counts the case; true if it passed

  int cases() const { return cases_; }
  int failures() const { return failures_; }
  const std::map<std::string, int>& per_section() const { return per_section_; }

 private:
  std::string section_, what_, problems_;
  int cases_ = 0, failures_ = 0;
  std::map<std::string, int> per_section_;
};

// float32 machine epsilon, the unit of every tolerance.
constexpr double kEps = 1.1920928955078125e-07;

void run_gemm_cases(Tally& tally);
void run_conv_cases(Tally& tally);
void run_nonfinite_cases(Tally& tally);
void run_model_cases(Tally& tally);   // autoconfig::Model (.acmodel executor)
void run_attention_cases(Tally& tally);  // autoconfig/attention.h: attention, gemm_layernorm

}  // namespace kcheck
