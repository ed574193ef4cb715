"""The whole passport path over real TLS on 127.0.0.1.

Server: atls' per-connection certificates from the ``ita.tdx`` issuer (stand-in
ITA over HTTP, emulated configfs-tsm).  Client: ``ATLSContext`` with the
``ita.tdx`` validator trusting the stand-in's root.  Each connection's nonce
travels in SNI, the server gets a fresh token for it, the client appraises it.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import Freshness
from atls_core.clock import SystemClock
from atls_core.errors import ATLSVerificationError
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.result import Status
from atls_core.secret import Secret
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer, tls_connect
from atls_core.testing.tsm import EmulatedConfigfsTsm
from atls_core.tls import ATLSContext
from atls_ita.issuer import ItaIssuer
from atls_ita.testing.pki import StandInPki
from atls_ita.testing.standin import StandInIta

API_KEY = "ita-test-api-key-6f1d"


@pytest.fixture
def certificates(ita: StandInIta, tmp_path: Path) -> AttestedCertificates:
    ita.clock = SystemClock()
    root = tmp_path / "tsm"
    root.mkdir()
    tsm = EmulatedConfigfsTsm(
        root, lambda report_data, _privlevel: b"EMULATED-TDX-QUOTE:" + report_data
    )
    issuer = ItaIssuer(
        {
            "api_url": ita.url,
            "allow_http_loopback": True,  # the stand-in answers plain http (tests only)
            "api_key": Secret(API_KEY, "test"),
            "configfs_root": str(root),
        },
        fs=tsm,
    )
    return AttestedCertificates(issuer)


def test_fresh_token_per_connection(
    ita: StandInIta, certificates: AttestedCertificates, tmp_path: Path, pinned: Policy
) -> None:
    manager = PluginManager(environ={})
    selected = select_validator(
        "ita.tdx",
        settings=ita.validator_settings(tmp_path / "root.pem"),
        policy=pinned,
        manager=manager,
        allow_insecure=True,
    )
    context = ATLSContext.for_validator(selected)
    with HTTPSServer(certificates.server_context()) as server:
        for _ in range(2):
            with tls_connect(context, server.port) as tls:
                result = tls.attestation_result
                assert result is not None
                assert result.accepted, result.to_json()
                # Keys from the stand-in over http on loopback: tests only, and it says so.
                assert result.status is Status.WARNING
                assert list(result.claims["test_knobs"]) == ["allow_http_loopback"]
                assert result.binding.freshness is Freshness.NONCE
                assert result.verifier.validator == "ita.tdx"
    assert certificates.minted == 2
    assert ita.requests["/appraisal/v2/attest"] == 3  # the static certificate + two connections
    assert ita.requests["/certs"] == 1


def _refusal(certificates: AttestedCertificates, settings: dict[str, Any]) -> ATLSVerificationError:
    """How a client selecting ``ita.tdx`` with ``settings`` (and no pin) refuses the server."""
    selected = select_validator(
        "ita.tdx", settings=settings, manager=PluginManager(environ={}), allow_insecure=True
    )
    with (
        HTTPSServer(certificates.server_context()) as server,
        pytest.raises(ATLSVerificationError) as info,
    ):
        tls_connect(ATLSContext.for_validator(selected), server.port)
    return info.value


def test_client_that_pins_nothing_refuses_a_genuine_server(
    ita: StandInIta, certificates: AttestedCertificates, tmp_path: Path
) -> None:
    """A genuine TD with a genuine ITA token, but any TD anyone rents would have one."""
    refusal = _refusal(certificates, ita.validator_settings(tmp_path / "root.pem"))
    assert refusal.check == "workload.unpinned"
    assert ita.measurements["mrtd"] in str(refusal), "the refusal shows what to pin"


def test_client_trusting_another_root_refuses_the_server(
    ita: StandInIta, certificates: AttestedCertificates, tmp_path: Path
) -> None:
    (tmp_path / "other.pem").write_bytes(StandInPki.generate(algorithms=()).root_pem)
    settings = {
        "jwks_url": ita.jwks_url,
        "root_ca": str(tmp_path / "other.pem"),
        "allow_http_loopback": True,
    }
    refusal = _refusal(certificates, settings)
    assert refusal.check == "ita.x5c.root"
    assert isinstance(refusal, ssl.SSLCertVerificationError)
