"""HTTPAConnection (http.client) against loopback servers."""

from __future__ import annotations

import http.client

import pytest

from atls_core.config import ATLSConfig
from atls_core.connection import HTTPAConnection
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.server import mint_certificate
from atls_core.testing.loopback import ConnectProxy, HTTPSServer, SimulatedTEE


def test_keep_alive_requests_share_one_appraised_connection(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        connection = HTTPAConnection("127.0.0.1", server.port, validator=tee.selected(), timeout=10)
        assert isinstance(connection, http.client.HTTPSConnection)
        before = connection.attestation_result  # a local: mypy would keep the property narrowed
        assert before is None
        try:
            for path in ("/a", "/b"):
                connection.request("GET", path)
                assert connection.getresponse().read() == f'{{"path": "{path}"}}'.encode()
            result = connection.attestation_result
            assert result is not None
            assert result.accepted
        finally:
            connection.close()
        assert server.handshakes == 1


def test_config_and_challenge_transport(tee: SimulatedTEE) -> None:
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1", challenge=True))
    with tee.challenge_server() as server:
        connection = HTTPAConnection("127.0.0.1", server.port, config=config, timeout=10)
        try:
            connection.request("POST", "/echo", body=b"payload")
            assert connection.getresponse().read() == b"payload"
            assert connection.attestation_result is not None
        finally:
            connection.close()
        assert server.requests == ["/echo"]


def test_rejection_raises_before_the_request_is_sent(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with HTTPSServer(liar.server_context()) as server:
        connection = HTTPAConnection("127.0.0.1", server.port, validator=tee.selected(), timeout=10)
        with pytest.raises(ATLSVerificationError):
            connection.request("POST", "/secret", body=b"do not leak")
        connection.close()
        assert server.wait_finished(1)
        assert server.received == 0


def test_through_a_connect_tunnel(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server, ConnectProxy() as proxy:
        connection = HTTPAConnection("127.0.0.1", proxy.port, validator=tee.selected(), timeout=10)
        connection.set_tunnel("127.0.0.1", server.port)
        try:
            connection.request("GET", "/tunnelled")
            assert b"/tunnelled" in connection.getresponse().read()
            assert connection.attestation_result is not None
        finally:
            connection.close()
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]


def test_needs_exactly_one_source(tee: SimulatedTEE) -> None:
    with pytest.raises(ConfigurationError):
        HTTPAConnection("127.0.0.1")
    with pytest.raises(ConfigurationError):
        HTTPAConnection(
            "127.0.0.1",
            validator=tee.selected(),
            config=ATLSConfig.from_mapping(tee.config_mapping()),
        )


def test_a_context_in_the_port_position_is_taken_as_the_context(tee: SimulatedTEE) -> None:
    from atls_core.tls import ATLSContext

    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().server_context()) as server:
        connection = HTTPAConnection("127.0.0.1", context, timeout=10)  # pyatls's call shape
        assert connection.port == 443
        connection.port = server.port
        try:
            connection.request("GET", "/")
            assert connection.getresponse().status == 200
            assert connection.attestation_result is not None
        finally:
            connection.close()
    with pytest.raises(ConfigurationError):
        HTTPAConnection("127.0.0.1", "443", context=context)  # type: ignore[arg-type]
