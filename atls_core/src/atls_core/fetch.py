"""The one HTTP(S) client for every network read atls makes (keys, CRLs, token services).

A handshake may wait on one of these reads, so each is bounded as a whole:

* **one deadline** for the entire exchange (name resolution, connect, TLS,
  request, headers, body, same-origin redirects).  Before every socket
  operation the time left is computed and set as the socket timeout; when none
  is left the fetch fails.  A per-read timeout (what ``urlopen`` offers) lets a
  server that sends one byte per second hold a caller for ever;
* **size caps** on the header block and the body;
* **TLS verified** against the system roots, a given CA file or a given
  :class:`ssl.SSLContext`;
* **no redirects**, unless the caller allows a number of *same-origin* ones
  (a configured URL is the service; hops to elsewhere are refused);
* every fault is :class:`atls_core.errors.ServiceUnavailable`, naming the
  service by its redacted URL (``scheme://host[:port]``, and ``/***`` when the
  URL had a path, query or fragment) and the failing phase.

Built on :mod:`http.client` over a socket this module owns rather than on h11:
h11 would be a new dependency of the core, and control of the deadline is the
same either way, because http.client never touches the network itself here:
every send and receive goes through :class:`_Wire`, which applies the deadline
exactly, while http.client's well-tried code formats the request and parses
the answer.  Name resolution, which no socket timeout bounds, runs in
a helper thread that the caller stops waiting for at the deadline.

Proxies come from the environment (``https_proxy``, ``http_proxy``,
``no_proxy``) as they did with ``urllib``; loopback addresses never use one.
HTTPS goes through a ``CONNECT`` tunnel, so TLS is still verified end to end.

:class:`SingleFlight` lets concurrent callers asking for the same thing share
one fetch without holding a lock while it runs.
"""

from __future__ import annotations

import base64
import functools
import http.client
import io
import ipaddress
import os
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Hashable, Mapping
from concurrent.futures import Future
from types import MappingProxyType
from typing import Any, Generic, TypeVar

import attrs

from atls_core._version import __version__
from atls_core.errors import ATLSError, ConfigurationError, ServiceUnavailable
from atls_core.redact import redact_url

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_HEADER_BYTES",
    "Response",
    "SingleFlight",
    "fetch",
]

DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_HEADER_BYTES = 64 << 10
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_DEFAULT_PORTS = {"http": 80, "https": 443}
_READ_BUFFER = 8192
_CHUNK = 64 << 10
_USER_AGENT = f"atls-core/{__version__}"


@attrs.frozen
class Response:
    """Status, headers (lower-case names) and the whole body of one answer."""

    status: int
    headers: Mapping[str, str]
    body: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


# -- targets -------------------------------------------------------------------


@attrs.frozen
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    """Path and query, as sent in the request line."""
    url: str = attrs.field(repr=False)  # may hold credentials

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == _DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"


