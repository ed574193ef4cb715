"""Key rotation seen by JwksCache: a key the service withdrew is not accepted after a refresh."""

from __future__ import annotations

from typing import Any

import pytest

from atls_core.errors import UntrustedChain
from atls_core.jwks import JwksCache
from atls_core.testing.httpd import ScriptedServer


def _jwk(kid: str) -> dict[str, Any]:
    return {"kty": "RSA", "kid": kid, "n": "AQAB", "e": "AQAB"}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_a_withdrawn_key_is_refused_once_a_new_key_brought_a_refresh() -> None:
    clock = Clock()
    with ScriptedServer(path="/certs", document={"keys": [_jwk("old")]}) as server:
        cache = JwksCache(url=server.url, min_refresh_interval=60, monotonic=clock)
        assert cache.get("old")["kid"] == "old"
        server.document = {"keys": [_jwk("new")]}  # rotated: "old" withdrawn
        clock.t += 61
        assert cache.get("new")["kid"] == "new"
        with pytest.raises(UntrustedChain) as info:
            cache.get("old")
        assert info.value.check == "jwt.kid"
        assert server.requests == 2
