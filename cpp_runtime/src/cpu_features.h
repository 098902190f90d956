// CPU feature detection shared by the runtime (ISA check at load) and the
// build-time probe (autoconfig_probe).
//
// Names are lower-case and follow the cpuid / Linux hwcap spelling:
//   x86-64 : sse2 sse3 ssse3 sse4_1 sse4_2 popcnt avx avx2 fma f16c bmi1 bmi2
//            avx512f avx512cd avx512bw avx512dq avx512vl avx512vnni avx512bf16
//            avx512fp16 amx_tile amx_int8 amx_bf16
//   aarch64: neon asimd fp16 sve sve2
// A vector feature is reported only when the OS also saves its register state
// (XCR0 via XGETBV on x86). AMX additionally needs a per-process permission
// on Linux (request_amx_permission) before the first tile instruction.
//
// Compiles with baseline flags on x86-64 and aarch64 (no -m flags needed).
#pragma once

#include <set>
#include <string>
#include <vector>

namespace autoconfig {
namespace cpu {

struct Features {
  std::string arch;              // "x86_64" | "aarch64" | "unknown"
  std::set<std::string> set;     // lower-case feature names

  bool has(const std::string& name) const { return set.count(name) != 0; }
  // All of the names present.
  bool has_all(const std::vector<std::string>& names) const;
  // Sorted list of the names.
  std::vector<std::string> names() const;
  // Comma-separated, sorted.
  std::string to_string() const;
  // The names of `wanted` not present here, in the given order.
  std::vector<std::string> missing(const std::vector<std::string>& wanted) const;
};

// The architecture this code was compiled for: "x86_64", "aarch64" or "unknown".
const char* arch_name();

// Query the hardware (cpuid + xgetbv / getauxval). Never consults the environment.
Features detect();

// Parse a comma-separated list ("avx2, fma,sse2") into a Features (arch = arch_name()).
Features parse_feature_list(const std::string& list);

// Features of this host, computed once. If the environment variable
// AUTOCONFIG_FAKE_CPU_FEATURES is set, its comma-separated list REPLACES the
// detected set (tests use it to simulate an older CPU).
const Features& host_features();

// Linux x86-64: ask the kernel for permission to use AMX tile data
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)). Returns true when
// granted (or already granted); false elsewhere or on refusal.
bool request_amx_permission();

}  // namespace cpu
}  // namespace autoconfig
