"""Server-side issuance: attested certificates, files, keys loaded from memory, the challenge endpoint."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import ssl
import stat
import tempfile

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import server as atls_server
from atls_core.binding import encode_sni, report_data_for
from atls_core.certificate import PeerCertificate
from atls_core.errors import ConfigurationError
from atls_core.server import (
    AttestedCertificates,
    ChallengeEndpoint,
    mint_certificate,
    select_issuer,
)
from atls_core.server_contexts import present_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
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


def _spy_on_key_loading(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str, object]]:
    """(path, mode, link target, keyfile) of every ``load_cert_chain``, as it reads."""
    seen: list[tuple[str, int, str, object]] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: object = None, *args: object) -> None:
        target = os.readlink(certfile) if os.path.islink(certfile) else certfile
        seen.append((certfile, stat.S_IMODE(os.stat(certfile).st_mode), target, keyfile))
        original(self, certfile, keyfile, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    return seen


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="memfd is Linux-only")
def test_keys_reach_openssl_through_private_memory_only(
    tee: SimulatedTEE, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Static and per-connection keys: an anonymous 0600 memory file, no name on any disk;
    a per-connection certificate reaches a context that holds the key already, alone."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    seen = _spy_on_key_loading(monkeypatch)
    certificates = tee.certificates()
    with HTTPSServer(certificates.server_context()) as server:
        _peer_certificate(server.port, encode_sni(os.urandom(32), "h"))
    assert len(seen) >= 3  # the static key, the session key, the minted certificate
    for path, mode, target, _keyfile in seen:
        assert path.startswith("/proc/self/fd/")
        assert target.startswith("/memfd:atls-key")
        assert mode == 0o600
    assert any(keyfile == f"{path}/key" for path, _mode, _target, keyfile in seen)
    assert os.listdir(tmp_path) == []


def test_key_temp_file_without_memfd_is_private_and_removed(
    tee: SimulatedTEE, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*_args: object) -> int:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(os, "memfd_create", unavailable, raising=False)
    seen = _spy_on_key_loading(monkeypatch)
    static = tee.certificates().static()
    context = static.server_context()
    again = mint_certificate(tee.issuer, private_key=static.private_key)
    present_certificate(context, again.certificate_pem)  # alone, by the same kind of file
    assert [(os.path.dirname(path), mode) for path, mode, _, _ in seen] == [
        (str(tmp_path), 0o600)
    ] * 2
    assert seen[1][3] == f"{seen[1][0]}/key"
    assert os.listdir(tmp_path) == []
    with HTTPSServer(context) as server:
        assert _peer_certificate(server.port, "localhost") == again.certificate


def _peer_certificate(port: int, server_name: str) -> x509.Certificate:
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    with (
        socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
        client.wrap_socket(raw, server_hostname=server_name) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


@pytest.mark.parametrize("signer", ["self", "ecdsa-ca", "rsa-ca"])
def test_per_connection_certificates_are_well_formed(tee: SimulatedTEE, signer: str) -> None:
    """What the pre-encoded template writes is what ``mint_certificate`` writes, signed."""
    ca = (
        None
        if signer == "self"
        else trustme.CA(
            key_type=trustme.KeyType.RSA if signer == "rsa-ca" else trustme.KeyType.ECDSA
        )
    )
    signing = (
        (
            x509.load_pem_x509_certificate(ca.cert_pem.bytes()),
            serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None),
        )
        if ca
        else None
    )
    certificates = tee.certificates(hostnames=("localhost", "127.0.0.1"), signer=signing)
    nonce = os.urandom(32)
    with HTTPSServer(certificates.server_context()) as server:
        minted = _peer_certificate(server.port, encode_sni(nonce, "localhost"))
        static = _peer_certificate(server.port, "localhost")
    assert certificates.minted == 1
    minted.verify_directly_issued_by(signing[0] if signing else minted)
    assert minted.issuer == static.issuer
    assert minted.subject == static.subject
    for kind in (
        x509.BasicConstraints,
        x509.ExtendedKeyUsage,
        x509.SubjectAlternativeName,
        x509.SubjectKeyIdentifier,
    ):
        assert minted.extensions.get_extension_for_class(kind) == (
            static.extensions.get_extension_for_class(kind)
            if kind is not x509.SubjectKeyIdentifier
            else x509.Extension(
                kind.oid,
                False,
                x509.SubjectKeyIdentifier.from_public_key(minted.public_key()),
            )
        )
    assert minted.extensions.get_extension_for_class(x509.BasicConstraints).critical
    peer = PeerCertificate.from_der(minted.public_bytes(serialization.Encoding.DER))
    evidence = peer.extension(OID)
    assert evidence is not None
    assert _report_data(evidence) == report_data_for("atls-v1", spki_der=peer.spki_der, nonce=nonce)
    assert minted.not_valid_before_utc <= dt.datetime.now(dt.UTC) <= minted.not_valid_after_utc
    assert minted.serial_number > 0


def test_sni_callback_mints_per_nonce_and_falls_back_to_static(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()

    class Connection:
        context: ssl.SSLContext | None = None

        def presented(self) -> ssl.SSLContext | None:
            return self.context

    connection = Connection()
    assert certificates.sni_callback(connection, "localhost", None) is None  # type: ignore[arg-type]
    assert connection.presented() is None
    assert certificates.minted == 0
    assert certificates.sni_callback(connection, encode_sni(os.urandom(32), "h"), None) is None  # type: ignore[arg-type]
    assert isinstance(connection.presented(), ssl.SSLContext)
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


def test_without_certificate_swapping_each_certificate_is_loaded_with_its_key(
    tee: SimulatedTEE, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the one-time check fails, a minted certificate is loaded the full way."""
    monkeypatch.setattr(atls_server, "certificate_swap_works", lambda: False)
    seen = _spy_on_key_loading(monkeypatch)
    certificates = tee.certificates()
    nonce = os.urandom(32)
    with HTTPSServer(certificates.server_context()) as server:
        shown = _peer_certificate(server.port, encode_sni(nonce, "h"))
    assert certificates.minted == 1
    assert shown.extensions.get_extension_for_oid(x509.ObjectIdentifier(OID)) is not None
    assert all(keyfile is None for *_, keyfile in seen)
