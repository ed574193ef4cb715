"""Redirects from an attested server never leave attested TLS (requests and httpx).

Every test runs real servers on 127.0.0.1: an attested server that answers
``/to?<location>`` with a redirect, a PKI server (trustme CA) and a cleartext
HTTP server that count the requests they parse.  "localhost" is a second
host name for the same loopback address, so cross-host redirects are real.
Each unattested server first serves a control request, proving it would
have answered the redirected one.
"""

from __future__ import annotations

import asyncio
import http.client
import http.server
import json
import ssl
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

import httpx
import pytest
import requests
import trustme

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSError
from atls_core.httpx_transport import (
    AsyncATLSTransport,
    ATLSTransport,
    atls_httpx_client,
)
from atls_core.httpx_transport import (
    attestation_result as httpx_result,
)
from atls_core.requests_adapter import ATLSAdapter, attestation_result, attested_location
from atls_core.testing.httpd import QuietHandler
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE


class _RedirectingHandler(QuietHandler):
    """``/to?<quoted location>[&status]`` redirects; anything else echoes path and auth."""

    protocol_version = "HTTP/1.1"
    server: Any

    def _answer(self) -> None:
        self.server.note_request(self)
        body = self.read_body()
        if self.path.startswith("/to?"):
            location, _, status = self.path[len("/to?") :].partition("&")
            self.send_body(int(status or "302"), b"", headers={"Location": unquote(location)})
            return
        answer = {
            "path": self.path,
            "method": self.command,
            "body": body.decode(),
            "authorization": self.headers.get("Authorization"),
        }
        self.send_json(200, answer)

    do_GET = do_POST = _answer


class _CleartextServer(http.server.ThreadingHTTPServer):
    """Plain HTTP on 127.0.0.1 that records every request it parses."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _RedirectingHandler)
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def note_request(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(handler.path)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def __enter__(self) -> _CleartextServer:
        threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.02}).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


def _serving(context: ssl.SSLContext) -> HTTPSServer:
    server = HTTPSServer(context)
    server.RequestHandlerClass = _RedirectingHandler
    return server


def _to(server: HTTPSServer, location: str, *, scheme: str = "httpa", status: int = 302) -> str:
    return server.url(scheme, f"/to?{quote(location, safe='')}&{status}")


@pytest.fixture(scope="module")
def other_tee() -> SimulatedTEE:
    return SimulatedTEE()


@pytest.fixture
def attested(tee: SimulatedTEE) -> Iterator[HTTPSServer]:
    with _serving(tee.certificates().server_context()) as server:
        yield server


@pytest.fixture
def pki_server(ca: trustme.CA, tmp_path: Any) -> Iterator[tuple[HTTPSServer, str]]:
    """An ordinary HTTPS server whose certificate a PKI client trusts."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost", "127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with _serving(context) as server:
        pki = ssl.create_default_context(cafile=str(bundle))
        control = http.client.HTTPSConnection("localhost", server.port, context=pki, timeout=10)
        try:
            control.request("GET", "/control")
            assert json.loads(control.getresponse().read())["path"] == "/control"
        finally:
            control.close()
        assert server.wait_finished(1)
        assert server.requests == ["/control"]
        yield server, str(bundle)


@pytest.fixture
def cleartext() -> Iterator[_CleartextServer]:
    with _CleartextServer() as server:
        control = requests.get(f"http://127.0.0.1:{server.port}/control", timeout=10)
        assert control.json()["path"] == "/control"
        yield server


def _config(*rules: tuple[str, SimulatedTEE]) -> ATLSConfig:
    hosts = {}
    for host, tee in rules:
        hosts.update(tee.config_mapping(host)["hosts"])
    return ATLSConfig.from_mapping(
        {"atls": {"allow_insecure_test_validators": True}, "hosts": hosts}
    )


def _session(config: ATLSConfig) -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount("httpa://", ATLSAdapter(config))
    return session


