"""Server side of the challenge transport: answer a client's challenge with fresh evidence.

A challenge-style validator (``tdx.dstack-challenge``, the simulated challenge) asks
over the just-established TLS connection; :class:`ChallengeEndpoint` reads the nonce
(or the report data, in secureai's form), asks the issuer for evidence binding the
server's certificate and answers with it.  :func:`handle_challenge` serves it from an
``http.server`` handler, :class:`ChallengeASGIMiddleware` from an asyncio ASGI server
(uvicorn).

Every answer costs an issuer call (a quote, a call to an attestation service), so the
endpoint runs them under the same bounds as per-connection certificates
(:mod:`atls_core.issuance_limits`): a cap on calls in flight, a global and a
per-client rate, and a deadline.  A request over a limit gets ``503`` with
``Retry-After``; an issuer that fails gets ``500``; both are counted on the endpoint's
``limiter.log`` and reported on ``atls.server``.  Under ASGI the call is awaited, never
waited for on the event loop, so a slow evidence source does not stall other requests.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import socket
from collections.abc import Awaitable, Callable, MutableMapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from atls_core.binding import report_data_for
from atls_core.errors import ConfigurationError, IssuanceRefused, MalformedEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import IssuerSpec
from atls_core.issuance_limits import (
    DEFAULT_ISSUANCE_RATE,
    DEFAULT_PER_CLIENT_RATE,
    IssuanceLimiter,
    Rate,
    RefusalLog,
    client_address,
    peer_key,
)

__all__ = [
    "ChallengeASGIMiddleware",
    "ChallengeEndpoint",
    "ChallengeIssuer",
    "handle_challenge",
]

ChallengeIssuer = Any
"""An issuer whose ``issue`` also takes ``certificate_sha256=`` (challenge-v1)."""

Answer = tuple[int, dict[str, str], bytes]
"""(status, headers, body) of one challenge request."""

_TEXT = {"Content-Type": "text/plain"}


def _nonce_from_json(body: bytes) -> bytes:
    """The default challenge body: ``{"nonce": "<hex>"}`` (the simulated TEE's format)."""
    try:
        document = json.loads(body)
        nonce = bytes.fromhex(document["nonce"])
    except (ValueError, KeyError, TypeError, RecursionError):  # deep nesting: not a nonce either
        raise MalformedEvidence(
            "challenge body carries no hex nonce", check="challenge.request"
        ) from None
    if not 16 <= len(nonce) <= 64:
        raise MalformedEvidence(
            "challenge nonce has an unexpected length", check="challenge.request", actual=len(nonce)
        )
    return nonce


class ChallengeEndpoint:
    """Answers a challenge-style validator's request with fresh evidence, within bounds.

    ``certificate`` is the server's TLS certificate (DER); the evidence binds
    it by digest (``challenge-v1``) together with the client's nonce.  The
    issuance bounds take the same arguments, with the same defaults, as
    :class:`~atls_core.server.AttestedCertificates`; ``limiter`` holds them and
    their counters.
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
        max_concurrent_issuances: int = 8,
        max_pending_issuances: int = 64,
        issuance_rate: Rate | float | None = DEFAULT_ISSUANCE_RATE,
        per_client_rate: Rate | float | None = DEFAULT_PER_CLIENT_RATE,
        issuance_timeout: float = 10.0,
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
        self.limiter = IssuanceLimiter(
            max_concurrent=max_concurrent_issuances,
            max_pending=max_pending_issuances,
            rate=issuance_rate,
            per_client_rate=per_client_rate,
            timeout=issuance_timeout,
            log=RefusalLog(what="challenge request(s)"),
        )
        self.answered = 0
        # Per-request work is the quote: the key and digest of the certificate are fixed.
        self._spki_der = (
            x509.load_der_x509_certificate(certificate_der)
            .public_key()
            .public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        self._certificate_sha256 = hashlib.sha256(certificate_der).digest()

    def matches(self, method: str, path: str) -> bool:
        return method.upper() == self.method and path.split("?", 1)[0] == self.path

    def _report_data(self, body: bytes) -> bytes:
        """What to quote: the issuer's own request form when it reads one, else the nonce's.

        An issuer may define ``report_data_from_request(body) -> bytes | None`` for a
        protocol whose client sends the report data itself (secureai's
        ``{"report_data_hex": ...}``, ``tdx.dstack-agent``); ``None`` means "not that
        form" and the body is read for a nonce.
        """
        own = getattr(self.issuer, "report_data_from_request", None)
        given = own(body) if callable(own) else None
        if given is not None:
            return bytes(given)
        nonce = self._nonce_from_body(body)
        spec: IssuerSpec = self.issuer.spec
        return report_data_for(spec.binding_scheme, spki_der=self._spki_der, nonce=nonce)

    def _issuance(self, body: bytes) -> Answer | Callable[[], Evidence]:
        """The issuer call this request asks for, or the answer that refuses it first."""
        if len(body) > self.max_body:
            return 413, dict(_TEXT), b"challenge body too large\n"
        try:
            report_data = self._report_data(body)
        except MalformedEvidence as error:
            return 400, dict(_TEXT), f"{error}\n".encode()
        return functools.partial(
            self.issuer.issue, report_data, certificate_sha256=self._certificate_sha256
        )

    def answer(self, body: bytes, *, client: str | None = None) -> Answer:
        """The answer to one challenge request (blocking: for a thread per connection).

        ``client`` is the rate-limit key of the requester (see
        :func:`~atls_core.issuance_limits.peer_key`); without one only the global
        bounds apply.
        """
        issuance = self._issuance(body)
        if isinstance(issuance, tuple):
            return issuance
        try:
            evidence = self.limiter.call(issuance, client=client)
        except Exception as error:
            return self._refused(error)
        return self._answered(evidence)

    async def answer_async(self, body: bytes, *, client: str | None = None) -> Answer:
        """:meth:`answer` for an event loop: the evidence is awaited, not waited for."""
        issuance = self._issuance(body)
        if isinstance(issuance, tuple):
            return issuance
        try:
            evidence = await self.limiter.call_async(issuance, client=client)
        except Exception as error:
            return self._refused(error)
        return self._answered(evidence)

    def _answered(self, evidence: Evidence) -> Answer:
        self.answered += 1
        return 200, {"Content-Type": evidence.media_type}, evidence.data

    def _refused(self, error: Exception) -> Answer:
        if isinstance(error, IssuanceRefused):  # logged by the limiter
            return 503, {**_TEXT, "Retry-After": "1"}, b"evidence unavailable: server busy\n"
        self.limiter.log.failed("challenge issuance failed", error)
        return 500, dict(_TEXT), b"evidence unavailable\n"


def handle_challenge(handler: BaseHTTPRequestHandler, endpoint: ChallengeEndpoint) -> bool:
    """For ``http.server`` handlers: answer and return True if this request was the challenge."""
    if not endpoint.matches(handler.command, handler.path):
        return False
    with contextlib.suppress(OSError, AttributeError):
        handler.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    length_text = handler.headers.get("Content-Length", "0")
    # ASCII digits only: str.isdigit() also passes "²", which int() refuses.
    length = int(length_text) if length_text.isascii() and length_text.isdigit() else -1
    if length < 0 or length > endpoint.max_body:
        status, headers, body = 413, dict(_TEXT), b"bad challenge length\n"
        handler.close_connection = True
    else:
        status, headers, body = endpoint.answer(
            handler.rfile.read(length), client=client_address(handler.connection)
        )
    handler.log_request(status)
    lines = [
        f"{handler.protocol_version} {status} {handler.responses[status][0]}",
        f"Server: {handler.version_string()}",
        f"Date: {handler.date_time_string()}",
        *(f"{name}: {value}" for name, value in headers.items()),
        f"Content-Length: {len(body)}",
    ]
    # One write: head and body leave in one TLS record, and the client reads them in one go.
    handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    return True


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class ChallengeASGIMiddleware:
    """ASGI middleware (uvicorn, starlette on asyncio): serves the challenge path, passes
    the rest on."""

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
        client = peer_key(scope.get("client") or ())
        status, headers, payload = await self.endpoint.answer_async(bytes(body), client=client)
        raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
        raw_headers.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})
