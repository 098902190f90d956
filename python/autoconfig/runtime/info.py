"""What this build was planned for: its HostProfile, its plans, its ISA variants."""
from __future__ import annotations

from ..plan import plans_from_json
from ..profile import HostProfile
from .guard import require_ext


def host() -> HostProfile:
    """The HostProfile the kernels in this build were planned for."""
    return HostProfile.from_json(require_ext().host_profile_json())


def plans():
    """Every plan compiled into this build."""
    return plans_from_json(require_ext().plans_json())


def build_info() -> dict:
    ext = require_ext()
    return {"isa": ext.build_isa(), "target": ext.build_target(),
            "required_features": list(ext.required_features()),
            "cpu_features": list(ext.cpu_features()),
            "variants": list(ext.build_variants())}
