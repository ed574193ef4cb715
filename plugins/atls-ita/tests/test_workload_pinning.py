"""The core's pinning rule for ita.tdx and ita.sgx: a genuine token is not enough.

Anyone who rents a TDX VM (or runs an SGX enclave) can get an ITA token bound
to their own key; only a pinned workload identity tells the intended server
apart.  Each validator: nothing pinned -> ``workload.unpinned``;
``allow_any_workload`` -> accepted as ``warning``; a pin -> ``affirming``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from atls_core import measurements
from atls_core.binding import new_nonce
from atls_core.clock import FixedClock
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status
from atls_ita.specs import SGX_SPEC, TDX_SPEC
from atls_ita.testing.standin import SGX_MRENCLAVE, SGX_MRSIGNER, StandInIta
from atls_ita.testing.tokens import issue_token
from atls_ita.validator import ItaValidator

TEES = ["tdx", "sgx"]
Appraise = Callable[[str, Policy], AttestationResult]


@pytest.fixture
def appraise(ita: StandInIta, settings: dict[str, Any], clock: FixedClock) -> Appraise:
    """Appraise a fresh token of the stand-in as ``tee`` (ita.tdx or ita.sgx) under ``policy``."""

    def run(tee: str, policy: Policy) -> AttestationResult:
        ita.tee = tee
        validator = ItaValidator(settings, spec=TDX_SPEC if tee == "tdx" else SGX_SPEC)
        issued = issue_token(ita, nonce=new_nonce())
        return validator.appraise(
            issued.evidence, binding=issued.binding, clock=clock, policy=policy
        )

    return run


@pytest.fixture(params=TEES)
def tee(request: pytest.FixtureRequest) -> str:
    """The pinning rule holds for both validators alike."""
    return str(request.param)


def _identity(ita: StandInIta, tee: str) -> tuple[str, str]:
    """The measurement a user would pin first, and the stand-in's value for it."""
    return ("mrtd", ita.measurements["mrtd"]) if tee == "tdx" else ("mrenclave", SGX_MRENCLAVE)


def _checks(result: AttestationResult) -> list[str]:
    return [f.check for f in result.failures if f.enforced]


def test_specs_declare_the_workload_identity() -> None:
    assert TDX_SPEC.workload_identity == measurements.TDX_WORKLOAD
    assert "mrseam" not in TDX_SPEC.workload_identity, "the TDX module is not the workload"
    assert SGX_SPEC.workload_identity == ("mrenclave", "mrsigner")
    for spec in (TDX_SPEC, SGX_SPEC):
        assert set(spec.workload_identity) <= set(spec.measurements)
        assert spec.pinning_options == ()
        assert "allow_any_workload" not in spec.policy_options, "a common policy key now"


def test_nothing_pinned_is_refused_as_workload_unpinned(
    ita: StandInIta, appraise: Appraise, tee: str
) -> None:
    result = appraise(tee, Policy())
    assert not result.accepted
    assert result.status is Status.CONTRAINDICATED
    assert _checks(result) == ["workload.unpinned"], result.to_json()
    failure = result.failures[0]
    name, value = _identity(ita, tee)
    assert f"reference_values.{name}" in failure.message
    assert f'{name} = "{value}"' in failure.message, "the refusal shows the value to pin"
    assert result.binding.verified, "everything else about the token was fine"


def test_allow_any_workload_is_accepted_with_a_warning(appraise: Appraise, tee: str) -> None:
    result = appraise(tee, Policy(allow_any_workload=True))
    assert result.accepted
    assert result.status is Status.WARNING
    assert [w for w in result.warnings if w.startswith("workload.unpinned")]
    assert not result.failures


def test_pinned_workload_is_affirmed(ita: StandInIta, appraise: Appraise, tee: str) -> None:
    name, value = _identity(ita, tee)
    result = appraise(tee, Policy(reference_values={name: value}))
    assert result.status is Status.AFFIRMING, result.to_json()
    assert not result.warnings


def test_a_pin_of_another_workload_is_refused(
    ita: StandInIta, appraise: Appraise, tee: str
) -> None:
    name, value = _identity(ita, tee)
    other = ("ff" if value[:2] != "ff" else "00") + value[2:]
    result = appraise(tee, Policy(reference_values={name: other}))
    assert not result.accepted
    assert _checks(result) == [f"reference.{name}"]


def test_a_warn_only_reference_value_does_not_pin(
    ita: StandInIta, appraise: Appraise, tee: str
) -> None:
    name, value = _identity(ita, tee)
    warn_only = {name: ReferenceValue(accepted=[value], enforce=False)}
    result = appraise(tee, Policy(reference_values=warn_only))
    assert _checks(result) == ["workload.unpinned"]


def test_pinning_the_tdx_module_does_not_pin_the_td(ita: StandInIta, appraise: Appraise) -> None:
    """MRSEAM is Intel's TDX module: every TD on the platform shares it."""
    pin = {"mrseam": ita.measurements["mrseam"]}
    result = appraise("tdx", Policy(reference_values=pin))
    assert _checks(result) == ["workload.unpinned"]


@pytest.mark.parametrize("name", ["rtmr3", "mrconfigid"])
def test_any_td_identity_measurement_pins(ita: StandInIta, appraise: Appraise, name: str) -> None:
    ita.measurements[name] = "05" * 48  # set: an all-zero value is "not set" and pins nothing
    pin = {name: ita.measurements[name]}
    result = appraise("tdx", Policy(reference_values=pin))
    assert result.status is Status.AFFIRMING, result.to_json()


def test_an_unset_td_identity_measurement_pins_nothing(ita: StandInIta, appraise: Appraise) -> None:
    assert ita.measurements["mrconfigid"] == "00" * 48  # the stand-in's TD has none
    result = appraise("tdx", Policy(reference_values={"mrconfigid": "00" * 48}))
    assert _checks(result) == ["workload.unpinned"]


def test_mrsigner_pins_an_enclave(appraise: Appraise) -> None:
    policy = Policy(reference_values={"mrsigner": SGX_MRSIGNER})
    assert appraise("sgx", policy).status is Status.AFFIRMING


def test_required_ita_policies_do_not_pin(ita: StandInIta, appraise: Appraise) -> None:
    """atls cannot see what an ITA policy checks: a matched one is no workload pin."""
    ita.policy_ids_matched = ["policy-a"]
    policy = Policy(options={"required_policy_ids": ["policy-a"]})
    result = appraise("tdx", policy)
    assert _checks(result) == ["workload.unpinned"]


def test_selection_refuses_a_pin_the_validator_cannot_see(ita: StandInIta, tmp_path: Path) -> None:
    """``mrenclave`` is no TDX measurement: a typo'd pin is a configuration error."""
    from atls_core.errors import ConfigurationError
    from atls_core.registry import PluginManager
    from atls_core.selection import select_validator

    with pytest.raises(ConfigurationError) as info:
        select_validator(
            "ita.tdx",
            settings=ita.validator_settings(tmp_path / "root.pem"),
            policy=Policy(reference_values={"mrenclave": SGX_MRENCLAVE}),
            manager=PluginManager(environ={}),
            allow_insecure=True,  # the stand-in's http keys; the pin is what is refused
        )
    assert info.value.check == "config.reference_values"
