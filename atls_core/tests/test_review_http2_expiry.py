"""HTTP/2 connections of the httpx transports take no request once their result expired.

httpcore keeps an HTTP/2 connection while requests keep it busy and starts its keep-alive
timer only once it is idle, so without atls retiring it a busy connection would carry
requests on an expired attestation result for as long as it lives.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import socket
import ssl
import threading
from collections.abc import Iterator

import httpx
import pytest

from atls_core.httpx_transport import atls_async_httpx_client, atls_httpx_client, attestation_result
from atls_core.result import AttestationResult
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.simulated import SimulatedIssuer
from atls_core.tls import ATLSContext

h2_connection = pytest.importorskip("h2.connection")
h2_config = pytest.importorskip("h2.config")
h2_events = pytest.importorskip("h2.events")
h2_exceptions = pytest.importorskip("h2.exceptions")


class MovableClock:
    """The client's and the simulated TEE's time, moved together by the test."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.at


class H2Server:
    """A TLS server speaking HTTP/2 only; answers each request with its path.

    ``connections`` counts TLS connections; a request for ``/hold`` is answered with
    headers only until ``release`` is set, so its stream stays open.
    """

    def __init__(self, context: ssl.SSLContext) -> None:
        self._context = context
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.connections = 0
        self.release = threading.Event()
        self._threads: list[threading.Thread] = []

    def url(self, path: str) -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def __enter__(self) -> H2Server:
        thread = threading.Thread(target=self._accept, daemon=True)
        thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                raw, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw: socket.socket) -> None:
        with raw, self._context.wrap_socket(raw, server_side=True) as tls:
            conn = h2_connection.H2Connection(h2_config.H2Configuration(client_side=False))
            conn.initiate_connection()
            tls.sendall(conn.data_to_send())
            while True:
                try:
                    data = tls.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                try:
                    events = conn.receive_data(data)
                except h2_exceptions.ProtocolError:  # an HTTP/1.1 client: not ours to serve
                    return
                for event in events:
                    if isinstance(event, h2_events.RequestReceived):
                        self._answer(tls, conn, event)
                tls.sendall(conn.data_to_send())

    def _answer(self, tls: ssl.SSLSocket, conn: object, event: object) -> None:
        stream_id = event.stream_id  # type: ignore[attr-defined]
        path = dict(event.headers)[b":path"]  # type: ignore[attr-defined]
        conn.send_headers(stream_id, [(":status", "200")])  # type: ignore[attr-defined]
        if path == b"/hold":
            tls.sendall(conn.data_to_send())  # type: ignore[attr-defined]
            threading.Thread(target=self._finish_later, args=(tls, conn, stream_id)).start()
            return
        conn.send_data(stream_id, path, end_stream=True)  # type: ignore[attr-defined]

    def _finish_later(self, tls: ssl.SSLSocket, conn: object, stream_id: int) -> None:
        self.release.wait(10)
        conn.send_data(stream_id, b"/hold", end_stream=True)  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            tls.sendall(conn.data_to_send())  # type: ignore[attr-defined]


@pytest.fixture
def setup(tee: SimulatedTEE) -> Iterator[tuple[MovableClock, ATLSContext, H2Server]]:
    clock = MovableClock()
    issuer = SimulatedIssuer(tee.hardware.issuer_settings(), clock=clock)
    certificates = AttestedCertificates(issuer, alpn_protocols=["h2"])
    context = ATLSContext.for_validator(tee.selected(), clock=clock)
    with H2Server(certificates.server_context()) as server:
        yield clock, context, server


def _result(response: httpx.Response) -> AttestationResult:
    assert response.http_version == "HTTP/2"
    result = attestation_result(response)
    assert result is not None
    return result


# A keep-alive long enough that only the attestation can retire the connection.
_OPTIONS = {"http2": True, "limits": httpx.Limits(keepalive_expiry=3600)}


def test_sync_http2_appraises_anew_once_the_result_expires(
    setup: tuple[MovableClock, ATLSContext, H2Server],
) -> None:
    clock, context, server = setup
    with atls_httpx_client(context=context, transport_options=_OPTIONS, timeout=10) as client:
        first = _result(client.get(server.url("/1")))
        assert _result(client.get(server.url("/2"))) is first
        assert server.connections == 1
        assert first.expires_at is not None
        clock.at = first.expires_at
        after = _result(client.get(server.url("/3")))
    assert server.connections == 2
    assert after.binding.nonce != first.binding.nonce


def test_a_busy_http2_connection_takes_no_request_once_its_result_expired(
    setup: tuple[MovableClock, ATLSContext, H2Server],
) -> None:
    clock, context, server = setup
    with (
        atls_httpx_client(context=context, transport_options=_OPTIONS, timeout=10) as client,
        client.stream("GET", server.url("/hold")) as held,
    ):
        first = _result(held)
        assert first.expires_at is not None
        clock.at = first.expires_at
        after = _result(client.get(server.url("/new")))
        server.release.set()
        assert held.read() == b"/hold"
    assert server.connections == 2
    assert after.binding.nonce != first.binding.nonce


def test_async_http2_appraises_anew_once_the_result_expires(
    setup: tuple[MovableClock, ATLSContext, H2Server],
) -> None:
    clock, context, server = setup

    async def main() -> tuple[AttestationResult, AttestationResult]:
        async with atls_async_httpx_client(
            context=context, transport_options=_OPTIONS, timeout=10
        ) as client:
            first = _result(await client.get(server.url("/1")))
            assert _result(await client.get(server.url("/2"))) is first
            assert first.expires_at is not None
            clock.at = first.expires_at
            return first, _result(await client.get(server.url("/3")))

    first, after = asyncio.run(main())
    assert server.connections == 2
    assert after.binding.nonce != first.binding.nonce


def test_the_client_functions_pass_http2_to_the_atls_transport(
    setup: tuple[MovableClock, ATLSContext, H2Server],
) -> None:
    # httpx.Client applies http2= only to transports it builds itself: given to
    # atls_httpx_client, it used to leave the attested transport on HTTP/1.1 (this
    # server speaks HTTP/2 only, so the request failed).
    _clock, context, server = setup
    with atls_httpx_client(context=context, http2=True, timeout=10) as client:
        assert _result(client.get(server.url("/1"))).accepted

    async def main() -> AttestationResult:
        async with atls_async_httpx_client(context=context, http2=True, timeout=10) as client:
            return _result(await client.get(server.url("/2")))

    assert asyncio.run(main()).accepted
    with (
        atls_httpx_client(
            context=context, http2=True, transport_options={"http2": False}, timeout=10
        ) as client,
        pytest.raises(httpx.HTTPError),
    ):
        client.get(server.url("/3"))  # the transport's own options win