# --- the location rewrite itself ------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        ("/next?q=1#f", "httpa://h:8443/next?q=1#f"),
        ("next", "httpa://h:8443/dir/next"),
        ("//other:9/x", "httpa://other:9/x"),
        ("https://h:8443/x", "httpa://h:8443/x"),
        ("HTTPS://other/x", "httpa://other/x"),
        ("https://user@[::1]:7/x", "httpa://user@[::1]:7/x"),
        ("httpa://other/x", "httpa://other/x"),
        ("http://other/x", "httpa://other/x"),
        ("http://other:80/x", "httpa://other/x"),
        ("http://other:8080/x", "httpa://other:8080/x"),
    ],
)
def test_attested_location(location: str, expected: str) -> None:
    assert attested_location("httpa://h:8443/dir/page", location) == expected
    assert attested_location("https://h:8443/dir/page", location) == expected


@pytest.mark.parametrize(
    "location", ["ftp://h/x", "file:///etc/passwd", "javascript:alert(1)", "https://[::1/x"]
)
def test_non_http_or_unreadable_location_is_refused(location: str) -> None:
    with pytest.raises(ATLSError) as caught:
        attested_location("httpa://h/", location)
    assert caught.value.check == "http.redirect"


# --- requests ---------------------------------------------------------------------------

SAME_HOST_FORMS = {
    "relative": "/next",
    "scheme-relative": "//{host}/next",
    "https": "https://{host}/next",
    "httpa": "httpa://{host}/next",
    "http": "http://{host}/next",  # upgraded, port kept
}
"""The ways a Location can name /next on the attested server (``{host}``: its host:port)."""


def _same_host_redirect(attested: HTTPSServer, form: str) -> tuple[str, str]:
    """A URL that redirects to /next in ``form``, and the attested URL the hop must end at."""
    host = f"127.0.0.1:{attested.port}"
    return _to(attested, SAME_HOST_FORMS[form].format(host=host)), f"httpa://{host}/next"


@pytest.mark.parametrize("form", SAME_HOST_FORMS)
def test_requests_same_host_redirect_stays_attested(
    tee: SimulatedTEE, attested: HTTPSServer, form: str
) -> None:
    start, final = _same_host_redirect(attested, form)
    with _session(_config(("127.0.0.1", tee))) as session:
        response = session.get(start, headers={"Authorization": "Bearer t"}, timeout=10)
    assert response.json()["path"] == "/next"
    assert response.json()["authorization"] == "Bearer t"  # same origin keeps it
    assert response.url == final
    assert response.history[0].status_code == 302
    assert response.history[0].headers["Location"] == final
    result = attestation_result(response)
    assert result is not None
    assert result.accepted
    assert result.verifier.validator == "insecure.simulated"


def test_requests_307_keeps_method_and_body(tee: SimulatedTEE, attested: HTTPSServer) -> None:
    with _session(_config(("127.0.0.1", tee))) as session:
        response = session.post(_to(attested, "/echo", status=307), data=b"payload", timeout=10)
    assert response.json() == {
        "path": "/echo",
        "method": "POST",
        "body": "payload",
        "authorization": None,
    }


def test_requests_cross_host_redirect_to_pki_server_is_refused(
    tee: SimulatedTEE, attested: HTTPSServer, pki_server: tuple[HTTPSServer, str]
) -> None:
    server, bundle = pki_server
    with (
        _session(_config(("127.0.0.1", tee))) as session,
        pytest.raises(requests.exceptions.SSLError) as caught,
    ):
        # Even a trusted CA bundle does not let the hop fall back to PKI.
        session.get(
            _to(attested, f"https://localhost:{server.port}/secret"),
            verify=bundle,
            timeout=10,
        )
    assert "config.hosts" in str(caught.value)
    assert server.requests == ["/control"]


