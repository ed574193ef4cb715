"""The SKR sidecar request uses the core's bounded fetch: one deadline, no redirects."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from atls_azure.issuer import AciIssuer
from atls_core.config import Secret
from atls_core.errors import ConfigurationError, ServiceUnavailable

TOKEN = "sidecar-t0ken-41d9"


class Sidecar:
    """A loopback stand-in for a misbehaving sidecar: drips or redirects."""

    def __init__(self) -> None:
        self.drip = False
        self.redirect_to: str | None = None
        self.status = 200
        self.requests = 0
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                server.requests += 1
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if server.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(server.status)
                self.send_header("Content-Length", "100000" if server.drip else "0")
                self.end_headers()
                self.wfile.flush()
                while server.drip and not server.stop.wait(1):
                    self.wfile.write(b" ")
                    self.wfile.flush()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def sidecar() -> Iterator[Sidecar]:
    server = Sidecar()
    yield server
    server.close()


def test_sidecar_request_ends_at_its_deadline(sidecar: Sidecar) -> None:
    sidecar.drip = True
    issuer = AciIssuer({"sidecar_url": sidecar.url, "maa_endpoint": "x", "timeout": 1})
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        issuer.token_for(b"spki", bytes(32))
    assert time.monotonic() - started < 4
    assert (info.value.check, info.value.phase) == ("azure.sidecar", "timeout")


def test_sidecar_redirect_is_refused(sidecar: Sidecar) -> None:
    """urlopen used to follow it, with the attestation request, to wherever it pointed."""
    other = Sidecar()
    try:
        sidecar.redirect_to = other.url + "/attest/maa"
        issuer = AciIssuer({"sidecar_url": sidecar.url, "maa_endpoint": "x"})
        with pytest.raises(ServiceUnavailable) as info:
            issuer.token_for(b"spki", bytes(32))
        assert info.value.phase == "redirect"
        assert other.requests == 0
    finally:
        other.close()


def test_sidecar_url_credentials_are_not_shown(sidecar: Sidecar) -> None:
    sidecar.status = 500
    url = Secret(f"http://op:{TOKEN}@127.0.0.1:{sidecar.port}", "test")
    issuer = AciIssuer({"sidecar_url": url, "maa_endpoint": "x"})
    with pytest.raises(ServiceUnavailable) as info:
        issuer.token_for(b"spki", bytes(32))
    assert info.value.phase == "status"
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert TOKEN not in text


@pytest.mark.parametrize("timeout", [0, -1, "soon", True, float("nan")])
def test_timeout_must_be_positive(timeout: object) -> None:
    with pytest.raises(ConfigurationError):
        AciIssuer({"maa_endpoint": "x", "timeout": timeout})
