"""Registration: the entry point, cheap imports, specs the registry accepts, the issuers."""

from __future__ import annotations

from pathlib import Path

import pytest

from atls_core.errors import ConfigurationError
from atls_core.registry import default_manager
from atls_core.selection import select_validator
from atls_core.server import select_issuer
from atls_core.testing.plugins import heavy_modules_loaded_by, manager_with
from atls_snp import __version__
from atls_snp.issuer import ConfigfsSnpIssuer
from atls_snp.oids import ATLS_SNP_EVIDENCE
from atls_snp.specs import SNP_CHALLENGE_SPEC, SNP_REPORT_SPEC, WORKLOAD_IDENTITY
from atls_snp.validator import SnpReportValidator


def test_plugin_imports_cheaply() -> None:
    heavy = (
        "atls_snp.validator",
        "atls_snp.chain",
        "atls_snp.issuer",
        "cryptography.hazmat.primitives.asymmetric.ec",
    )
    assert heavy_modules_loaded_by("import atls_snp.plugin", heavy) == []


def test_the_installed_entry_point_registers_both_validators_and_issuers() -> None:
    manager = default_manager()
    for spec in (SNP_REPORT_SPEC, SNP_CHALLENGE_SPEC):
        found, _factory, plugin = manager.validator_factory(spec.id)
        assert found == spec
        assert plugin.distribution == "atls-snp"
        assert plugin.version == __version__
    for issuer_id in ("snp.configfs-tsm", "snp.configfs-tsm-challenge"):
        issuer_spec, _issuer_factory, _ = manager.issuer_factory(issuer_id)
        assert issuer_spec.validator_id.startswith("snp.report")
    flags = [option.flag for option in manager.cli_options("snp.report")]
    assert flags == ["--vcek", "--ask", "--ark", "--crl", "--kds", "--kds-url", "--product"]


def test_specs_are_facts_the_registry_accepts() -> None:
    manager = manager_with(named={"snp": "atls_snp.plugin"})
    spec = manager.validator_spec("snp.report")
    assert spec.oids == (ATLS_SNP_EVIDENCE,)
    assert spec.tee_type == "sev-snp"
    assert spec.workload_identity == WORKLOAD_IDENTITY
    assert "host_data" in spec.measurements
    assert "host_data" not in spec.workload_identity
    assert spec.test_settings == ("test_ark",)
    assert manager.validator_spec("snp.report-challenge").oids == ()


@pytest.mark.parametrize("validator_id", ["snp.report", "snp.report-challenge"])
def test_selectable_with_defaults(validator_id: str) -> None:
    selected = select_validator(validator_id)
    assert isinstance(selected.validator, SnpReportValidator)
    assert selected.spec.id == validator_id
    assert selected.test_knobs == ()


def test_unknown_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator("snp.report", settings={"vcek_file": "x"})
    assert info.value.check == "config.settings"


def test_issuers_are_selectable(tmp_path: Path) -> None:
    issuer = select_issuer("snp.configfs-tsm", settings={"root": str(tmp_path)})
    assert isinstance(issuer, ConfigfsSnpIssuer)
    with pytest.raises(ConfigurationError):
        select_issuer("snp.configfs-tsm", settings={"provider_name": "sev_guest"})
