"""Server side: certificates that carry attestation evidence.

(The challenge transport's endpoint is :mod:`atls_core.challenge_endpoint`; its names
are importable from here as well.)

An :class:`Issuer` turns report data into evidence.  This module computes the
report data the issuer's binding scheme demands for a TLS key (and the
client's nonce, when there is one), asks the issuer for evidence and writes it
into a self-signed (or CA-signed) certificate as an unrecognised X.509
extension.  A :class:`KeyBoundIssuer` (a service such as MAA that hashes the
key and nonce itself) receives the key's SubjectPublicKeyInfo and the nonce
instead of report data.

* **Static mode** (:meth:`AttestedCertificates.static`): one key and
  certificate at start-up with nonce-less report data ("key-only"
  freshness); :meth:`AttestedCertificate.write_files` writes it for servers
  that insist on paths (uvicorn's ``ssl_certfile``/``ssl_keyfile``).
* **Per-connection mode** (:meth:`AttestedCertificates.server_context` with
  ``per_connection=True``): an ``sni_callback`` reads the client's nonce from
  the SNI label, mints a certificate bound to it and swaps the connection's
  context, inside the ClientHello processing: no extra round trip.

Per-connection work is only what freshness needs: the evidence and one
certificate.  The certificates share one key pair, the *session key*, made in
memory and replaced every ``key_rotation``.  Sharing keeps the binding sound:
the report data (atls-v1) hashes the SubjectPublicKeyInfo together with the
nonce, so evidence minted for one nonce fails every other client's binding
check, and the handshake itself proves possession of the private key the
evidence names.  (A scheme that binds the key alone gives key-only freshness
with a shared key as with a fresh one, and the client reports it so.)  What
sharing changes is the worth of a stolen key: its holder
could relay a victim's nonce to the real server and present the certificate
it gets back, until the key rotates.  So the session key never leaves the
process: it is not the static certificate's key (which ``write_files`` may
put on disk), and it reaches OpenSSL only through an anonymous, 0600 memory
file (``memfd``) closed right after loading; where there is none, a private
0600 temporary file removed at once (the standard library loads keys only
from paths).

A client that repeats a nonce within a few seconds gets the context minted for
that nonce again, without a new issuer call.  That is safe: the evidence was
produced after the nonce was first sent, binds exactly that nonce and key, and
is what a new issuance would say; only an identical nonce matches, so no
certificate ever answers for another nonce.

Issuance is bounded (:mod:`atls_core.issuance_limits`): a cap on issuer calls
in flight, a global and a per-client rate, and a deadline on every issuer
call; a handshake over a limit is refused with a TLS alert (at once, or when
its deadline passes) and a line on the ``atls.server`` log.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import hashlib
import os
import secrets
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, cast

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from atls_core.binding import NONCE_SIZE, decode_sni, report_data_for
from atls_core.certificate import read_tlv
from atls_core.challenge_endpoint import (
    ChallengeASGIMiddleware,
    ChallengeEndpoint,
    ChallengeIssuer,
    handle_challenge,
)
from atls_core.der import tlv
from atls_core.errors import ConfigurationError, IssuanceRefused
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import IssuerSpec, KeyBoundIssuer, refuse_unknown_names
from atls_core.issuance_limits import (
    DEFAULT_ISSUANCE_RATE,
    DEFAULT_PER_CLIENT_RATE,
    IssuanceLimiter,
    Rate,
    client_address,
)
from atls_core.self_signed import private_key_pem as key_pem
from atls_core.server_contexts import (
    certificate_swap_works,
    pem_server_context,
    present_certificate,
)

__all__ = [
    "AttestedCertificate",
    "select_issuer",
    "AttestedCertificates",
    "ChallengeASGIMiddleware",
    "ChallengeEndpoint",
    "ChallengeIssuer",
    "DEFAULT_ISSUANCE_RATE",
    "DEFAULT_PER_CLIENT_RATE",
    "Rate",
    "handle_challenge",
    "mint_certificate",
]

KeyType = Literal["p256", "p384"]
_CURVES: Mapping[str, ec.EllipticCurve] = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1()}
_HASHES: Mapping[str, hashes.SHA256 | hashes.SHA384] = {
    "p256": hashes.SHA256(),
    "p384": hashes.SHA384(),
}


def _curve(key_type: str) -> ec.EllipticCurve:
    curve = _CURVES.get(key_type)
    if curve is None:
        raise ConfigurationError(
            "unsupported key type",
            check="server.key_type",
            expected=sorted(_CURVES),
            actual=key_type,
        )
    return curve


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
        return key_pem(self.private_key)

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
        return pem_server_context(self.private_key_pem() + self.certificate_pem, alpn_protocols)


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
    curve = _curve(key_type)
    spec: IssuerSpec = issuer.spec
    key = private_key or ec.generate_private_key(curve)
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


REPEAT_WINDOW = 10.0
"""Seconds a nonce's context answers a repeat of that nonce."""
REPEAT_ENTRIES = 32

