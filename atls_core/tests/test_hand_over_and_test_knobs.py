"""Two core mechanisms: handing embedded evidence to another plugin, and fenced test knobs."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs
import pytest

from atls_core.appraisal import Appraisal, appraise
from atls_core.binding import BindingContext, report_data_for
from atls_core.clock import FixedClock
from atls_core.errors import ATLSError, ConfigurationError, MalformedEvidence
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, Settings, ValidatorBase
from atls_core.policy import Policy
from atls_core.result import Status
from atls_core.selection import select_validator
from atls_core.testing.facts import unit_spec
from atls_core.testing.plugins import manager_with, plugin_module

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
SPKI = b"spki"
INNER_TYPE = "application/x-inner"


def _evidence(media_type: str, data: bytes = b"x") -> Evidence:
    return Evidence(
        media_type=media_type, data=data, source=EvidenceSource(transport=Transport.FILE)
    )


INNER_SPEC = unit_spec(
    "inner.report",
    transport=Transport.FILE,
    media_type=INNER_TYPE,
    tee_type="inner-tee",
    measurements=("digest",),
    workload_identity=("digest",),
)


class _Inner(ValidatorBase):
    spec = INNER_SPEC

    def __init__(self, settings: Settings) -> None:
        self.settings = dict(settings)

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        appraisal.set_tee_type("inner-tee")
        appraisal.set_debug(False)
        appraisal.set_tcb("UpToDate")
        appraisal.measure("digest", evidence.data)
        return ReportData(value=report_data_for("atls-v1", spki_der=SPKI, nonce=b""))


OUTER_SPEC = unit_spec(
    "outer.box",
    transport=Transport.FILE,
    media_type="application/x-outer",
    measurements=("digest",),
    workload_identity=("digest",),
    settings=("root", "custom_root"),
    test_settings=("custom_root",),
)


class _Outer(ValidatorBase):
    spec = OUTER_SPEC

    def __init__(self, settings: Settings) -> None:
        pass

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        inner = _evidence(INNER_TYPE, evidence.data)
        return appraisal.hand_over(inner, validator="inner.report")


def _appraise(manager: Any, knobs: tuple[str, ...] = ()) -> Any:
    return appraise(
        _Outer({}),
        _evidence("application/x-outer", b"\xab"),
        binding=BindingContext(spki_der=SPKI, nonce=b"n" * 32),
        clock=FixedClock(NOW),
        policy=Policy(reference_values={"digest": "ab"}),
        manager=manager,
        test_knobs=knobs,
    )


def test_hand_over_records_the_other_validators_facts() -> None:
    manager = manager_with(named={"inner": plugin_module("atls_test_inner", (INNER_SPEC, _Inner))})
    result = _appraise(manager)
    assert result.status is Status.AFFIRMING, result.to_json()
    assert result.tee_type == "inner-tee"
    assert result.measurements["digest"] == "ab"
    assert result.claims["handed_over_to"][0].startswith("inner.report")


def test_a_delegates_measurement_must_be_declared_by_the_container() -> None:
    """The result is the container's: its policy can pin only what its spec declares."""
    manager = manager_with(named={"inner": plugin_module("atls_test_inner", (INNER_SPEC, _Inner))})

    class Undeclaring(_Outer):
        spec = attrs.evolve(OUTER_SPEC, measurements=("other",), workload_identity=("other",))

    with pytest.raises(ATLSError) as info:
        appraise(
            Undeclaring({}),
            _evidence("application/x-outer", b"\xab"),
            binding=BindingContext(spki_der=SPKI, nonce=b"n" * 32),
            clock=FixedClock(NOW),
            policy=Policy(reference_values={"other": "ab"}),
            manager=manager,
        )
    assert info.value.check == "plugins.contract"
    assert info.value.reason.startswith("outer.box: appraisal.measure(): 'digest' is not")


def test_hand_over_to_a_missing_plugin_says_what_to_install() -> None:
    with pytest.raises(MalformedEvidence) as info:
        _appraise(manager_with())
    assert info.value.check == "evidence.hand_over"
    assert "'inner'" in str(info.value)


def test_test_knobs_need_the_insecure_opt_in_and_cap_the_result() -> None:
    manager = manager_with(
        named={
            "outer": plugin_module("atls_test_outer", (OUTER_SPEC, _Outer)),
            "inner": plugin_module("atls_test_inner", (INNER_SPEC, _Inner)),
        }
    )
    with pytest.raises(ConfigurationError) as info:
        select_validator("outer.box", settings={"custom_root": "x"}, manager=manager)
    assert info.value.check == "config.test_settings"
    selected = select_validator(
        "outer.box",
        settings={"custom_root": "x"},
        manager=manager,
        allow_insecure=True,
        policy=Policy(reference_values={"digest": "ab"}),
    )
    assert selected.test_knobs == ("custom_root",)
    result = selected.appraise(
        _evidence("application/x-outer", b"\xab"),
        binding=BindingContext(spki_der=SPKI, nonce=b"n" * 32),
        clock=FixedClock(NOW),
    )
    assert result.status is Status.WARNING
    assert list(result.claims["test_knobs"]) == ["custom_root"]
    assert any(w.startswith("insecure.test_knob") for w in result.warnings)
    unset = select_validator("outer.box", settings={"custom_root": False}, manager=manager)
    assert unset.test_knobs == ()
