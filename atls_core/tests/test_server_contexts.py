"""Certificates swapped into a context that already holds their key (per-connection minting)."""

from __future__ import annotations

import socket
import ssl
import threading

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.self_signed import private_key_pem, self_signed_certificate
from atls_core.server_contexts import (
    CertificateSwapFailed,
    bare_server_context,
    certificate_swap_works,
    pem_server_context,
    present_certificate,
)


def _pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()


def _loaded(key: ec.EllipticCurvePrivateKey, certificate: bytes) -> ssl.SSLContext:
    return pem_server_context(private_key_pem(key) + _pem(certificate))


def _shown(context: ssl.SSLContext) -> bytes | None:
    """The certificate a client is shown over a socket pair (the handshake must complete)."""
    server_end, client_end = socket.socketpair()
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    client.check_hostname = False
    client.verify_mode = ssl.CERT_NONE
    failures: list[BaseException] = []

    def serve() -> None:
        try:
            with context.wrap_socket(server_end, server_side=True) as tls:
                tls.recv(1)
        except (OSError, ssl.SSLError) as error:
            failures.append(error)

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with client.wrap_socket(client_end, server_hostname="localhost") as tls:
            shown = tls.getpeercert(binary_form=True)
            tls.sendall(b"x")
    finally:
        thread.join(10)
    assert not failures
    return shown


def test_the_swap_is_proven_to_work_here() -> None:
    assert certificate_swap_works() is True


def test_a_swapped_certificate_is_what_clients_see_and_the_key_signs_for_it() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first, second = (self_signed_certificate(key, serial=serial) for serial in (1, 2))
    context = _loaded(key, first)
    assert _shown(context) == first
    present_certificate(context, _pem(second))
    assert _shown(context) == second


def test_a_certificate_for_another_key_leaves_a_context_that_completes_no_handshake() -> None:
    """OpenSSL drops the key the context held: nothing is signed with a key it does not match."""
    key, other = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    context = _loaded(key, self_signed_certificate(key))
    present_certificate(context, _pem(self_signed_certificate(other)))
    with pytest.raises((ssl.SSLError, OSError, AssertionError)):
        _shown(context)


@pytest.mark.parametrize("pem", [b"", b"not a certificate", b"-----BEGIN CERTIFICATE-----\n"])
def test_a_certificate_openssl_cannot_read_is_a_failed_swap(pem: bytes) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    first = self_signed_certificate(key)
    context = _loaded(key, first)
    with pytest.raises(CertificateSwapFailed):
        present_certificate(context, pem)
    assert _shown(context) == first  # untouched


def test_the_proof_fails_when_a_swap_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check is a real handshake: a swap that installs nothing is caught."""
    import atls_core.server_contexts as server_contexts

    monkeypatch.setattr(server_contexts, "present_certificate", lambda _context, _pem: None)
    assert server_contexts.certificate_swap_works.__wrapped__() is False


def test_one_context_serves_connection_after_connection_from_the_sni_callback() -> None:
    """As the server uses it: swapped and taken inside the callback, once per connection."""
    key = ec.generate_private_key(ec.SECP256R1())
    placeholder, first, second = (self_signed_certificate(key, serial=n) for n in (1, 2, 3))
    shared = _loaded(key, placeholder)
    listening = bare_server_context(None)
    queue = [first, second]

    def take(connection: ssl.SSLSocket | ssl.SSLObject, _name: str | None, _c: object) -> None:
        present_certificate(shared, _pem(queue.pop(0)))
        connection.context = shared

    listening.sni_callback = take
    assert _shown(listening) == first
    assert _shown(listening) == second
