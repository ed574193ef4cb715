"""The bounded fetch helper against real loopback servers (plain HTTP and real TLS)."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import trustme

from atls_core.errors import CollateralUnavailable, ConfigurationError, ServiceUnavailable
from atls_core.fetch import Response, SingleFlight, fetch
from atls_core.testing.loopback import ConnectProxy, read_head, serve_connections

SECRET = "s3cr3t-t0ken"
QUERY_SECRET = "q-s3cr3t"

Handler = Callable[["Server", socket.socket, bytes, bytes], None]


class Server:
    """A loopback TCP server: reads one request per connection, then runs ``handler``.

    Handlers write raw bytes, so they can misbehave (drip, lie, stall) in ways
    a well-behaved HTTP server never would.  ``stop`` ends stalling handlers.
    """

    def __init__(self, handler: Handler, *, tls: ssl.SSLContext | None = None) -> None:
        self.handler = handler
        self.tls = tls
        self.stop = threading.Event()
        self.requests: list[tuple[bytes, bytes]] = []
        self.started = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(
            target=serve_connections, args=(self._listener, self._one), daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.stop.set()
        self._listener.close()

    def _one(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            if self.tls is not None:
                conn = self.tls.wrap_socket(conn, server_side=True)
            received = read_head(conn)
            if received is None:
                return
            head, _, body = received.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    while len(body) < int(value):
                        body += conn.recv(4096)
            self.requests.append((head, body))
            self.started.set()
            self.handler(self, conn, head, body)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def header(self, index: int, name: str) -> str | None:
        for line in self.requests[index][0].split(b"\r\n")[1:]:
            key, _, value = line.decode("latin-1").partition(":")
            if key.strip().lower() == name.lower():
                return value.strip()
        return None


def answer(
    status: int = 200, body: bytes = b'{"ok": true}', headers: dict[str, str] | None = None
) -> Handler:
    def handle(server: Server, conn: socket.socket, head: bytes, request_body: bytes) -> None:
        lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)

    return handle


def raw(data: bytes) -> Handler:
    def handle(server: Server, conn: socket.socket, head: bytes, body: bytes) -> None:
        conn.sendall(data)

    return handle


# The slow servers give up after a few seconds and hang up: a client without a whole-fetch
# deadline then fails for another reason ("closed", "protocol"), never with phase "timeout".
SLOW_SECONDS = 6


def drip(start: bytes) -> Handler:
    """``start`` at once, then one byte more per second."""

    def handle(server: Server, conn: socket.socket, head: bytes, body: bytes) -> None:
        conn.sendall(start)
        for _ in range(SLOW_SECONDS):
            if server.stop.wait(1):
                return
            conn.sendall(b"x")

    return handle


drip_body = drip(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
"""Headers at once, then one byte of the promised body per second."""
drip_headers = drip(b"HTTP/1.1 200 OK\r\nX-Slow: ")


def silent(server: Server, conn: socket.socket, head: bytes, body: bytes) -> None:
    server.stop.wait(SLOW_SECONDS)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(handler: Handler, *, tls: ssl.SSLContext | None = None) -> Server:
        server = Server(handler, tls=tls)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _unavailable(call: Callable[[], object]) -> ServiceUnavailable:
    with pytest.raises(ServiceUnavailable) as info:
        call()
    assert isinstance(info.value, CollateralUnavailable), "a fetch fault is 'could not decide'"
    return info.value


# -- ordinary exchanges ----------------------------------------------------------


def test_get_returns_status_headers_and_body(serve: Callable[..., Server]) -> None:
    server = serve(answer(200, b"hello", {"X-Thing": "a"}))
    response = fetch(server.url + "/path?x=1", timeout=5, headers={"Accept": "text/plain"})
    assert response == Response(status=200, headers=response.headers, body=b"hello")
    assert response.header("x-thing") == "a"
    assert response.header("Content-Length") == "5"
    assert server.requests[0][0].startswith(b"GET /path?x=1 HTTP/1.1\r\n")
    assert server.header(0, "accept") == "text/plain"
    assert server.header(0, "host") == f"127.0.0.1:{server.port}"
    assert server.header(0, "authorization") is None


def test_post_sends_the_body(serve: Callable[..., Server]) -> None:
    server = serve(answer(201, b""))
    response = fetch(server.url + "/p", timeout=5, method="POST", body=b'{"a": 1}')
    assert response.status == 201
    assert server.requests[0][0].startswith(b"POST /p HTTP/1.1")
    assert server.requests[0][1] == b'{"a": 1}'


def test_chunked_and_close_delimited_bodies(serve: Callable[..., Server]) -> None:
    chunked = serve(
        raw(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
        )
    )
    assert fetch(chunked.url, timeout=5).body == b"abcde"
    close_delimited = serve(raw(b"HTTP/1.0 200 OK\r\n\r\nuntil the end"))
    assert fetch(close_delimited.url, timeout=5).body == b"until the end"


def test_status_is_the_callers_unless_expect_is_given(serve: Callable[..., Server]) -> None:
    server = serve(answer(503, b"busy"))
    assert fetch(server.url, timeout=5).status == 503
    error = _unavailable(lambda: fetch(server.url + "/k", timeout=5, expect=(200,), name="keys"))
    assert error.phase == "status"
    assert error.actual == 503
    assert error.expected == [200]
    assert error.service == f"http://127.0.0.1:{server.port}/***"
    assert str(error).startswith(f"service.fetch: keys unavailable from {error.service}: status")


def test_localhost_name_is_resolved(serve: Callable[..., Server]) -> None:
    server = serve(answer())
    assert fetch(f"http://localhost:{server.port}/", timeout=5).status == 200


# -- the deadline ------------------------------------------------------------------


@pytest.mark.parametrize(
    "handler", [drip_body, drip_headers, silent], ids=["drip_body", "drip_headers", "silent"]
)
def test_deadline_bounds_the_whole_fetch(serve: Callable[..., Server], handler: Handler) -> None:
    """A server making progress byte by byte cannot stretch the deadline (per-read timeouts could)."""
    server = serve(handler)
    error = _unavailable(lambda: fetch(server.url + "/keys", timeout=1))
    assert error.phase == "timeout"
    assert "within 1 s" in str(error)


def test_slow_fetch_does_not_block_another(serve: Callable[..., Server]) -> None:
    slow = serve(drip_body)
    fast = serve(answer(200, b"fast"))
    outcome: list[BaseException] = []

    def slow_fetch() -> None:
        try:
            fetch(slow.url, timeout=5)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=slow_fetch)
    thread.start()
    assert slow.started.wait(5)
    assert fetch(fast.url, timeout=5).body == b"fast"
    assert thread.is_alive(), "the fast fetch finished while the slow one was still running"
    slow.stop.set()
    thread.join(10)
    assert len(outcome) == 1


# -- size caps -----------------------------------------------------------------------


def test_body_over_the_cap_is_refused(serve: Callable[..., Server]) -> None:
    declared = serve(answer(200, b"x" * 5000))
    error = _unavailable(lambda: fetch(declared.url, timeout=5, max_bytes=1000))
    assert error.phase == "too large"
    assert "too large" in str(error)
    exact = serve(answer(200, b"x" * 1000))
    assert len(fetch(exact.url, timeout=5, max_bytes=1000).body) == 1000
    chunks = b"".join(b"100\r\n" + b"y" * 256 + b"\r\n" for _ in range(20)) + b"0\r\n\r\n"
    chunked = serve(raw(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks))
    assert _unavailable(lambda: fetch(chunked.url, timeout=5, max_bytes=1000)).phase == "too large"
    endless = serve(raw(b"HTTP/1.0 200 OK\r\n\r\n" + b"z" * 5000))
    assert _unavailable(lambda: fetch(endless.url, timeout=5, max_bytes=1000)).phase == "too large"


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * 100_000 + b"\r\n\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(300)) + b"\r\n",
        b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"v" * 9000) for i in range(9)),
    ],
    ids=["long-line", "many-lines", "big-block"],
)
def test_header_block_over_the_cap_is_refused(serve: Callable[..., Server], head: bytes) -> None:
    server = serve(raw(head + b"\r\n"))
    error = _unavailable(lambda: fetch(server.url, timeout=5, max_header_bytes=16_384))
    assert error.phase == "too large"


def test_truncated_and_garbage_answers_are_protocol_faults(serve: Callable[..., Server]) -> None:
    cut = serve(raw(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"))
    assert _unavailable(lambda: fetch(cut.url, timeout=5)).phase == "protocol"
    garbage = serve(raw(b"SMTP READY\r\n\r\n"))
    assert _unavailable(lambda: fetch(garbage.url, timeout=5)).phase == "protocol"
    hangup = serve(raw(b""))
    assert _unavailable(lambda: fetch(hangup.url, timeout=5)).phase == "protocol"


def test_connection_refused() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    error = _unavailable(lambda: fetch(f"http://127.0.0.1:{port}/", timeout=5))
    assert error.phase == "connect"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://127.0.0.1/x", "http:///nohost"])
def test_only_http_urls(url: str) -> None:
    with pytest.raises(ConfigurationError):
        fetch(url, timeout=1)


# -- redirects -----------------------------------------------------------------------


def test_redirects_are_refused_by_default(serve: Callable[..., Server]) -> None:
    target = serve(answer())
    server = serve(answer(302, b"", {"Location": target.url + "/elsewhere"}))
    error = _unavailable(lambda: fetch(server.url + "/keys", timeout=5, name="keys"))
    assert error.phase == "redirect"
    assert error.service == f"http://127.0.0.1:{server.port}/***"
    assert target.requests == []
    same = serve(answer(301, b"", {"Location": "/moved"}))
    assert _unavailable(lambda: fetch(same.url, timeout=5)).phase == "redirect"


def test_same_origin_redirects_only_when_allowed(serve: Callable[..., Server]) -> None:
    def handler(server: Server, conn: socket.socket, head: bytes, body: bytes) -> None:
        if head.startswith((b"GET /start ", b"POST /start ")):
            answer(303, b"", {"Location": "/next"})(server, conn, head, body)
        else:
            answer(200, b"arrived")(server, conn, head, body)

    server = serve(handler)
    response = fetch(
        server.url + "/start", timeout=5, method="POST", body=b"x", same_origin_redirects=1
    )
    assert response.body == b"arrived"
    assert server.requests[1][0].startswith(b"GET /next HTTP/1.1"), "303 continues as GET"


def test_cross_origin_redirect_refused_even_when_redirects_are_allowed(
    serve: Callable[..., Server],
) -> None:
    other = serve(answer())
    server = serve(answer(307, b"", {"Location": other.url + "/x"}))
    error = _unavailable(lambda: fetch(server.url, timeout=5, same_origin_redirects=5))
    assert error.phase == "redirect"
    assert other.requests == []


def test_redirect_hops_are_limited(serve: Callable[..., Server]) -> None:
    server = serve(answer(302, b"", {"Location": "/again"}))
    error = _unavailable(lambda: fetch(server.url, timeout=5, same_origin_redirects=3))
    assert error.phase == "redirect"
    assert len(server.requests) == 4


# -- credentials never shown ---------------------------------------------------------


def _assert_no_secret(error: ServiceUnavailable) -> None:
    for text in (str(error), repr(error), json.dumps(error.to_dict()), error.service, error.reason):
        assert SECRET not in text
        assert QUERY_SECRET not in text
        assert "user" not in text


@pytest.mark.parametrize("handler", [answer(503), silent, raw(b"junk\r\n\r\n")])
def test_url_credentials_never_appear_in_errors(
    serve: Callable[..., Server], handler: Handler
) -> None:
    server = serve(handler)
    url = f"http://user:{SECRET}@127.0.0.1:{server.port}/pccs?api_key={QUERY_SECRET}"
    error = _unavailable(lambda: fetch(url, timeout=1, expect=(200,)))
    _assert_no_secret(error)
    assert error.service == f"http://127.0.0.1:{server.port}/***"


def test_url_credentials_are_sent_as_basic_auth(serve: Callable[..., Server]) -> None:
    server = serve(answer())
    fetch(f"http://user:{SECRET}@127.0.0.1:{server.port}/x", timeout=5)
    expected = base64.b64encode(f"user:{SECRET}".encode()).decode()
    assert server.header(0, "authorization") == f"Basic {expected}"


def test_credentials_of_a_refused_host_never_appear() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()
    url = f"https://user:{SECRET}@127.0.0.1:{port}/sgx/certification/v4?k={QUERY_SECRET}"
    _assert_no_secret(_unavailable(lambda: fetch(url, timeout=2)))


# -- TLS -----------------------------------------------------------------------------


def _tls_server(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(context)
    return context


def test_tls_is_verified_by_default(serve: Callable[..., Server], ca: trustme.CA) -> None:
    server = serve(answer(), tls=_tls_server(ca, "127.0.0.1"))
    error = _unavailable(lambda: fetch(server.url + "/keys", timeout=5))
    assert error.phase == "tls"
    assert "certificate verification failed" in str(error)
    assert server.requests == [], "nothing was sent over an unverified connection"


def test_tls_with_the_right_ca(
    serve: Callable[..., Server], ca: trustme.CA, tmp_path: Path
) -> None:
    server = serve(answer(200, b"secure"), tls=_tls_server(ca, "127.0.0.1", "localhost"))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    assert fetch(server.url, timeout=5, cafile=ca_file).body == b"secure"
    context = ssl.create_default_context()
    ca.configure_trust(context)
    assert fetch(f"https://localhost:{server.port}/", timeout=5, tls=context).body == b"secure"


def test_tls_hostname_must_match(
    serve: Callable[..., Server], ca: trustme.CA, tmp_path: Path
) -> None:
    server = serve(answer(), tls=_tls_server(ca, "other.example"))
    ca_file = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    assert _unavailable(lambda: fetch(server.url, timeout=5, cafile=ca_file)).phase == "tls"


def test_tls_handshake_is_inside_the_deadline(serve: Callable[..., Server]) -> None:
    server = serve(silent)  # accepts TCP, never answers the ClientHello
    error = _unavailable(lambda: fetch(f"https://127.0.0.1:{server.port}/", timeout=1))
    assert error.phase == "timeout"
    assert "TLS handshake" in str(error)


def test_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        fetch("https://127.0.0.1:1/", timeout=1, cafile=tmp_path / "missing.pem")


# -- proxies from the environment ----------------------------------------------------


def test_https_goes_through_the_environment_proxy(
    serve: Callable[..., Server], ca: trustme.CA, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = serve(answer(200, b"tunnelled"), tls=_tls_server(ca, "keys.test"))
    with ConnectProxy(server.port) as proxy:
        monkeypatch.setenv("https_proxy", proxy.url.replace("://", "://pu:pw@"))
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        ca_file = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        response = fetch("https://keys.test/certs", timeout=5, cafile=ca_file)
        assert response.body == b"tunnelled"
        assert proxy.tunnels == ["keys.test:443"]
        assert proxy.auth == ["Basic " + base64.b64encode(b"pu:pw").decode()]
        assert server.header(0, "host") == "keys.test", "TLS and HTTP are end to end"
        # Loopback never goes through a proxy, whatever the environment says.
        local = serve(answer(200, b"direct"))
        assert fetch(local.url, timeout=5).body == b"direct"
        assert len(proxy.tunnels) == 1


# -- a local agent on a Unix socket --------------------------------------------------


def test_unix_socket_agent_is_bounded_too() -> None:
    """dstack's guest agent speaks HTTP over a Unix socket; the same deadline applies."""
    folder = Path(tempfile.mkdtemp(prefix="atls-"))
    path = folder / "agent.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        requests = ((b"\r\n\r\n{}", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"),)
        for end, reply in (*requests, (b"\r\n\r\n", None)):
            conn, _ = listener.accept()
            with conn:
                received = b""
                while not received.endswith(end):  # the whole request, body included
                    received += conn.recv(65536)
                if reply is not None:
                    conn.sendall(reply)
                else:
                    stop.wait(10)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        response = fetch(
            "http://dstack/GetQuote", unix_socket=path, method="POST", body=b"{}", timeout=5
        )
        assert response.body == b"{}"
        error = _unavailable(lambda: fetch("http://dstack/GetQuote", unix_socket=path, timeout=1))
        assert error.phase == "timeout"
    finally:
        stop.set()
        listener.close()
        thread.join(5)
        path.unlink(missing_ok=True)
        folder.rmdir()


# -- single flight -------------------------------------------------------------------


def test_single_flight_shares_one_call_and_holds_no_lock() -> None:
    flights: SingleFlight[str, int] = SingleFlight()
    gate = threading.Event()
    calls: list[str] = []
    results: list[int] = []

    def slow() -> int:
        calls.append("a")
        gate.wait(10)
        return 7

    entered = threading.Semaphore(0)

    def worker() -> None:
        entered.release()
        results.append(flights.run("a", slow))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for _ in threads:
        assert entered.acquire(timeout=5)
    assert flights.run("b", lambda: 3) == 3, "another key is not blocked by the one in flight"
    assert flights.in_flight() == 1
    gate.set()
    for thread in threads:
        thread.join(10)
    assert results == [7] * 8
    assert len(calls) <= 2  # one flight (a thread scheduled late may start a second)
    assert flights.in_flight() == 0


def test_single_flight_shares_the_failure() -> None:
    flights: SingleFlight[str, int] = SingleFlight()

    def broken() -> int:
        raise ServiceUnavailable("down", phase="connect")

    with pytest.raises(ServiceUnavailable):
        flights.run("k", broken)
    assert flights.in_flight() == 0
    assert flights.run("k", lambda: 1) == 1, "a failure is not remembered"
