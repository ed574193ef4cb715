"""PKI + appraisal (host rules with ``pki = true``), with a trustme test CA."""

from __future__ import annotations

import ssl

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, tls_connect
from atls_core.tls import ATLSContext


def _signer(ca: trustme.CA) -> tuple[x509.Certificate, object]:
    certificate = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    return certificate, key


def _context(tee: SimulatedTEE, ca: trustme.CA, host: str = "localhost") -> ATLSContext:
    config = ATLSConfig.from_mapping(tee.config_mapping(host, pki=True))
    return ATLSContext(config, pki_cadata=ca.cert_pem.bytes())


def test_ca_signed_attested_certificate_passes_both(tee: SimulatedTEE, ca: trustme.CA) -> None:
    certificates = AttestedCertificates(tee.issuer, hostnames=("localhost",), signer=_signer(ca))
    with (
        HTTPSServer(certificates.server_context()) as server,
        tls_connect(_context(tee, ca), server.port, "localhost") as s,
    ):
        assert s.attestation_result is not None
        assert s.attestation_result.accepted


def test_self_signed_attested_certificate_fails_pki(tee: SimulatedTEE, ca: trustme.CA) -> None:
    certificates = AttestedCertificates(tee.issuer, hostnames=("localhost",))
    with (
        HTTPSServer(certificates.server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(_context(tee, ca), server.port, "localhost")
    assert caught.value.check == "tls.pki"


def test_trustme_leaf_is_held_to_the_web_pki_profile(tee: SimulatedTEE, ca: trustme.CA) -> None:
    """trustme writes a critical subjectAltName next to a subject: strict profiles refuse it."""
    leaf = ca.issue_cert("localhost")
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    leaf.configure_cert(server_context)
    with HTTPSServer(server_context) as server, pytest.raises(ATLSVerificationError) as caught:
        tls_connect(_context(tee, ca), server.port, "localhost")
    assert caught.value.check == "tls.pki"


def test_wrong_host_name_fails_pki(tee: SimulatedTEE, ca: trustme.CA) -> None:
    certificates = AttestedCertificates(tee.issuer, hostnames=("other.test",), signer=_signer(ca))
    with (
        HTTPSServer(certificates.server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(_context(tee, ca), server.port, "localhost")
    assert caught.value.check == "tls.pki"


def test_pki_valid_certificate_without_evidence_fails_appraisal(
    tee: SimulatedTEE, ca: trustme.CA
) -> None:
    # A CA-signed certificate that carries no evidence (the challenge issuer mints plain ones).
    plain = AttestedCertificates(tee.challenge_issuer, hostnames=("localhost",), signer=_signer(ca))
    with (
        HTTPSServer(plain.static().server_context()) as server,
        pytest.raises(ATLSVerificationError) as caught,
    ):
        tls_connect(_context(tee, ca), server.port, "localhost")
    assert caught.value.check == "evidence.extension"


def test_pki_with_challenge_transport(tee: SimulatedTEE, ca: trustme.CA) -> None:
    from atls_core.server import ChallengeEndpoint
    from atls_core.testing.simulated import CHALLENGE_PATH

    plain = AttestedCertificates(tee.challenge_issuer, hostnames=("localhost",), signer=_signer(ca))
    static = plain.static()
    server_context = static.server_context()
    endpoint = ChallengeEndpoint(
        tee.challenge_issuer, certificate_der=static.certificate_der, path=CHALLENGE_PATH
    )
    config = ATLSConfig.from_mapping(tee.config_mapping("localhost", challenge=True, pki=True))
    context = ATLSContext(config, pki_cadata=ca.cert_pem.bytes())
    with (
        HTTPSServer(server_context, challenge=endpoint) as server,
        tls_connect(context, server.port, "localhost") as s,
    ):
        assert s.attestation_result is not None
        assert s.attestation_result.binding.scheme == "challenge-v1"
        # PKI mode sends the plain host name in SNI (no nonce label for challenges).
        assert s.server_hostname == "localhost"