def _parse(url: str, check: str, name: str) -> tuple[_Target, str | None]:
    """The target of ``url`` and a Basic ``Authorization`` value for its userinfo."""

    def bad(why: str) -> ConfigurationError:
        return ConfigurationError(f"{name} URL {why}", check=check, actual=redact_url(url))

    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname
        port = parts.port
    except ValueError:
        raise bad("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise bad("must be http or https")
    if not host:
        raise bad("has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if any(ord(c) <= 0x20 or ord(c) == 0x7F for c in path):
        raise bad("contains spaces or control characters")
    authorization = None
    if parts.username is not None or parts.password is not None:
        user = urllib.parse.unquote(parts.username or "")
        password = urllib.parse.unquote(parts.password or "")
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        authorization = f"Basic {token}"
    target = _Target(
        scheme=scheme,
        host=host,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        path=path,
        url=url,
    )
    return target, authorization


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _proxy_for(target: _Target) -> str | None:
    """The environment's proxy URL for ``target``, or None (always None for loopback)."""
    if _is_loopback(target.host):
        return None
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(target.scheme)
    if not proxy or bool(urllib.request.proxy_bypass(target.host)):
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


# -- the deadline-bound socket -------------------------------------------------


class _Expired(TimeoutError):
    """The deadline passed before an operation could start."""


class _TooLarge(Exception):
    pass


class _Wire:
    """A socket whose every operation is given exactly the time left.

    http.client sees it as its ``sock``: ``sendall`` for the request and
    ``makefile`` for the response.  ``step`` says what we were doing (for the
    timeout message); ``budget`` caps the raw bytes received so far.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline
        self.step = "connecting"
        self.received = 0
        self.budget = 0

    def arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise _Expired(self.step)
        self.sock.settimeout(left)

    def sendall(self, data: bytes) -> None:
        with memoryview(data) as view:
            sent = 0
            while sent < len(view):
                self.arm()
                sent += self.sock.send(view[sent : sent + _CHUNK])

    def recv_into(self, buffer: memoryview) -> int:
        self.arm()
        count = self.sock.recv_into(buffer)
        self.received += count
        if self.received > self.budget:
            raise _TooLarge(self.step)
        return count

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_Reader(self), _READ_BUFFER)

    def close(self) -> None:
        """http.client closes its ``sock`` early; :func:`fetch` closes the real socket."""


class _Reader(io.RawIOBase):
    def __init__(self, wire: _Wire) -> None:
        super().__init__()
        self._wire = wire

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        with memoryview(buffer) as view:
            return self._wire.recv_into(view.cast("B"))


def _left(deadline: float, step: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _Expired(step)
    return left


def _resolve(host: str, port: int, deadline: float) -> list[Any]:
    """getaddrinfo, abandoned at the deadline (no socket timeout bounds it)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    answer: list[Any] = []
    failure: list[OSError] = []

    def run() -> None:
        try:
            answer.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as exc:
            failure.append(exc)

    worker = threading.Thread(target=run, name="atls-resolve", daemon=True)
    worker.start()
    worker.join(_left(deadline, "resolving the host name"))
    if worker.is_alive():
        raise _Expired("resolving the host name")
    if failure:
        raise failure[0]
    return answer


def _connected(sock: socket.socket, address: Any, deadline: float) -> socket.socket:
    """``sock`` connected to ``address`` within the deadline; closed if it is not."""
    try:
        sock.settimeout(_left(deadline, "connecting"))
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    return sock


def _connect(host: str, port: int, deadline: float) -> socket.socket:
    last: OSError = OSError(f"no address for {host}")
    for family, kind, proto, _name, address in _resolve(host, port, deadline):
        try:
            return _connected(socket.socket(family, kind, proto), address, deadline)
        except TimeoutError:
            raise
        except OSError as exc:
            last = exc
    raise last


def _connect_unix(path: str, deadline: float) -> socket.socket:
    return _connected(socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), path, deadline)


def _tunnel(wire: _Wire, target: _Target, authorization: str | None) -> None:
    """``CONNECT`` through an HTTP proxy; the proxy's answer must be 2xx."""
    wire.step = "opening the proxy tunnel"
    lines = [f"CONNECT {target.authority} HTTP/1.1", f"Host: {target.authority}"]
    if authorization:
        lines.append(f"Proxy-Authorization: {authorization}")
    wire.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("ascii"))
    answer = b""
    one = bytearray(1)
    # Byte by byte: nothing after the blank line may be consumed (it is TLS).
    while not answer.endswith(b"\r\n\r\n"):
        if not wire.recv_into(memoryview(one)):
            raise http.client.RemoteDisconnected("the proxy closed the connection")
        answer += one
    status_line = answer.split(b"\r\n", 1)[0].split()
    if len(status_line) < 2 or not status_line[1].isdigit() or status_line[1][:1] != b"2":
        raise _ProxyRefused(status_line[1].decode("ascii", "replace") if status_line[1:] else "?")


class _ProxyRefused(Exception):
    pass


class _Fault(Exception):
    """A low-level fault and the step of the exchange it happened in."""

    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(step)
        self.step = step
        self.cause = cause


@functools.cache
def _system_context() -> ssl.SSLContext:
    """Built once: loading the system roots costs more than a loopback fetch."""
    context: ssl.SSLContext = ssl.create_default_context()
    return context


