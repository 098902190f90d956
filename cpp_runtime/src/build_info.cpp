// Variant selection, build facts and the ISA check an engine (or the Python
// module) runs at load.
#include <algorithm>
#include <cstdlib>
#include <string>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/registry.h"
#include "cpu_features.h"

namespace autoconfig {
namespace detail {
namespace {

bool has_all(const Registry& r, const std::vector<std::string>& have) {
  for (int i = 0; i < r.required_count; ++i)
    if (std::find(have.begin(), have.end(), r.required[i]) == have.end()) return false;
  return true;
}

// AUTOCONFIG_MAX_ISA=v2|v3|v4 caps the level (tests run every variant of a
// portable build on one machine); unset: no cap. -1 when the value is invalid.
int max_level() {
  const char* v = std::getenv("AUTOCONFIG_MAX_ISA");
  if (!v || !*v) return 99;
  const std::string s(v);
  if (s == "v1" || s == "baseline") return 1;
  if (s == "v2") return 2;
  if (s == "v3") return 3;
  if (s == "v4") return 4;
  return -1;
}

const Registry* select_variant() {
  const auto have = cpu::host_features().names();
  const int cap = max_level();
  for (int i = 0; i < kVariantCount; ++i) {
    const Registry* r = kVariants[i];
    if (r->level <= cap && has_all(*r, have)) return r;
  }
  return nullptr;
}

}  // namespace

const Registry* active_registry() {
  static const Registry* const r = select_variant();
  return r;
}

}  // namespace detail

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    const detail::Registry* r = detail::active_registry();
    // Without a usable variant, describe the most modest one (what is missing for it).
    if (!r) r = detail::kVariants[detail::kVariantCount - 1];
    b.isa = r->isa;
    b.target = std::string(detail::kBuildTarget);
    if (b.target != r->target) b.target += ":" + std::string(r->target);
    for (int i = 0; i < r->required_count; ++i) b.required.emplace_back(r->required[i]);
    return b;
  }();
  return info;
}

std::vector<std::string> cpu_features() { return cpu::host_features().names(); }

std::vector<BuildVariant> build_variants() {
  std::vector<BuildVariant> out;
  for (int i = 0; i < detail::kVariantCount; ++i) {
    const detail::Registry* r = detail::kVariants[i];
    BuildVariant v;
    v.target = r->target;
    v.isa = r->isa;
    v.level = r->level;
    for (int j = 0; j < r->required_count; ++j) v.required.emplace_back(r->required[j]);
    v.active = r == detail::active_registry();
    out.push_back(std::move(v));
  }
  return out;
}

std::vector<std::string> missing_cpu_features() {
  const std::vector<std::string> have = cpu::host_features().names();
  std::vector<std::string> missing;
  if (detail::active_registry()) return missing;
  for (const auto& f : build_info().required)
    if (std::find(have.begin(), have.end(), f) == have.end()) missing.push_back(f);
  return missing;
}

namespace {
// What to build instead, for the architecture this library was compiled for.
#if defined(__aarch64__)
constexpr const char* kLowerTargets = "-C cmake.define.AUTOCONFIG_TARGET=armv8-neon (any AArch64 CPU; CMake: "
                                      "-DAUTOCONFIG_TARGET=armv8-neon).";
#elif defined(__riscv)
constexpr const char* kLowerTargets = "-C cmake.define.AUTOCONFIG_TARGET=generic (portable C++; CMake: "
                                      "-DAUTOCONFIG_TARGET=generic).";
#else
constexpr const char* kLowerTargets = "-C cmake.define.AUTOCONFIG_TARGET=x86-64-v3 (AVX2), =portable (picks "
                                      "v4/v3/v2 at load) or =generic.";
#endif
}  // namespace

Status check_isa() {
  if (detail::active_registry()) return Status::Ok();
  const auto missing = missing_cpu_features();
  std::string list;
  for (const auto& f : missing) list += (list.empty() ? "" : ", ") + f;
  const char* cap = std::getenv("AUTOCONFIG_MAX_ISA");
  std::string why = "this CPU lacks: " + list;
  if (cap && *cap && detail::max_level() < 0)
    why = "AUTOCONFIG_MAX_ISA='" + std::string(cap) + "' is not one of v2, v3, v4";
  else if (cap && *cap && missing.empty())
    why = "AUTOCONFIG_MAX_ISA=" + std::string(cap) + " excludes every variant of this build";
  else if (cap && *cap)
    why += " (with AUTOCONFIG_MAX_ISA=" + std::string(cap) + ")";
  return Status::Error("autoconfig: the kernels of this build (target '" + std::string(detail::kBuildTarget) +
                       "', most modest variant isa " + build_info().isa + ") cannot run here: " + why +
                       ". Rebuild on this machine (pip install . from a source checkout), or build for a "
                       "lower target with " + std::string(kLowerTargets));
}

const char* host_profile_json() {
  const detail::Registry* r = detail::active_registry();
  return r ? r->host_profile_json : detail::kVariants[0]->host_profile_json;
}

const char* plans_json() {
  const detail::Registry* r = detail::active_registry();
  return r ? r->plans_json : detail::kVariants[0]->plans_json;
}

}  // namespace autoconfig
