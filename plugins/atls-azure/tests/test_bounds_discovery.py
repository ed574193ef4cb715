"""OpenID discovery and the key set share one deadline (a handshake waits for one, not two)."""

from __future__ import annotations

import datetime as dt
import types

import pytest

from atls_azure import trust
from atls_azure.testing.maa import StandInMaa
from atls_azure.token import verify_token
from atls_azure.trust import build_trust
from atls_core.errors import CollateralUnavailable


class Jumps:
    """A monotonic clock that has run past any deadline after its first reading."""

    def __init__(self) -> None:
        self.readings = 0

    def monotonic(self) -> float:
        self.readings += 1
        return 0.0 if self.readings == 1 else 1e6


def test_key_set_is_not_fetched_once_discovery_used_the_whole_deadline(
    maa: StandInMaa, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Jumps()
    monkeypatch.setattr(
        trust, "time", types.SimpleNamespace(monotonic=clock.monotonic), raising=False
    )
    claims = maa.base_claims("sgx")
    token, trusted = maa.sign(claims), build_trust(maa.settings(timeout=5))
    now = dt.datetime.fromtimestamp(claims["iat"] + 10, dt.UTC)
    with pytest.raises(CollateralUnavailable) as info:
        verify_token(token, trusted, now=now)
    assert "no answer within 5 s" in str(info.value)
    assert maa.requests == {"/.well-known/openid-configuration": 1}
