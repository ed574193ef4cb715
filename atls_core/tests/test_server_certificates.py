"""Server-side issuance: attested certificates, files, temporary key files, the challenge endpoint."""

from __future__ import annotations

import json
import os
import stat
import tempfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import encode_sni, report_data_for
from atls_core.certificate import PeerCertificate
from atls_core.errors import ConfigurationError
from atls_core.server import (
    AttestedCertificates,
    ChallengeEndpoint,
    mint_certificate,
    select_issuer,
)
from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.simulated import CHALLENGE_PATH, OID


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    return SimulatedTEE()


def _report_data(evidence_data: bytes) -> bytes:
    import base64

    payload = json.loads(base64.b64decode(json.loads(evidence_data)["payload"]))
    return bytes.fromhex(payload["report_data"])


def test_static_certificate_carries_key_only_evidence(tee: SimulatedTEE) -> None:
    static = tee.certificates().static()
    peer = PeerCertificate.from_der(static.certificate_der)
    assert static.evidence is not None
    assert peer.extension(OID) == static.evidence.data
    assert peer.spki_der == static.spki_der
    assert _report_data(static.evidence.data) == report_data_for(
        "atls-v1", spki_der=static.spki_der, nonce=b""
    )
    san = static.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "localhost" in san.value.get_values_for_type(x509.DNSName)


def test_nonce_certificate_and_p384(tee: SimulatedTEE) -> None:
    nonce = os.urandom(32)
    minted = mint_certificate(tee.issuer, nonce=nonce, key_type="p384")
    assert isinstance(minted.private_key.curve, ec.SECP384R1)
    assert minted.evidence is not None
    assert _report_data(minted.evidence.data) == report_data_for(
        "atls-v1", spki_der=minted.spki_der, nonce=nonce
    )
    with pytest.raises(ConfigurationError):
        mint_certificate(tee.issuer, key_type="rsa")  # type: ignore[arg-type]


def test_challenge_issuer_gets_a_plain_certificate(tee: SimulatedTEE) -> None:
    minted = mint_certificate(tee.challenge_issuer)
    assert minted.evidence is None
    assert PeerCertificate.from_der(minted.certificate_der).extension(OID) is None


def test_write_files_for_uvicorn(tee: SimulatedTEE, tmp_path: os.PathLike[str]) -> None:
    static = tee.certificates().static()
    cert_path, key_path = static.write_files(tmp_path)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == static.certificate
    static.write_files(tmp_path)  # rewriting replaces, still 0600
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600


def test_key_temp_file_is_private_and_removed(
    tee: SimulatedTEE, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen: list[int] = []
    import ssl

    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, *args: object, **kwargs: object) -> None:
        seen.append(stat.S_IMODE(os.stat(certfile).st_mode))
        original(self, certfile, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    tee.certificates().server_context()
    assert seen == [0o600]
    assert os.listdir(tmp_path) == []


def test_sni_callback_mints_per_nonce_and_falls_back_to_static(tee: SimulatedTEE) -> None:
    import ssl

    certificates = tee.certificates()

    class Connection:
        context: ssl.SSLContext | None = None

    connection = Connection()
    assert certificates.sni_callback(connection, "localhost", None) is None  # type: ignore[arg-type]
    assert connection.context is None
    assert certificates.minted == 0
    assert certificates.sni_callback(connection, encode_sni(os.urandom(32), "h"), None) is None  # type: ignore[arg-type]
    assert isinstance(connection.context, ssl.SSLContext)
    assert certificates.minted == 1


def test_issuer_shape_is_checked() -> None:
    with pytest.raises(ConfigurationError):
        AttestedCertificates(object())


def test_challenge_endpoint_answers_and_refuses(tee: SimulatedTEE) -> None:
    static = mint_certificate(tee.challenge_issuer)
    endpoint = ChallengeEndpoint(
        tee.challenge_issuer, certificate_der=static.certificate_der, path=CHALLENGE_PATH
    )
    assert endpoint.matches("post", CHALLENGE_PATH)
    assert not endpoint.matches("GET", CHALLENGE_PATH)
    nonce = os.urandom(32)
    status, headers, body = endpoint.answer(json.dumps({"nonce": nonce.hex()}).encode())
    assert status == 200
    assert headers["Content-Type"].startswith("application/vnd.atls")
    assert _report_data(body) == report_data_for(
        "challenge-v1", spki_der=static.spki_der, nonce=nonce
    )
    assert endpoint.answer(b"not json")[0] == 400
    assert endpoint.answer(json.dumps({"nonce": "00"}).encode())[0] == 400
    assert endpoint.answer(b"x" * 10000)[0] == 413


def test_select_issuer_by_id(tee: SimulatedTEE) -> None:
    settings = tee.hardware.issuer_settings()
    with pytest.raises(ConfigurationError) as caught:
        select_issuer("insecure.simulated", settings=settings)
    assert caught.value.check == "config.insecure"
    with pytest.raises(ConfigurationError) as caught:
        select_issuer("insecure.simulated", settings={**settings, "bogus": 1}, allow_insecure=True)
    assert caught.value.check == "config.settings"
    issuer = select_issuer("insecure.simulated", settings=settings, allow_insecure=True)
    static = AttestedCertificates(issuer).static()
    assert PeerCertificate.from_der(static.certificate_der).extension(OID) is not None
