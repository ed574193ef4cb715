"""Appraisal and results: status tiers, common policy, expiry, JSON, raise_for_status."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from typing import Any

import attrs
import pytest

from atls_core._version import __version__ as core_version
from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import Binding, BindingContext, Freshness, report_data_for
from atls_core.clock import FixedClock
from atls_core.errors import AppraisalFailed, ATLSError, StaleEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData
from atls_core.policy import Policy, ReferenceValue
from atls_core.registry import PluginInfo
from atls_core.result import AttestationResult, Status
from atls_core.testing.facts import (
    TEST_KEY_DIGEST,
    TEST_NONCE,
    TEST_SPKI,
    Facts,
    ReplayingValidator,
    unit_spec,
)

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC)
SPEC = unit_spec(
    "unit.box",
    media_type="application/x-unit",
    oids=("1.3.9999.1",),
    measurements=("image", "config"),
    workload_identity=("image", "config"),
)
PLUGIN = PluginInfo(name="unit", distribution="atls-unit", version="4.5.6", value="unit")
EVIDENCE = Evidence(
    media_type="application/x-unit",
    data=b"evidence",
    source=EvidenceSource(transport=Transport.FILE, location="x"),
    endorsements={"log": b"events"},
)
SPKI = TEST_SPKI
NONCE = TEST_NONCE
KEY_DIGEST = TEST_KEY_DIGEST
NONCE_BINDING = Binding(
    scheme="atls-v1", freshness=Freshness.NONCE, verified=True, nonce="00" * 32, key_digest="ab"
)
KEY_ONLY = attrs.evolve(NONCE_BINDING, freshness=Freshness.KEY_ONLY, nonce=None)
UNBOUND = Binding(scheme="atls-v1", freshness=Freshness.UNBOUND, verified=False)
PIN = {"image": "aaaaaaaa"}


def pinned(policy: Policy | None = None) -> Policy:
    """``policy`` pinning the unit workload's image (the core refuses an unpinned one)."""
    policy = policy or Policy()
    if set(policy.reference_values) & {"image", "config"} or policy.allow_any_workload:
        return policy
    return attrs.evolve(policy, reference_values={**policy.reference_values, **PIN})


class _Recorded(ReplayingValidator):
    """A validator whose ``verify`` replays the facts a test recorded."""

    spec = SPEC

    def __init__(self, calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], report: bytes):
        super().__init__(type(self).spec, calls, report)


class _Pending(Facts):
    """What a validator would record, replayed through the core's :func:`appraise`."""

    def __init__(self, policy: Policy, freshness: Binding | None) -> None:
        super().__init__()
        self.policy = policy
        self.freshness = freshness.freshness if freshness else Freshness.NONCE

    def finish(self) -> AttestationResult:
        return self.appraise(
            SPEC, EVIDENCE, policy=self.policy, now=NOW, freshness=self.freshness, plugin=PLUGIN
        )


def _appraised(validator: ReplayingValidator, evidence: Evidence = EVIDENCE) -> AttestationResult:
    """``validator``'s appraisal of ``evidence`` on a nonce-fresh connection, pinned."""
    return appraise(
        validator,
        evidence,
        binding=BindingContext(spki_der=SPKI, nonce=NONCE),
        clock=FixedClock(NOW),
        policy=pinned(),
    )


def _appraisal(policy: Policy | None = None, **facts: Any) -> _Pending:
    """An appraisal with every fact a good validator records, overridable."""
    pending = _Pending(pinned(policy), facts.get("binding", NONCE_BINDING))
    tcb = facts.get("tcb", ("UpToDate", ()))
    if tcb is not None:
        pending.set_tcb(*tcb)
    if facts.get("debug", False) is not None:
        pending.set_debug(facts.get("debug", False))
    for name, value in facts.get("measurements", {"image": b"\xaa" * 4}).items():
        pending.measure(name, value)
    return pending


def _checks(result: AttestationResult, *, enforced: bool = True) -> list[str]:
    return [f.check for f in result.failures if f.enforced is enforced]


# -- status tiers -------------------------------------------------------------------------------


