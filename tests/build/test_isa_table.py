"""The ISA table (autoconfig/isa_table.py): every row has an emitter, a
built-in target and a feature mapping, and the stages read it rather than a
copy."""
from __future__ import annotations

import pytest

from autoconfig import isa_table, probe
from autoconfig.codegen import registry
from autoconfig.codegen.isa import isa_for, isa_for_profile
from autoconfig.profile import SCALABLE_ISAS, fixed_lanes_profile

ROWS = isa_table.ISAS


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_row_has_an_emitter(row):
    isa = isa_for(row.key)
    assert isa.key == row.key
    assert isa.fixed_lanes == (row.fixed_lanes is None)
    if row.fixed_lanes is not None:
        view, bits = row.fixed_lanes
        assert view in isa_table.ISA and isa_for(view).fixed_lanes and bits % 32 == 0


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_row_has_a_target(row):
    assert row.targets, f"{row.key}: no built-in target selects it"
    for t in row.targets:
        prof = probe.profile(t)
        assert prof.isa == row.key and prof.vector_registers == row.vector_registers
        assert prof.vector_bits == row.vector_bits
        assert isa_for_profile(prof).key == row.key
        assert fixed_lanes_profile(prof).isa == (row.fixed_lanes or (row.key,))[0]


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.key)
def test_row_has_a_feature_mapping(row):
    for flag in row.compile_flags:
        assert flag in isa_table.FLAG_FEATURES, f"{row.key}: flag {flag} has no cpu feature"
    implied = {f for flag in row.compile_flags for f in isa_table.FLAG_FEATURES[flag]}
    assert set(row.requires) <= implied, f"{row.key}: its flags do not imply the features it requires"
    # a host with exactly the required features gets this ISA (or, scalable, its view unless wider)
    if row.key not in ("sve", "rvv"):
        assert probe.choose_isa(list(row.requires)) == row.key


def test_every_builtin_target_has_one_row():
    owners = {t: [r.key for r in ROWS if t in r.targets] for t in probe.BUILTIN_TARGETS}
    assert all(len(v) == 1 for v in owners.values()), owners


def test_the_stages_read_the_table():
    assert probe.ISA_TABLE is isa_table.ISA_TABLE
    assert registry.FLAG_FEATURES is isa_table.FLAG_FEATURES
    assert SCALABLE_ISAS is isa_table.SCALABLE_ISAS
    assert probe.KNOWN_ISAS == tuple(r.key for r in ROWS)
