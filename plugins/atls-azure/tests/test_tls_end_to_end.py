"""Real TLS on loopback: an ACI server with the stand-in sidecar/MAA, our client."""

from __future__ import annotations

import base64
import contextlib
import socket
import ssl
import uuid
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from atls_azure.aci import SecurityWarning
from atls_azure.issuer import AciIssuer
from atls_azure.server import AciCertificates
from atls_azure.testing.maa import STAND_IN_VM_ID, StandInMaa
from atls_azure.validators import AciTokenValidator, cce_policy_hash
from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.clock import SystemClock
from atls_core.errors import ATLSVerificationError
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import Status
from atls_core.selection import select_validator
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer
from atls_core.tls import ATLSContext, result_of

CCE_POLICY = "package policy"


@pytest.fixture
def server(maa: StandInMaa) -> Iterator[tuple[HTTPSServer, AciCertificates]]:
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    certificates = AciCertificates(issuer, hostnames=("localhost", "127.0.0.1"))
    with HTTPSServer(certificates.server_context()) as https:
        yield https, certificates


def _get(context: ssl.SSLContext, port: int) -> tuple[bytes, Any]:
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        tls.sendall(b"GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        return data, result_of(tls)


def test_handshake_with_selected_validator(
    maa: StandInMaa, server: tuple[HTTPSServer, AciCertificates]
) -> None:
    https, certificates = server
    selected = select_validator(
        "azure.aci",
        settings=maa.settings(),
        policy=Policy(options={"cce_policies": [CCE_POLICY]}),
        allow_insecure=True,
    )
    data, result = _get(ATLSContext.for_validator(selected), https.port)
    assert data.split(b"\r\n", 1)[0].endswith(b" 200 OK")
    assert result is not None
    assert result.accepted
    # The stand-in's keys came over http on loopback: a tests-only knob, named in the result.
    assert result.status is Status.WARNING
    assert list(result.claims["test_knobs"]) == ["allow_http_loopback"]
    assert result.binding.freshness.value == "nonce"
    assert result.measurements["hostdata"] == cce_policy_hash(CCE_POLICY)
    assert certificates.minted >= 1, "the nonce in SNI got its own certificate and token"


def test_handshake_with_seed_style_validator(
    maa: StandInMaa, server: tuple[HTTPSServer, AciCertificates]
) -> None:
    https, _certificates = server
    validator = maa.aci_validator([CCE_POLICY])
    data, result = _get(ATLSContext(validator=validator), https.port)
    assert data.split(b"\r\n", 1)[0].endswith(b" 200 OK")
    assert result is not None
    assert result.accepted


def test_handshake_refused_for_debuggable_container(
    maa: StandInMaa, server: tuple[HTTPSServer, AciCertificates]
) -> None:
    https, _certificates = server
    maa.aci_overrides = {"x-ms-sevsnpvm-is-debuggable": True}
    selected = select_validator(
        "azure.aci",
        settings=maa.settings(),
        policy=Policy(options={"hostdata": [cce_policy_hash(CCE_POLICY)]}),
        allow_insecure=True,
    )
    with pytest.raises(ssl.SSLCertVerificationError) as info:
        _get(ATLSContext.for_validator(selected), https.port)
    assert isinstance(info.value, ATLSVerificationError)
    assert info.value.check == "debug"


def test_handshake_refused_for_untrusted_maa(
    server: tuple[HTTPSServer, AciCertificates],
) -> None:
    """The server's tokens come from an MAA instance the client does not trust."""
    https, _certificates = server
    with StandInMaa() as trusted, warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        validator = trusted.aci_validator()
        with pytest.raises(ATLSVerificationError) as info:
            _get(ATLSContext(validator=validator), https.port)
        assert info.value.check == "jwt.iss"
        assert trusted.requests == {}


def test_requests_adapter_with_seed_style_validator(
    maa: StandInMaa, server: tuple[HTTPSServer, AciCertificates]
) -> None:
    requests = pytest.importorskip("requests")
    from atls_core.requests_adapter import ATLSAdapter, attestation_result

    https, _certificates = server
    validator = maa.aci_validator([CCE_POLICY])
    with requests.Session() as session:
        session.mount("https://", ATLSAdapter(validator=validator))
        response = session.get(https.url(path="/hello"), timeout=10)
        assert response.status_code == 200
        assert response.json() == {"path": "/hello"}
        result = attestation_result(response)
        assert result is not None
        assert result.accepted
        assert result.verifier.validator == "azure.aci"


def test_core_attested_certificates_serve_aci_directly(maa: StandInMaa) -> None:
    """No plugin subclass needed: the core hands the key-bound issuer key and nonce."""
    issuer = AciIssuer({"sidecar_url": maa.url, "maa_endpoint": "127.0.0.1"})
    certificates = AttestedCertificates(issuer, hostnames=("localhost",))
    selected = select_validator(
        "azure.aci",
        settings=maa.settings(),
        policy=Policy(options={"cce_policies": [CCE_POLICY]}),
        allow_insecure=True,
    )
    with HTTPSServer(certificates.server_context()) as https:
        _data, result = _get(ATLSContext.for_validator(selected), https.port)
    assert result is not None
    assert result.accepted
    assert result.binding.freshness.value == "nonce"
    assert certificates.minted == 1


def test_seed_sni_form_gets_its_own_certificate(
    maa: StandInMaa, server: tuple[HTTPSServer, AciCertificates]
) -> None:
    """An opaque-systems client sent base64(nonce) as the server name; the alias accepts it."""
    https, certificates = server
    nonce = b.new_nonce()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    seed_name = base64.b64encode(nonce).decode()
    before = certificates.minted
    with (
        socket.create_connection(("127.0.0.1", https.port), timeout=10) as raw,
        client.wrap_socket(raw, server_hostname=seed_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    assert certificates.minted == before + 1
    validator = AciTokenValidator(maa.settings())
    peer = PeerCertificate.from_der(der)
    result = validator.appraise(
        validator.evidence_from_certificate(peer),
        binding=b.BindingContext(spki_der=peer.spki_der, nonce=nonce, certificate_der=der),
        clock=SystemClock(),
        policy=Policy(options={"cce_policies": [CCE_POLICY]}),
    )
    assert result.accepted, result.to_json()
    assert result.binding.freshness is b.Freshness.NONCE


# -- confidential VMs: a genuine token is not enough -----------------------------------

ATTACKER_VM_ID = "0F0E0D0C-0B0A-4908-8706-050403020100"
"""Another Azure customer's CVM: same paravisor, same MAA, its own VM ID."""


@contextlib.contextmanager
def _cvm_server(maa: StandInMaa, vm_id: str) -> Iterator[HTTPSServer]:
    certificates = AttestedCertificates(maa.cvm_issuer(vm_id=vm_id), hostnames=("localhost",))
    with HTTPSServer(certificates.server_context()) as https:
        yield https


@pytest.mark.parametrize(
    ("policy", "check"),
    [
        (Policy(), "workload.unpinned"),
        (
            Policy(
                reference_values={"vmid": ReferenceValue(accepted=[uuid.UUID(STAND_IN_VM_ID).hex])}
            ),
            "reference.vmid",
        ),
    ],
    ids=["nothing-pinned", "victim-pinned"],
)
def test_attackers_own_cvm_is_refused_before_any_application_byte(
    maa: StandInMaa, policy: Policy, check: str
) -> None:
    """The attacker rents a CVM: a genuine MAA token, bound to its own key and our nonce.

    0.1 accepted it with nothing pinned; the core's pinning rule refuses it, and
    a pin of the intended VM refuses it too.  Not one application byte leaves.
    """
    selected = select_validator(
        "azure.cvm", settings=maa.settings(), policy=policy, allow_insecure=True
    )
    with _cvm_server(maa, ATTACKER_VM_ID) as https:
        with pytest.raises(ATLSVerificationError) as info:
            _get(ATLSContext.for_validator(selected), https.port)
        assert https.wait_finished(1)
        assert https.handshakes == 1
        assert https.received == 0
    assert info.value.check == check
    result = info.value.result
    assert result is not None
    assert result.binding.verified, "everything but the workload identity held"
    assert result.binding.freshness is b.Freshness.NONCE
    assert result.measurements["vmid"] == uuid.UUID(ATTACKER_VM_ID).hex
    assert [f.check for f in result.failures] == [check]


def test_pinned_cvm_is_served(maa: StandInMaa) -> None:
    vm_id = uuid.UUID(STAND_IN_VM_ID).hex
    selected = select_validator(
        "azure.cvm",
        settings=maa.settings(),
        policy=Policy(reference_values={"vmid": vm_id}),
        allow_insecure=True,
    )
    with _cvm_server(maa, STAND_IN_VM_ID) as https:
        data, result = _get(ATLSContext.for_validator(selected), https.port)
    assert data.split(b"\r\n", 1)[0].endswith(b" 200 OK")
    assert result is not None
    assert result.accepted
    assert result.measurements["vmid"] == vm_id
    assert result.binding.freshness is b.Freshness.NONCE
