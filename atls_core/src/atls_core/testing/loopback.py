"""Loopback servers for testing attested TLS end to end (127.0.0.1 only).

Real sockets, real TLS, real HTTP: an HTTPS server presenting attested
certificates (with an optional challenge endpoint) that counts the
application bytes it receives and the connections it accepts, and a minimal
HTTP CONNECT proxy.  Used by atls-core's tests and demo; plugin authors may
use them for their own end-to-end tests.
"""

from __future__ import annotations

import http.server
import json
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast, overload

import attrs
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from atls_core.binding import Freshness
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import SelectedValidator, select_validator
from atls_core.self_signed import private_key_pem
from atls_core.server import (
    AttestedCertificate,
    AttestedCertificates,
    ChallengeEndpoint,
    handle_challenge,
)
from atls_core.server_contexts import pem_server_context
from atls_core.testing.httpd import QuietHandler
from atls_core.testing.simulated import (
    CHALLENGE_ISSUER_SPEC,
    CHALLENGE_PATH,
    DEFAULT_MEASUREMENTS,
    SimulatedHardware,
    SimulatedIssuer,
)
from atls_core.tls import ATLSContext, ATLSSocket, result_of

if TYPE_CHECKING:
    from atls_core.registry import PluginManager

__all__ = [
    "ConnectProxy",
    "HTTPSServer",
    "SimulatedTEE",
    "attested_get",
    "challenge_handshakes",
    "challenge_https_server",
    "read_head",
    "serve_connections",
    "tls_connect",
    "tls_server_context",
]


class SimulatedTEE:
    """The INSECURE simulated TEE wired up for loopback tests: issuers and validators."""

    def __init__(self, **issuer_settings: Any) -> None:
        self.issuer_settings_measurements: dict[str, Any] = dict(
            issuer_settings.get("measurements") or DEFAULT_MEASUREMENTS
        )
        self.hardware = SimulatedHardware.generate()
        self.issuer = SimulatedIssuer(self.hardware.issuer_settings(**issuer_settings))
        self.challenge_issuer = SimulatedIssuer(
            self.hardware.issuer_settings(**issuer_settings), spec=CHALLENGE_ISSUER_SPEC
        )

    def validator_id(self, *, challenge: bool = False) -> str:
        return "insecure.simulated-challenge" if challenge else "insecure.simulated"

    @property
    def image(self) -> str:
        """The simulated workload's ``image`` measurement (what a policy pins)."""
        return str(self.issuer_settings_measurements["image"])

    def pinned(self, policy: Policy | None = None) -> Policy:
        """``policy`` (default: the default policy) pinning this TEE's image.

        A policy that already pins a simulated measurement, or allows any
        workload, is returned unchanged.
        """
        policy = policy or Policy()
        if policy.allow_any_workload or set(policy.reference_values) & {"image", "config"}:
            return policy
        return attrs.evolve(
            policy, reference_values={**policy.reference_values, "image": self.image}
        )

    def selected(
        self,
        *,
        policy: Policy | None = None,
        challenge: bool = False,
        pki: bool = False,
        pin: bool = True,
        manager: PluginManager | None = None,
    ) -> SelectedValidator:
        """A ready validator; ``pin=False`` keeps ``policy`` exactly as given."""
        return select_validator(
            self.validator_id(challenge=challenge),
            policy=self.pinned(policy) if pin else policy,
            settings=self.hardware.validator_settings(),
            allow_insecure=True,
            manager=manager,
            pki=pki,
        )

    def config_mapping(
        self,
        host: str = "127.0.0.1",
        *,
        challenge: bool = False,
        policy: dict[str, Any] | None = None,
        pki: bool = False,
        pin: bool = True,
    ) -> dict[str, Any]:
        """A configuration mapping (as ``ATLSConfig.from_mapping`` reads) for one host.

        The policy pins this TEE's image unless ``pin=False`` or the given
        policy pins or allows any workload itself.
        """
        rule: dict[str, Any] = {
            "validator": self.validator_id(challenge=challenge),
            "settings": self.hardware.validator_settings(),
            "pki": pki,
        }
        body = dict(policy or {})
        references = dict(body.get("reference_values", {}))
        if pin and not body.get("allow_any_workload") and not set(references) & {"image", "config"}:
            references["image"] = self.image
            body["reference_values"] = references
        if body:
            rule["policy"] = body
        return {"atls": {"allow_insecure_test_validators": True}, "hosts": {host: rule}}

    def certificates(self, **kwargs: Any) -> AttestedCertificates:
        return AttestedCertificates(self.issuer, **kwargs)

    def challenge_server(self, **limits: Any) -> HTTPSServer:
        """An HTTPS server with a plain certificate and the challenge endpoint; ``limits``
        are the endpoint's issuance bounds (``issuance_rate=None`` for a benchmark's flood)."""
        static = AttestedCertificates(self.challenge_issuer).static()
        endpoint = ChallengeEndpoint(
            self.challenge_issuer,
            certificate_der=static.certificate_der,
            path=CHALLENGE_PATH,
            **limits,
        )
        return HTTPSServer(static.server_context(), challenge=endpoint)


