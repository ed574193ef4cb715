"""Live aTLS handshakes on 127.0.0.1 against dstack servers whose certificates carry only the
attestation extension (``.8``), V0 (SCALE) and V1 (msgpack), through the real dcap-qvl under
the synthetic Intel PKI (a custom root, trusted only with ``allow_custom_root``)."""

from __future__ import annotations

import json
import ssl
from typing import Any

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import Freshness
from atls_core.errors import ATLSVerificationError
from atls_core.policy import Policy
from atls_core.registry import PluginManager
from atls_core.selection import select_validator
from atls_core.testing.loopback import HTTPSServer, attested_get, tls_server_context
from atls_core.tls import ATLSContext
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import make_tdx_quote
from atls_tdx.dstack_attestation import DstackAttestation, SevSnpPlatform
from atls_tdx.oids import DSTACK_ATTESTATION
from atls_tdx.testing.dstack import (
    attestation_certificate,
    dstack_event_log,
    encode_attestation,
    octet_string,
    ratls_report_data,
    self_signed_certificate,
    spki_of,
    tdx_attestation,
)

COMPOSE = '{"manifest_version":2,"name":"dot8","runner":"docker-compose"}'
EVENTS = dstack_event_log(app_compose=COMPOSE)
PINNED = Policy(
    options={
        "allowed_compose_hashes": [
            next(e for e in EVENTS if e["event"] == "compose-hash")["event_payload"]
        ]
    }
)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Settings valid *now*: collateral issued yesterday, next update in 30 days."""
    pki = DcapTestPki.generate(seed="atls-tdx dstack attestation handshakes")
    directory = tmp_path_factory.mktemp("live-dot8")
    return {"pki": pki, "settings": pki.file_settings(directory), "directory": directory}


def _dot8_server(live: dict[str, Any], **kw: Any) -> HTTPSServer:
    def quote(report_data: bytes, rtmrs: Any, mr_config_id: bytes) -> bytes:
        made: bytes = make_tdx_quote(
            live["pki"], report_data, rtmr=rtmrs, mr_config_id=mr_config_id
        )
        return made

    key = ec.generate_private_key(ec.SECP256R1())
    der = attestation_certificate(key, quote, events=EVENTS, **kw)
    return HTTPSServer(tls_server_context(key, der))


def _client(live: dict[str, Any], policy: Policy = PINNED) -> ssl.SSLContext:
    return ATLSContext.for_validator(
        select_validator(
            "tdx.dstack", settings=live["settings"], policy=policy, allow_insecure=True
        )
    )


def _check_accepted(result: Any, data: bytes) -> None:
    assert b'"/hello"' in data
    assert result.accepted, result.to_json()
    assert result.binding.scheme == "dstack-ratls-cert"
    assert result.binding.freshness is Freshness.KEY_ONLY
    assert result.measurements["compose_hash"] == PINNED.options["allowed_compose_hashes"][0]


@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_dstack_attestation_certificate_handshake(live: dict[str, Any], wire: int) -> None:
    # What dstack really embeds: a stripped log, runtime digests left for the client.
    with _dot8_server(live, wire_version=wire) as server:
        result, data = attested_get(_client(live), server.port)
    _check_accepted(result, data)


@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_dstack_attestation_with_a_full_log_handshake(live: dict[str, Any], wire: int) -> None:
    with _dot8_server(live, wire_version=wire, stripped=False) as server:
        result, data = attested_get(_client(live), server.port)
    _check_accepted(result, data)


@pytest.mark.parametrize("wire", [0, 1], ids=["V0-scale", "V1-msgpack"])
def test_dstack_attestation_for_another_key_is_rejected(live: dict[str, Any], wire: int) -> None:
    other = ratls_report_data(spki_of(ec.generate_private_key(ec.SECP256R1())))
    with _dot8_server(live, wire_version=wire, stripped=False, report_data=other) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(_client(live), server.port)
        assert server.requests == []
    assert info.value.check == "binding.report_data"


def test_sev_snp_attestation_names_the_plugin_to_install(live: dict[str, Any]) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    tdx = tdx_attestation(b"", EVENTS, report_data=ratls_report_data(spki_of(key)))
    mr_config = json.dumps({"compose_hash": "00" * 32, "key_provider": "none"})
    snp = attrs.evolve(
        tdx,
        platform=SevSnpPlatform(report=bytes(1184), cert_chain=(), mr_config=mr_config),
    )
    assert isinstance(snp, DstackAttestation)
    der = self_signed_certificate(
        key, [(DSTACK_ATTESTATION, octet_string(encode_attestation(snp)))]
    )
    # Whether or not atls-snp is installed here, a manager without it must name it.
    client = ATLSContext.for_validator(
        select_validator(
            "tdx.dstack",
            settings=live["settings"],
            policy=PINNED,
            allow_insecure=True,
            manager=PluginManager(disabled={"snp"}),
        )
    )
    with HTTPSServer(tls_server_context(key, der)) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(client, server.port)
        assert server.requests == []
    assert info.value.check == "dstack.platform_plugin_missing"
    assert "atls-snp" in str(info.value)
