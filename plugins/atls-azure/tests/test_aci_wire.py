"""``azure.aci`` setting ``wire``: the SNI form of servers written for opaque-systems atls-python."""

from __future__ import annotations

import base64
import binascii
import socket
import ssl
from collections.abc import Iterator

import pytest

from atls_azure import specs
from atls_azure.issuer import AciIssuer
from atls_azure.testing.maa import StandInMaa
from atls_azure.validators import AciTokenValidator, cce_policy_hash
from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer
from atls_core.tls import ATLSContext, result_of

POLICY = Policy(options={"hostdata": [cce_policy_hash("package policy")]})


def _pyatls_form_only(server_name: str | None) -> bytes | None:
    """What a server written for atls-python reads: base64 of the nonce, the whole name."""
    try:
        return base64.b64decode((server_name or "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError):
        return None


@pytest.fixture
def seed_server(maa: StandInMaa) -> Iterator[HTTPSServer]:
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    certificates = AttestedCertificates(issuer, nonce_from_sni=_pyatls_form_only)
    with HTTPSServer(certificates.server_context()) as https:
        yield https


def _handshake(context: ssl.SSLContext, port: int) -> tuple[str | None, AttestationResult | None]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="svc.example") as tls,
    ):
        return tls.server_hostname, result_of(tls)


def test_wire_sets_the_sni_form(maa: StandInMaa) -> None:
    assert specs.ACI_SPEC.sni_form == "atls-label"
    assert AciTokenValidator(maa.settings()).spec.sni_form == "atls-label"
    assert AciTokenValidator(maa.settings(wire="atls")).spec.sni_form == "atls-label"
    assert AciTokenValidator(maa.settings(wire="pyatls")).spec.sni_form == "base64-line"


@pytest.mark.parametrize("wire", ["seed", "", ["pyatls"]])
def test_unknown_wire_is_refused(maa: StandInMaa, wire: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "azure.aci", settings=maa.settings(wire=wire), policy=POLICY, allow_insecure=True
        )
    assert info.value.check == "config.settings"


def test_pyatls_wire_reaches_a_seed_only_server(maa: StandInMaa, seed_server: HTTPSServer) -> None:
    config = ATLSConfig.from_mapping(
        {
            "atls": {"allow_insecure_test_validators": True},
            "hosts": {
                "svc.example": {
                    "validator": "azure.aci",
                    "settings": maa.settings(wire="pyatls"),
                    "policy": {"hostdata": [cce_policy_hash("package policy")]},
                }
            },
        }
    )
    server_name, result = _handshake(ATLSContext(config), seed_server.port)
    assert result is not None
    assert result.accepted
    assert result.binding.freshness.value == "nonce"
    assert server_name == base64.encodebytes(bytes.fromhex(result.binding.nonce or "")).decode()


def test_atls_wire_is_refused_by_a_seed_only_server(
    maa: StandInMaa, seed_server: HTTPSServer
) -> None:
    selected = select_validator(
        "azure.aci", settings=maa.settings(), policy=POLICY, allow_insecure=True
    )
    with pytest.raises(ATLSVerificationError) as info:
        _handshake(ATLSContext.for_validator(selected), seed_server.port)
    # The server read no nonce and answered with its static certificate (empty nonce).
    assert info.value.check == "azure.runtime.nonce"
    assert 'set wire = "pyatls"' in str(info.value)  # the refusal says what to change
    assert seed_server.received == 0