MODELS = {"object": "list", "data": [{"id": "demo-model", "object": "model", "owned_by": "atls"}]}


class _Handler(QuietHandler):
    protocol_version = "HTTP/1.1"
    server: HTTPSServer

    def do_GET(self) -> None:
        self.server.note_request(self)
        if self.path.startswith("/v1/models"):
            self.send_body(200, json.dumps(MODELS).encode())
        else:
            self.send_body(200, json.dumps({"path": self.path}).encode())

    def do_POST(self) -> None:
        endpoint = self.server.challenge
        if endpoint is not None and handle_challenge(self, endpoint):
            return
        self.server.note_request(self)
        length = int(self.headers.get("Content-Length", "0"))
        self.send_body(200, self.rfile.read(length), "application/octet-stream")


class _CountingSocket:
    """Wraps an accepted TLS socket and counts the application bytes received."""

    def __init__(self, sock: ssl.SSLSocket, server: HTTPSServer) -> None:
        self._sock = sock
        self._server = server

    def recv_into(self, buffer: Any, *args: Any) -> int:
        n: int = self._sock.recv_into(buffer, *args)
        self._server.add_received(n)
        return n

    def recv(self, size: int, *args: Any) -> bytes:
        data: bytes = self._sock.recv(size, *args)
        self._server.add_received(len(data))
        return data

    def makefile(self, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if "r" in mode:
            import io

            return io.BufferedReader(socket.SocketIO(self, "r"))  # type: ignore[arg-type]
        return cast(Any, self._sock).makefile(mode, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class HTTPSServer(http.server.ThreadingHTTPServer):
    """A threaded HTTPS server on 127.0.0.1 with byte and connection counters.

    ``GET /v1/models`` answers an OpenAI-style model list, other GETs echo the
    path, ``POST`` echoes the body; ``challenge`` (a :class:`ChallengeEndpoint`)
    answers a challenge-style validator first.  The TLS handshake runs in the
    connection's thread, so a slow or failing client never blocks others.
    ``attempts`` counts connections as their thread starts, before the server
    sends a TLS byte: when a client call returns, every attempt it made is counted.
    """

    daemon_threads = True
    request_queue_size = 256

    def __init__(
        self, context: ssl.SSLContext, *, challenge: ChallengeEndpoint | None = None
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.context = context
        self.challenge = challenge
        self.received = 0
        self.attempts = 0
        self.handshakes = 0
        self.handshake_errors: list[BaseException] = []
        self.requests: list[str] = []
        self.finished = 0
        self._lock = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, scheme: str = "https", path: str = "/") -> str:
        return f"{scheme}://127.0.0.1:{self.port}{path}"

    def add_received(self, n: int) -> None:
        with self._lock:
            self.received += n

    def note_request(self, handler: _Handler) -> None:
        with self._lock:
            self.requests.append(handler.path)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self.attempts += 1
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tls = self.context.wrap_socket(request, server_side=True)
        except (OSError, ValueError) as exc:
            with self._lock:
                self.handshake_errors.append(exc)
                self.finished += 1
                self._lock.notify_all()
            request.close()
            return
        with self._lock:
            self.handshakes += 1
        try:
            counting: Any = _CountingSocket(tls, self)
            super().process_request_thread(counting, client_address)
        finally:
            with self._lock:
                self.finished += 1
                self._lock.notify_all()

    def wait_finished(self, count: int, timeout: float = 10.0) -> bool:
        """Wait until ``count`` connections were served to the end (client closed)."""
        with self._lock:
            return self._lock.wait_for(lambda: self.finished >= count, timeout)

    def start(self) -> HTTPSServer:
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> HTTPSServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 that records tunnels.

    ``tunnels`` holds each tunnel's ``host:port`` and ``auth`` its
    ``Proxy-Authorization`` (``None`` without one).  Only loopback targets are
    tunnelled, unless ``upstream_port`` sends every tunnel to that loopback port
    (for names that do not resolve, such as ``keys.test``).
    """

    def __init__(self, upstream_port: int | None = None) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.tunnels: list[str] = []
        self.auth: list[str | None] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=serve_connections, args=(self._listener, self._tunnel), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ConnectProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._listener.close()

    def _tunnel(self, client: socket.socket) -> None:
        with client:
            head = read_head(client)
            if head is None:
                return
            lines = head.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
            line = lines[0].split()
            if len(line) < 2 or line[0] != "CONNECT":
                client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
                return
            host, _, port = line[1].rpartition(":")
            if self.upstream_port is not None:
                host, port = "127.0.0.1", str(self.upstream_port)
            elif host not in ("127.0.0.1", "localhost"):
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            self.tunnels.append(line[1])
            headers = dict(item.partition(": ")[::2] for item in lines[1:])
            self.auth.append(
                next((v for k, v in headers.items() if k.lower() == "proxy-authorization"), None)
            )
            with socket.create_connection((host, int(port))) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
                _pump(client, upstream, self._stop.is_set)


def read_head(connection: socket.socket | ssl.SSLSocket, limit: int = 65536) -> bytes | None:
    """What a client sent up to the end of its request head (maybe some body after it);
    ``None`` when it closed first.  Stops at ``limit`` bytes: a test never waits forever."""
    head = b""
    while b"\r\n\r\n" not in head and len(head) < limit:
        chunk = connection.recv(4096)
        if not chunk:
            return None
        head += chunk
    return head


def serve_connections(listener: socket.socket, handle: Callable[[socket.socket], None]) -> None:
    """Accept on ``listener`` until it is closed, each connection handled in its own thread."""
    while True:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=handle, args=(connection,), daemon=True).start()


def tls_server_context(key: PrivateKeyTypes, certificate_der: bytes) -> ssl.SSLContext:
    """A TLS server context presenting ``certificate_der`` with ``key`` (e.g. a RA-TLS
    certificate a test made by hand), loaded from memory as a server's own contexts are."""
    certificate_pem = ssl.DER_cert_to_PEM_cert(certificate_der).encode()
    return pem_server_context(private_key_pem(key) + certificate_pem)


@overload
def tls_connect(context: ATLSContext, port: int, host: str = ...) -> ATLSSocket: ...
@overload
def tls_connect(context: ssl.SSLContext, port: int, host: str = ...) -> ssl.SSLSocket: ...
def tls_connect(context: ssl.SSLContext, port: int, host: str = "127.0.0.1") -> ssl.SSLSocket:
    """A TLS connection to 127.0.0.1:port presenting ``host`` (the handshake, and so an
    atls appraisal, has happened when it returns); the caller closes it."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def attested_get(
    context: ssl.SSLContext, port: int, path: str = "/hello", *, name: str = "127.0.0.1"
) -> tuple[AttestationResult, bytes]:
    """``GET path`` over attested TLS to 127.0.0.1:port (``name`` as SNI and Host) until
    the server closes: the connection's attestation result and the raw response."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=20) as raw,
        context.wrap_socket(raw, server_hostname=name) as tls,
    ):
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        result = result_of(tls)
    if result is None:
        raise AssertionError("the connection was not appraised: not an atls context")
    return result, data


def _pump(a: socket.socket, b: socket.socket, stopped: Callable[[], bool]) -> None:
    peers = {a: b, b: a}
    while not stopped():
        readable, _, _ = select.select(list(peers), [], [], 0.5)
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            peers[sock].sendall(data)


def challenge_https_server(
    issuer: Any,
    certificate: AttestedCertificate,
    path: str = CHALLENGE_PATH,
    *,
    presented: AttestedCertificate | None = None,
) -> tuple[HTTPSServer, ChallengeEndpoint]:
    """A server presenting ``certificate`` whose endpoint at ``path`` answers each challenge
    with fresh evidence from ``issuer`` for that certificate (the endpoint counts ``answered``).

    ``presented``: serve this certificate instead, as a relay in front of the genuine one does.
    """
    endpoint = ChallengeEndpoint(issuer, certificate_der=certificate.certificate_der, path=path)
    context = (presented or certificate).server_context()
    return HTTPSServer(context, challenge=endpoint), endpoint


def challenge_handshakes(
    context: ssl.SSLContext, server: HTTPSServer, endpoint: ChallengeEndpoint, count: int = 2
) -> list[AttestationResult]:
    """``count`` requests over attested TLS to a challenge server: each one accepted, bound to
    a nonce of its own and served, and each its own challenge answered by ``endpoint``."""
    results = []
    for _ in range(count):
        result, data = attested_get(context, server.port, "/after")
        assert result.accepted, result.to_json()
        assert result.binding.freshness is Freshness.NONCE
        assert b'"/after"' in data
        results.append(result)
    assert endpoint.answered == count
    assert len({result.binding.nonce for result in results}) == count
    return results
