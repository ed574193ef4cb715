"""Server side: certificates that carry attestation evidence, and the challenge endpoint.

An :class:`Issuer` turns report data into evidence.  This module generates a
TLS key in memory, computes the report data the issuer's binding scheme
demands for that key (and the client's nonce, when there is one), asks the
issuer for evidence and writes it into a self-signed (or CA-signed)
certificate as an unrecognised X.509 extension.  A :class:`KeyBoundIssuer`
(a service such as MAA that hashes the key and nonce itself) receives the
key's SubjectPublicKeyInfo and the nonce instead of report data.

* **Static mode** (:meth:`AttestedCertificates.static`): one key and
  certificate at start-up with nonce-less report data ("key-only"
  freshness); :meth:`AttestedCertificate.write_files` writes it for servers
  that insist on paths (uvicorn's ``ssl_certfile``/``ssl_keyfile``).
* **Per-connection mode** (:meth:`AttestedCertificates.server_context` with
  ``per_connection=True``): an ``sni_callback`` reads the client's nonce from
  the SNI label, mints a fresh certificate bound to it and swaps the
  connection's context.

The standard library loads keys only from files, so each load goes through a
private 0600 temporary file that is removed at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import socket
import ssl
import tempfile
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Literal, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atls_core.binding import NONCE_SIZE, decode_sni, report_data_for
from atls_core.errors import ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, Transport
from atls_core.interfaces import IssuerSpec, KeyBoundIssuer, refuse_unknown_names

__all__ = [
    "AttestedCertificate",
    "select_issuer",
    "AttestedCertificates",
    "ChallengeASGIMiddleware",
    "ChallengeEndpoint",
    "ChallengeIssuer",
    "handle_challenge",
    "mint_certificate",
]

KeyType = Literal["p256", "p384"]
_CURVES: Mapping[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}
_HASHES: Mapping[str, hashes.SHA256 | hashes.SHA384] = {
    "p256": hashes.SHA256(),
    "p384": hashes.SHA384(),
}


def select_issuer(
    issuer_id: str,
    *,
    settings: Mapping[str, Any] | None = None,
    allow_insecure: bool = False,
    manager: Any = None,
) -> Any:
    """Build an installed plugin's issuer by id (the server-side twin of ``select_validator``).

    Unknown settings are refused, and an insecure (test) issuer only with
    ``allow_insecure``: a production server must not mint simulated evidence.
    """
    from atls_core.registry import default_manager

    spec, factory, _plugin = (manager or default_manager()).issuer_factory(issuer_id)
    if spec.insecure and not allow_insecure:
        raise ConfigurationError(
            f"{issuer_id} is an insecure test issuer; pass allow_insecure=True to use it",
            check="config.insecure",
        )
    given = dict(settings or {})
    refuse_unknown_names("settings", given, spec.settings, where=f"issuer {issuer_id}")
    return factory(given)


ChallengeIssuer = Any
"""An issuer whose ``issue`` also takes ``certificate_sha256=`` (challenge-v1)."""


@attrs.frozen(kw_only=True)
class AttestedCertificate:
    """A TLS key, its certificate and the evidence the certificate carries."""

    private_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    certificate: x509.Certificate
    evidence: Evidence | None
    nonce: bytes | None = None

    @property
    def certificate_der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def spki_der(self) -> bytes:
        return self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def sha256(self) -> bytes:
        return hashlib.sha256(self.certificate_der).digest()

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def write_files(self, directory: str | os.PathLike[str]) -> tuple[Path, Path]:
        """Write ``cert.pem`` and ``key.pem`` (0600, created exclusively-new) for uvicorn & co."""
        folder = Path(directory)
        cert_path, key_path = folder / "cert.pem", folder / "key.pem"
        cert_path.write_bytes(self.certificate_pem)
        if key_path.exists():
            key_path.unlink()
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(self.private_key_pem())
        return cert_path, key_path

    def server_context(self, *, alpn_protocols: Iterable[str] | None = None) -> ssl.SSLContext:
        """A TLS 1.2+ server context presenting this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.options |= ssl.OP_NO_RENEGOTIATION
        if alpn_protocols:
            context.set_alpn_protocols(list(alpn_protocols))
        self.load_into(context)
        return context

    def load_into(self, context: ssl.SSLContext) -> None:
        """``context.load_cert_chain`` through one private temporary file, removed at once."""
        fd, name = tempfile.mkstemp(prefix="atls-", suffix=".pem")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(self.private_key_pem() + self.certificate_pem)
            context.load_cert_chain(name)
        finally:
            os.unlink(name)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _alt_names(hostnames: Iterable[str]) -> list[x509.GeneralName]:
    import ipaddress

    names: list[x509.GeneralName] = []
    for host in hostnames:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _issue(issuer: Any, spki_der: bytes, nonce: bytes) -> Evidence:
    """Evidence for a certificate key: by key and nonce if the issuer can, else by report data."""
    if isinstance(issuer, KeyBoundIssuer):
        return issuer.issue_for_key(spki_der, nonce or None)
    report_data = report_data_for(issuer.spec.binding_scheme, spki_der=spki_der, nonce=nonce)
    evidence: Evidence = issuer.issue(report_data)
    return evidence


