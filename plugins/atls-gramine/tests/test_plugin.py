"""Registration through the real plugin manager and the `atls` command line."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable
from typing import Any

import pytest

import atls_gramine
from atls_core import measurements
from atls_core.binding import SCHEMES, BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.selection import select_validator
from atls_core.testing.plugins import heavy_modules_loaded_by, run_atls
from atls_dcap import DCAP_CLI_OPTIONS, DCAP_SETTINGS, DCAP_TEST_SETTINGS
from atls_dcap.testing.pki import DcapTestPki
from atls_gramine import plugin
from atls_gramine.specs import ISSUER_SPEC, LEGACY_OID, TCG_OID, VALIDATOR_SPEC
from atls_gramine.testing.certs import INSIDE_WINDOW, make_ratls_credentials
from atls_gramine.validator import GramineRatlsValidator


def test_spec_declares_both_oids_and_the_shared_dcap_settings() -> None:
    assert VALIDATOR_SPEC.oids == (TCG_OID, LEGACY_OID)
    assert set(VALIDATOR_SPEC.settings) == set(DCAP_SETTINGS)
    assert VALIDATOR_SPEC.measurements == ("mrenclave", "mrsigner")
    assert set(VALIDATOR_SPEC.policy_options) == {"isv_prod_id", "min_isv_svn"}
    assert ISSUER_SPEC.validator_id == VALIDATOR_SPEC.id


def test_spec_declares_its_schemes_identity_and_cli_options() -> None:
    """Both schemes it binds with (TCG first: it decides when present), SGX identity, DCAP flags."""
    assert VALIDATOR_SPEC.binding_schemes == ("gramine-tcg", "gramine-legacy")
    assert set(VALIDATOR_SPEC.binding_schemes) <= set(SCHEMES)
    assert ISSUER_SPEC.binding_scheme in VALIDATOR_SPEC.binding_schemes
    assert VALIDATOR_SPEC.workload_identity == measurements.SGX_WORKLOAD
    assert VALIDATOR_SPEC.pinning_options == ()
    assert VALIDATOR_SPEC.cli_options == tuple(DCAP_CLI_OPTIONS)
    assert not hasattr(plugin, "atls_verify_evidence_options")


def test_a_custom_dcap_root_is_a_fenced_test_setting(
    settings_for: Callable[..., dict[str, Any]],
) -> None:
    """The synthetic root is refused unless insecure test settings are allowed."""
    assert VALIDATOR_SPEC.test_settings == DCAP_TEST_SETTINGS == ("root_ca", "allow_custom_root")
    pinned = Policy(allow_any_workload=True)
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "gramine.ratls", settings=settings_for(), policy=pinned, manager=PluginManager()
        )
    assert info.value.check == "config.test_settings"
    with pytest.raises(ConfigurationError) as info:
        GramineRatlsValidator.from_gramine_env(
            {
                "RA_TLS_MRENCLAVE": "any",
                "RA_TLS_MRSIGNER": "any",
                "RA_TLS_ISV_PROD_ID": "any",
                "RA_TLS_ISV_SVN": "any",
            },
            settings=settings_for(),
            manager=PluginManager(),
        )
    assert info.value.check == "config.test_settings"


def test_plugin_version_comes_from_distribution_metadata(
    settings_for: Callable[..., dict[str, Any]], pki: DcapTestPki
) -> None:
    """The spec carries no version: results name the installed distribution's."""
    selected = select_validator(
        "gramine.ratls",
        settings=settings_for(),
        policy=Policy(allow_any_workload=True),
        manager=PluginManager(),
        allow_insecure=True,
    )
    certificate = PeerCertificate.from_der(make_ratls_credentials(pki).certificate_der)
    result = selected.appraise(
        selected.validator.evidence_from_certificate(certificate),
        binding=BindingContext(spki_der=certificate.spki_der),
        clock=FixedClock(INSIDE_WINDOW),
    )
    assert result.accepted
    assert result.verifier.plugin == "gramine"
    assert result.verifier.plugin_version == importlib.metadata.version("atls-gramine")
    assert result.verifier.plugin_version == atls_gramine.__version__


def test_verify_evidence_lists_the_dcap_options() -> None:
    out = run_atls("verify-evidence", "--validator", "gramine.ratls", "--help")
    assert out.returncode == 0, out.stderr
    for option in DCAP_CLI_OPTIONS:
        assert option.flag in out.stdout


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
        allow_insecure=True,
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
    heavy = ("cbor2", "dcap_qvl", "atls_gramine.validator", "atls_gramine.issuer")
    assert heavy_modules_loaded_by("import atls_gramine.plugin", heavy) == []


def test_registering_the_plugin_imports_no_path_or_url_library() -> None:
    """`atls plugins` registers every plugin: declaring settings reads no path or URL."""
    code = "from atls_core.registry import PluginManager; PluginManager(environ={}).load('gramine')"
    heavy = ("pathlib", "urllib", "ipaddress")
    assert heavy_modules_loaded_by(code, heavy) == []