def test_requests_same_host_redirect_to_unattested_port_is_refused(
    tee: SimulatedTEE, attested: HTTPSServer, pki_server: tuple[HTTPSServer, str]
) -> None:
    server, _ = pki_server
    handshakes = server.handshakes
    with (
        _session(_config(("127.0.0.1", tee))) as session,
        pytest.raises(requests.exceptions.SSLError),
    ):
        session.get(_to(attested, f"https://127.0.0.1:{server.port}/secret"), timeout=10)
    assert server.wait_finished(handshakes + 1)
    assert server.handshakes == handshakes + 1  # it was asked, and appraisal refused it
    assert server.requests == ["/control"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_requests_redirect_to_cleartext_is_upgraded_and_refused(
    tee: SimulatedTEE, attested: HTTPSServer, cleartext: _CleartextServer, host: str
) -> None:
    with (
        _session(_config(("127.0.0.1", tee))) as session,
        pytest.raises(requests.exceptions.SSLError) as caught,
    ):
        session.post(
            _to(attested, f"http://{host}:{cleartext.port}/secret", status=307),
            data=b"do not leak",
            timeout=10,
        )
    if host == "localhost":
        assert "config.hosts" in str(caught.value)
    assert cleartext.requests == ["/control"]


def test_requests_cross_host_redirect_uses_the_targets_own_rule(
    tee: SimulatedTEE, other_tee: SimulatedTEE, attested: HTTPSServer
) -> None:
    with _serving(other_tee.certificates().server_context()) as target:
        location = f"https://localhost:{target.port}/next"
        config = _config(("127.0.0.1", tee), ("localhost", other_tee))
        with _session(config) as session:
            response = session.get(
                _to(attested, location), headers={"Authorization": "Bearer t"}, timeout=10
            )
        assert response.json()["path"] == "/next"
        assert response.json()["authorization"] is None  # dropped across hosts
        first, final = attestation_result(response.history[0]), attestation_result(response)
        assert first is not None
        assert final is not None
        assert final.accepted
        assert final.binding.nonce != first.binding.nonce
        # The same target under a rule for the other TEE is refused.
        wrong = _config(("127.0.0.1", tee), ("localhost", tee))
        with _session(wrong) as session, pytest.raises(requests.exceptions.SSLError):
            session.get(_to(attested, location), timeout=10)
        assert target.requests == ["/next"]


def test_requests_allow_redirects_false_shows_the_attested_location(
    tee: SimulatedTEE, attested: HTTPSServer
) -> None:
    with _session(_config(("127.0.0.1", tee))) as session:
        response = session.get(
            _to(attested, "https://localhost:1/x"), allow_redirects=False, timeout=10
        )
    assert response.status_code == 302
    assert response.headers["Location"] == "httpa://localhost:1/x"
    assert response.next is not None
    assert response.next.url == "httpa://localhost:1/x"


def test_requests_non_http_redirect_raises(tee: SimulatedTEE, attested: HTTPSServer) -> None:
    with _session(_config(("127.0.0.1", tee))) as session:
        for follow in (True, False):
            with pytest.raises(ATLSError) as caught:
                session.get(_to(attested, "file:///etc/passwd"), allow_redirects=follow, timeout=10)
            assert caught.value.check == "http.redirect"
        # The refused responses were closed; the session still works.
        assert session.get(attested.url("httpa", "/after"), timeout=10).ok


def test_requests_adapter_mounted_only_on_an_https_prefix_fails_closed(
    tee: SimulatedTEE, attested: HTTPSServer
) -> None:
    session = requests.Session()
    session.trust_env = False
    session.mount(f"https://127.0.0.1:{attested.port}/", ATLSAdapter(_config(("127.0.0.1", tee))))
    with session, pytest.raises(requests.exceptions.InvalidSchema):
        session.get(_to(attested, "/next", scheme="https"), timeout=10)
    assert attested.requests == [f"/to?{quote('/next', safe='')}&302"]


# --- httpx ------------------------------------------------------------------------------


def _httpx_only_httpa(config: ATLSConfig) -> httpx.Client:
    """A hand-built client that mounts atls for httpa:// only (the default is PKI)."""
    return httpx.Client(
        mounts={"httpa://": ATLSTransport(config)}, follow_redirects=True, timeout=10
    )


@pytest.mark.parametrize("form", ["relative", "https", "http"])
def test_httpx_same_host_redirect_stays_attested(
    tee: SimulatedTEE, attested: HTTPSServer, form: str
) -> None:
    start, final = _same_host_redirect(attested, form)
    with _httpx_only_httpa(_config(("127.0.0.1", tee))) as client:
        response = client.get(start, headers={"Authorization": "Bearer t"})
    assert response.json()["path"] == "/next"
    assert response.json()["authorization"] == "Bearer t"
    assert str(response.url) == final
    result = httpx_result(response)
    assert result is not None
    assert result.verifier.validator == "insecure.simulated"


def test_httpx_https_client_keeps_https_on_the_same_origin(
    tee: SimulatedTEE, attested: HTTPSServer
) -> None:
    with atls_httpx_client(_config(("127.0.0.1", tee)), follow_redirects=True) as client:
        response = client.get(_to(attested, "/next", scheme="https"))
        cross = client.get(
            _to(attested, "https://localhost:1/x", scheme="https"), follow_redirects=False
        )
    assert str(response.url) == f"https://127.0.0.1:{attested.port}/next"
    assert httpx_result(response) is not None
    assert cross.headers["Location"] == "httpa://localhost:1/x"
    assert cross.next_request is not None
    assert cross.next_request.url.scheme == "httpa"


@pytest.mark.parametrize("target", ["pki-cross-host", "pki-same-host", "cleartext"])
def test_httpx_redirect_to_unattested_server_is_refused(
    tee: SimulatedTEE,
    attested: HTTPSServer,
    pki_server: tuple[HTTPSServer, str],
    cleartext: _CleartextServer,
    target: str,
) -> None:
    server, _ = pki_server
    location = {
        "pki-cross-host": f"https://localhost:{server.port}/secret",
        "pki-same-host": f"https://127.0.0.1:{server.port}/secret",
        "cleartext": f"http://127.0.0.1:{cleartext.port}/secret",
    }[target]
    with (
        _httpx_only_httpa(_config(("127.0.0.1", tee))) as client,
        pytest.raises(httpx.ConnectError) as caught,
    ):
        client.post(_to(attested, location, status=307), content=b"do not leak")
    if target == "pki-cross-host":
        assert "config.hosts" in str(caught.value)
    assert server.requests == ["/control"]
    assert cleartext.requests == ["/control"]


def test_httpx_non_http_redirect_raises(tee: SimulatedTEE, attested: HTTPSServer) -> None:
    with _httpx_only_httpa(_config(("127.0.0.1", tee))) as client:
        for follow in (True, False):
            with pytest.raises(ATLSError) as caught:
                client.get(_to(attested, "ftp://127.0.0.1/x"), follow_redirects=follow)
            assert caught.value.check == "http.redirect"
        # The refused responses were closed; the client still works.
        assert client.get(attested.url("httpa", "/after")).is_success


def test_async_httpx_cross_host_redirect_is_refused(
    tee: SimulatedTEE, attested: HTTPSServer, pki_server: tuple[HTTPSServer, str]
) -> None:
    server, _ = pki_server
    config = _config(("127.0.0.1", tee))

    async def main() -> tuple[httpx.Response, BaseException]:
        transport = AsyncATLSTransport(config)
        async with httpx.AsyncClient(
            mounts={"httpa://": transport}, follow_redirects=True, timeout=10
        ) as client:
            followed = await client.get(_to(attested, "/next"))
            try:
                await client.get(_to(attested, f"https://localhost:{server.port}/secret"))
            except httpx.ConnectError as exc:
                return followed, exc
        raise AssertionError("the cross-host redirect was followed")

    followed, error = asyncio.run(main())
    assert followed.json()["path"] == "/next"
    assert str(followed.url).startswith("httpa://")
    assert "config.hosts" in str(error)
    assert server.requests == ["/control"]