def test_a_complete_good_appraisal_affirms() -> None:
    result = _appraisal().finish()
    assert result.status is Status.AFFIRMING
    assert result.accepted
    assert result.failures == ()
    assert result.warnings == ()
    assert result.trustworthiness.to_dict() == {
        "instance-identity": 2,
        "executables": 2,
        "hardware": 2,
        "runtime-opaque": 2,
    }
    assert result.issued_at == NOW
    assert result.verifier.validator == "unit.box"
    assert result.verifier.plugin == "unit"
    assert result.verifier.plugin_version == "4.5.6"
    assert result.verifier.core_version == core_version
    assert result.evidence_digest == EVIDENCE.digest
    assert result.policy_digest == pinned().digest
    assert result.tee_type == "unit"


def test_nothing_recorded_is_never_affirming() -> None:
    result = _Pending(Policy(), NONCE_BINDING).finish()
    assert result.status is Status.CONTRAINDICATED
    assert not result.accepted
    assert set(_checks(result)) == {"tcb.status", "debug", "workload.unpinned"}
    assert result.binding.verified  # the core bound it: a plugin cannot skip that


def test_verify_must_return_report_data() -> None:
    class Sloppy(_Recorded):
        def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
            return b"report data"  # type: ignore[return-value]

    with pytest.raises(ATLSError) as info:
        _appraised(Sloppy([], b""))
    assert info.value.check == "plugins.contract"


def test_a_scheme_the_spec_does_not_declare_is_a_plugin_bug() -> None:
    class Drifting(_Recorded):
        def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
            return ReportData(value=self.report, scheme="dstack-ratls-cert")

    # bound correctly under its scheme: only the undeclared scheme is wrong
    report = hashlib.sha512(b"ratls-cert:" + SPKI).digest()
    with pytest.raises(ATLSError) as info:
        _appraised(Drifting([], report))
    # a contract breach of the plugin, not a BindingMismatch that reads like an attack
    assert type(info.value) is ATLSError
    assert info.value.check == "plugins.contract"
    assert "ReportData(scheme='dstack-ratls-cert')" in info.value.reason
    assert info.value.actual == "dstack-ratls-cert"


def test_the_media_type_is_checked_before_the_plugin_runs() -> None:
    class Exploding(_Recorded):
        def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
            raise AssertionError("verify ran on evidence of another media type")

    other = attrs.evolve(EVIDENCE, media_type="application/x-other")
    with pytest.raises(ATLSError) as info:
        _appraised(Exploding([], b""), other)
    assert info.value.check == "evidence.media_type"


def test_the_appraisal_record_takes_facts_through_setters_only() -> None:
    appraisal = Appraisal(spec=SPEC, policy=Policy(), evidence=EVIDENCE, clock=FixedClock(NOW))
    for name in ("debug", "tee_type", "binding", "tcb_status", "policy", "now"):
        with pytest.raises(AttributeError):
            setattr(appraisal, name, None)
    appraisal.measure("image", b"\x01")
    with pytest.raises(TypeError):
        appraisal.measurements["image"] = "00"  # type: ignore[index]


def _record() -> Appraisal:
    return Appraisal(spec=SPEC, policy=Policy(), evidence=EVIDENCE, clock=FixedClock(NOW))


@pytest.mark.parametrize(
    ("misuse", "named"),
    [
        (lambda a: a.measure("image", 3), "appraisal.measure(): 'image' must be bytes or text"),
        (lambda a: a.measure("mrenclave", b"\x01"), "'mrenclave' is not one of the spec's"),
        (lambda a: a.valid_until(NOW.replace(tzinfo=None), "x"), "not a naive datetime"),
        (lambda a: a.valid_until(1700000000, "x"), "appraisal.valid_until(): takes a timezone"),
        (lambda a: a.set_evidence_time(NOW.replace(tzinfo=None)), "appraisal.set_evidence_time"),
    ],
    ids=["measure-int", "measure-undeclared", "expiry-naive", "expiry-int", "time-naive"],
)
def test_a_setter_called_wrongly_is_a_contract_error_naming_it(
    misuse: Callable[[Appraisal], None], named: str
) -> None:
    """Not a raw TypeError/AttributeError from deep in the core, nor (for an undeclared
    measurement) silent acceptance of a value no policy could pin."""
    with pytest.raises(ATLSError) as info:
        misuse(_record())
    assert type(info.value) is ATLSError
    assert info.value.check == "plugins.contract"
    assert info.value.reason.startswith("unit.box: appraisal.")
    assert named in info.value.reason