def _tls_context(
    tls: ssl.SSLContext | None, cafile: str | os.PathLike[str] | None
) -> ssl.SSLContext:
    if tls is not None:
        return tls
    if cafile is not None:
        try:
            return ssl.create_default_context(cafile=os.fspath(cafile))
        except (OSError, ssl.SSLError) as exc:
            raise ConfigurationError(
                f"cannot load the CA file {os.fspath(cafile)}: {exc.strerror or exc}",
                check="config.tls",
            ) from None
    return _system_context()


# -- one exchange --------------------------------------------------------------


@attrs.frozen
class _Limits:
    max_bytes: int
    max_header_bytes: int


def _exchange(
    target: _Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    deadline: float,
    limits: _Limits,
    read_body: Callable[[int], bool],
    context: ssl.SSLContext | None,
    proxy: str | None,
    unix_socket: str | None = None,
) -> Response:
    """One request and answer; the body is read only if ``read_body(status)``.

    Faults come out as :class:`_Fault`, carrying the step they happened in.
    """
    proxy_target, proxy_auth = (None, None)
    if proxy is not None:
        proxy_target, proxy_auth = _parse(proxy, "config.proxy", "proxy")
    hop = proxy_target or target
    try:
        if unix_socket is not None:
            sock = _connect_unix(unix_socket, deadline)
        else:
            sock = _connect(hop.host, hop.port, deadline)
    except Exception as exc:
        step = exc.args[0] if isinstance(exc, _Expired) and exc.args else "connecting"
        raise _Fault(step, exc) from exc
    wire = _Wire(sock, deadline)
    try:
        return _converse(
            wire,
            target,
            method,
            headers,
            body,
            limits=limits,
            read_body=read_body,
            context=context,
            proxy_target=proxy_target,
            proxy_auth=proxy_auth,
        )
    except Exception as exc:
        raise _Fault(wire.step, exc) from exc
    finally:
        wire.sock.close()


def _converse(
    wire: _Wire,
    target: _Target,
    method: str,
    headers: dict[str, str],
    body: bytes | None,
    *,
    limits: _Limits,
    read_body: Callable[[int], bool],
    context: ssl.SSLContext | None,
    proxy_target: _Target | None,
    proxy_auth: str | None,
) -> Response:
    request_path = target.path
    send_headers = dict(headers)
    if proxy_target is not None and target.scheme == "http":
        request_path = f"http://{target.authority}{target.path}"
        if proxy_auth:
            send_headers["Proxy-Authorization"] = proxy_auth
    elif proxy_target is not None:
        wire.budget = limits.max_header_bytes
        _tunnel(wire, target, proxy_auth)
    if target.scheme == "https":
        wire.step = "in the TLS handshake"
        assert context is not None
        tls_sock = context.wrap_socket(
            wire.sock, server_hostname=target.host, do_handshake_on_connect=False
        )
        wire.sock = tls_sock
        wire.arm()
        tls_sock.do_handshake()
    wire.step = "sending the request"
    wire.received = 0
    wire.budget = limits.max_header_bytes + _READ_BUFFER
    connection = http.client.HTTPConnection(target.host, target.port)
    connection.sock = wire
    connection.request(method, request_path, body=body, headers=send_headers)
    wire.step = "reading the headers"
    answer = connection.getresponse()
    status = answer.status
    names: dict[str, str] = {}
    for key, value in answer.getheaders():
        key = key.lower()
        names[key] = f"{names[key]}, {value}" if key in names else value
    if not read_body(status):
        return Response(status=status, headers=MappingProxyType(names), body=b"")
    wire.step = "reading the body"
    if answer.length is not None and answer.length > limits.max_bytes:
        raise _TooLarge(wire.step)
    wire.budget = wire.received + 2 * limits.max_bytes + _CHUNK
    parts: list[bytes] = []
    total = 0
    while chunk := answer.read(min(_CHUNK, limits.max_bytes + 1 - total)):
        total += len(chunk)
        if total > limits.max_bytes:
            raise _TooLarge(wire.step)
        parts.append(chunk)
    if answer.length:
        raise http.client.IncompleteRead(b"".join(parts), answer.length)
    return Response(status=status, headers=MappingProxyType(names), body=b"".join(parts))


