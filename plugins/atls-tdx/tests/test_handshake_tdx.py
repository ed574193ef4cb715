"""Live aTLS handshakes on 127.0.0.1 through real dcap-qvl, under the synthetic DCAP PKI.

The production path trusts a custom DCAP root only when configuration names
it *and* sets ``allow_custom_root = true``; these tests use exactly that path.
Policies pin the workload (the synthetic MRTD, the fake deployment's compose
hash): an unpinned policy is refused before any application byte.
"""

from __future__ import annotations

import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import Freshness, report_data_for
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.policy import Policy
from atls_core.result import Status
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates, mint_certificate
from atls_core.testing.loopback import (
    HTTPSServer,
    attested_get,
    challenge_handshakes,
    challenge_https_server,
    tls_server_context,
)
from atls_core.tls import ATLSContext
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRTD, make_tdx_quote
from atls_tdx.issuers import ConfigfsTsmIssuer, DstackAgentIssuer
from atls_tdx.testing.dstack import (
    FakeConfigfsTsm,
    FakeGuestAgent,
    dstack_event_log,
    legacy_extensions,
    replay_rtmrs,
    self_signed_certificate,
    spki_of,
)

PINNED_TD = Policy(reference_values={"mrtd": DEFAULT_MRTD.hex()})
"""Pins the synthetic TD's MRTD."""


