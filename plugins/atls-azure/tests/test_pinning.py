"""The core's pinning rule over every Azure validator.

A genuine MAA token only proves "some workload on Azure hardware": anyone can
get one for their own container, enclave or VM.  For each validator: nothing
pinned -> refused with ``workload.unpinned``; ``allow_any_workload`` ->
accepted as ``warning``; a pin -> accepted; a pin of another workload ->
refused.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from atls_azure import specs
from atls_azure.issuer import aci_runtime_data
from atls_azure.testing.maa import (
    STAND_IN_VM_ID,
    StandInMaa,
    held_data_for,
    new_tls_key,
    token_evidence,
)
from atls_azure.validators import FACTORIES
from atls_core import binding as b
from atls_core.clock import FixedClock
from atls_core.errors import ConfigurationError
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import AttestationResult, Status
from atls_core.selection import select_validator
from atls_core.testing.conformance import Case

HOSTDATA = hashlib.sha256(b"package policy").hexdigest()
VM_ID = uuid.UUID(STAND_IN_VM_ID).hex
OTHER_VM_ID = uuid.UUID("0F0E0D0C-0B0A-4908-8706-050403020100").hex


def _case(maa: StandInMaa, claims: dict[str, Any], oid: str, **binding: Any) -> Case:
    runtime = binding.pop("runtime", None)
    return Case(
        evidence=token_evidence(maa.sign(claims), oid, runtime),
        binding=b.BindingContext(**binding),
        clock=FixedClock.from_unix(claims["iat"] + 5),
    )


def aci_case(maa: StandInMaa) -> Case:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    claims = maa.aci_claims(aci_runtime_data(spki, nonce))
    return _case(maa, claims, specs.ACI_OID, spki_der=spki, nonce=nonce)


def cvm_case(maa: StandInMaa) -> Case:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    claims = maa.cvm_claims(b.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
    return _case(maa, claims, specs.CVM_OID, spki_der=spki, nonce=nonce)


def sgx_case(maa: StandInMaa) -> Case:
    key, spki = new_tls_key()
    return _case(maa, maa.sgx_claims(held_data_for(key)), specs.SGX_OID, spki_der=spki)


def tdx_case(maa: StandInMaa) -> Case:
    key, spki = new_tls_key()
    held = held_data_for(key)
    return _case(maa, maa.tdx_claims(held), specs.TDX_OID, spki_der=spki, runtime=held)


SPECS = {spec.id: spec for spec in specs.SPECS}

CASES: dict[str, Callable[[StandInMaa], Case]] = {
    "azure.aci": aci_case,
    "azure.cvm": cvm_case,
    "azure.sgx": sgx_case,
    "azure.tdx": tdx_case,
}

CARRIED = {
    "azure.aci": {"hostdata": HOSTDATA},
    "azure.cvm": {"vmid": VM_ID},
    "azure.sgx": {"mrenclave": "11" * 32, "mrsigner": "22" * 32},
    "azure.tdx": {"mrtd": "33" * 48, "rtmr0": "44" * 48},  # RTMR1-3 all zeros: "not set"
}
"""The workload identity each stand-in token carries (what the refusal must name)."""

PINS = [
    ("azure.aci", Policy(options={"hostdata": [HOSTDATA]})),
    ("azure.aci", Policy(options={"cce_policies": ["package policy"]})),
    ("azure.aci", Policy(reference_values={"hostdata": HOSTDATA})),
    ("azure.cvm", Policy(reference_values={"vmid": VM_ID})),
    ("azure.sgx", Policy(reference_values={"mrenclave": "11" * 32})),
    ("azure.sgx", Policy(reference_values={"mrsigner": "22" * 32})),
    ("azure.tdx", Policy(reference_values={"mrtd": "33" * 48})),
    ("azure.tdx", Policy(reference_values={"rtmr0": "44" * 48})),
]

WRONG_PINS = [
    ("azure.aci", Policy(options={"hostdata": ["00" * 32]}), "azure.hostdata"),
    ("azure.aci", Policy(options={"cce_policies": ["other policy"]}), "azure.hostdata"),
    ("azure.aci", Policy(reference_values={"hostdata": "ee" * 32}), "reference.hostdata"),
    ("azure.cvm", Policy(reference_values={"vmid": OTHER_VM_ID}), "reference.vmid"),
    ("azure.sgx", Policy(reference_values={"mrenclave": "99" * 32}), "reference.mrenclave"),
    ("azure.tdx", Policy(reference_values={"mrtd": "99" * 48}), "reference.mrtd"),
]


def _appraise(maa: StandInMaa, validator_id: str, policy: Policy) -> AttestationResult:
    case = CASES[validator_id](maa)
    return FACTORIES[validator_id](maa.settings()).appraise(
        case.evidence, binding=case.binding, clock=case.clock, policy=policy
    )


def _checks(result: AttestationResult) -> list[str]:
    return [f.check for f in result.failures if f.enforced]


def _warned(result: AttestationResult, check: str) -> bool:
    return any(w.startswith(f"{check}:") for w in result.warnings)


@pytest.mark.parametrize("validator_id", sorted(CASES))
def test_nothing_pinned_is_refused(maa: StandInMaa, validator_id: str) -> None:
    result = _appraise(maa, validator_id, Policy())
    assert not result.accepted
    assert _checks(result) == ["workload.unpinned"]
    (failure,) = result.failures
    assert failure.actual == CARRIED[validator_id], "the refusal names what the evidence carries"
    spec = SPECS[validator_id]
    assert failure.expected == [
        f"reference_values.{name}" for name in spec.workload_identity
    ] + list(spec.pinning_options)


@pytest.mark.parametrize("validator_id", sorted(CASES))
def test_allow_any_workload_is_a_warning(maa: StandInMaa, validator_id: str) -> None:
    result = _appraise(maa, validator_id, Policy(allow_any_workload=True))
    assert result.accepted, result.to_json()
    assert result.status is Status.WARNING
    assert _warned(result, "workload.unpinned")


@pytest.mark.parametrize(("validator_id", "policy"), PINS)
def test_pinned_is_accepted(maa: StandInMaa, validator_id: str, policy: Policy) -> None:
    result = _appraise(maa, validator_id, policy)
    assert result.accepted, result.to_json()
    assert not _warned(result, "workload.unpinned")


@pytest.mark.parametrize(("validator_id", "policy", "check"), WRONG_PINS)
def test_another_workloads_pin_is_refused(
    maa: StandInMaa, validator_id: str, policy: Policy, check: str
) -> None:
    result = _appraise(maa, validator_id, policy)
    assert not result.accepted
    assert _checks(result) == [check]


@pytest.mark.parametrize(("validator_id", "policy"), PINS[2:])
def test_a_warn_only_reference_value_does_not_pin(
    maa: StandInMaa, validator_id: str, policy: Policy
) -> None:
    ((name, reference),) = policy.reference_values.items()
    warn_only = Policy(
        reference_values={name: ReferenceValue(accepted=reference.accepted, enforce=False)}
    )
    result = _appraise(maa, validator_id, warn_only)
    assert _checks(result) == ["workload.unpinned"]


@pytest.mark.parametrize(
    ("name", "value"), [("launch_measurement", "ab" * 48), ("mrtd", "ab" * 48)]
)
def test_cvm_paravisor_measurements_do_not_pin(maa: StandInMaa, name: str, value: str) -> None:
    """Every Azure CVM runs Azure's paravisor: pinning its measurement accepts anyone's VM."""
    tee = "sevsnpvm" if name == "launch_measurement" else "tdxvm"
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    claims = maa.cvm_claims(b.report_data_for("atls-v1", spki_der=spki, nonce=nonce), tee=tee)
    case = _case(maa, claims, specs.CVM_OID, spki_der=spki, nonce=nonce)
    result = FACTORIES["azure.cvm"](maa.settings()).appraise(
        case.evidence,
        binding=case.binding,
        clock=case.clock,
        policy=Policy(reference_values={name: value}),
    )
    assert result.measurements[name] == value
    assert _checks(result) == ["workload.unpinned"]


def test_aci_empty_allow_list_allows_nothing(maa: StandInMaa) -> None:
    """An allow-list that is set pins (the core's rule), so empty must mean "none"."""
    result = _appraise(maa, "azure.aci", Policy(options={"hostdata": []}))
    assert _checks(result) == ["azure.hostdata"]


@pytest.mark.parametrize("validator_id", sorted(CASES))
def test_allow_any_workload_is_a_common_policy_key(validator_id: str) -> None:
    settings = {"instances": ["https://sharedeus2.eus2.attest.azure.net"]}
    policy = Policy.from_mapping({"allow_any_workload": True})
    assert policy.allow_any_workload
    assert policy.options == {}
    assert select_validator(validator_id, policy=policy, settings=settings).policy is policy
    with pytest.raises(ConfigurationError) as info:
        select_validator(
            validator_id,
            policy=Policy(options={"allow_any_workload": True}),
            settings=settings,
        )
    assert info.value.check == "config.policy_options"


def test_every_spec_declares_its_workload_identity() -> None:
    for spec in specs.SPECS:
        assert spec.workload_identity, spec.id
        assert set(spec.workload_identity) <= set(spec.measurements)
    assert specs.CVM_SPEC.workload_identity == ("vmid",)
    assert specs.ACI_SPEC.pinning_options == ("hostdata", "cce_policies")
