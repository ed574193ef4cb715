"""The per-connection fast paths keep their meaning: what they skip, and what they compute."""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import subprocess
import sys

import pytest

from atls_core import binding, tls
from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE, tls_connect
from atls_core.tls import ATLSContext


def test_a_cache_hit_does_not_parse_the_certificate(
    tee: SimulatedTEE, monkeypatch: pytest.MonkeyPatch
) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with HTTPSServer(tee.certificates().static().server_context()) as server:
        with tls_connect(context, server.port) as first:
            stored = tls.result_of(first)
            assert stored is not None

        def no_parsing(der: bytes) -> PeerCertificate:
            raise AssertionError("a cache hit parsed the certificate")

        monkeypatch.setattr(PeerCertificate, "from_der", staticmethod(no_parsing))
        with tls_connect(context, server.port) as second:
            assert tls.result_of(second) is stored
    assert context.cache.hits == 1


def test_the_sni_label_is_lowercase_unpadded_base32() -> None:
    for nonce in [bytes(32), b"\xff" * 32, bytes(range(32)), *(os.urandom(32) for _ in range(500))]:
        expected = base64.b32encode(nonce).decode().rstrip("=").lower()
        name = binding.encode_sni(nonce, "api.example.com")
        assert name == f"atls-{expected}.api.example.com"
        assert binding.decode_sni(name) == (nonce, "api.example.com")


@pytest.mark.parametrize(
    "host",
    [
        "localhost",
        "api.example.com",
        "127.0.0.1",
        "10.0.0.256",
        "1.2.3",
        "::1",
        "fe80::1%eth0",
        "2001:db8::",
        "\uff11\uff12\uff17.0.0.1",  # full-width digits: isdigit() says yes, ipaddress says no
        "123",
        "a:b",
    ],
)
def test_ip_literal_check_agrees_with_ipaddress(host: str) -> None:
    try:
        ipaddress.ip_address(host)
        expected = True
    except ValueError:
        expected = False
    assert tls._is_ip(host) is expected


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    modules: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return modules


def test_import_atls_core_loads_only_its_version() -> None:
    modules = _loaded_after("import atls_core")
    assert [m for m in modules if m.startswith("atls")] == ["atls_core", "atls_core._version"]
    assert "attrs" not in modules
    assert "ssl" not in modules


def test_public_names_still_import_on_first_use() -> None:
    modules = _loaded_after(
        "import atls_core\n"
        "assert atls_core.Policy.__module__ == 'atls_core.policy'\n"
        "from atls_core import ATLSContext, AttestationResult, hookimpl\n"
        "assert sorted(set(atls_core.__all__) - set(dir(atls_core))) == []\n"
    )
    assert "atls_core.policy" in modules
    assert "atls_core.tls" in modules


def test_the_tls_module_does_not_load_the_plugin_registry() -> None:
    modules = _loaded_after("import atls_core.tls")
    assert "atls_core.registry" not in modules
    assert "importlib.metadata" not in modules


def test_unknown_names_are_still_attribute_errors() -> None:
    import atls_core

    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(atls_core, "no_such_name")  # noqa: B009 - the name is the point


@pytest.mark.parametrize(
    "bad",
    [
        b"251301000000Z",  # month 13
        b"250132000000Z",  # day 32
        b"2501010000000",  # no Z
        b"25010100000+Z",  # a sign is not a digit
        b"25010100006 Z",  # a space is not a digit
    ],
)
def test_malformed_utc_times_are_refused(bad: bytes) -> None:
    der = SimulatedTEE().certificates().static().certificate_der
    first = der.index(b"\x17\x0d") + 2  # the first UTCTime (notBefore)
    with pytest.raises(MalformedEvidence, match="validity time"):
        PeerCertificate.from_der(der[:first] + bad + der[first + 13 :])