@pytest.mark.parametrize(
    ("missing", "check", "fix"),
    [
        ("tcb", "tcb.status", "appraisal.set_tcb(...), or appraisal.no_tcb(reason)"),
        ("debug", "debug", "appraisal.set_debug(...)"),
    ],
)
def test_each_missing_fact_rejects_and_names_the_setter(missing: str, check: str, fix: str) -> None:
    result = _appraisal(**{missing: None}).finish()
    assert not result.accepted
    assert result.status is Status.CONTRAINDICATED
    assert _checks(result) == [check]
    assert fix in result.failures[0].message


def test_no_tcb_must_be_declared_and_warns() -> None:
    appraisal = _appraisal(tcb=None)
    appraisal.no_tcb("simulated hardware has no TCB")
    result = appraisal.finish()
    assert result.accepted
    assert result.status is Status.WARNING
    assert "tcb: simulated hardware has no TCB" in result.warnings
    assert result.tcb.status is None


def test_status_of_claim_tiers() -> None:
    assert Status.of_claim(0) is Status.NONE
    assert Status.of_claim(1) is Status.NONE
    assert Status.of_claim(-1) is Status.NONE
    assert Status.of_claim(2) is Status.AFFIRMING
    assert Status.of_claim(31) is Status.AFFIRMING
    assert Status.of_claim(32) is Status.WARNING
    assert Status.of_claim(95) is Status.WARNING
    assert Status.of_claim(96) is Status.CONTRAINDICATED
    assert Status.of_claim(-96) is Status.CONTRAINDICATED
    assert Status.NONE.rank < Status.AFFIRMING.rank < Status.WARNING.rank
    assert Status.WARNING.rank < Status.CONTRAINDICATED.rank


def test_the_worse_vector_value_wins() -> None:
    appraisal = _appraisal()
    appraisal.set_vector("configuration", 96)
    appraisal.set_vector("configuration", 2)
    appraisal.set_vector("file_system", 2)
    appraisal.set_vector("file_system", 33)
    result = appraisal.finish()
    assert result.trustworthiness.configuration == 96
    assert result.trustworthiness.file_system == 33
    # a contraindicating claim rejects even when no check was recorded as failed
    assert result.status is Status.CONTRAINDICATED
    assert not result.accepted
    with pytest.raises(AppraisalFailed) as info:
        result.raise_for_status()
    assert info.value.check == "result.status"


def test_a_warning_claim_alone_warns() -> None:
    appraisal = _appraisal()
    appraisal.set_vector("configuration", 32)
    result = appraisal.finish()
    assert result.status is Status.WARNING
    assert result.accepted


# -- TCB, advisories, debug ------------------------------------------------------------------


def test_tcb_status_not_accepted_by_default() -> None:
    result = _appraisal(tcb=("OutOfDate", ())).finish()
    assert not result.accepted
    (failure,) = result.failures
    assert failure.check == "tcb.status"
    assert failure.expected == ["UpToDate"]
    assert failure.actual == "OutOfDate"
    assert result.trustworthiness.hardware == 96


def test_a_tcb_status_atls_does_not_know_says_the_validator_must_map_it() -> None:
    """A plugin passing its TEE's own word: no policy could accept it, so say why."""
    result = _appraisal(tcb=("current", ())).finish()
    (failure,) = result.failures
    assert failure.check == "tcb.status"
    assert "TCB_STATUSES" in failure.message
    assert "accepted_tcb_statuses" not in failure.message


def test_tcb_status_accepted_by_policy_warns() -> None:
    policy = Policy.from_mapping({"accepted_tcb_statuses": ["UpToDate", "SWHardeningNeeded"]})
    result = _appraisal(policy, tcb=("SWHardeningNeeded", ())).finish()
    assert result.accepted
    assert result.status is Status.WARNING
    assert result.trustworthiness.hardware == 32
    assert "tcb.status: accepted by policy: SWHardeningNeeded" in result.warnings


def test_advisories() -> None:
    rejected = _appraisal(tcb=("UpToDate", ["intel-sa-00615", "INTEL-SA-00828"])).finish()
    assert not rejected.accepted
    (failure,) = rejected.failures
    assert failure.check == "tcb.advisories"
    assert failure.actual == ["INTEL-SA-00615", "INTEL-SA-00828"]
    assert rejected.tcb.advisory_ids == ("INTEL-SA-00615", "INTEL-SA-00828")
    partly = Policy(accepted_advisory_ids={"INTEL-SA-00615"})
    still = _appraisal(partly, tcb=("UpToDate", ["INTEL-SA-00615", "INTEL-SA-00828"])).finish()
    assert still.failures[0].actual == ["INTEL-SA-00828"]
    both = Policy(accepted_advisory_ids={"intel-sa-00615", "INTEL-SA-00828"})
    accepted = _appraisal(both, tcb=("UpToDate", ["INTEL-SA-00615", "INTEL-SA-00828"])).finish()
    assert accepted.accepted
    assert accepted.status is Status.WARNING