def _is_issuer(issuer: Any) -> bool:
    """``.spec`` plus ``.issue(report_data)`` or ``.issue_for_key(spki_der, nonce)``."""
    return hasattr(issuer, "spec") and (
        callable(getattr(issuer, "issue_for_key", None)) or callable(getattr(issuer, "issue", None))
    )


def mint_certificate(
    issuer: Any,
    *,
    nonce: bytes = b"",
    hostnames: Iterable[str] = ("localhost",),
    key_type: KeyType = "p256",
    lifetime: dt.timedelta = dt.timedelta(days=1),
    signer: tuple[x509.Certificate, Any] | None = None,
    private_key: ec.EllipticCurvePrivateKey | None = None,
    evidence: Evidence | None = None,
    now: dt.datetime | None = None,
) -> AttestedCertificate:
    """A fresh key and a certificate whose evidence binds that key (and ``nonce``).

    Certificate-transport issuers get their evidence in the extension
    ``issuer.spec.oid``.  Challenge-transport issuers get a plain certificate:
    their evidence is produced per challenge by :class:`ChallengeEndpoint`.
    ``signer=(ca_certificate, ca_private_key)`` signs with a CA instead of
    self-signing (PKI + attestation).  ``evidence=`` overrides what the issuer
    would produce (tests of a lying server use it).
    """
    if key_type not in _CURVES:
        raise ConfigurationError(
            "unsupported key type",
            check="server.key_type",
            expected=sorted(_CURVES),
            actual=key_type,
        )
    spec: IssuerSpec = issuer.spec
    key = private_key or ec.generate_private_key(_CURVES[key_type])
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    hosts = list(hostnames)
    now = now or dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(hosts[0] if hosts else "atls"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    )
    if hosts:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(_alt_names(hosts)), critical=False
        )
    if spec.transport is Transport.CERTIFICATE:
        if not spec.oid:
            raise ConfigurationError(
                f"issuer {spec.id} declares no certificate OID", check="server.issuer"
            )
        if evidence is None:
            evidence = _issue(issuer, spki, nonce)
        builder = builder.add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier(spec.oid), evidence.data),
            critical=False,
        )
    builder = builder.add_extension(
        x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
    )
    if signer is not None:
        ca_cert, ca_key = signer
        builder = builder.issuer_name(ca_cert.subject).add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(cast(Any, ca_cert.public_key())),
            critical=False,
        )
        signed = builder.sign(ca_key, hashes.SHA256())
    else:
        builder = builder.issuer_name(_name(hosts[0] if hosts else "atls"))
        signed = builder.sign(key, _HASHES[key_type])
    return AttestedCertificate(
        private_key=key, certificate=signed, evidence=evidence, nonce=nonce or None
    )


def _atls_sni_nonce(server_name: str | None) -> bytes | None:
    """The nonce an atls client put in SNI (:func:`atls_core.binding.encode_sni`)."""
    return decode_sni(server_name)[0]


class AttestedCertificates:
    """Certificates for one issuer: a static one, and per-connection ones on demand.

    ``nonce_from_sni`` reads the client's nonce from the server name; the
    default understands atls clients, a plugin may accept an older client's
    form too (anything but a :data:`~atls_core.binding.NONCE_SIZE` nonce is
    ignored and answered with the static certificate).
    """

    def __init__(
        self,
        issuer: Any,
        *,
        hostnames: Iterable[str] = ("localhost", "127.0.0.1"),
        key_type: KeyType = "p256",
        lifetime: dt.timedelta = dt.timedelta(days=1),
        alpn_protocols: Iterable[str] | None = None,
        signer: tuple[x509.Certificate, Any] | None = None,
        nonce_from_sni: Callable[[str | None], bytes | None] | None = None,
    ) -> None:
        if not _is_issuer(issuer):
            raise ConfigurationError(
                "an issuer needs .spec and .issue(report_data) or .issue_for_key(spki_der, nonce)",
                check="server.issuer",
            )
        self.issuer = issuer
        self.hostnames = tuple(hostnames)
        self.key_type: KeyType = key_type
        self.lifetime = lifetime
        self.alpn_protocols = tuple(alpn_protocols) if alpn_protocols else None
        self.signer = signer
        self._nonce_from_sni = nonce_from_sni or _atls_sni_nonce
        self._static: AttestedCertificate | None = None
        self._lock = threading.Lock()
        self.minted = 0
        """Per-connection certificates minted so far (for operators and tests)."""

    @property
    def spec(self) -> IssuerSpec:
        spec: IssuerSpec = self.issuer.spec
        return spec

    def static(self) -> AttestedCertificate:
        """The start-up certificate: nonce-less report data, key-only freshness."""
        with self._lock:
            if self._static is None:
                self._static = self.mint(b"")
            return self._static

    def mint(self, nonce: bytes) -> AttestedCertificate:
        return mint_certificate(
            self.issuer,
            nonce=nonce,
            hostnames=self.hostnames,
            key_type=self.key_type,
            lifetime=self.lifetime,
            signer=self.signer,
        )

    def _base_context(self, certificate: AttestedCertificate) -> ssl.SSLContext:
        return certificate.server_context(alpn_protocols=self.alpn_protocols)

    def server_context(self, *, per_connection: bool = True) -> ssl.SSLContext:
        """A server ``SSLContext`` presenting attested certificates.

        With ``per_connection`` a client that sends a nonce in SNI gets a
        certificate minted for that nonce; other clients get the static one.
        """
        context = self._base_context(self.static())
        if per_connection and self.spec.transport is Transport.CERTIFICATE:
            context.sni_callback = self.sni_callback
        return context

    def sni_callback(
        self, connection: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _ctx: Any
    ) -> int | None:
        """``SSLContext.sni_callback``: mint a certificate for the nonce in SNI.

        Attach it to any server context that presents :meth:`static` (uvicorn:
        ``config.load(); config.ssl.sni_callback = certificates.sni_callback``).
        """
        nonce = self._nonce_from_sni(server_name)
        if nonce is None or len(nonce) != NONCE_SIZE:
            return None  # not an atls client: the static certificate answers
        try:
            minted = self.mint(nonce)
            connection.context = self._base_context(minted)
        except Exception:
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        with self._lock:
            self.minted += 1
        return None