_REFUSAL_ALERTS: Mapping[str, int] = {
    "busy": ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE,
    "rate": ssl.ALERT_DESCRIPTION_HANDSHAKE_FAILURE,
    "timeout": ssl.ALERT_DESCRIPTION_INTERNAL_ERROR,
}


def _der_children(element: bytes) -> list[bytes]:
    """The encoded elements inside one constructed DER element."""
    _tag, _header, at, end = read_tlv(element)
    children = []
    while at < end:
        _tag, header, _content, at = read_tlv(element, at)
        children.append(element[header:at])
    return children


@attrs.frozen
class _CertificateTemplate:
    """A session key's certificate, encoded once.

    Per connection only a random serial and the evidence extension are new, then
    one signature: cheaper than building the certificate anew, and every other
    field is exactly what :func:`mint_certificate` wrote.
    """

    version: bytes
    between: bytes
    """The encoded fields from the signature algorithm to the SubjectPublicKeyInfo."""
    extensions: bytes
    """The encoded extensions but the evidence, which goes last."""
    evidence_oid: bytes
    signature_algorithm: bytes
    signing_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    digest: hashes.SHA256 | hashes.SHA384

    @classmethod
    def of(
        cls,
        placeholder: AttestedCertificate,
        oid: str,
        signing_key: Any,
        digest: hashes.SHA256 | hashes.SHA384,
    ) -> _CertificateTemplate | None:
        """From a certificate minted with empty evidence; None for a non-EC signer."""
        if not isinstance(signing_key, ec.EllipticCurvePrivateKey):
            return None
        tbs, algorithm, _signature = _der_children(placeholder.certificate_der)
        fields = _der_children(tbs)
        extensions = _der_children(_der_children(fields[7])[0])
        names = [extension.oid.dotted_string for extension in placeholder.certificate.extensions]
        at = names.index(oid)
        return cls(
            version=fields[0],
            between=b"".join(fields[2:7]),
            extensions=b"".join(extensions[:at] + extensions[at + 1 :]),
            evidence_oid=_der_children(extensions[at])[0],
            signature_algorithm=algorithm,
            signing_key=signing_key,
            digest=digest,
        )

    def certificate_der(self, evidence: bytes) -> bytes:
        serial = tlv(0x02, bytes([0x40 | secrets.randbits(6)]) + secrets.token_bytes(15))
        extension = tlv(0x30, self.evidence_oid + tlv(0x04, evidence))
        tbs = tlv(
            0x30,
            self.version
            + serial
            + self.between
            + tlv(0xA3, tlv(0x30, self.extensions + extension)),
        )
        signature = self.signing_key.sign(tbs, ec.ECDSA(self.digest))
        return tlv(0x30, tbs + self.signature_algorithm + tlv(0x03, b"\x00" + signature))


@attrs.frozen
class _SessionKey:
    """The key pair per-connection certificates share until ``expires`` (monotonic)."""

    private_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    spki_der: bytes
    private_key_pem: bytes = attrs.field(repr=False)
    expires: float
    template: _CertificateTemplate | None
    alpn_protocols: tuple[str, ...] | None
    context: ssl.SSLContext | None = attrs.field(eq=False, repr=False)
    """Holds the key; each minted certificate is swapped into it under ``lock`` and the
    connection takes it at once (OpenSSL copies the certificate into the connection).
    None where swapping does not work: each certificate then gets a context of its own."""
    lock: threading.Lock = attrs.field(factory=threading.Lock, eq=False, repr=False)

    def present(self, certificate_pem: bytes, connection: ssl.SSLSocket | ssl.SSLObject) -> None:
        """Make ``connection`` present ``certificate_pem`` (a certificate for this key)."""
        if self.context is None:
            connection.context = pem_server_context(
                self.private_key_pem + certificate_pem, self.alpn_protocols
            )
            return
        with self.lock:
            present_certificate(self.context, certificate_pem)
            connection.context = self.context


_Minted = tuple[_SessionKey, bytes]
"""A per-connection certificate (PEM) and the session key it is for."""


class _RecentNonces:
    """The last few per-connection certificates (and their key) by nonce, for ``window`` s."""

    def __init__(self, *, window: float, entries: int) -> None:
        self.window = window
        self.entries = entries
        self._lock = threading.Lock()
        self._minted: collections.OrderedDict[bytes, tuple[float, _Minted]] = (
            collections.OrderedDict()
        )

    def get(self, nonce: bytes) -> _Minted | None:
        with self._lock:
            found = self._minted.get(nonce)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._minted[nonce]
                return None
            return found[1]

    def put(self, nonce: bytes, minted: _Minted) -> None:
        with self._lock:
            self._minted[nonce] = (time.monotonic() + self.window, minted)
            self._minted.move_to_end(nonce)
            while len(self._minted) > self.entries:
                self._minted.popitem(last=False)


