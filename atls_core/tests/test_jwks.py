"""JwksCache and fetch_json against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from atls_core.errors import (
    CollateralUnavailable,
    ConfigurationError,
    ServiceUnavailable,
    UntrustedChain,
)
from atls_core.jwks import JwksCache, fetch_json, parse_jwks
from atls_core.testing.httpd import ScriptedServer


def _jwk(kid: str, n: str = "AQAB") -> dict[str, Any]:
    return {"kty": "RSA", "kid": kid, "n": n, "e": "AQAB"}


class KeyServer(ScriptedServer):
    """A real HTTP server whose responses the test controls; counts requests."""

    def __init__(self) -> None:
        super().__init__(path="/certs", document={"keys": [_jwk("k1")]})
        self.redirect_status = 302


@pytest.fixture
def server() -> Iterator[KeyServer]:
    with KeyServer() as s:
        yield s


class FakeMonotonic:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_hit_makes_no_request(server: KeyServer) -> None:
    cache = JwksCache(url=server.url)
    assert cache.get("k1")["kid"] == "k1"
    assert cache.get("k1")["kid"] == "k1"
    assert server.requests == 1


def test_returned_keys_are_read_only(server: KeyServer) -> None:
    cache = JwksCache(url=server.url)
    with pytest.raises(TypeError):
        cache.get("k1")["n"] = "x"  # type: ignore[index]


def test_unknown_kid_refreshes_once_then_rate_limited(server: KeyServer) -> None:
    clock = FakeMonotonic()
    cache = JwksCache(url=server.url, min_refresh_interval=60, monotonic=clock)
    cache.get("k1")
    with pytest.raises(UntrustedChain):
        cache.get("evil")
    assert server.requests == 1, "keys fetched just now are not fetched again"
    clock.t += 61
    with pytest.raises(UntrustedChain) as info:
        cache.get("evil")
    assert info.value.check == "jwt.kid"
    assert "unknown signing key" in str(info.value)
    assert server.requests == 2
    for _ in range(20):
        with pytest.raises(UntrustedChain):
            cache.get(f"evil-{_}")
    assert server.requests == 2, "made-up kids must not cause requests"
    clock.t += 61
    server.document = {"keys": [_jwk("k1"), _jwk("k2")]}
    assert cache.get("k2")["kid"] == "k2"
    assert server.requests == 3


def test_rotation_picks_up_new_key(server: KeyServer) -> None:
    clock = FakeMonotonic()
    cache = JwksCache(url=server.url, monotonic=clock)
    cache.get("k1")
    clock.t += 120
    server.document = {"keys": [_jwk("k2")]}
    assert cache.get("k2")["kid"] == "k2"


def test_source_down_is_collateral_unavailable() -> None:
    s = KeyServer()
    url = s.url
    s.close()
    cache = JwksCache(url=url, timeout=2)
    with pytest.raises(CollateralUnavailable) as info:
        cache.get("k1")
    assert "keys unavailable" in str(info.value)
    assert info.value.check == "jwt.keys"


def test_source_down_is_rate_limited_too(server: KeyServer) -> None:
    clock = FakeMonotonic()
    server.status = 503
    cache = JwksCache(url=server.url, monotonic=clock)
    raised: list[CollateralUnavailable] = []
    for _ in range(5):
        with pytest.raises(CollateralUnavailable) as info:
            cache.get("k1")
        raised.append(info.value)
    assert server.requests == 1
    assert len({id(e) for e in raised}) == 5, "a fresh error each time (no growing traceback)"
    clock.t += 61
    server.status = 200
    assert cache.get("k1")["kid"] == "k1"


def test_stale_keys_are_not_used_when_refresh_fails(server: KeyServer) -> None:
    clock = FakeMonotonic()
    cache = JwksCache(url=server.url, max_age=3600, monotonic=clock)
    cache.get("k1")
    clock.t += 3601
    server.status = 500
    with pytest.raises(CollateralUnavailable):
        cache.get("k1")
    assert cache.keys() == {}


def test_stale_keys_are_refreshed(server: KeyServer) -> None:
    clock = FakeMonotonic()
    cache = JwksCache(url=server.url, max_age=3600, monotonic=clock)
    cache.get("k1")
    clock.t += 3601
    cache.get("k1")
    assert server.requests == 2


def _at_once(
    server: KeyServer, count: int, call: Callable[[], object]
) -> tuple[list[object], list[BaseException]]:
    """Run ``call`` in ``count`` threads while the server holds its answer at a gate, so
    that every call misses the cache together; returns the results and the errors."""
    server.gate = threading.Event()
    results: list[object] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            results.append(call())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(count)]
    for t in threads:
        t.start()
    server.gate.set()
    for t in threads:
        t.join(10)
    return results, errors


def test_concurrent_misses_fetch_once(server: KeyServer) -> None:
    cache = JwksCache(url=server.url)
    results, errors = _at_once(server, 8, lambda: str(cache.get("k1")["kid"]))
    assert not errors
    assert results == ["k1"] * 8
    assert server.requests == 1


def test_oversized_response_refused(server: KeyServer) -> None:
    server.body = b'{"keys": [], "pad": "' + b"x" * 5000 + b'"}'
    with pytest.raises(CollateralUnavailable) as info:
        fetch_json(server.url, timeout=2, max_bytes=1000)
    assert "too large" in str(info.value)


def test_not_json_refused(server: KeyServer) -> None:
    server.body = b"<html>"
    with pytest.raises(CollateralUnavailable):
        fetch_json(server.url, timeout=2)


def test_deeply_nested_json_is_unavailable_not_a_crash(server: KeyServer) -> None:
    server.body = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(CollateralUnavailable):
        fetch_json(server.url, timeout=2, max_bytes=1 << 20)


def test_redirects_not_followed(server: KeyServer) -> None:
    other = KeyServer()
    try:
        server.redirect_to = other.url
        with pytest.raises(ServiceUnavailable) as info:
            fetch_json(server.url, timeout=2)
        assert info.value.phase == "redirect"
        assert info.value.check == "jwt.keys"
        assert other.requests == 0
    finally:
        other.close()


def test_only_http_schemes() -> None:
    with pytest.raises(ConfigurationError):
        fetch_json("file:///etc/passwd", timeout=1)


def test_malformed_set_from_source_is_unavailable(server: KeyServer) -> None:
    server.document = {"nokeys": True}
    with pytest.raises(CollateralUnavailable):
        JwksCache(url=server.url).get("k1")


def test_ambiguous_kid_refused() -> None:
    with pytest.raises(ValueError, match="share kid"):
        parse_jwks({"keys": [_jwk("a", "AQAB"), _jwk("a", "AQAC")]}, where="x")


def test_keys_without_kid_are_skipped() -> None:
    assert list(parse_jwks({"keys": [{"kty": "RSA"}, _jwk("a")]}, where="x")) == ["a"]


def test_pinned_only_never_fetches() -> None:
    cache = JwksCache(pinned={"keys": [_jwk("p")]})
    assert cache.get("p")["kid"] == "p"
    with pytest.raises(UntrustedChain) as info:
        cache.get("q")
    assert info.value.check == "jwt.kid"
    assert set(cache.keys()) == {"p"}


def test_pinned_and_fetched(server: KeyServer) -> None:
    cache = JwksCache(url=server.url, pinned={"keys": [_jwk("p")]})
    assert cache.get("p")["kid"] == "p"
    assert server.requests == 0
    assert cache.get("k1")["kid"] == "k1"
    assert set(cache.keys()) == {"p", "k1"}


def test_fetch_function_source() -> None:
    calls: list[int] = []

    def fetch() -> dict[str, Any]:
        calls.append(1)
        return {"keys": [_jwk("f")]}

    cache = JwksCache(fetch=fetch)
    cache.get("f")
    cache.get("f")
    assert len(calls) == 1


def test_refresh_warms(server: KeyServer) -> None:
    cache = JwksCache(url=server.url)
    cache.refresh()
    assert server.requests == 1
    cache.get("k1")
    assert server.requests == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"url": "http://127.0.0.1/x", "fetch": dict},
        {"pinned": {"keys": "nope"}},
        {"pinned": {"keys": []}, "timeout": 0},
    ],
)
def test_bad_configuration(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JwksCache(**kwargs)


# -- the network never holds a lock, and never for longer than the deadline ------------


def test_slow_refresh_blocks_no_cached_reader_and_ends_at_its_deadline(server: KeyServer) -> None:
    """The measured fault: a dripping key endpoint held every handshake behind the lock."""
    cache = JwksCache(url=server.url, timeout=2, min_refresh_interval=0)
    assert cache.get("k1")["kid"] == "k1"
    server.drip = True
    outcome: list[BaseException] = []

    def refresh_for_unknown_kid() -> None:
        try:
            cache.get("k2")
        except BaseException as error:
            outcome.append(error)

    leader = threading.Thread(target=refresh_for_unknown_kid)
    leader.start()
    assert server.dripping.wait(5)
    # A key already held is served while the refresh is stuck on the network.
    assert cache.get("k1")["kid"] == "k1"
    assert leader.is_alive()
    # Another source is not affected at all.
    other = KeyServer()
    try:
        assert JwksCache(url=other.url).get("k1")["kid"] == "k1"
    finally:
        other.close()
    assert leader.is_alive()
    # A second unknown kid joins the refresh in flight instead of starting another.
    with pytest.raises(CollateralUnavailable) as joined:
        cache.get("k3")
    leader.join(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], ServiceUnavailable)
    assert outcome[0].phase == "timeout"
    assert isinstance(joined.value, ServiceUnavailable)
    assert joined.value is not outcome[0], "each caller gets its own exception"
    assert server.requests == 2


def test_concurrent_misses_share_a_failing_fetch(server: KeyServer) -> None:
    server.status = 503
    cache = JwksCache(url=server.url)
    results, errors = _at_once(server, 6, lambda: cache.get("k1"))
    assert not results
    assert len(errors) == 6
    assert all(isinstance(error, CollateralUnavailable) for error in errors)
    assert server.requests == 1


def test_key_url_credentials_never_shown(server: KeyServer) -> None:
    token = "jwks-t0ken-5e1f"
    port = server.url.split(":")[2].split("/")[0]
    url = f"http://reader:{token}@127.0.0.1:{port}/certs?sig={token}"
    server.status = 503
    with pytest.raises(CollateralUnavailable) as info:
        JwksCache(url=url).get("k1")
    for text in (str(info.value), repr(info.value), json.dumps(info.value.to_dict())):
        assert token not in text
        assert f"127.0.0.1:{port}/***" in text
    server.status = 200
    server.document = {"nokeys": True}
    with pytest.raises(CollateralUnavailable) as info:
        JwksCache(url=url).get("k1")
    assert token not in str(info.value)
