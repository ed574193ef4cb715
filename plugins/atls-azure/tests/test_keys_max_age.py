"""How long an instance's fetched signing keys are trusted: ``keys_max_age``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from atls_azure.settings import DEFAULT_KEYS_MAX_AGE
from atls_azure.testing.maa import StandInMaa
from atls_azure.token import verify_token
from atls_azure.trust import TokenTrust, build_trust
from atls_core.errors import CollateralUnavailable, ConfigurationError, UntrustedChain


class Clock:
    """The key caches' monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def _verify(maa: StandInMaa, trust: TokenTrust, **sign: Any) -> None:
    claims = maa.base_claims("sgx")
    now = dt.datetime.fromtimestamp(claims["iat"] + 10, dt.UTC)
    verify_token(maa.sign(claims, **sign), trust, now=now)


@pytest.mark.parametrize("configured", [None, 600.0])
def test_a_withdrawn_key_is_refused_once_keys_max_age_has_passed(
    maa: StandInMaa, configured: float | None
) -> None:
    age = DEFAULT_KEYS_MAX_AGE if configured is None else configured
    clock = Clock()
    extra = {} if configured is None else {"keys_max_age": configured}
    trust = build_trust(maa.settings(**extra), monotonic=clock)
    old = maa.key
    _verify(maa, trust)
    new = maa.rotate()
    maa.keys.remove(old)  # withdrawn: no longer published
    clock.seconds = age - 1
    _verify(maa, trust, key=old)  # the cached set still holds it, as documented
    assert maa.requests["/certs"] == 1
    clock.seconds = age
    with pytest.raises(UntrustedChain) as info:
        _verify(maa, trust, key=old)
    assert info.value.check == "jwt.kid"
    assert maa.requests["/certs"] == 2
    _verify(maa, trust, key=new)
    assert maa.requests["/certs"] == 2


def test_past_keys_max_age_a_failing_refresh_keeps_no_keys(maa: StandInMaa) -> None:
    """Fail closed: an unreachable instance does not extend the old keys' life."""
    clock = Clock()
    trust = build_trust(maa.settings(keys_max_age=600), monotonic=clock)
    _verify(maa, trust)
    maa.down = True
    clock.seconds = 600
    for _ in range(2):  # the retry, too, once min_refresh_interval allows it
        with pytest.raises(CollateralUnavailable) as info:
            _verify(maa, trust)
        assert "keys unavailable" in str(info.value)
        clock.seconds += 60
    maa.down = False
    _verify(maa, trust)


def test_keys_max_age_shorter_than_the_refresh_interval_is_refused(maa: StandInMaa) -> None:
    with pytest.raises(ConfigurationError) as info:
        build_trust(maa.settings(keys_max_age=30, min_refresh_interval=60))
    assert "keys_max_age" in str(info.value)
