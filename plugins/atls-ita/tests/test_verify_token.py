"""``atls_ita.verify_token``: one call for users of Intel's client, on stand-in-signed tokens."""

from __future__ import annotations

import base64
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

import atls_ita
from atls_core.binding import Freshness
from atls_core.clock import FixedClock, SystemClock
from atls_core.errors import AppraisalFailed, ConfigurationError, StaleEvidence, UntrustedChain
from atls_core.policy import Policy
from atls_core.result import AttestationResult, Status
from atls_ita import verify_token
from atls_ita.testing.standin import SGX_MRENCLAVE, StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token, unverified_claims


def _at(clock: FixedClock) -> dt.datetime:
    return clock.now()


def _verify(
    token: str, policy: Policy, settings: dict[str, Any], clock: FixedClock, **options: Any
) -> AttestationResult:
    """``verify_token`` at the test's time, with the stand-in's keys over http on loopback."""
    return verify_token(
        token, policy=policy, settings=settings, at=_at(clock), allow_insecure=True, **options
    )


def test_a_pinned_token_is_accepted_offline_and_says_unbound(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, pinned: Policy
) -> None:
    token = issue_token(ita).token
    result = _verify(token, pinned, settings, clock)
    assert result.accepted
    assert result.status is Status.WARNING, "an offline token is bound to no connection"
    # and the stand-in's keys came over http on loopback, which only tests may do:
    assert list(result.claims["test_knobs"]) == ["allow_http_loopback"]
    assert result.binding.freshness is Freshness.UNBOUND
    assert [w for w in result.warnings if w.startswith("binding.offline")]
    assert not [w for w in result.warnings if w.startswith("workload.unpinned")]
    assert result.measurements["mrtd"] == ita.measurements["mrtd"]
    assert result.verifier.validator == "ita.tdx"
    assert result.issued_at == clock.now()


@pytest.mark.parametrize("form", ["bytes", "ita-answer", "policy-table"])
def test_bytes_itas_answer_and_a_policy_table_are_accepted(
    ita: StandInIta,
    tmp_path: Path,
    clock: FixedClock,
    form: str,
) -> None:
    """Pinned keys and root: no network, as Intel's client users verify saved tokens."""
    token = issue_token(ita).token
    settings = {
        "jwks_file": str(ita.write_jwks(tmp_path / "jwks.json")),
        "root_ca": str(ita.write_root(tmp_path / "root.pem")),
    }
    data: str | bytes = token
    policy: Policy | dict[str, Any] = Policy(reference_values=workload_pin())
    if form == "bytes":
        data = token.encode()
    elif form == "ita-answer":
        data = json.dumps({"token": token})
    else:
        policy = {"reference_values": {"mrtd": ita.measurements["mrtd"]}}
    result = verify_token(data, policy=policy, settings=settings, at=_at(clock))
    assert result.accepted
    assert ita.requests["/certs"] == 0


def test_nothing_pinned_raises_workload_unpinned(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    with pytest.raises(AppraisalFailed) as info:
        _verify(issue_token(ita).token, Policy(), settings, clock)
    assert info.value.check == "workload.unpinned"
    assert ita.measurements["mrtd"] in str(info.value), "the refusal shows what to pin"
    assert not info.value.result.accepted


def test_allow_any_workload_returns_a_warning(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    result = _verify(issue_token(ita).token, Policy(allow_any_workload=True), settings, clock)
    assert result.status is Status.WARNING
    assert [w for w in result.warnings if w.startswith("workload.unpinned")]


def test_another_workload_raises_its_reference_check(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    policy = Policy(reference_values={"mrtd": "00" * 48})
    with pytest.raises(AppraisalFailed) as info:
        _verify(issue_token(ita).token, policy, settings, clock)
    assert info.value.check == "reference.mrtd"


def test_sgx_tokens_with_ita_sgx(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock
) -> None:
    ita.tee = "sgx"
    policy = Policy(reference_values={"mrenclave": SGX_MRENCLAVE})
    result = _verify(issue_token(ita).token, policy, settings, clock, validator="ita.sgx")
    assert result.accepted
    assert result.tee_type == "sgx"


def test_a_token_with_forged_claims_raises_untrusted_chain(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, pinned: Policy
) -> None:
    """Someone else's TD, its measurement rewritten to the pinned one: the signature says no."""
    ita.measurements = {**ita.measurements, "mrtd": "ab" * 48}
    head, _, signature = issue_token(ita).token.split(".")
    claims = unverified_claims(f"{head}.{_}.{signature}")
    claims["tdx"]["tdx_mrtd"] = workload_pin()["mrtd"]
    body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    with pytest.raises(UntrustedChain) as info:
        _verify(f"{head}.{body}.{signature}", pinned, settings, clock)
    assert info.value.check == "jwt.signature"


def test_an_expired_token_raises_stale_evidence(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, pinned: Policy
) -> None:
    later = clock.now() + ita.lifetime
    with pytest.raises(StaleEvidence) as info:
        verify_token(
            issue_token(ita).token, policy=pinned, settings=settings, at=later, allow_insecure=True
        )
    assert info.value.check == "jwt.exp"


def test_at_defaults_to_now(ita: StandInIta, settings: dict[str, Any], pinned: Policy) -> None:
    ita.clock = SystemClock()
    ita.lifetime = dt.timedelta(hours=1)
    token = issue_token(ita).token
    assert verify_token(token, policy=pinned, settings=settings, allow_insecure=True).accepted


def test_http_on_loopback_needs_allow_insecure(
    ita: StandInIta, settings: dict[str, Any], clock: FixedClock, pinned: Policy
) -> None:
    """The stand-in's http key endpoint is a tests-only setting, refused by default."""
    assert settings["allow_http_loopback"] is True
    with pytest.raises(ConfigurationError) as info:
        verify_token(issue_token(ita).token, policy=pinned, settings=settings, at=_at(clock))
    assert info.value.check == "config.test_settings"
    assert ita.requests["/certs"] == 0, "refused before any key was fetched"


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        ({"validator": "tdx.dcap"}, "config.validator"),
        ({"at": dt.datetime(2030, 1, 1)}, "config.at"),  # a naive time
        ({"settings": {"jku": "x"}}, "config.settings"),
        ({"policy": Policy(options={"required_policy_idz": ["p"]})}, "config.policy_options"),
    ],
)
def test_configuration_mistakes_are_refused(
    ita: StandInIta, settings: dict[str, Any], pinned: Policy, kwargs: dict[str, Any], check: str
) -> None:
    arguments: dict[str, Any] = {
        "policy": pinned,
        "settings": settings,
        "allow_insecure": True,
        **kwargs,
    }
    with pytest.raises(ConfigurationError) as info:
        verify_token(issue_token(ita).token, **arguments)
    assert info.value.check == check
    if check.startswith(("config.settings", "config.policy")):  # named after the helper called
        assert info.value.reason.startswith("verify_token")


def test_it_is_the_packages_public_entry() -> None:
    assert atls_ita.verify_token is verify_token
    assert "verify_token" in atls_ita.__all__