# -- the public function -------------------------------------------------------


def fetch(
    url: str,
    *,
    timeout: float,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    expect: Collection[int] | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_header_bytes: int = DEFAULT_MAX_HEADER_BYTES,
    same_origin_redirects: int = 0,
    tls: ssl.SSLContext | None = None,
    cafile: str | os.PathLike[str] | None = None,
    name: str = "service",
    check: str | None = None,
    unix_socket: str | os.PathLike[str] | None = None,
) -> Response:
    """``method`` ``url`` and return the whole answer, all within ``timeout`` seconds.

    ``expect``: the statuses accepted (others raise, phase ``status``, without
    reading the body); ``None`` returns any non-redirect answer.
    ``same_origin_redirects``: how many redirects to the same scheme, host and
    port to follow (301/302/303 continue as GET without body); any other
    redirect raises (phase ``redirect``).  Userinfo in ``url`` is sent as Basic
    authorisation and never shown.  ``name`` starts the error message
    ("keys unavailable from ..."), ``check`` is the errors' check.
    ``unix_socket``: connect to this Unix socket instead (a local agent such
    as dstack's); ``url`` then gives only the Host header and the path.

    Raises :class:`ServiceUnavailable` for every network fault and
    :class:`ConfigurationError` for a URL that is not http(s).
    """
    if timeout <= 0 or max_bytes < 0 or max_header_bytes <= 0 or same_origin_redirects < 0:
        raise ValueError("timeout and max_header_bytes must be positive, the others not negative")
    method = method.upper()
    if method not in ("GET", "POST"):
        raise ValueError(f"unsupported method {method!r}")
    check = check or ServiceUnavailable.default_check
    deadline = time.monotonic() + timeout
    target, authorization = _parse(url, check, name)
    # Loading the system roots costs ~100 ms: only https needs them.
    context = _tls_context(tls, cafile) if target.scheme == "https" else None
    request_headers = {
        "Host": target.host_header,
        "User-Agent": _USER_AGENT,
        "Accept-Encoding": "identity",
        "Connection": "close",
    }
    if authorization is not None:
        request_headers["Authorization"] = authorization
    for key, value in (headers or {}).items():
        if any(c in key + value for c in "\r\n\0"):
            raise ValueError(f"header {key!r} contains a line break")
        request_headers[key] = value
    limits = _Limits(max_bytes=max_bytes, max_header_bytes=max_header_bytes)
    unix_path = os.fspath(unix_socket) if unix_socket is not None else None

    def read_body(status: int) -> bool:
        return status not in REDIRECT_STATUSES and (expect is None or status in expect)

    hops = 0
    while True:
        failure = _Failure(target=target, name=name, check=check, timeout=timeout)
        try:
            response = _exchange(
                target,
                method,
                request_headers,
                body,
                deadline=deadline,
                limits=limits,
                read_body=read_body,
                context=context if target.scheme == "https" else None,
                proxy=None if unix_path is not None else _proxy_for(target),
                unix_socket=unix_path,
            )
        except _Fault as fault:
            raise failure.classify(fault) from None
        status = response.status
        if status in REDIRECT_STATUSES:
            location = response.header("location")
            if location is None:
                raise failure.error("redirect", f"HTTP {status} without a Location")
            next_url = urllib.parse.urljoin(target.url, location)
            try:
                following, _ = _parse(next_url, check, name)
            except ConfigurationError:
                following = None
            if following is None or following.origin != target.origin:
                raise failure.error(
                    "redirect",
                    f"HTTP {status} to another origin is not followed",
                    actual=redact_url(next_url),
                )
            if hops >= same_origin_redirects:
                raise failure.error(
                    "redirect",
                    f"HTTP {status}: redirects are not followed",
                    actual=redact_url(next_url),
                )
            hops += 1
            target = following
            if status in (301, 302, 303) and method == "POST":
                method, body = "GET", None
                request_headers = {
                    k: v for k, v in request_headers.items() if k.lower() != "content-type"
                }
            continue
        if expect is not None and status not in expect:
            raise failure.error("status", f"HTTP {status}", expected=sorted(expect), actual=status)
        return response