def pinned_compose(events: list[dict[str, Any]], **kw: Any) -> Policy:
    """Pins the compose hash a dstack event log measures."""
    deployed = next(e for e in events if e["event"] == "compose-hash")["event_payload"]
    return Policy(options={"allowed_compose_hashes": [deployed]}, **kw)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Settings valid *now*: collateral issued yesterday, next update in 30 days."""
    pki = DcapTestPki.generate(seed="atls-tdx live handshakes")
    directory = tmp_path_factory.mktemp("live")
    return {"pki": pki, "settings": pki.file_settings(directory), "directory": directory}


@pytest.fixture
def configfs_server(live: dict[str, Any], tmp_path: Path) -> Iterator[HTTPSServer]:
    root = tmp_path / "report"
    root.mkdir()
    tsm = FakeConfigfsTsm(root, lambda report_data: make_tdx_quote(live["pki"], report_data))
    issuer = ConfigfsTsmIssuer({"root": str(root)}, fs=tsm)
    certificates = AttestedCertificates(issuer, hostnames=("127.0.0.1",))
    with HTTPSServer(certificates.server_context(per_connection=True)) as server:
        server.certificates = certificates  # type: ignore[attr-defined]
        yield server


def test_tdx_dcap_handshake_is_nonce_fresh(
    live: dict[str, Any], configfs_server: HTTPSServer
) -> None:
    context = ATLSContext.for_validator(
        select_validator(
            "tdx.dcap", settings=live["settings"], policy=PINNED_TD, allow_insecure=True
        )
    )
    for _ in range(2):
        result, data = attested_get(context, configfs_server.port)
        assert result.accepted, result.to_json()
        assert result.binding.scheme == "atls-v1"
        assert result.binding.freshness is Freshness.NONCE
        assert result.tcb.status == "UpToDate"
        # The synthetic root is a tests-only setting: at best a warning, saying so.
        assert result.status is Status.WARNING
        assert list(result.claims["test_knobs"]) == ["allow_custom_root", "root_ca"]
        assert any(w.startswith("insecure.test_knob") for w in result.warnings), result.warnings
        assert b'"/hello"' in data
    assert configfs_server.certificates.minted == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize("validator_id", ["tdx.dcap", "tdx.dstack", "tdx.dstack-challenge"])
def test_a_custom_dcap_root_is_refused_unless_insecure_tests_are_allowed(
    live: dict[str, Any], validator_id: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator(validator_id, settings=live["settings"], policy=PINNED_TD)
    assert info.value.check == "config.test_settings"
    assert "root_ca" in str(info.value)


def test_unpinned_tdx_dcap_policy_refuses_a_genuine_td_before_any_byte(
    live: dict[str, Any], configfs_server: HTTPSServer
) -> None:
    # The attacker's own VM: a genuine TD, a genuine quote, bound to the attacker's key.
    context = ATLSContext.for_validator(
        select_validator("tdx.dcap", settings=live["settings"], allow_insecure=True)
    )
    with pytest.raises(ATLSVerificationError) as info:
        attested_get(context, configfs_server.port)
    assert info.value.check == "workload.unpinned"
    result = info.value.result
    assert result is not None
    assert result.binding.verified
    assert result.binding.freshness is Freshness.NONCE
    assert result.tcb.status == "UpToDate"
    assert result.measurements["mrtd"] == DEFAULT_MRTD.hex()
    assert configfs_server.certificates.minted == 1  # type: ignore[attr-defined]
    assert configfs_server.requests == []


def test_custom_root_is_refused_without_explicit_permission(live: dict[str, Any]) -> None:
    settings = {k: v for k, v in live["settings"].items() if k != "allow_custom_root"}
    with pytest.raises(ConfigurationError) as info:
        select_validator("tdx.dcap", settings=settings, allow_insecure=True)
    assert info.value.check == "config.dcap.root_ca"


def test_intel_root_does_not_trust_the_synthetic_pki(
    live: dict[str, Any], configfs_server: HTTPSServer
) -> None:
    settings = {
        k: v for k, v in live["settings"].items() if k not in ("root_ca", "allow_custom_root")
    }
    context = ATLSContext.for_validator(
        select_validator("tdx.dcap", settings=settings, policy=PINNED_TD)
    )
    with pytest.raises(ATLSVerificationError) as info:
        attested_get(context, configfs_server.port)
    assert info.value.check.startswith("dcap.")
    assert configfs_server.requests == []


def test_quote_for_another_key_is_rejected(live: dict[str, Any], tmp_path: Path) -> None:
    root = tmp_path / "report"
    root.mkdir()
    issuer = ConfigfsTsmIssuer(
        {"root": str(root)},
        fs=FakeConfigfsTsm(root, lambda report_data: make_tdx_quote(live["pki"], report_data)),
    )
    stolen = mint_certificate(issuer, hostnames=("127.0.0.1",))  # evidence for another key
    lying = mint_certificate(issuer, hostnames=("127.0.0.1",), evidence=stolen.evidence)
    context = ATLSContext.for_validator(
        select_validator(
            "tdx.dcap", settings=live["settings"], policy=PINNED_TD, allow_insecure=True
        )
    )
    with HTTPSServer(lying.server_context()) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(context, server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"


@pytest.fixture
def socket_path() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="atls-") as directory:
        yield Path(directory) / "dstack.sock"


def test_dstack_challenge_handshake(live: dict[str, Any], socket_path: Path) -> None:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        return make_tdx_quote(live["pki"], report_data, rtmr=rtmrs, mr_config_id=mr_config_id)

    with FakeGuestAgent(socket_path, quote) as agent:
        issuer = DstackAgentIssuer({"socket": str(socket_path)})
        certificate = mint_certificate(issuer, hostnames=("127.0.0.1",))
        server, endpoint = challenge_https_server(issuer, certificate, "/tdx_quote")
        selected = select_validator(
            "tdx.dstack-challenge",
            settings=live["settings"],
            policy=pinned_compose(agent.events),
            allow_insecure=True,
        )
        context = ATLSContext.for_validator(selected)
        with server:
            results = challenge_handshakes(context, server, endpoint)
        for result in results:
            assert result.binding.scheme == "challenge-v1"
            assert result.claims["certificate_event_sha256"] == certificate.sha256.hex()
        assert agent.requests.count("EmitEvent") == 1


def test_dstack_challenge_for_another_certificate_is_rejected(
    live: dict[str, Any], socket_path: Path
) -> None:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        return make_tdx_quote(live["pki"], report_data, rtmr=rtmrs, mr_config_id=mr_config_id)

    with FakeGuestAgent(socket_path, quote) as agent:
        issuer = DstackAgentIssuer({"socket": str(socket_path)})
        presented = mint_certificate(issuer, hostnames=("127.0.0.1",))
        measured = mint_certificate(issuer, hostnames=("127.0.0.1",))
        server, _ = challenge_https_server(issuer, measured, "/tdx_quote", presented=presented)
        context = ATLSContext.for_validator(
            select_validator(
                "tdx.dstack-challenge",
                settings=live["settings"],
                policy=pinned_compose(agent.events),
                allow_insecure=True,
            )
        )
        with server:
            with pytest.raises(ATLSVerificationError) as info:
                attested_get(context, server.port)
            assert server.requests == []
    assert info.value.check == "binding.certificate"


def _ratls_server_context(
    live: dict[str, Any], *, spki_for_report: bytes | None = None
) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    events = dstack_event_log()
    report_data = report_data_for("dstack-ratls-cert", spki_der=spki_for_report or spki_of(key))
    quote = make_tdx_quote(live["pki"], report_data, rtmr=replay_rtmrs(events))
    der = self_signed_certificate(key, legacy_extensions(quote, events))
    return tls_server_context(key, der)


def _dstack_client(live: dict[str, Any], policy: Policy) -> ATLSContext:
    """A client appraising ``tdx.dstack`` certificates under the live synthetic PKI."""
    selected = select_validator(
        "tdx.dstack", settings=live["settings"], policy=policy, allow_insecure=True
    )
    return ATLSContext.for_validator(selected)


def test_dstack_ratls_certificate_handshake(live: dict[str, Any]) -> None:
    context = _dstack_client(live, pinned_compose(dstack_event_log()))
    with HTTPSServer(_ratls_server_context(live)) as server:
        result, data = attested_get(context, server.port)
    assert b'"/hello"' in data
    assert result.accepted, result.to_json()
    assert result.binding.scheme == "dstack-ratls-cert"
    assert result.binding.freshness is Freshness.KEY_ONLY
    assert "compose_hash" in result.measurements
    strict = _dstack_client(live, pinned_compose(dstack_event_log(), require_nonce=True))
    with (
        HTTPSServer(_ratls_server_context(live)) as server,
        pytest.raises(ATLSVerificationError) as info,
    ):
        attested_get(strict, server.port)
    assert info.value.check == "freshness.nonce"


def test_dstack_ratls_certificate_for_another_key_is_rejected(live: dict[str, Any]) -> None:
    other = spki_of(ec.generate_private_key(ec.SECP256R1()))
    context = _dstack_client(live, pinned_compose(dstack_event_log()))
    with HTTPSServer(_ratls_server_context(live, spki_for_report=other)) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(context, server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"
