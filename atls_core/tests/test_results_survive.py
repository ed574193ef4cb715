"""Attestation results stay readable after the server closes the connection.

``http.client`` drops its socket (``sock = None``) as soon as a response says
``Connection: close`` or is HTTP/1.0, so a result read from the live socket
would be ``None`` exactly when the server hangs up: the results are kept from
the moment the connection was made.  Two kinds of server, both real TLS on
127.0.0.1: an HTTP/1.0 one (body delimited by the close) and an HTTP/1.1 one
that answers ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import ssl
from typing import Any

import httpx
import pytest
import requests

from atls_core.connection import HTTPAConnection
from atls_core.httpx_transport import (
    atls_async_httpx_client,
    atls_httpx_client,
)
from atls_core.httpx_transport import (
    attestation_result as httpx_result,
)
from atls_core.requests_adapter import ATLSAdapter
from atls_core.result import AttestationResult
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE

STYLES = ("http/1.0", "connection-close")


class _ClosingHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with its path, then closes the connection."""

    server: ClosingServer

    def do_GET(self) -> None:
        self.server.note_request(self)  # type: ignore[arg-type]
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        if self.server.style == "connection-close":
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        return


class _HTTP10Handler(_ClosingHandler):
    protocol_version = "HTTP/1.0"


class _HTTP11Handler(_ClosingHandler):
    protocol_version = "HTTP/1.1"


class ClosingServer(HTTPSServer):
    """The loopback HTTPS server with a handler that hangs up after each response."""

    def __init__(self, context: ssl.SSLContext, style: str) -> None:
        super().__init__(context)
        self.style = style
        self.RequestHandlerClass = _HTTP10Handler if style == "http/1.0" else _HTTP11Handler


@pytest.fixture(params=STYLES)
def server(request: pytest.FixtureRequest, tee: SimulatedTEE) -> Any:
    with ClosingServer(tee.certificates().server_context(), request.param) as running:
        yield running


def _accepted(result: AttestationResult | None) -> AttestationResult:
    assert isinstance(result, AttestationResult)
    assert result.accepted
    assert result.binding.nonce is not None
    return result


def _distinct(first: AttestationResult, second: AttestationResult) -> None:
    """Each connection keeps its own result, never the previous connection's."""
    assert first is not second
    assert first.binding.nonce != second.binding.nonce


def test_http_client_connection(tee: SimulatedTEE, server: ClosingServer) -> None:
    connection = HTTPAConnection("127.0.0.1", server.port, validator=tee.selected(), timeout=10)
    try:
        connection.request("GET", "/one")
        response = connection.getresponse()
        # The premise: http.client has already let go of the socket.
        assert connection.sock is None
        first = _accepted(connection.attestation_result)
        assert json.loads(response.read()) == {"path": "/one"}
        assert connection.attestation_result is first
        # http.client reconnects for the next request: a new appraisal, a new result.
        connection.request("GET", "/two")
        assert json.loads(connection.getresponse().read()) == {"path": "/two"}
        _distinct(first, _accepted(connection.attestation_result))
    finally:
        connection.close()
    assert server.handshakes == 2


def test_requests_adapter(tee: SimulatedTEE, server: ClosingServer) -> None:
    session = requests.Session()
    session.trust_env = False
    session.mount("httpa://", ATLSAdapter(validator=tee.selected()))
    with session:
        first = session.get(server.url("httpa", "/one"), timeout=10)
        second = session.get(server.url("httpa", "/two"), timeout=10)
        streamed = session.get(server.url("httpa", "/three"), stream=True, timeout=10)
        with streamed:
            assert streamed.json() == {"path": "/three"}
    assert first.json() == {"path": "/one"}
    if server.style == "http/1.0":
        assert first.raw.version == 10
    else:
        assert first.headers["Connection"] == "close"
    results = [
        _accepted(getattr(response, "attestation_result", None))
        for response in (first, second, streamed)
    ]
    _distinct(results[0], results[1])
    _distinct(results[1], results[2])
    assert server.handshakes == 3


def test_httpx_sync(tee: SimulatedTEE, server: ClosingServer) -> None:
    with atls_httpx_client(validator=tee.selected(), timeout=10) as client:
        first = client.get(server.url("https", "/one"))
        with client.stream("GET", server.url("httpa", "/two")) as second:
            second.read()
    assert first.json() == {"path": "/one"}
    assert second.json() == {"path": "/two"}
    _distinct(_accepted(httpx_result(first)), _accepted(httpx_result(second)))
    assert server.handshakes == 2


def test_httpx_async(tee: SimulatedTEE, server: ClosingServer) -> None:
    async def main() -> list[httpx.Response]:
        async with atls_async_httpx_client(validator=tee.selected(), timeout=10) as client:
            return [await client.get(server.url("https", f"/{i}")) for i in range(2)]

    first, second = asyncio.run(main())
    assert second.json() == {"path": "/1"}
    _distinct(_accepted(httpx_result(first)), _accepted(httpx_result(second)))
    assert server.handshakes == 2