@attrs.define
class _Failure:
    target: _Target
    name: str
    check: str
    timeout: float

    def error(
        self, phase: str, detail: str, *, expected: Any = None, actual: Any = None
    ) -> ServiceUnavailable:
        service = redact_url(self.target.url)
        return ServiceUnavailable(
            f"{self.name} unavailable from {service}: {phase}: {detail}",
            service=service,
            phase=phase,
            check=self.check,
            expected=expected,
            actual=actual,
        )

    def classify(self, fault: _Fault) -> ServiceUnavailable:
        """Name the phase of a low-level fault; never quote text from the exception."""
        exc, step = fault.cause, fault.step
        if isinstance(exc, TimeoutError):
            return self.error("timeout", f"no complete answer within {self.timeout:g} s ({step})")
        if isinstance(exc, _TooLarge):
            if step == "reading the body":
                return self.error("too large", "the body exceeds the limit")
            return self.error("too large", "the header block exceeds the limit")
        if isinstance(exc, http.client.LineTooLong):
            return self.error("too large", "a header line exceeds the limit")
        if isinstance(exc, http.client.RemoteDisconnected):
            return self.error("protocol", "the server closed the connection without answering")
        if isinstance(exc, http.client.IncompleteRead):
            return self.error("protocol", "the answer was cut short")
        if isinstance(exc, http.client.HTTPException):
            if "more than" in str(exc):  # http.client's limit on the number of headers
                return self.error("too large", "too many header lines")
            return self.error("protocol", f"not a valid HTTP answer ({type(exc).__name__})")
        if isinstance(exc, _ProxyRefused):
            return self.error("connect", f"the proxy refused the tunnel (HTTP {exc.args[0]})")
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = exc.verify_message or exc.reason or "unknown reason"
            return self.error("tls", f"certificate verification failed: {reason}")
        if isinstance(exc, ssl.SSLError):
            return self.error("tls", f"TLS failed: {exc.reason or type(exc).__name__}")
        if step in ("connecting", "resolving the host name", "opening the proxy tunnel"):
            return self.error("connect", _os_text(exc))
        if step == "in the TLS handshake":
            return self.error("tls", f"the connection was lost: {_os_text(exc)}")
        return self.error("protocol", f"the connection was lost {step}: {_os_text(exc)}")


def _os_text(exc: BaseException) -> str:
    strerror = getattr(exc, "strerror", None)
    return f"{type(exc).__name__}: {strerror}" if strerror else type(exc).__name__


# -- single flight -------------------------------------------------------------

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    """Concurrent ``run(key, fn)`` calls for one key share one call of ``fn``.

    The lock guards only the table of calls in flight; it is never held while
    ``fn`` runs, so a slow key delays only the callers of that key.  Waiters
    get the leader's value or its exception (an atls error as a copy of their
    own: one object raised in many threads would have its traceback and context
    rewritten by each).  Nothing is cached: callers keep their own (they know
    how long an answer stays good).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[K, Future[V]] = {}
        self._waiting = 0

    def run(self, key: K, fn: Callable[[], V]) -> V:
        with self._lock:
            call = self._calls.get(key)
            leader = call is None
            if call is None:
                call = self._calls[key] = Future()
            else:
                self._waiting += 1
        if not leader:
            try:
                return call.result()
            except ATLSError as shared:
                raise shared.fresh() from shared.__cause__
            finally:
                with self._lock:
                    self._waiting -= 1
        try:
            value = fn()
        except BaseException as exc:
            call.set_exception(exc)
            raise
        else:
            call.set_result(value)
            return value
        finally:
            with self._lock:
                del self._calls[key]

    def in_flight(self) -> int:
        """How many keys are being fetched now (for tests and metrics)."""
        with self._lock:
            return len(self._calls)

    def waiting(self) -> int:
        """How many callers wait for another's call now (for tests and metrics)."""
        with self._lock:
            return self._waiting
