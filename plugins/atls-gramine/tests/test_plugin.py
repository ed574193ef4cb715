"""Registration through the real plugin manager and the `atls` command line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.selection import select_validator
from atls_gramine.specs import ISSUER_SPEC, LEGACY_OID, TCG_OID, VALIDATOR_SPEC
from atls_gramine.validator import GramineRatlsValidator
from atls_tdx.dcap import DCAP_SETTINGS


def test_spec_declares_both_oids_and_the_shared_dcap_settings() -> None:
    assert VALIDATOR_SPEC.oids == (TCG_OID, LEGACY_OID)
    assert set(VALIDATOR_SPEC.settings) == set(DCAP_SETTINGS)
    assert VALIDATOR_SPEC.measurements == ("mrenclave", "mrsigner")
    assert set(VALIDATOR_SPEC.policy_options) == {"isv_prod_id", "min_isv_svn"}
    assert ISSUER_SPEC.validator_id == VALIDATOR_SPEC.id


def test_plugin_registers_through_the_manager() -> None:
    manager = PluginManager()
    spec, _factory, plugin = manager.validator_factory("gramine.ratls")
    assert spec == VALIDATOR_SPEC
    assert plugin.distribution == "atls-gramine"
    issuer_spec, _, _ = manager.issuer_factory("gramine.dev-attestation")
    assert issuer_spec == ISSUER_SPEC


def test_select_validator_refuses_unknown_names(
    settings_for: Callable[..., dict[str, Any]],
) -> None:
    selected = select_validator(
        "gramine.ratls",
        settings=settings_for(),
        policy=Policy(options={"min_isv_svn": 1}),
        manager=PluginManager(),
    )
    assert isinstance(selected.validator, GramineRatlsValidator)
    with pytest.raises(ConfigurationError):
        select_validator(
            "gramine.ratls", policy=Policy(options={"isv_svn": 1}), manager=PluginManager()
        )
    with pytest.raises(ConfigurationError):
        select_validator(
            "gramine.ratls",
            policy=Policy.from_mapping({"reference_values": {"mrtd": "00"}}),
            manager=PluginManager(),
        )


def test_importing_the_plugin_is_cheap() -> None:
    code = (
        "import sys, atls_gramine.plugin\n"
        "print([m for m in ('cbor2', 'dcap_qvl', 'atls_gramine.validator', 'atls_gramine.issuer')"
        " if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "[]"
