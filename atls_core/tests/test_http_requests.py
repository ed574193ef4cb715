"""The requests adapter against loopback servers (httpa://, https://, proxies, pooling)."""

from __future__ import annotations

import datetime as dt
import socket

import pytest
import requests
from urllib3.connection import HTTPConnection
from urllib3.util.ssltransport import SSLTransport

from atls_core.config import ATLSConfig
from atls_core.requests_adapter import (
    ATLSAdapter,
    _AttestedHTTPSConnection,
    attestation_result,
    connection_result,
    https_url,
)
from atls_core.server import AttestedCertificates, mint_certificate
from atls_core.testing.loopback import ConnectProxy, HTTPSServer, SimulatedTEE
from atls_core.testing.simulated import SimulatedIssuer
from atls_core.tls import ATLSContext


def _session(adapter: ATLSAdapter, prefix: str = "httpa://") -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    session.mount(prefix, adapter)
    return session


def test_httpa_scheme_pooling_and_results(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        with _session(ATLSAdapter(validator=tee.selected())) as session:
            first = session.get(server.url("httpa", "/v1/models"), timeout=10)
            second = session.get(server.url("httpa", "/again"), timeout=10)
            posted = session.post(server.url("httpa", "/echo"), data=b"body", timeout=10)
        assert first.json()["data"][0]["id"] == "demo-model"
        assert second.json() == {"path": "/again"}
        assert posted.content == b"body"
        result = attestation_result(first)
        assert result is not None
        assert result.accepted
        # The adapter sets the documented attribute; requests' types do not know it.
        stamped: object = first.attestation_result  # type: ignore[attr-defined]
        assert stamped is result
        # Keep-alive: one TLS connection, appraised once, carried all three requests.
        assert attestation_result(second) is result
        assert server.handshakes == 1
        # A new pool (new session) means a new connection and a new appraisal.
        with _session(ATLSAdapter(validator=tee.selected())) as session:
            third = session.get(server.url("httpa", "/"), timeout=10)
        other = attestation_result(third)
        assert other is not None
        assert other.binding.nonce != result.binding.nonce
        assert server.handshakes == 2


class MovableClock:
    """A clock a test sets: the client's and the simulated TEE's time, moved together."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.at


def test_a_pooled_connection_is_not_reused_once_its_result_expires(tee: SimulatedTEE) -> None:
    """The result covers the connection until it expires; the next request is appraised anew."""
    clock = MovableClock()
    issuer = SimulatedIssuer(tee.hardware.issuer_settings(), clock=clock)
    context = ATLSContext.for_validator(tee.selected(), clock=clock)
    with HTTPSServer(AttestedCertificates(issuer).server_context()) as server:
        with _session(ATLSAdapter(context=context)) as session:
            first = attestation_result(session.get(server.url("httpa", "/1"), timeout=10))
            again = attestation_result(session.get(server.url("httpa", "/2"), timeout=10))
            assert first is not None
            assert again is first
            assert first.expires_at is not None
            assert server.handshakes == 1
            clock.at = first.expires_at
            after = attestation_result(session.get(server.url("httpa", "/3"), timeout=10))
        assert server.handshakes == 2
        assert after is not None
        assert after.accepted
        assert after.binding.nonce != first.binding.nonce


def test_expiry_is_checked_behind_an_https_proxy(
    tee: SimulatedTEE, monkeypatch: pytest.MonkeyPatch
) -> None:
    """TLS in TLS (urllib3's SSLTransport, used through HTTPS proxies): the connection's
    result is found on the transport's sslobj, and its expiry is read from the context."""
    # urllib3's own liveness probe (is the socket readable?) depends on what the server
    # has sent by now; held at "alive", only the expiry decides.
    monkeypatch.setattr(HTTPConnection, "is_connected", property(lambda self: True))
    clock = MovableClock()
    context = ATLSContext.for_validator(tee.selected(), clock=clock)
    with HTTPSServer(tee.certificates().server_context()) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        with raw:
            transport = SSLTransport(raw, context, server_hostname="127.0.0.1")
            result = connection_result(transport)
            assert result is not None
            assert result.expires_at is not None
            connection = _AttestedHTTPSConnection("127.0.0.1", server.port, ssl_context=context)
            connection.sock, connection.attestation_result = transport, result  # as connect()
            before = connection.is_connected
            clock.at = result.expires_at
            assert (before, connection.is_connected) == (True, False)
            connection.sock = None


def test_mounted_on_https_for_a_chosen_host(tee: SimulatedTEE) -> None:
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))
    with HTTPSServer(tee.certificates().server_context()) as server:
        prefix = f"https://127.0.0.1:{server.port}"
        with _session(ATLSAdapter(config), prefix) as session:
            response = session.get(server.url("https", "/x"), timeout=10)
        assert response.json() == {"path": "/x"}
        assert attestation_result(response) is not None


def test_each_pooled_connection_is_appraised(tee: SimulatedTEE) -> None:
    certificates = tee.certificates()
    with HTTPSServer(certificates.server_context()) as server:
        adapter = ATLSAdapter(validator=tee.selected(), pool_connections=1, pool_maxsize=4)
        with _session(adapter) as session:
            # Streaming responses hold their connections, so the pool opens new ones.
            responses = [
                session.get(server.url("httpa", f"/{i}"), stream=True, timeout=10) for i in range(3)
            ]
            results = [attestation_result(r) for r in responses]
            for r in responses:
                r.close()
        assert server.handshakes == 3
        assert certificates.minted == 3
        assert len({r.binding.nonce for r in results if r is not None}) == 3


def test_rejection_is_an_ssl_error_and_leaks_nothing(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with HTTPSServer(liar.server_context()) as server:
        with _session(ATLSAdapter(validator=tee.selected())) as session:
            with pytest.raises(requests.exceptions.SSLError) as caught:
                session.post(server.url("httpa", "/secret"), data=b"do not leak", timeout=10)
            # verify=False cannot switch appraisal off.
            with pytest.raises(requests.exceptions.SSLError):
                session.get(server.url("httpa", "/"), verify=False, timeout=10)
        assert server.wait_finished(2)
        assert server.received == 0
    assert "binding.report_data" in str(caught.value)


def test_through_an_http_connect_proxy(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server, ConnectProxy() as proxy:
        with _session(ATLSAdapter(validator=tee.selected())) as session:
            # Users configure proxies for https; httpa URLs follow them.
            session.proxies = {"https": proxy.url}
            response = session.get(server.url("httpa", "/via-proxy"), timeout=10)
            again = session.get(server.url("httpa", "/again"), timeout=10)
        assert response.json() == {"path": "/via-proxy"}
        assert again.json() == {"path": "/again"}
        assert attestation_result(response) is not None
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]  # one tunnel, reused


def test_environment_proxy_applies_to_httpa(
    tee: SimulatedTEE, monkeypatch: pytest.MonkeyPatch
) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server, ConnectProxy() as proxy:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        session = requests.Session()
        session.mount("httpa://", ATLSAdapter(validator=tee.selected()))
        with session:
            response = session.get(server.url("httpa", "/env"), timeout=10)
        assert response.json() == {"path": "/env"}
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]


def test_https_url() -> None:
    assert https_url("httpa://h:1/p?q") == "https://h:1/p?q"
    assert https_url("https://h/p") == "https://h/p"
