"""Server ``SSLContext``\\ s loaded from memory, and a new certificate for a key already loaded.

The standard library loads keys and certificates only from paths, and only
together (``load_cert_chain``).  :func:`load_pem_chain` hands OpenSSL the PEM
through an anonymous memory file instead of a named one.

Per-connection certificates all carry the same session key, and with
OpenSSL 3.0 decoding that key is most of what loading costs (about half a
plain handshake).  :func:`present_certificate` installs only the certificate:
OpenSSL sets the chain first and, when the context already holds the private
key that matches it, keeps that key (``SSL_CTX_use_certificate``); the key
file named after it cannot exist, so loading stops there with ``ENOTDIR``.
One context per key then serves every connection in turn: a connection that
takes a context (``SSLSocket.context = ...``, ``SSL_set_SSL_CTX``) gets its
own copy of the context's certificate and key, so the next swap does not
touch it.  Both behaviours are proven once per process by
:func:`certificate_swap_works`, with two in-memory handshakes, before a
server relies on them; a swap that went wrong shows a certificate minted for
another nonce, or the placeholder with empty evidence, and every client
refuses both.
"""

from __future__ import annotations

import contextlib
import functools
import os
import ssl
import tempfile
from collections.abc import Iterable, Iterator

__all__ = [
    "CertificateSwapFailed",
    "bare_server_context",
    "certificate_swap_works",
    "load_pem_chain",
    "pem_server_context",
    "present_certificate",
]

_PROC_FD = "/proc/self/fd"


def bare_server_context(alpn_protocols: Iterable[str] | None) -> ssl.SSLContext:
    """TLS 1.2+, no renegotiation, no certificate yet."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_RENEGOTIATION
    if alpn_protocols:
        context.set_alpn_protocols(list(alpn_protocols))
    return context


def _memory_file(data: bytes) -> int | None:
    """An anonymous 0600 memory file holding ``data`` (Linux ``memfd``), or None."""
    if not hasattr(os, "memfd_create") or not os.path.isdir(_PROC_FD):
        return None
    try:
        fd = os.memfd_create("atls-key", os.MFD_CLOEXEC)
    except OSError:
        return None
    try:
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    except BaseException:
        os.close(fd)
        raise
    return fd


def load_pem_chain(context: ssl.SSLContext, pem: bytes) -> None:
    """``context.load_cert_chain`` for a PEM key and chain held in memory.

    The bytes go to an anonymous memory file, opened by OpenSSL through
    ``/proc/self/fd`` and closed at once: no name in any directory, nothing on a
    persistent disk.  Without ``memfd`` (not Linux), a private 0600 temporary
    file, removed at once.
    """
    _load(context, pem, certificate_only=False)


def pem_server_context(pem: bytes, alpn_protocols: Iterable[str] | None = None) -> ssl.SSLContext:
    """A :func:`bare_server_context` holding the PEM key and chain ``pem``."""
    context = bare_server_context(alpn_protocols)
    load_pem_chain(context, pem)
    return context


def _load(context: ssl.SSLContext, pem: bytes, *, certificate_only: bool) -> None:
    """:func:`load_pem_chain`; ``certificate_only`` names a key file below the PEM file,
    which cannot exist (see :func:`present_certificate`)."""
    with _pem_file(pem) as path:
        context.load_cert_chain(path, f"{path}/key" if certificate_only else None)


@contextlib.contextmanager
def _pem_file(pem: bytes) -> Iterator[str]:
    """A path OpenSSL can open that holds ``pem``, for as long as the block runs."""
    fd = _memory_file(pem)
    if fd is not None:
        try:
            yield f"{_PROC_FD}/{fd}"
        finally:
            os.close(fd)
        return
    fd, name = tempfile.mkstemp(prefix="atls-", suffix=".pem")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        yield name
    finally:
        os.unlink(name)


class CertificateSwapFailed(RuntimeError):
    """OpenSSL did not take the certificate alone (see :func:`present_certificate`)."""


def present_certificate(context: ssl.SSLContext, certificate_pem: bytes) -> None:
    """Make ``context`` present ``certificate_pem``, a certificate for the key it holds.

    Only the certificate is decoded.  The key file is a path below the
    certificate file, which is not a directory: the chain is in place when
    that path fails with ``ENOTDIR``; any other outcome raises
    :class:`CertificateSwapFailed`.  A certificate for another key makes
    OpenSSL drop the key it held, and the context then completes no handshake.
    """
    try:
        _load(context, certificate_pem, certificate_only=True)
    except NotADirectoryError:  # the chain is in; ssl.SSLError is never this
        return
    except OSError as error:
        raise CertificateSwapFailed(f"the certificate was not loaded: {error!r}") from error
    raise CertificateSwapFailed("a key was read where none can exist")


@functools.cache
def certificate_swap_works() -> bool:
    """Whether one context can serve each connection its own certificate, here.

    Proven once per process, in memory: a context holding a throwaway key gets
    a certificate swapped in and is taken by a first connection, then gets a
    second certificate and is taken by a second connection.  Each client must
    be shown the certificate the context held when its connection took it: that
    is :func:`present_certificate` working, and OpenSSL copying the certificate
    into the connection (``SSL_set_SSL_CTX``) rather than reading the context
    later.
    """
    from cryptography.hazmat.primitives.asymmetric import ec

    from atls_core.self_signed import private_key_pem, self_signed_certificate

    key = ec.generate_private_key(ec.SECP256R1())
    placeholder, first, second = (self_signed_certificate(key, serial=n) for n in (1, 2, 3))
    listening = bare_server_context(None)
    try:
        shared = pem_server_context(private_key_pem(key) + _pem(placeholder))
        handshakes = []
        for certificate in (first, second):
            present_certificate(shared, _pem(certificate))
            handshake = _MemoryHandshake(listening)
            handshake.server.context = shared
            handshakes.append(handshake)
        shown = [handshake.complete() for handshake in handshakes]
    except (OSError, ssl.SSLError, CertificateSwapFailed):
        return False
    return shown == [first, second]


def _pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()


class _MemoryHandshake:
    """A client and a server connection joined by memory buffers."""

    def __init__(self, server_context: ssl.SSLContext) -> None:
        client_context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client_context.check_hostname = False
        client_context.verify_mode = ssl.CERT_NONE
        self._to_server, self._to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
        self._client_in, self._server_in = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.client = client_context.wrap_bio(
            self._client_in, self._to_server, server_hostname="localhost"
        )
        self.server = server_context.wrap_bio(self._server_in, self._to_client, server_side=True)

    def complete(self) -> bytes | None:
        """Run the handshake; the certificate the client was shown."""
        pending = [self.client, self.server]
        for _ in range(8):
            for side in list(pending):
                try:
                    side.do_handshake()
                    pending.remove(side)
                except ssl.SSLWantReadError:
                    pass
            self._server_in.write(self._to_server.read())
            self._client_in.write(self._to_client.read())
            if not pending:
                return self.client.getpeercert(binary_form=True)
        return None