def test_debug_refused_unless_allowed() -> None:
    refused = _appraisal(debug=True).finish()
    assert _checks(refused) == ["debug"]
    assert refused.trustworthiness.runtime_opaque == 96
    allowed = _appraisal(Policy(allow_debug=True), debug=True).finish()
    assert allowed.accepted
    assert allowed.status is Status.WARNING
    assert allowed.debug is True


# -- binding and freshness -------------------------------------------------------------------


def test_require_nonce_refuses_key_only() -> None:
    strict = Policy(require_nonce=True)
    assert not _appraisal(strict, binding=KEY_ONLY).finish().accepted
    assert _checks(_appraisal(strict, binding=KEY_ONLY).finish()) == ["freshness.nonce"]
    assert _appraisal(strict, binding=NONCE_BINDING).finish().accepted
    assert _appraisal(binding=KEY_ONLY).finish().status is Status.AFFIRMING


def test_offline_says_unbound_and_warns() -> None:
    result = _appraisal(binding=UNBOUND).finish()
    assert result.accepted
    assert result.status is Status.WARNING
    assert any(w.startswith("binding.offline") for w in result.warnings)
    assert result.trustworthiness.instance_identity is None


# -- reference values ----------------------------------------------------------------------------


def test_reference_values_enforced() -> None:
    policy = Policy(reference_values={"image": ReferenceValue(accepted=["0xAAAAAAAA"])})
    good = _appraisal(policy).finish()
    assert good.accepted
    assert good.trustworthiness.executables == 2
    bad = _appraisal(policy, measurements={"image": "bb" * 4}).finish()
    assert not bad.accepted
    (failure,) = bad.failures
    assert (failure.check, failure.expected, failure.actual) == (
        "reference.image",
        ["aaaaaaaa"],
        "bbbbbbbb",
    )
    assert bad.trustworthiness.executables == 96
    missing = _appraisal(policy, measurements={}).finish()
    assert _checks(missing) == ["reference.image"]


def test_reference_values_warn_only() -> None:
    policy = Policy(
        reference_values={
            "image": ReferenceValue(accepted=["00"], enforce=False),
            "config": ReferenceValue(accepted=["cd"]),
        },
    )
    result = _appraisal(policy, measurements={"image": b"\xaa", "config": "cd"}).finish()
    assert result.accepted
    assert result.status is Status.WARNING
    assert _checks(result, enforced=False) == ["reference.image"]
    assert _checks(result) == []
    assert result.trustworthiness.executables == 33
    assert any("(warn-only)" in w for w in result.warnings)
    assert result.raise_for_status() is result


# -- the pinning rule ---------------------------------------------------------------------------


def test_nothing_pinned_is_refused_naming_what_to_pin() -> None:
    result = _Pending(Policy(), NONCE_BINDING)
    result.set_tcb("UpToDate", ())
    result.set_debug(False)
    result.measure("image", b"\xaa" * 4)
    refused = result.finish()
    assert not refused.accepted
    assert _checks(refused) == ["workload.unpinned"]
    failure = refused.failures[0]
    assert failure.expected == ["reference_values.image", "reference_values.config"]
    assert failure.actual == {"image": "aaaaaaaa"}
    assert 'image = "aaaaaaaa"' in failure.message
    assert "allow_any_workload" in failure.message


def test_a_warn_only_reference_value_is_not_a_pin() -> None:
    policy = Policy(reference_values={"image": ReferenceValue(accepted=["aa"], enforce=False)})
    result = _appraisal(policy).finish()
    assert "workload.unpinned" in _checks(result)


def test_allow_any_workload_accepts_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="atls"):
        result = _appraisal(Policy(allow_any_workload=True)).finish()
    assert result.accepted
    assert result.status is Status.WARNING
    assert any(w.startswith("workload.unpinned") for w in result.warnings)
    assert any("unpinned" in r.getMessage() for r in caplog.records)


