// Build facts and the ISA check an engine (or the Python module) runs at load.
#include <algorithm>
#include <string>

#include "autoconfig/autoconfig.h"
#include "autoconfig/detail/registry.h"
#include "cpu_features.h"

namespace autoconfig {

const BuildInfo& build_info() {
  static const BuildInfo info = [] {
    BuildInfo b;
    b.isa = detail::kBuildIsa;
    b.target = detail::kBuildTarget;
    for (int i = 0; i < detail::kRequiredFeatureCount; ++i) b.required.emplace_back(detail::kRequiredFeatures[i]);
    return b;
  }();
  return info;
}

std::vector<std::string> cpu_features() { return cpu::host_features().names(); }

std::vector<std::string> missing_cpu_features() {
  const std::vector<std::string> have = cpu::host_features().names();
  std::vector<std::string> missing;
  for (const auto& f : build_info().required)
    if (std::find(have.begin(), have.end(), f) == have.end()) missing.push_back(f);
  return missing;
}

Status check_isa() {
  const auto missing = missing_cpu_features();
  if (missing.empty()) return Status::Ok();
  std::string list;
  for (const auto& f : missing) list += (list.empty() ? "" : ", ") + f;
  return Status::Error("autoconfig: these kernels were generated for target '" + build_info().target +
                       "' (isa " + build_info().isa + ") but this CPU lacks: " + list +
                       ". Rebuild on this machine (pip install --no-binary autoconfig autoconfig, or "
                       "pip install . from a source checkout) or build for a lower target with "
                       "-C cmake.define.AUTOCONFIG_TARGET=x86-64-v3 (AVX2) or =generic.");
}

const char* host_profile_json() { return detail::kHostProfileJson; }
const char* plans_json() { return detail::kPlansJson; }

}  // namespace autoconfig
