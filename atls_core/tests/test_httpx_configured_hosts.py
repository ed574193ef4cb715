"""httpx clients that send only the configured hosts through atls, and ``proxy=``.

Two real servers on 127.0.0.1: an attested one reached as ``127.0.0.1`` (the
configured host) and a plain PKI one reached as ``localhost`` with a
certificate from a test CA the client trusts.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import httpx
import pytest
import trustme

from atls_core.config import ATLSConfig
from atls_core.errors import ConfigurationError
from atls_core.httpx_transport import (
    atls_async_httpx_client,
    atls_httpx_client,
    attestation_result,
    configured_for,
)
from atls_core.server import mint_certificate
from atls_core.testing.loopback import ConnectProxy, HTTPSServer, SimulatedTEE


@pytest.fixture
def attested(tee: SimulatedTEE) -> Iterator[HTTPSServer]:
    with HTTPSServer(tee.certificates().server_context()) as server:
        yield server


@pytest.fixture
def plain(ca: trustme.CA) -> Iterator[HTTPSServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(context)
    with HTTPSServer(context) as server:
        yield server


def _trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def _config(tee: SimulatedTEE, pattern: str) -> ATLSConfig:
    return ATLSConfig.from_mapping(tee.config_mapping(pattern))


def _localhost(server: HTTPSServer, path: str) -> str:
    return f"https://localhost:{server.port}{path}"


@pytest.mark.parametrize("pattern", ["127.0.0.1", "127.0.0.*"])
def test_only_configured_hosts_are_attested(
    tee: SimulatedTEE,
    ca: trustme.CA,
    attested: HTTPSServer,
    plain: HTTPSServer,
    pattern: str,
) -> None:
    config = _config(tee, pattern)
    with atls_httpx_client(
        config, only_configured_hosts=True, verify=_trusting(ca), timeout=10
    ) as client:
        tee_response = client.get(attested.url("https", "/tee"))
        other = client.get(_localhost(plain, "/other"))
        # Cleartext to a configured host is refused, not sent.
        with pytest.raises(ConfigurationError, match=r"http\.scheme"):
            client.get(attested.url("http", "/cleartext"))
    assert tee_response.json() == {"path": "/tee"}
    result = attestation_result(tee_response)
    assert result is not None
    assert result.accepted
    assert other.json() == {"path": "/other"}
    assert attestation_result(other) is None
    assert plain.requests == ["/other"]
    assert attested.requests == ["/tee"]


def test_without_the_option_every_host_needs_a_rule(
    tee: SimulatedTEE, ca: trustme.CA, plain: HTTPSServer
) -> None:
    with (
        atls_httpx_client(_config(tee, "127.0.0.1"), verify=_trusting(ca), timeout=10) as client,
        pytest.raises(httpx.ConnectError, match=r"config\.hosts"),
    ):
        client.get(_localhost(plain, "/other"))
    assert plain.requests == []


def test_a_configured_host_never_falls_back_to_pki(
    tee: SimulatedTEE, ca: trustme.CA, plain: HTTPSServer
) -> None:
    """A configured host that fails attestation is refused, even with a CA-valid certificate."""
    config = ATLSConfig.from_mapping(tee.config_mapping("localhost"))
    with (
        atls_httpx_client(
            config, only_configured_hosts=True, verify=_trusting(ca), timeout=10
        ) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(_localhost(plain, "/secret"))
    assert plain.wait_finished(1)
    assert plain.received == 0


def test_async_client(
    tee: SimulatedTEE, ca: trustme.CA, attested: HTTPSServer, plain: HTTPSServer
) -> None:
    config = _config(tee, "127.0.0.*")

    async def main() -> tuple[httpx.Response, httpx.Response]:
        async with atls_async_httpx_client(
            config, only_configured_hosts=True, verify=_trusting(ca), timeout=10
        ) as client:
            return (
                await client.get(attested.url("https", "/tee")),
                await client.get(_localhost(plain, "/other")),
            )

    tee_response, other = asyncio.run(main())
    assert attestation_result(tee_response) is not None
    assert other.json() == {"path": "/other"}
    assert attestation_result(other) is None


def test_routing_reads_the_host_as_the_tls_layer_does(tee: SimulatedTEE) -> None:
    config = ATLSConfig.from_mapping(
        {
            "atls": {"allow_insecure_test_validators": True},
            "hosts": {
                host: tee.config_mapping(host)["hosts"][host]
                for host in ("api.example.com", "tee-?.example.org", "*.bücher.example")
            },
        }
    )

    def routed(url: str, **extensions: str) -> bool:
        return configured_for(config, httpx.Request("GET", url, extensions=extensions))

    # A trailing dot and upper case name the same host (an httpx mount pattern misses them).
    assert routed("https://API.Example.com./v1")
    assert routed("https://tee-1.example.org/")
    assert not routed("https://tee-10.example.org/")
    assert routed("https://shop.bücher.example/")  # as written; TLS sees its IDNA form
    assert routed("httpa://anything.example.net/")  # httpa:// always means attested
    assert not routed("https://example.com/")
    # The TLS layer appraises by SNI when a caller sets one: so does the routing.
    assert routed("https://10.0.0.1/", sni_hostname="api.example.com")


def test_only_configured_hosts_needs_a_configuration(tee: SimulatedTEE) -> None:
    with pytest.raises(ConfigurationError, match=r"http\.transport"):
        atls_httpx_client(validator=tee.selected(), only_configured_hosts=True)


def test_a_client_proxy_carries_attested_tls(tee: SimulatedTEE, attested: HTTPSServer) -> None:
    """``proxy=`` must not mount a plain proxy transport in front of atls."""
    with ConnectProxy() as proxy:
        with atls_httpx_client(validator=tee.selected(), proxy=proxy.url, timeout=10) as client:
            response = client.get(attested.url("https", "/via-proxy"))
        assert proxy.tunnels == [f"127.0.0.1:{attested.port}"]
    result = attestation_result(response)
    assert result is not None
    assert result.accepted


def test_a_client_proxy_cannot_skip_appraisal(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    with HTTPSServer(liar.server_context()) as server, ConnectProxy() as proxy:
        with (
            atls_httpx_client(
                validator=tee.selected(), proxy=proxy.url, verify=False, timeout=10
            ) as client,
            pytest.raises(httpx.ConnectError, match=r"binding\.report_data"),
        ):
            client.post(server.url("https", "/secret"), content=b"secret")
        assert server.wait_finished(1)
        assert server.received == 0