def test_a_validator_with_nothing_to_pin_needs_allow_any_workload() -> None:
    class Unpinnable(_Recorded):
        spec = attrs.evolve(SPEC, workload_identity=())

    facts: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = [
        ("set_tcb", ("UpToDate", ()), {}),
        ("set_debug", (False,), {}),
        ("measure", ("image", "aaaaaaaa"), {}),
    ]
    report = report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)
    context = BindingContext(spki_der=SPKI, nonce=NONCE)
    refused = appraise(
        Unpinnable(facts, report), EVIDENCE, binding=context, clock=FixedClock(NOW), policy=pinned()
    )
    assert _checks(refused) == ["workload.unpinned"]
    allowed = appraise(
        Unpinnable(facts, report),
        EVIDENCE,
        binding=context,
        clock=FixedClock(NOW),
        policy=Policy(allow_any_workload=True),
    )
    assert allowed.status is Status.WARNING


# -- TCB verdicts ---------------------------------------------------------------------------------


def test_no_tcb_verdict_never_satisfies_listed_statuses() -> None:
    listed = _appraisal(Policy(accepted_tcb_statuses=["UpToDate"]), tcb=None)
    listed.no_tcb("the token service judged the TCB")
    result = listed.finish()
    assert not result.accepted
    assert _checks(result) == ["tcb.status"]
    default = _appraisal(tcb=None)
    default.no_tcb("the token service judged the TCB")
    assert default.finish().status is Status.WARNING


def test_measurements_are_lowercase_hex() -> None:
    result = _appraisal(measurements={"image": b"\x01\xab", "config": " 0xCD "}).finish()
    assert dict(result.measurements) == {"image": "01ab", "config": "cd"}


# -- age and expiry ---------------------------------------------------------------------------------


def test_max_age() -> None:
    policy = Policy(max_age=dt.timedelta(minutes=10))
    old = _appraisal(policy)
    old.set_evidence_time(NOW - dt.timedelta(minutes=11))
    with pytest.raises(StaleEvidence) as info:
        old.finish()
    assert info.value.check == "freshness.max_age"
    young = _appraisal(policy)
    young.set_evidence_time(NOW - dt.timedelta(minutes=4))
    result = young.finish()
    assert result.expires_at == NOW + dt.timedelta(minutes=6)
    assert result.expiry_reason == "policy max_age"
    timeless = _appraisal(policy).finish()
    assert timeless.expires_at == NOW + dt.timedelta(minutes=10)
    assert any(w.startswith("freshness.max_age") for w in timeless.warnings)


def test_expiry_is_the_earliest_candidate() -> None:
    appraisal = _appraisal(Policy(max_age=dt.timedelta(hours=3)))
    appraisal.set_evidence_time(NOW)
    appraisal.valid_until(NOW + dt.timedelta(hours=2), "collateral next update")
    appraisal.valid_until(NOW + dt.timedelta(hours=1), "token exp")
    result = appraisal.finish()
    assert result.expires_at == NOW + dt.timedelta(hours=1)
    assert result.expiry_reason == "token exp"
    assert not result.is_expired(NOW + dt.timedelta(minutes=59))
    assert result.is_expired(NOW + dt.timedelta(hours=1))

    short = _appraisal(Policy(max_age=dt.timedelta(minutes=30)))
    short.set_evidence_time(NOW)
    short.valid_until(NOW + dt.timedelta(hours=1), "token exp")
    assert short.finish().expiry_reason == "policy max_age"


def test_no_expiry_candidate_means_no_expiry() -> None:
    result = _appraisal().finish()
    assert result.expires_at is None
    assert not result.is_expired(NOW + dt.timedelta(days=10000))


def test_an_already_expired_candidate_rejects() -> None:
    appraisal = _appraisal()
    appraisal.valid_until(NOW, "collateral next update")
    result = appraisal.finish()
    assert _checks(result) == ["freshness.expired"]
    assert not result.accepted


# -- the result object --------------------------------------------------------------------------