# --- challenge endpoint ---------------------------------------------------------


def _nonce_from_json(body: bytes) -> bytes:
    """The default challenge body: ``{"nonce": "<hex>"}`` (the simulated TEE's format)."""
    try:
        document = json.loads(body)
        nonce = bytes.fromhex(document["nonce"])
    except (ValueError, KeyError, TypeError):
        raise MalformedEvidence(
            "challenge body carries no hex nonce", check="challenge.request"
        ) from None
    if not 16 <= len(nonce) <= 64:
        raise MalformedEvidence(
            "challenge nonce has an unexpected length", check="challenge.request", actual=len(nonce)
        )
    return nonce


class ChallengeEndpoint:
    """Answers a challenge-style validator's request with fresh evidence.

    ``certificate`` is the server's TLS certificate (DER); the evidence binds
    it by digest (``challenge-v1``) together with the client's nonce.
    """

    def __init__(
        self,
        issuer: ChallengeIssuer,
        *,
        certificate_der: bytes,
        path: str,
        method: str = "POST",
        nonce_from_body: Callable[[bytes], bytes] = _nonce_from_json,
        max_body: int = 4096,
    ) -> None:
        if not hasattr(issuer, "spec") or not callable(getattr(issuer, "issue", None)):
            raise ConfigurationError(
                "a challenge issuer needs .spec and .issue(report_data, certificate_sha256=)",
                check="server.issuer",
            )
        self.issuer = issuer
        self.certificate_der = certificate_der
        self.path = path
        self.method = method.upper()
        self._nonce_from_body = nonce_from_body
        self.max_body = max_body
        self.answered = 0

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and path.split("?", 1)[0] == self.path

    def answer(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for one challenge request."""
        if len(body) > self.max_body:
            return 413, {"Content-Type": "text/plain"}, b"challenge body too large\n"
        try:
            nonce = self._nonce_from_body(body)
        except MalformedEvidence as error:
            return 400, {"Content-Type": "text/plain"}, f"{error}\n".encode()
        spec: IssuerSpec = self.issuer.spec
        spki = (
            x509.load_der_x509_certificate(self.certificate_der)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        report_data = report_data_for(spec.binding_scheme, spki_der=spki, nonce=nonce)
        digest = hashlib.sha256(self.certificate_der).digest()
        evidence: Evidence = self.issuer.issue(report_data, certificate_sha256=digest)
        self.answered += 1
        return 200, {"Content-Type": evidence.media_type}, evidence.data


def handle_challenge(handler: BaseHTTPRequestHandler, endpoint: ChallengeEndpoint) -> bool:
    """For ``http.server`` handlers: answer and return True if this request was the challenge."""
    if not endpoint.matches(handler.command, handler.path):
        return False
    # Headers and body leave in two writes: do not let Nagle hold back the second.
    with contextlib.suppress(OSError, AttributeError):
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    length_text = handler.headers.get("Content-Length", "0")
    length = int(length_text) if length_text.isdigit() else -1
    if length < 0 or length > endpoint.max_body:
        status, headers, body = 413, {"Content-Type": "text/plain"}, b"bad challenge length\n"
        handler.close_connection = True
    else:
        status, headers, body = endpoint.answer(handler.rfile.read(length))
    handler.send_response(status)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)
    return True


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ChallengeASGIMiddleware:
    """ASGI middleware (uvicorn, starlette): serves the challenge path, passes the rest on."""

    def __init__(self, app: ASGIApp, endpoint: ChallengeEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http" or not self.endpoint.matches(
            str(scope.get("method", "")), str(scope.get("path", ""))
        ):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.endpoint.max_body:
                break
            if not message.get("more_body", False):
                break
        status, headers, payload = self.endpoint.answer(bytes(body))
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})
