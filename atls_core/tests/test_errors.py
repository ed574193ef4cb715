"""The error tree: flat, every error names its check, values shown safely."""

from __future__ import annotations

import datetime as dt
import ssl

import pytest

import atls_core
from atls_core import errors as e
from atls_core.binding import Binding, Freshness
from atls_core.result import AttestationResult, Status, Tcb, TrustworthinessVector, Verifier

DEFAULT_CHECKS: dict[type[e.ATLSError], str] = {
    e.ATLSError: "atls",
    e.ConfigurationError: "config",
    e.PluginNotFound: "plugins.lookup",
    e.PluginLoadError: "plugins.load",
    e.IncompatiblePlugin: "plugins.core_version",
    e.DuplicateRegistration: "plugins.duplicate",
    e.MalformedEvidence: "evidence.format",
    e.UntrustedChain: "evidence.signature",
    e.BindingMismatch: "binding.report_data",
    e.StaleEvidence: "freshness",
    e.CollateralUnavailable: "collateral.fetch",
}


def _result() -> AttestationResult:
    return AttestationResult(
        status=Status.CONTRAINDICATED,
        trustworthiness=TrustworthinessVector(),
        verifier=Verifier(validator="x.y", plugin="x", plugin_version="1", core_version="0"),
        policy_id="default",
        policy_digest="00",
        evidence_digest="11",
        binding=Binding(scheme="atls-v1", freshness=Freshness.UNBOUND, verified=False),
        tee_type="x",
        debug=None,
        tcb=Tcb(),
        measurements={},
        claims={},
        issued_at=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        expires_at=None,
    )


@pytest.mark.parametrize(("cls", "check"), list(DEFAULT_CHECKS.items()))
def test_default_checks(cls: type[e.ATLSError], check: str) -> None:
    error = cls("went wrong")
    assert error.check == check
    assert str(error) == f"{check}: went wrong"
    assert error.reason == "went wrong"
    assert isinstance(error, e.ATLSError)


def test_the_tree_is_flat_and_exported() -> None:
    for name in e.__all__:
        cls = getattr(e, name)
        if name == "attestation_error":
            assert getattr(atls_core, name) is cls
            continue
        assert issubclass(cls, e.ATLSError)
        assert getattr(atls_core, name) is cls
    assert e.IncompatiblePlugin.__mro__[1] is e.PluginLoadError
    others = set(DEFAULT_CHECKS) - {e.ATLSError, e.IncompatiblePlugin}
    for cls in others | {e.AppraisalFailed}:
        assert cls.__mro__[1] is e.ATLSError, cls
    assert not issubclass(e.CollateralUnavailable, (e.UntrustedChain, e.MalformedEvidence))


def test_expected_and_actual() -> None:
    both = e.BindingMismatch("nope", check="x.y", expected=b"\x01\x02", actual=b"\xff")
    assert str(both) == "x.y: nope (expected 0102, got ff)"
    assert both.expected == b"\x01\x02"
    only_actual = e.DuplicateRegistration("twice", actual="1.2.3")
    assert str(only_actual) == "plugins.duplicate: twice (got 1.2.3)"
    only_expected = e.ConfigurationError("missing", check="config.k", expected=["a", "b"])
    assert str(only_expected) == "config.k: missing (expected ['a', 'b'])"
    falsy = e.ATLSError("zero", check="c", expected=0, actual=False)
    assert str(falsy) == "c: zero (expected 0, got False)"


def test_values_are_rendered_compactly() -> None:
    long = e.ATLSError("long", check="c", expected=b"\xaa" * 200, actual="z" * 500)
    text = str(long)
    assert len(text) < 400
    assert "..." in text
    sets = e.ATLSError("sets", check="c", expected={"b", "a"}, actual=frozenset({3, 1}))
    assert str(sets) == "c: sets (expected ['a', 'b'], got [1, 3])"


def test_appraisal_failed_carries_the_result() -> None:
    result = _result()
    error = e.AppraisalFailed("rejected", result=result, check="tcb.status", actual="OutOfDate")
    assert error.result is result
    assert str(error) == "tcb.status: rejected (got OutOfDate)"
    assert e.AppraisalFailed("x", result=result).check == "policy"


def test_verification_error_is_an_ssl_certificate_error() -> None:
    result = _result()
    cause = e.AppraisalFailed("TCB not accepted", result=result, check="tcb.status")
    error = e.ATLSVerificationError(cause, host="api.example.com")
    assert isinstance(error, ssl.SSLCertVerificationError)
    assert isinstance(error, ssl.SSLError)
    assert isinstance(error, e.ATLSError)
    assert error.cause is cause
    assert error.result is result, "the result comes from the cause"
    assert error.check == "tcb.status"
    assert str(error) == "tcb.status: attestation of 'api.example.com' failed: TCB not accepted"
    assert error.verify_message == str(error)
    assert error.verify_code == 0
    plain = e.ATLSVerificationError(e.BindingMismatch("other key"))
    assert plain.result is None
    assert str(plain) == "binding.report_data: attestation failed: other key"


def test_errors_can_be_raised_and_caught_by_base() -> None:
    with pytest.raises(e.ATLSError) as info:
        raise e.StaleEvidence("old", check="tdx.collateral", expected="<1d", actual="3d")
    assert info.value.check == "tdx.collateral"


def test_fresh_is_an_equal_exception_without_the_raised_ones_traceback() -> None:
    kept = e.ServiceUnavailable(
        "keys unavailable", service="https://k.example/certs", phase="status", actual=503
    )
    with pytest.raises(e.ServiceUnavailable):
        raise kept
    again = kept.fresh()
    assert type(again) is e.ServiceUnavailable
    assert again is not kept
    assert (str(again), again.to_dict()) == (str(kept), kept.to_dict())
    assert kept.__traceback__ is not None
    assert again.__traceback__ is None


@pytest.mark.parametrize(
    ("check", "named"), [(None, "x.y"), ("config.validator", "config.validator")]
)
def test_in_configuration_names_the_key_and_keeps_the_details(
    check: str | None, named: str
) -> None:
    error = e.MalformedEvidence("bad value", check="x.y", expected=1, actual=2)
    moved = error.in_configuration("hosts.a", check=check)
    assert isinstance(moved, e.ConfigurationError)
    assert moved.reason == "hosts.a: bad value"
    assert (moved.check, moved.expected, moved.actual) == (named, 1, 2)
