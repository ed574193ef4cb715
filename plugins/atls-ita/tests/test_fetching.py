"""ITA's network reads use the core's bounded fetch: one deadline, no redirects, no leaks."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from atls_core.config import Secret
from atls_core.errors import CollateralUnavailable, ConfigurationError, ServiceUnavailable
from atls_ita.client import ItaClient
from atls_ita.trust import CrlCache
from atls_ita.validator import ItaValidator

API_KEY = "ita-fetch-test-key-0c2a"
TOKEN = "jwks-url-t0ken-77b1"


class Misbehaving:
    """A loopback HTTP server that drips (``drip``) or redirects (``redirect_to``)."""

    def __init__(self) -> None:
        self.drip = False
        self.redirect_to: str | None = None
        self.requests = 0
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                server.requests += 1
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if server.redirect_to is not None:
                    self.send_response(307)
                    self.send_header("Location", server.redirect_to)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Length", "100000")
                self.end_headers()
                self.wfile.flush()
                while server.drip and not server.stop.wait(1):
                    self.wfile.write(b" ")
                    self.wfile.flush()

            do_GET = do_POST = _answer

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def misbehaving() -> Iterator[Misbehaving]:
    server = Misbehaving()
    yield server
    server.close()


def test_api_call_ends_at_its_deadline(misbehaving: Misbehaving) -> None:
    """A dripping API used to hold the attester for many times its timeout."""
    misbehaving.drip = True
    client = ItaClient(api_url=misbehaving.url, api_key=Secret(API_KEY, "test"), timeout=1)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        client.nonce()
    assert time.monotonic() - started < 4
    assert info.value.check == "ita.api.fetch"
    assert info.value.phase == "timeout"
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert API_KEY not in text


def test_api_redirect_is_refused_so_the_key_never_follows(misbehaving: Misbehaving) -> None:
    other = Misbehaving()
    try:
        misbehaving.redirect_to = other.url + "/appraisal/v2/nonce"
        client = ItaClient(api_url=misbehaving.url, api_key=Secret(API_KEY, "test"), timeout=5)
        with pytest.raises(CollateralUnavailable) as info:
            client.nonce()
        assert isinstance(info.value, ServiceUnavailable)
        assert info.value.phase == "redirect"
        assert other.requests == 0
    finally:
        other.close()


def test_crl_fetch_is_bounded_and_never_redirected(misbehaving: Misbehaving) -> None:
    now = dt.datetime.now(dt.UTC)
    misbehaving.drip = True
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info:
        CrlCache(timeout=1)._crl(misbehaving.url + "/crl/root.crl", now)
    assert time.monotonic() - started < 4
    assert (info.value.check, info.value.phase) == ("ita.crl.fetch", "timeout")
    misbehaving.drip = False
    misbehaving.redirect_to = misbehaving.url + "/elsewhere.crl"
    with pytest.raises(ServiceUnavailable) as info:
        CrlCache(timeout=5)._crl(misbehaving.url + "/crl/root.crl", now)
    assert info.value.phase == "redirect"


def test_jwks_url_secret_is_not_in_configuration_errors(tmp_path: Path) -> None:
    url = Secret(f"http://reader:{TOKEN}@ita.example/certs?sig={TOKEN}", "test")
    with pytest.raises(ConfigurationError) as info:
        ItaValidator({"jwks_url": url, "root_ca": str(tmp_path / "root.pem")})
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert TOKEN not in text
