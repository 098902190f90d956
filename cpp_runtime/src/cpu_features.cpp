// See cpu_features.h.
#include "cpu_features.h"

#include <cctype>
#include <cstdint>
#include <cstdlib>

#if defined(__x86_64__) || defined(_M_X64)
#include <cpuid.h>
#if defined(__linux__)
#include <sys/syscall.h>
#include <unistd.h>
#endif
#elif defined(__aarch64__) || defined(__riscv)
#if defined(__linux__)
#include <sys/auxv.h>
#endif
#endif

namespace autoconfig {
namespace cpu {

bool Features::has_all(const std::vector<std::string>& names) const {
  for (const auto& n : names)
    if (!has(n)) return false;
  return true;
}

std::vector<std::string> Features::names() const {
  return std::vector<std::string>(set.begin(), set.end());  // std::set is sorted
}

std::string Features::to_string() const {
  std::string out;
  for (const auto& n : set) {
    if (!out.empty()) out += ',';
    out += n;
  }
  return out;
}

std::vector<std::string> Features::missing(const std::vector<std::string>& wanted) const {
  std::vector<std::string> out;
  for (const auto& n : wanted)
    if (!has(n)) out.push_back(n);
  return out;
}

const char* arch_name() {
#if defined(__x86_64__) || defined(_M_X64)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

#if defined(__x86_64__)
namespace {

struct Regs {
  uint32_t a = 0, b = 0, c = 0, d = 0;
};

Regs cpuid(uint32_t leaf, uint32_t sub) {
  Regs r;
  __cpuid_count(leaf, sub, r.a, r.b, r.c, r.d);
  return r;
}

uint64_t xgetbv0() {
  uint32_t lo = 0, hi = 0;
  // xgetbv with ecx = 0 (XCR0). Encoded as bytes so old assemblers accept it.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
  return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline bool bit(uint32_t v, int b) { return (v >> b) & 1u; }

}  // namespace

Features detect() {
  Features f;
  f.arch = arch_name();
  const uint32_t max_leaf = __get_cpuid_max(0, nullptr);
  if (max_leaf < 1) return f;

  const Regs l1 = cpuid(1, 0);
  const bool osxsave = bit(l1.c, 27);
  const uint64_t xcr0 = osxsave ? xgetbv0() : 0;
  // XCR0: bit1 SSE, bit2 AVX(YMM hi128), bits 5/6/7 opmask/ZMM_Hi256/Hi16_ZMM,
  // bits 17/18 XTILECFG/XTILEDATA.
  const bool os_avx = (xcr0 & 0x6) == 0x6;
  const bool os_avx512 = os_avx && (xcr0 & 0xE0) == 0xE0;
  const bool os_amx = (xcr0 & (3ull << 17)) == (3ull << 17);

  auto add = [&f](bool present, const char* name) {
    if (present) f.set.insert(name);
  };

  // Leaf 1. SSE state is always saved on x86-64 (the ABI requires it).
  add(bit(l1.d, 26), "sse2");
  add(bit(l1.c, 0), "sse3");
  add(bit(l1.c, 9), "ssse3");
  add(bit(l1.c, 19), "sse4_1");
  add(bit(l1.c, 20), "sse4_2");
  add(bit(l1.c, 23), "popcnt");
  add(os_avx && bit(l1.c, 28), "avx");
  add(os_avx && bit(l1.c, 12), "fma");
  add(os_avx && bit(l1.c, 29), "f16c");

  if (max_leaf >= 7) {
    const Regs l7 = cpuid(7, 0);
    add(bit(l7.b, 3), "bmi1");
    add(bit(l7.b, 8), "bmi2");
    add(os_avx && bit(l7.b, 5), "avx2");
    add(os_avx512 && bit(l7.b, 16), "avx512f");
    add(os_avx512 && bit(l7.b, 17), "avx512dq");
    add(os_avx512 && bit(l7.b, 28), "avx512cd");
    add(os_avx512 && bit(l7.b, 30), "avx512bw");
    add(os_avx512 && bit(l7.b, 31), "avx512vl");
    add(os_avx512 && bit(l7.c, 11), "avx512vnni");
    add(os_avx512 && bit(l7.d, 23), "avx512fp16");
    add(os_amx && bit(l7.d, 22), "amx_bf16");
    add(os_amx && bit(l7.d, 24), "amx_tile");
    add(os_amx && bit(l7.d, 25), "amx_int8");
    if (l7.a >= 1) {
      const Regs l71 = cpuid(7, 1);
      add(os_avx512 && bit(l71.a, 5), "avx512bf16");
    }
  }
  return f;
}

bool request_amx_permission() {
#if defined(__linux__) && defined(SYS_arch_prctl)
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

#elif defined(__aarch64__)

Features detect() {
  Features f;
  f.arch = arch_name();
#if defined(__linux__)
  const unsigned long hw = getauxval(AT_HWCAP);
  const unsigned long hw2 = getauxval(AT_HWCAP2);
  // Bit numbers from <asm/hwcap.h> (stable kernel ABI).
  constexpr unsigned long kHwcapAsimd = 1ul << 1;
  constexpr unsigned long kHwcapFphp = 1ul << 9;
  constexpr unsigned long kHwcapAsimdhp = 1ul << 10;
  constexpr unsigned long kHwcapSve = 1ul << 22;
  constexpr unsigned long kHwcap2Sve2 = 1ul << 1;
  if (hw & kHwcapAsimd) {
    f.set.insert("neon");
    f.set.insert("asimd");
  }
  if ((hw & kHwcapFphp) && (hw & kHwcapAsimdhp)) f.set.insert("fp16");
  if (hw & kHwcapSve) f.set.insert("sve");
  if (hw2 & kHwcap2Sve2) f.set.insert("sve2");
#else
  // AArch64 mandates Advanced SIMD.
  f.set.insert("neon");
  f.set.insert("asimd");
#endif
  return f;
}

bool request_amx_permission() { return false; }

#elif defined(__riscv)

Features detect() {
  Features f;
  f.arch = arch_name();
#if defined(__linux__)
  // Linux reports the single-letter extensions as bits 'a'..'z' of AT_HWCAP
  // (bit 21: 'v', the RISC-V Vector extension 1.0).
  const unsigned long hw = getauxval(AT_HWCAP);
  for (int i = 0; i < 26; ++i)
    if ((hw >> i) & 1ul) f.set.insert(std::string(1, static_cast<char>('a' + i)));
#endif
  return f;
}

bool request_amx_permission() { return false; }

#else

Features detect() {
  Features f;
  f.arch = arch_name();
  return f;
}

bool request_amx_permission() { return false; }

#endif

Features parse_feature_list(const std::string& list) {
  Features f;
  f.arch = arch_name();
  std::string cur;
  auto flush = [&]() {
    if (!cur.empty()) f.set.insert(cur);
    cur.clear();
  };
  for (char ch : list) {
    if (ch == ',' || ch == ' ' || ch == '\t' || ch == '\n') {
      flush();
    } else {
      cur += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
  }
  flush();
  return f;
}

const Features& host_features() {
  static const Features f = [] {
    const char* fake = std::getenv("AUTOCONFIG_FAKE_CPU_FEATURES");
    if (fake != nullptr) return parse_feature_list(fake);
    return detect();
  }();
  return f;
}

}  // namespace cpu
}  // namespace autoconfig
