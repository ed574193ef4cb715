"""Every distribution installed together: discovery, uniqueness, isolation."""

from __future__ import annotations

import json

import pytest

from atls_core.registry import PluginManager
from atls_core.testing.plugins import heavy_modules_loaded_by, run_atls

EXPECTED = {
    "tdx": "atls-tdx",
    "gramine": "atls-gramine",
    "azure": "atls-azure",
    "ita": "atls-ita",
}


def test_every_plugin_is_discovered_from_metadata() -> None:
    infos = {info.name: info for info in PluginManager().available()}
    for name, distribution in EXPECTED.items():
        assert name in infos, f"plugin {name} not discovered"
        assert infos[name].distribution == distribution
        assert infos[name].version


def test_all_plugins_load_together_without_clashes() -> None:
    statuses = PluginManager().load_all()
    by_name = {s.info.name: s for s in statuses}
    for name in EXPECTED:
        status = by_name[name]
        assert status.loaded, f"{name}: {status.error}"
        assert status.validators, f"{name} registers no validator"
        for spec in status.validators:
            assert spec.id.startswith(name + ".")
    oids = [oid for s in statuses for spec in s.validators for oid in spec.oids]
    assert len(oids) == len(set(oids)), "two validators claim the same OID"


def test_every_validator_names_what_pins_its_workload() -> None:
    """The core's one pinning rule needs something to pin: no validator may leave it empty."""
    specs = [spec for s in PluginManager().load_all() for spec in s.validators]
    assert {spec.id.partition(".")[0] for spec in specs} >= set(EXPECTED)
    for spec in specs:
        assert spec.workload_identity, f"{spec.id} names no workload_identity: nothing can pin it"
        assert set(spec.workload_identity) <= set(spec.measurements), spec.id
        assert set(spec.pinning_options) <= set(spec.policy_options), spec.id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_selecting_one_plugin_imports_only_that_plugin(name: str) -> None:
    others = [f"atls_{o}" for o in EXPECTED if o != name]
    code = f"from atls_core.registry import PluginManager\nPluginManager().load({name!r})\n"
    # plugins never import each other (DCAP lives in the atls-dcap support distribution)
    assert heavy_modules_loaded_by(code, others) == []


def test_importing_the_core_imports_no_plugin_or_heavy_dependency() -> None:
    heavy = ["dcap_qvl", "requests", "httpx", "jwt", "cbor2"]
    heavy += ["atls_tdx", "atls_gramine", "atls_azure", "atls_ita", "atls_dcap", "atls_snp"]
    heavy += ["atls_pyatls"]
    assert heavy_modules_loaded_by("import atls_core", heavy) == []


def test_atls_plugins_command_lists_every_distribution() -> None:
    done = run_atls("plugins", "--json")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    listed = json.dumps(json.loads(out))
    for distribution in EXPECTED.values():
        assert distribution in listed