def test_json_export() -> None:
    appraisal = _appraisal(Policy(id="p1"), tcb=("UpToDate", ()))
    appraisal.set_tcb("UpToDate", (), date=NOW - dt.timedelta(days=30), evaluation_data_number=17)
    appraisal.claim("raw", b"\x01\x02")
    appraisal.claim("when", NOW)
    appraisal.claim("nested", {"list": [1, {"x": b"\xff"}], "set": {"b", "a"}})
    appraisal.claim("status", Status.WARNING)
    appraisal.valid_until(NOW + dt.timedelta(hours=1), "token exp")
    result = appraisal.finish()
    data = json.loads(result.to_json())
    assert data["status"] == "affirming"
    assert data["accepted"] is True
    assert data["policy"] == {"id": "p1", "digest": pinned(Policy(id="p1")).digest}
    assert data["verifier"] == {
        "validator": "unit.box",
        "plugin": "unit",
        "plugin_version": "4.5.6",
        "core_version": core_version,
    }
    assert data["binding"] == {
        "scheme": "atls-v1",
        "freshness": "nonce",
        "verified": True,
        "nonce": NONCE.hex(),
        "key_digest": KEY_DIGEST,
    }
    assert data["tcb"] == {
        "status": "UpToDate",
        "advisory_ids": [],
        "date": "2025-05-02T12:00:00Z",
        "evaluation_data_number": 17,
    }
    assert data["claims"] == {
        "raw": "0102",
        "when": "2025-06-01T12:00:00Z",
        "nested": {"list": [1, {"x": "ff"}], "set": ["a", "b"]},
        "status": "warning",
    }
    assert data["issued_at"] == "2025-06-01T12:00:00Z"
    assert data["expires_at"] == "2025-06-01T13:00:00Z"
    assert data["expiry_reason"] == "token exp"
    assert data["evidence_digest"] == EVIDENCE.digest
    assert data["trustworthiness"]["hardware"] == 2
    assert json.loads(result.to_json(indent=None)) == data


def test_failures_export() -> None:
    result = _appraisal(tcb=("Revoked", ["x"])).finish()
    data = result.to_dict()
    assert data["failures"][0] == {
        "check": "tcb.status",
        "message": "TCB status is not in the policy's accepted_tcb_statuses",
        "expected": ["UpToDate"],
        "actual": "Revoked",
        "enforced": True,
    }
    assert data["failures"][1]["check"] == "tcb.advisories"


def test_raise_for_status() -> None:
    good = _appraisal().finish()
    assert good.raise_for_status() is good
    bad = _appraisal(tcb=("OutOfDate", ["INTEL-SA-1"]), debug=True).finish()
    with pytest.raises(AppraisalFailed) as info:
        bad.raise_for_status()
    error = info.value
    assert error.result is bad
    assert error.check == "tcb.status"
    assert error.expected == ["UpToDate"]
    assert error.actual == "OutOfDate"
    assert "(+2 more)" in str(error)


def test_results_are_immutable() -> None:
    appraisal = _appraisal()
    appraisal.claim("nested", {"a": [1, 2]})
    result = appraisal.finish()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.status = Status.AFFIRMING  # type: ignore[misc]
    with pytest.raises(TypeError):
        result.claims["x"] = 1  # type: ignore[index]
    with pytest.raises(TypeError):
        result.claims["nested"]["b"] = 2
    with pytest.raises(AttributeError):
        result.claims["nested"]["a"].append(3)
    with pytest.raises(TypeError):
        result.measurements["image"] = "00"  # type: ignore[index]
    # later changes to the scratchpad do not reach the result
    appraisal.measure("image", "ff")
    assert result.measurements["image"] == "aaaaaaaa"


def test_require_records_and_returns() -> None:
    appraisal = _appraisal()
    assert appraisal.require("unit.ok", True, "never shown") is True
    assert appraisal.require("unit.svn", False, "too low", expected=3, actual=2) is False
    result = appraisal.finish()
    assert [(f.check, f.expected, f.actual) for f in result.failures] == [("unit.svn", 3, 2)]
    assert result.status is Status.CONTRAINDICATED


def test_evidence_time_in_the_future_does_not_extend_max_age() -> None:
    # Regression (R3 review): a server-supplied evidence time after "now" passed the
    # max_age check and pushed the result's expiry to born + max_age.
    policy = Policy(max_age=dt.timedelta(minutes=10))
    appraisal = _appraisal(policy)
    appraisal.set_evidence_time(NOW + dt.timedelta(days=365))
    result = appraisal.finish()
    assert result.expires_at is not None
    assert result.expires_at <= NOW + dt.timedelta(minutes=10)


def test_a_status_reads_as_ears_word() -> None:
    from atls_core.result import Status

    assert str(Status.WARNING) == "warning"
    assert f"{Status.AFFIRMING}" == "affirming"
    assert f"{Status.NONE:>6}" == "  none"
    assert Status.CONTRAINDICATED.value == "contraindicated"
    assert not isinstance(Status.WARNING, str)  # no equality with, nor order among, strings
