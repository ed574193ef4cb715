"""Registration through the installed entry point, selection and the certificate path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, new_nonce
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.selection import select_validator
from atls_core.testing.certs import self_signed_certificate
from atls_core.testing.plugins import assert_tests_only, heavy_modules_loaded_by
from atls_ita.oids import ITA_TOKEN_OID
from atls_ita.testing.pki import StandInPki
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import issue_token


@pytest.fixture(scope="module")
def manager() -> PluginManager:
    manager = PluginManager(environ={})
    manager.load("ita")
    return manager


def test_plugin_module_imports_cheaply() -> None:
    heavy = ("jwt", "atls_ita.validator", "atls_ita.offline", "atls_core.policy", "atls_tdx")
    assert heavy_modules_loaded_by("import atls_ita.plugin", heavy) == []


def test_validators_and_issuer_are_registered(manager: PluginManager) -> None:
    assert manager.validator_spec("ita.tdx").oids == (ITA_TOKEN_OID,)
    assert manager.validator_spec("ita.sgx").tee_type == "sgx"
    spec, _, _ = manager.issuer_factory("ita.tdx")
    assert spec.validator_id == "ita.tdx"
    assert spec.oid == ITA_TOKEN_OID


def test_cli_options(manager: PluginManager) -> None:
    flags = {o.flag: o.setting for o in manager.cli_options("ita.tdx")}
    assert flags["--jwks"] == "jwks_file"
    assert flags["--root"] == "root_ca"
    assert flags["--issuer"] == "issuer"


def test_selection_refuses_unknown_names(
    manager: PluginManager, ita: StandInIta, tmp_path: Path
) -> None:
    settings = ita.validator_settings(tmp_path / "root.pem")
    selected = select_validator("ita.tdx", settings=settings, manager=manager, allow_insecure=True)
    assert selected.spec.id == "ita.tdx"
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "ita.tdx",
            settings=settings,
            policy=Policy(options={"required_policy_idz": ["x"]}),
            manager=manager,
            allow_insecure=True,
        )
    assert info.value.check == "config.policy_options"
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "ita.tdx", settings={**settings, "jku": "x"}, manager=manager, allow_insecure=True
        )
    assert info.value.check == "config.settings"


@pytest.mark.parametrize("validator_id", ["ita.tdx", "ita.sgx"])
def test_http_on_loopback_is_a_fenced_test_setting(
    manager: PluginManager, tmp_path: Path, validator_id: str
) -> None:
    """One flag must not let a production configuration trust an http key endpoint."""
    assert manager.validator_spec(validator_id).test_settings == ("allow_http_loopback",)
    (tmp_path / "root.pem").write_bytes(StandInPki.generate(algorithms=()).root_pem)
    settings = {
        "jwks_url": "http://127.0.0.1:1/certs",
        "root_ca": str(tmp_path / "root.pem"),
        "allow_http_loopback": True,
    }
    assert_tests_only(validator_id, settings, ("allow_http_loopback",), manager=manager)
    production = {**settings, "jwks_url": "https://ita.example/certs", "allow_http_loopback": False}
    assert select_validator(validator_id, settings=production, manager=manager).test_knobs == ()


def _certificate(spki_key: ec.EllipticCurvePrivateKey, token: str | None) -> bytes:
    extensions = [(ITA_TOKEN_OID, token.encode())] if token is not None else []
    return self_signed_certificate(spki_key, extensions, common_name="ita-attested.example")


def test_token_travels_in_the_certificate(
    manager: PluginManager, ita: StandInIta, tmp_path: Path, clock: FixedClock, pinned: Policy
) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    nonce = new_nonce()
    issued = issue_token(ita, nonce=nonce, spki=spki)
    der = _certificate(key, issued.token)
    selected: Any = select_validator(
        "ita.tdx",
        settings=ita.validator_settings(tmp_path / "root.pem"),
        manager=manager,
        allow_insecure=True,
    )
    certificate = PeerCertificate.from_der(der)
    evidence = selected.validator.evidence_from_certificate(certificate)
    result = selected.validator.appraise(
        evidence,
        binding=BindingContext(spki_der=certificate.spki_der, nonce=nonce, certificate_der=der),
        clock=clock,
        policy=pinned,
    )
    assert result.accepted, result.to_json()
    with pytest.raises(MalformedEvidence):
        selected.validator.evidence_from_certificate(
            PeerCertificate.from_der(_certificate(key, None))
        )


def test_evidence_from_file_is_the_raw_jwt(
    ita: StandInIta, tmp_path: Path, clock: FixedClock, pinned: Policy
) -> None:
    from atls_ita.validator import ItaValidator

    issued = issue_token(ita, nonce=None)
    validator = ItaValidator(
        {
            "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
            "root_ca": str(ita.write_root(tmp_path / "root.pem")),
        }
    )
    evidence = validator.evidence_from_file((issued.token + "\n").encode(), name="token.jwt")
    result = validator.appraise(
        evidence, binding=BindingContext.offline_context(), clock=clock, policy=pinned
    )
    assert result.accepted
    assert any("offline" in w for w in result.warnings)


def test_cli_verify_evidence_with_pinned_keys_and_root(
    manager: PluginManager, ita: StandInIta, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from atls_core.cli import main

    token = issue_token(ita, nonce=None).token
    (tmp_path / "token.jwt").write_text(token)
    mrtd = ita.measurements["mrtd"]
    (tmp_path / "policy.toml").write_text(f'[reference_values]\nmrtd = "{mrtd}"\n')
    unpinned = [
        "verify-evidence",
        str(tmp_path / "token.jwt"),
        "--validator",
        "ita.tdx",
        "--jwks",
        str(ita.write_jwks(tmp_path / "jwks.json")),
        "--root",
        str(ita.write_root(tmp_path / "root.pem")),
        "--at",
        str(int(ita.clock.now().timestamp()) + 1),
        "--json",
    ]
    assert main(unpinned, manager=manager) != 0, "a genuine token alone does not pass"
    out = capsys.readouterr().out
    assert '"workload.unpinned"' in out
    assert mrtd in out, "the refusal shows the value to pin"
    args = [*unpinned, "--policy", str(tmp_path / "policy.toml")]
    assert main(args, manager=manager) == 0
    assert '"ita.tdx"' in capsys.readouterr().out
    tampered = token[:-8] + ("A" * 8 if not token.endswith("A" * 8) else "B" * 8)
    (tmp_path / "token.jwt").write_text(tampered)
    assert main(args, manager=manager) != 0


def test_registering_the_plugin_imports_no_path_or_url_library() -> None:
    """`atls plugins` registers every plugin: declaring settings reads no path or URL."""
    code = "from atls_core.registry import PluginManager; PluginManager(environ={}).load('ita')"
    heavy = ("pathlib", "urllib", "ipaddress")
    assert heavy_modules_loaded_by(code, heavy) == []