class AttestedCertificates:
    """Certificates for one issuer: a static one, and per-connection ones on demand.

    ``nonce_from_sni`` reads the client's nonce from the server name; the
    default understands atls clients, a plugin may accept an older client's
    form too (anything but a :data:`~atls_core.binding.NONCE_SIZE` nonce is
    ignored and answered with the static certificate).

    Bounds on what clients can make the server spend (see
    :mod:`atls_core.issuance_limits`):

    * ``max_concurrent_issuances`` (8): issuer calls in flight, each on one of as
      many worker threads;
    * ``max_pending_issuances`` (64): handshakes (on their own threads) that may
      wait for a slot; the rest are refused at once;
    * ``issuance_rate`` (:data:`DEFAULT_ISSUANCE_RATE`) and ``per_client_rate``
      (:data:`DEFAULT_PER_CLIENT_RATE`, by client address where the connection
      shows one): a :class:`Rate`, a number per second, or ``None`` for no limit;
    * ``issuance_timeout`` (10 s): the most a handshake waits for its evidence.
      In an asyncio server the callback runs on the event loop, which waits too:
      keep it short there.

    ``key_rotation`` is how long per-connection certificates share a key.
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
        max_concurrent_issuances: int = 8,
        max_pending_issuances: int = 64,
        issuance_rate: Rate | float | None = DEFAULT_ISSUANCE_RATE,
        per_client_rate: Rate | float | None = DEFAULT_PER_CLIENT_RATE,
        issuance_timeout: float = 10.0,
        key_rotation: dt.timedelta = dt.timedelta(minutes=15),
    ) -> None:
        if not _is_issuer(issuer):
            raise ConfigurationError(
                "an issuer needs .spec and .issue(report_data) or .issue_for_key(spki_der, nonce)",
                check="server.issuer",
            )
        _curve(key_type)  # refused here, not at the first connection
        if key_rotation <= dt.timedelta(0):
            raise ConfigurationError(
                "key_rotation must be positive", check="server.key_rotation", actual=key_rotation
            )
        self.issuer = issuer
        self.hostnames = tuple(hostnames)
        self.key_type: KeyType = key_type
        self.lifetime = lifetime
        self.alpn_protocols = tuple(alpn_protocols) if alpn_protocols else None
        self.signer = signer
        self.key_rotation = key_rotation
        self.limiter = IssuanceLimiter(
            max_concurrent=max_concurrent_issuances,
            max_pending=max_pending_issuances,
            rate=issuance_rate,
            per_client_rate=per_client_rate,
            timeout=issuance_timeout,
        )
        """The bounds, with counters (``calls``, ``in_flight``, ``log.counts``)."""
        self._nonce_from_sni = nonce_from_sni or _atls_sni_nonce
        self._static: AttestedCertificate | None = None
        self._static_lock = threading.Lock()
        self._lock = threading.Lock()
        self._session: _SessionKey | None = None
        self._recent = _RecentNonces(window=REPEAT_WINDOW, entries=REPEAT_ENTRIES)
        self.minted = 0
        """Per-connection certificates minted so far (for operators and tests)."""
        self.repeated = 0
        """Handshakes that repeated a recent nonce and got its certificate again."""

    @property
    def spec(self) -> IssuerSpec:
        spec: IssuerSpec = self.issuer.spec
        return spec

    def static(self) -> AttestedCertificate:
        """The start-up certificate: nonce-less report data, key-only freshness."""
        with self._static_lock:
            if self._static is None:
                self._static = self.mint(b"")
            return self._static

    def mint(self, nonce: bytes) -> AttestedCertificate:
        """A certificate with a key of its own, under the issuance deadline (not the rates)."""
        key = ec.generate_private_key(_CURVES[self.key_type])
        evidence = None
        if self.spec.transport is Transport.CERTIFICATE:
            spki = key.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            evidence = self.limiter.call(
                functools.partial(_issue, self.issuer, spki, nonce), limited=False
            )
        return self._certificate(key, nonce, evidence)

    def _certificate(
        self, key: ec.EllipticCurvePrivateKey, nonce: bytes, evidence: Evidence | None
    ) -> AttestedCertificate:
        return mint_certificate(
            self.issuer,
            nonce=nonce,
            hostnames=self.hostnames,
            key_type=self.key_type,
            lifetime=self.lifetime,
            signer=self.signer,
            private_key=key,
            evidence=evidence,
        )

    def server_context(self, *, per_connection: bool = True) -> ssl.SSLContext:
        """A server ``SSLContext`` presenting attested certificates.

        With ``per_connection`` a client that sends a nonce in SNI gets a
        certificate minted for that nonce; other clients get the static one.
        """
        context = self.static().server_context(alpn_protocols=self.alpn_protocols)
        if per_connection and self.spec.transport is Transport.CERTIFICATE:
            context.sni_callback = self.sni_callback
            self._session_key()  # made now, not inside the first client's handshake
        return context

    def sni_callback(
        self, connection: ssl.SSLSocket | ssl.SSLObject, server_name: str | None, _ctx: Any
    ) -> int | None:
        """``SSLContext.sni_callback``: present a certificate minted for the nonce in SNI.

        Attach it to any server context that presents :meth:`static` (uvicorn:
        ``config.load(); config.ssl.sni_callback = certificates.sni_callback``).
        Returns a TLS alert when the handshake is refused (limits, deadline, a
        failing issuer); never raises.
        """
        if self.spec.transport is not Transport.CERTIFICATE:
            return None  # challenge transport: the certificate carries no evidence
        try:
            nonce = self._nonce_from_sni(server_name)
            if nonce is None or len(nonce) != NONCE_SIZE:
                return None  # not an atls client: the static certificate answers
            minted = self._recent.get(nonce)
            if minted is None:
                minted = self._mint_for(nonce, connection)
                self._recent.put(nonce, minted)
            else:
                with self._lock:
                    self.repeated += 1
            session, certificate_pem = minted
            session.present(certificate_pem, connection)
        except IssuanceRefused as refusal:  # logged by the limiter
            return _REFUSAL_ALERTS.get(refusal.phase, ssl.ALERT_DESCRIPTION_INTERNAL_ERROR)
        except Exception as error:
            self.limiter.log.failed("per-connection issuance failed", error)
            return ssl.ALERT_DESCRIPTION_INTERNAL_ERROR
        return None

    def _session_key(self) -> _SessionKey:
        with self._lock:
            if self._session is None or self._session.expires <= time.monotonic():
                self._session = self._new_session_key()
            return self._session

    def _new_session_key(self) -> _SessionKey:
        key = ec.generate_private_key(_CURVES[self.key_type])
        rotation = self.key_rotation.total_seconds()
        # A certificate minted late in the key's life is valid for ``lifetime`` too.
        placeholder = mint_certificate(
            self.issuer,
            hostnames=self.hostnames,
            key_type=self.key_type,
            lifetime=self.lifetime + self.key_rotation,
            signer=self.signer,
            private_key=key,
            evidence=Evidence(
                media_type=self.spec.media_type,
                data=b"",
                source=EvidenceSource(transport=Transport.CERTIFICATE, oid=self.spec.oid),
            ),
        )
        signing_key, digest = (
            (self.signer[1], hashes.SHA256()) if self.signer else (key, _HASHES[self.key_type])
        )
        context = None
        if certificate_swap_works():
            # Until the first swap it presents the placeholder, whose empty evidence no
            # client accepts.
            context = placeholder.server_context(alpn_protocols=self.alpn_protocols)
        return _SessionKey(
            private_key=key,
            spki_der=placeholder.spki_der,
            private_key_pem=placeholder.private_key_pem(),
            expires=time.monotonic() + rotation,
            template=_CertificateTemplate.of(placeholder, str(self.spec.oid), signing_key, digest),
            alpn_protocols=self.alpn_protocols,
            context=context,
        )

    def _mint_for(self, nonce: bytes, connection: ssl.SSLSocket | ssl.SSLObject) -> _Minted:
        """The certificate for ``nonce``: evidence under the limits, then one signature."""
        session = self._session_key()
        future, deadline = self.limiter.submit(
            functools.partial(_issue, self.issuer, session.spki_der, nonce),
            client=client_address(connection),
            may_wait=_on_own_thread(connection),
        )
        evidence = self.limiter.wait(future, deadline)
        if session.template is not None:
            certificate_pem = ssl.DER_cert_to_PEM_cert(
                session.template.certificate_der(evidence.data)
            ).encode()
        else:
            certificate_pem = self._certificate(
                session.private_key, nonce, evidence
            ).certificate_pem
        with self._lock:
            self.minted += 1
        return session, certificate_pem


def _on_own_thread(connection: ssl.SSLSocket | ssl.SSLObject) -> bool:
    """Whether a handshake may wait for an issuance slot.

    An ``SSLObject`` (asyncio, uvicorn) or a non-blocking ``SSLSocket`` is
    driven by an event loop, which a wait would stall for every connection.
    """
    return isinstance(connection, ssl.SSLSocket) and connection.gettimeout() != 0.0
