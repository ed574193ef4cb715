"""One host, one rule: rules, connections and httpx routing compare hosts in one canonical form.

A rule that misses its host in some spelling lets another rule (``"*"``) take
the connection, or, under ``only_configured_hosts``, sends it over plain PKI
unappraised.  The end-to-end tests use loopback servers: the simulated TEE,
and an ordinary PKI server (a test CA the client trusts) standing in for a
server outside the TEE that holds a valid certificate for the name.
"""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trustme

from atls_core.config import ATLSConfig, HostRule
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.hostnames import canonical_host, canonical_pattern
from atls_core.httpx_transport import atls_httpx_client, attestation_result, configured_for
from atls_core.policy import Policy
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, attested_get
from atls_core.tls import ATLSContext

SHORTHAND_LOOPBACK = ["127.1", "2130706433", "0x7f.0.0.1"]
"""Spellings of 127.0.0.1 the C resolver connects to (inet_aton) and httpx passes on as written."""


def _rule(tee: SimulatedTEE, image: str) -> dict[str, Any]:
    """A rule for the simulated TEE pinning ``image`` (another image than the TEE's: refused)."""
    return {
        "validator": "insecure.simulated",
        "settings": tee.hardware.validator_settings(),
        "policy": {"reference_values": {"image": image}},
    }


def _config(hosts: dict[str, Any]) -> ATLSConfig:
    return ATLSConfig.from_mapping(
        {"atls": {"allow_insecure_test_validators": True}, "hosts": hosts}
    )


# --- the canonical form -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "canonical"),
    [
        ("API.Example.COM.", "api.example.com"),
        *((host, "127.0.0.1") for host in SHORTHAND_LOOPBACK),
        ("0177.0.0.1", "127.0.0.1"),  # octal
        ("127.0.0.1.", "127.0.0.1"),
        ("1.2.3", "1.2.0.3"),
        ("[0:0::1]", "::1"),
        ("0000::0001", "::1"),
        ("[::FFFF:127.0.0.1]", "127.0.0.1"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("deadbeef.example", "deadbeef.example"),
        ("127.0.0.1 example", "127.0.0.1 example"),  # inet_aton's trailing text: not an address
    ],
)
def test_the_canonical_form(host: str, canonical: str) -> None:
    assert canonical_host(host) == canonical
    assert canonical_host(canonical) == canonical


@pytest.mark.parametrize(
    ("name", "current", "legacy"),
    [("faß.de", "xn--fa-hia.de", "fass.de"), ("σοφος.gr", "xn--0xaajbq.gr", "xn--0xaakcn.gr")],
)
def test_a_name_idna_2003_and_2008_read_differently_is_refused(
    name: str, current: str, legacy: str
) -> None:
    """httpx and requests connect to ``current``, Python's socket module to ``legacy``."""
    with pytest.raises(ConfigurationError) as info:
        _config({name: {"validator": "insecure.simulated"}})
    assert info.value.check == "config.hosts"
    assert f'hosts."{name}"' in str(info.value)
    assert current in str(info.value)
    assert legacy in str(info.value)
    with pytest.raises(ConfigurationError):
        canonical_host(name)


def test_without_the_idna_package_a_unicode_name_cannot_be_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "idna", None)  # import idna raises ImportError
    with pytest.raises(ConfigurationError, match="idna package is not installed"):
        canonical_pattern("*.bücher.example")
    assert canonical_host("xn--bcher-kva.example") == "xn--bcher-kva.example"


# --- rules ------------------------------------------------------------------------------------


def test_each_spelling_of_an_address_finds_its_rule() -> None:
    config = ATLSConfig.from_mapping(
        {
            "hosts": {
                "127.0.0.1": {"validator": "a.v4"},
                "[0:0::1]": {"validator": "a.v6"},
                "*": {"validator": "a.other"},
            }
        },
        check=False,
    )
    assert [rule.pattern for rule in config.hosts] == ["127.0.0.1", "::1", "*"]
    for host in [*SHORTHAND_LOOPBACK, "127.0.0.1.", "::ffff:127.0.0.1"]:
        assert config.rule_for(host).validator == "a.v4", host
    for host in ["::1", "[::1]", "0:0::1", "0000::0001"]:
        assert config.rule_for(host).validator == "a.v6", host
    assert config.rule_for("127.0.0.2").validator == "a.other"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("tee.example.com", "TEE.example.com"),
        ("tee.example.com", "tee.example.com."),
        ("bücher.example", "xn--bcher-kva.example"),
        ("127.0.0.1", "127.1"),
        ("*.Example.com", "*.example.com."),
    ],
)
def test_two_rules_for_one_host_are_refused(first: str, second: str) -> None:
    """Which of them applied was an accident: rule_for read the first, connections the last."""
    with pytest.raises(ConfigurationError) as info:
        ATLSConfig.from_mapping(
            {"hosts": {first: {"validator": "a.one"}, second: {"validator": "a.two"}}},
            check=False,
        )
    assert info.value.check == "config.hosts"
    assert f'hosts."{first}"' in str(info.value)
    assert f'hosts."{second}"' in str(info.value)


