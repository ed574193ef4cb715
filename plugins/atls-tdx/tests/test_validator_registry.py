"""The tdx plugin through the real plugin manager (entry point `tdx`)."""

from __future__ import annotations

from typing import Any

import pytest

from atls_core.errors import ConfigurationError
from atls_core.policy import Policy, ReferenceValue
from atls_core.registry import PluginManager
from atls_core.selection import select_validator
from atls_core.testing.plugins import heavy_modules_loaded_by
from atls_tdx.oids import ATLS_TDX_QUOTE, DSTACK_ATTESTATION, DSTACK_QUOTE


@pytest.fixture
def manager() -> PluginManager:
    return PluginManager(environ={})


def test_plugin_registers_validators_and_issuers(manager: PluginManager) -> None:
    assert manager.validator_spec("tdx.dcap").oids == (ATLS_TDX_QUOTE,)
    assert manager.validator_spec("tdx.dstack").oids == (DSTACK_ATTESTATION, DSTACK_QUOTE)
    assert manager.validator_spec("tdx.dstack-challenge").binding_scheme == "challenge-v1"
    configfs, _, _ = manager.issuer_factory("tdx.configfs-tsm")
    assert configfs.validator_id == "tdx.dcap"
    assert configfs.oid == ATLS_TDX_QUOTE
    agent, _, _ = manager.issuer_factory("tdx.dstack-agent")
    assert agent.validator_id == "tdx.dstack-challenge"


@pytest.mark.parametrize("validator_id", ["tdx.dstack", "tdx.dstack-challenge"])
def test_dstack_pins_by_application(manager: PluginManager, validator_id: str) -> None:
    spec = manager.validator_spec(validator_id)
    # tdx.dstack reads SEV-SNP attestations too: their HOST_DATA commits to the app.
    # tdx.dstack-challenge: each new TLS certificate is extended into RTMR3, so it rotates.
    by_transport = {"host_data", "rtmr3"} if validator_id == "tdx.dstack" else set()
    assert set(spec.workload_identity) == {"compose_hash", "mrconfigid"} | by_transport
    # The OS image and the firmware are shared by every app on the platform, and the host
    # chooses the app id: checked when given, never a pin.
    unpinning = {"os_image_hash", "mrtd", "instance_id", "measurement", "app_id"}
    assert not unpinning & set(spec.workload_identity)
    assert set(spec.pinning_options) == {"app_compose", "allowed_compose_hashes"}


@pytest.mark.parametrize("validator_id", ["tdx.dcap", "tdx.dstack", "tdx.dstack-challenge"])
def test_collateral_cli_option(manager: PluginManager, validator_id: str) -> None:
    options = {o.flag: o.setting for o in manager.cli_options(validator_id)}
    assert options["--collateral"] == "collateral_file"


def test_selection_builds_validators(manager: PluginManager, synthetic: Any) -> None:
    policy = Policy(reference_values={"mrtd": ReferenceValue(accepted=["00" * 48])})
    selected = select_validator(
        "tdx.dcap",
        settings=synthetic.settings(),
        policy=policy,
        manager=manager,
        allow_insecure=True,
    )
    assert selected.spec.id == "tdx.dcap"
    dstack_policy = Policy(
        reference_values={"compose_hash": ReferenceValue(accepted=["00" * 32])},
        options={"allowed_app_ids": ["00" * 20]},
    )
    select_validator(
        "tdx.dstack",
        settings=synthetic.settings(),
        policy=dstack_policy,
        manager=manager,
        allow_insecure=True,
    )


@pytest.mark.parametrize(
    ("settings", "policy"),
    [
        ({"colateral": "x"}, Policy()),
        ({}, Policy(options={"app_compose": "{}"})),
        ({}, Policy(reference_values={"compose_hash": ReferenceValue(accepted=["00"])})),
    ],
    ids=["unknown setting", "dstack policy option", "dstack measurement"],
)
def test_selection_refuses_what_a_validator_does_not_know(
    manager: PluginManager, synthetic: Any, settings: dict[str, Any], policy: Policy
) -> None:
    with pytest.raises(ConfigurationError):
        select_validator(
            "tdx.dcap",
            settings={**synthetic.settings(), **settings},
            policy=policy,
            manager=manager,
            allow_insecure=True,
        )


def test_selection_refuses_an_unknown_collateral_source(manager: PluginManager) -> None:
    with pytest.raises(ConfigurationError):
        select_validator("tdx.dcap", settings={"collateral": "ftp"}, manager=manager)


def test_plugin_module_imports_cheaply() -> None:
    heavy = ("dcap_qvl", "atls_tdx.dstack", "atls_tdx.dcap_validator")
    assert heavy_modules_loaded_by("import atls_tdx.plugin", heavy) == []
