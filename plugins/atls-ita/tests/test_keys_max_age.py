"""How long fetched signing keys are trusted: ``keys_max_age``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atls_core.binding import new_nonce
from atls_core.clock import FixedClock
from atls_core.errors import CollateralUnavailable, ConfigurationError, UntrustedChain
from atls_core.policy import Policy
from atls_ita.settings import DEFAULT_KEYS_MAX_AGE, ItaValidatorSettings
from atls_ita.testing.standin import StandInIta
from atls_ita.testing.tokens import Issued, issue_token
from atls_ita.validator import ItaValidator


class Clock:
    """The key cache's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __call__(self) -> float:
        return self.seconds


def _validator(settings: dict[str, Any], clock: Clock) -> ItaValidator:
    verifier = ItaValidatorSettings.from_settings(settings).build_verifier(monotonic=clock)
    return ItaValidator(settings, verifier=verifier)


def _accepted(validator: ItaValidator, issued: Issued, when: FixedClock, policy: Policy) -> bool:
    result = validator.appraise(issued.evidence, binding=issued.binding, clock=when, policy=policy)
    return result.accepted


@pytest.mark.parametrize("configured", [None, 600.0])
def test_a_withdrawn_key_is_refused_once_keys_max_age_has_passed(
    ita: StandInIta,
    tmp_path: Path,
    clock: FixedClock,
    pinned: Policy,
    monkeypatch: pytest.MonkeyPatch,
    configured: float | None,
) -> None:
    age = DEFAULT_KEYS_MAX_AGE if configured is None else configured
    extra = {} if configured is None else {"keys_max_age": configured}
    keys_clock = Clock()
    validator = _validator(ita.validator_settings(tmp_path / "root.pem", **extra), keys_clock)
    withdrawn = issue_token(ita, nonce=new_nonce(), alg="RS256")
    kept = issue_token(ita, nonce=new_nonce(), alg="PS384")
    assert _accepted(validator, withdrawn, clock, pinned)
    monkeypatch.delitem(ita.pki.signers, "RS256")  # no longer published
    keys_clock.seconds = age - 1
    assert _accepted(validator, withdrawn, clock, pinned)  # the cached set, as documented
    assert ita.requests["/certs"] == 1
    keys_clock.seconds = age
    with pytest.raises(UntrustedChain) as info:
        _accepted(validator, withdrawn, clock, pinned)
    assert info.value.check == "jwt.kid"
    assert ita.requests["/certs"] == 2
    assert _accepted(validator, kept, clock, pinned)
    assert ita.requests["/certs"] == 2


def test_past_keys_max_age_a_failing_refresh_keeps_no_keys(
    ita: StandInIta, tmp_path: Path, clock: FixedClock, pinned: Policy
) -> None:
    """Fail closed: an unreachable key service does not extend the old keys' life."""
    keys_clock = Clock()
    settings = ita.validator_settings(tmp_path / "root.pem", keys_max_age=600)
    validator = _validator(settings, keys_clock)
    issued = issue_token(ita, nonce=new_nonce())
    assert _accepted(validator, issued, clock, pinned)
    ita.fail_certs = True
    keys_clock.seconds = 600
    for _ in range(2):  # the retry, too, once jwks_min_refresh allows it
        with pytest.raises(CollateralUnavailable) as info:
            _accepted(validator, issued, clock, pinned)
        assert "keys unavailable" in str(info.value)
        keys_clock.seconds += 60
    ita.fail_certs = False
    assert _accepted(validator, issued, clock, pinned)


def test_keys_max_age_shorter_than_the_refresh_interval_is_refused(
    ita: StandInIta, tmp_path: Path
) -> None:
    settings = ita.validator_settings(tmp_path / "root.pem", keys_max_age=30, jwks_min_refresh=60)
    with pytest.raises(ConfigurationError) as info:
        ItaValidator(settings)
    assert "keys_max_age" in str(info.value)