def test_a_rule_built_in_code_holds_a_canonical_pattern() -> None:
    with pytest.raises(ConfigurationError, match=r"'tee\.example\.com'"):
        HostRule(pattern="TEE.example.com.", validator="a.b", policy=Policy(), settings={})
    one, two = (
        HostRule(pattern="tee.example.com", validator=v, policy=Policy(), settings={})
        for v in ("a.one", "a.two")
    )
    with pytest.raises(ConfigurationError, match=r"tee\.example\.com"):
        ATLSConfig(hosts=(one, two))


# --- the TLS layer, end to end ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "server_hostname"),
    [
        ("tee.example.com.", "tee.example.com"),  # a trailing dot in the rule
        ("tee.example.com", "TEE.example.com."),  # case and a trailing dot in the name
        ("bücher.example", "bücher.example"),  # http.client and asyncio pass Unicode on
        ("xn--bcher-kva.example", "bücher.example"),
        ("127.0.0.1", "127.1"),
    ],
)
def test_a_connection_is_appraised_under_the_rule_written_for_its_host(
    tee: SimulatedTEE, pattern: str, server_hostname: str
) -> None:
    """The host's own rule accepts this TEE; the ``"*"`` rule, pinning another image, refuses it."""
    config = _config({pattern: _rule(tee, tee.image), "*": _rule(tee, "aa" * 32)})
    with HTTPSServer(tee.certificates().server_context()) as server:
        result, data = attested_get(ATLSContext(config), server.port, name=server_hostname)
    assert result.accepted, result.to_json()
    assert b'"/hello"' in data
    assert server.requests == ["/hello"]


def test_a_unicode_name_with_no_single_ascii_form_is_refused_before_a_byte_is_sent(
    tee: SimulatedTEE,
) -> None:
    config = _config({"*": _rule(tee, tee.image)})
    with HTTPSServer(tee.certificates().server_context()) as server:
        with pytest.raises(ATLSVerificationError) as info:
            attested_get(ATLSContext(config), server.port, name="faß.example")
        assert server.handshakes == 0
        assert server.requests == []
    assert info.value.check == "config.hosts"


# --- httpx routing (only_configured_hosts), end to end ---------------------------------------


@pytest.fixture
def outsider(ca: trustme.CA) -> Iterator[HTTPSServer]:
    """A server outside the TEE with a PKI-valid certificate for loopback's other spellings."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert(*SHORTHAND_LOOPBACK).configure_cert(context)
    with HTTPSServer(context) as server:
        yield server


@pytest.mark.parametrize("host", SHORTHAND_LOOPBACK)
def test_a_configured_address_in_another_spelling_never_goes_over_plain_pki(
    tee: SimulatedTEE, ca: trustme.CA, outsider: HTTPSServer, host: str
) -> None:
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))
    with (
        atls_httpx_client(
            config, only_configured_hosts=True, verify=trusting, timeout=10
        ) as client,
        pytest.raises(httpx.ConnectError, match="evidence"),
    ):
        client.post(f"https://{host}:{outsider.port}/v1/chat", content=b"the prompt")
    assert outsider.requests == []
    assert outsider.received == 0


@pytest.mark.parametrize("host", SHORTHAND_LOOPBACK)
def test_a_configured_address_in_another_spelling_is_appraised(
    tee: SimulatedTEE, ca: trustme.CA, host: str
) -> None:
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))
    with (
        HTTPSServer(tee.certificates().server_context()) as server,
        atls_httpx_client(config, only_configured_hosts=True, timeout=10) as client,
    ):
        response = client.get(f"https://{host}:{server.port}/tee")
    result = attestation_result(response)
    assert result is not None
    assert result.accepted
    assert server.requests == ["/tee"]


@pytest.mark.parametrize(
    "url", ["https://[::1]/", "https://[0:0::1]/", "https://[0000::0001]/", "https://[::1]:8443/"]
)
def test_ipv6_spellings_route_to_atls(url: str) -> None:
    config = ATLSConfig.from_mapping({"hosts": {"::1": {"validator": "a.b"}}}, check=False)
    assert configured_for(config, httpx.Request("GET", url))


def test_a_server_name_in_doubt_routes_to_atls() -> None:
    """An ``sni_hostname`` with no single ASCII form: appraised (or refused), never plain PKI."""
    config = ATLSConfig.from_mapping(
        {"hosts": {"xn--fa-hia.de": {"validator": "a.b"}}}, check=False
    )
    plain = httpx.Request("GET", "https://other.example/")
    assert not configured_for(config, plain)
    doubtful = httpx.Request("GET", "https://other.example/", extensions={"sni_hostname": "faß.de"})
    assert configured_for(config, doubtful)
    assert configured_for(config, httpx.Request("GET", "https://faß.de/"))
