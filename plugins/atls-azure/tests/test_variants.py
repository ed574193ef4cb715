"""azure.cvm, azure.sgx, azure.tdx over the shared token path."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
from collections.abc import Callable
from typing import Any

import attrs
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from atls_azure import specs
from atls_azure.issuer import certificate_with_token
from atls_azure.testing.maa import (
    STAND_IN_VM_ID,
    StandInMaa,
    held_data_for,
    new_tls_key,
    token_evidence,
)
from atls_azure.validators import (
    CvmTokenValidator,
    SgxTokenValidator,
    TdxTokenValidator,
    spki_from_jwk,
)
from atls_core import binding as b
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.errors import BindingMismatch, ConfigurationError, MalformedEvidence
from atls_core.interfaces import Settings, Validator
from atls_core.policy import Policy, ReferenceValue
from atls_core.result import Status
from atls_core.tdx_rules import SEPT_VE_OPTION
from atls_core.testing.conformance import Case, ValidatorConformance


def _clock(claims: dict[str, Any]) -> FixedClock:
    return FixedClock.from_unix(claims["iat"] + 5)


def _token_case(
    maa: StandInMaa,
    claims: dict[str, Any],
    oid: str,
    spki: bytes,
    policy: Policy,
    *,
    runtime: bytes | None = None,
    nonce: bytes | None = None,
) -> Case:
    """The stand-in's token over ``claims`` (``runtime``: held data beside it), bound to the
    TLS key ``spki`` (and ``nonce``), appraised just after it was issued."""
    return Case(
        evidence=token_evidence(maa.sign(claims), oid, runtime),
        binding=b.BindingContext(spki_der=spki, nonce=nonce),
        clock=_clock(claims),
        policy=policy,
    )


# -- CVM ---------------------------------------------------------------------------------

VM_ID = uuid.UUID(STAND_IN_VM_ID).hex
CVM_POLICY = Policy(reference_values={"vmid": VM_ID})


def cvm_case(maa: StandInMaa, *, tee: str = "sevsnpvm", **overrides: Any) -> Case:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    user_data = b.report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    claims = maa.cvm_claims(user_data, tee=tee, **overrides)
    return _token_case(maa, claims, specs.CVM_OID, spki, CVM_POLICY, nonce=nonce)


def _cvm(maa: StandInMaa, case: Case) -> Any:
    return case.appraised_by(CvmTokenValidator(maa.settings()))


@pytest.mark.parametrize("tee", ["sevsnpvm", "tdxvm"])
def test_cvm_both_tees(maa: StandInMaa, tee: str) -> None:
    result = _cvm(maa, cvm_case(maa, tee=tee))
    assert result.accepted
    assert result.tee_type == ("sev-snp" if tee == "sevsnpvm" else "tdx")
    assert result.binding.freshness is b.Freshness.NONCE
    assert result.binding.scheme == "atls-v1"
    assert result.measurements["vmid"] == VM_ID
    assert result.measurements["launch_measurement" if tee == "sevsnpvm" else "mrtd"] == "ab" * 48
    assert result.claims["x-ms-azurevm-osdistro"] == "Ubuntu"
    assert list(result.claims["x-ms-azurevm-attested-pcrs"]) == [0, 1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({}, VM_ID),
        ({"x-ms-azurevm-vmid": None}, VM_ID),
        ({"x-ms-azurevm-vmid": STAND_IN_VM_ID.lower()}, VM_ID),
        ({"x-ms-azurevm-vmid": None, "isolation": {"x-ms-runtime": {"user-data": ""}}}, None),
    ],
)
def test_cvm_vm_id_from_either_claim(
    maa: StandInMaa, overrides: dict[str, Any], expected: str | None
) -> None:
    _key, spki = new_tls_key()
    nonce = b.new_nonce()
    user_data = b.report_data_for("atls-v1", spki_der=spki, nonce=nonce)
    claims = maa.cvm_claims(user_data)
    for name, value in overrides.items():
        if name == "isolation":  # a runtime without vm-configuration
            claims["x-ms-isolation-tee"]["x-ms-runtime"] = {"user-data": user_data.hex()}
        elif value is None:
            del claims[name]
        else:
            claims[name] = value
    case = _token_case(maa, claims, specs.CVM_OID, spki, CVM_POLICY, nonce=nonce)
    result = _cvm(maa, case)
    assert result.measurements.get("vmid") == expected
    if expected is None:  # nothing to compare the pin with: refused
        assert [f.check for f in result.failures] == ["reference.vmid"]
    else:
        assert result.accepted


@pytest.mark.parametrize(
    "overrides",
    [
        {"x-ms-azurevm-vmid": "0F0E0D0C-0B0A-4908-8706-050403020100"},
        {"x-ms-azurevm-vmid": "not-a-guid"},
        {"x-ms-azurevm-vmid": 7},
    ],
)
def test_cvm_conflicting_or_malformed_vm_id_is_malformed(
    maa: StandInMaa, overrides: dict[str, Any]
) -> None:
    with pytest.raises(MalformedEvidence) as info:
        _cvm(maa, cvm_case(maa, **overrides))
    assert info.value.check == "azure.vmid"


def test_cvm_key_only_user_data(maa: StandInMaa) -> None:
    _key, spki = new_tls_key()
    claims = maa.cvm_claims(b.report_data_for("atls-v1", spki_der=spki, nonce=b""))
    case = _token_case(maa, claims, specs.CVM_OID, spki, CVM_POLICY, nonce=b.new_nonce())
    result = _cvm(maa, case)
    assert result.accepted, result.to_json()
    assert result.binding.freshness is b.Freshness.KEY_ONLY
    assert not _cvm(maa, attrs.evolve(case, policy=Policy(require_nonce=True))).accepted


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"secureboot": False}, "azure.secureboot"),
        ({"x-ms-azurevm-debuggersdisabled": False}, "debug"),
        ({"x-ms-azurevm-kerneldebug-enabled": True}, "debug"),
        ({"isolation": {"x-ms-sevsnpvm-is-debuggable": True}}, "debug"),
        (
            {"isolation": {"x-ms-compliance-status": "azure-noncompliant"}},
            "azure.compliance_status",
        ),
    ],
)
def test_cvm_platform_checks(maa: StandInMaa, overrides: dict[str, Any], check: str) -> None:
    result = _cvm(maa, cvm_case(maa, **overrides))
    assert not result.accepted
    assert any(f.check == check for f in result.failures), result.failures


def test_cvm_unknown_tee_malformed(maa: StandInMaa) -> None:
    with pytest.raises(MalformedEvidence):
        _cvm(maa, cvm_case(maa, isolation={"x-ms-attestation-type": "nitro"}))


# -- SGX ---------------------------------------------------------------------------------

SGX_POLICY = Policy(reference_values={"mrenclave": ReferenceValue(accepted=["11" * 32])})


def sgx_case(
    maa: StandInMaa, *, in_token: bool = True, overrides: dict[str, Any] | None = None
) -> Case:
    key, spki = new_tls_key()
    held = held_data_for(key)
    claims = maa.sgx_claims(held, in_token=in_token, **(overrides or {}))
    return _token_case(
        maa, claims, specs.SGX_OID, spki, SGX_POLICY, runtime=None if in_token else held
    )


def _sgx(maa: StandInMaa, case: Case) -> Any:
    return case.appraised_by(SgxTokenValidator(maa.settings()))


def test_sgx_runtime_json_with_held_data_endorsement(maa: StandInMaa) -> None:
    result = _sgx(maa, sgx_case(maa, in_token=False))
    assert result.accepted
    assert result.binding.freshness is b.Freshness.KEY_ONLY
    assert result.measurements["mrenclave"] == "11" * 32


def test_sgx_runtime_json_without_held_data_refused(maa: StandInMaa) -> None:
    case = sgx_case(maa, in_token=False)
    bare = attrs.evolve(case, evidence=attrs.evolve(case.evidence, endorsements={}))
    with pytest.raises(BindingMismatch) as info:
        _sgx(maa, bare)
    assert info.value.check == "azure.held_data"


def test_sgx_held_data_not_matching_report_data_refused(maa: StandInMaa) -> None:
    """A server swapping the held data for one carrying its own key is caught by the hash."""
    case = sgx_case(maa, in_token=False)
    key, spki = new_tls_key()
    swapped = attrs.evolve(
        case,
        evidence=attrs.evolve(case.evidence, endorsements={"runtime_data": held_data_for(key)}),
        binding=b.BindingContext(spki_der=spki),
    )
    with pytest.raises(BindingMismatch) as info:
        _sgx(maa, swapped)
    assert info.value.check == "azure.sgx.report_data"


def test_sgx_report_data_not_hash_of_ehd_refused(maa: StandInMaa) -> None:
    case = sgx_case(maa, overrides={"x-ms-sgx-report-data": "00" * 64})
    with pytest.raises(BindingMismatch) as info:
        _sgx(maa, case)
    assert info.value.check == "azure.sgx.report_data"


def test_sgx_debug_and_pins(maa: StandInMaa) -> None:
    assert not _sgx(maa, sgx_case(maa, overrides={"x-ms-sgx-is-debuggable": True})).accepted
    wrong = attrs.evolve(
        sgx_case(maa),
        policy=Policy(reference_values={"mrenclave": ReferenceValue(accepted=["99" * 32])}),
    )
    assert not _sgx(maa, wrong).accepted
    unpinned = attrs.evolve(sgx_case(maa), policy=Policy())
    result = _sgx(maa, unpinned)
    assert not result.accepted
    assert [f.check for f in result.failures] == ["workload.unpinned"]


def test_sgx_certificate_transport_with_runtime_data(maa: StandInMaa) -> None:
    key, _spki = new_tls_key()
    held = held_data_for(key)
    claims = maa.sgx_claims(held, in_token=False)
    der = certificate_with_token(
        key, maa.sign(claims), oid=specs.SGX_OID, extra={specs.RUNTIME_DATA_OID: held}
    )
    certificate = PeerCertificate.from_der(der)
    validator = SgxTokenValidator(maa.settings())
    evidence = validator.evidence_from_certificate(certificate)
    assert evidence.endorsements["runtime_data"] == held
    result = validator.appraise(
        evidence,
        binding=b.BindingContext(spki_der=certificate.spki_der),
        clock=_clock(claims),
        policy=SGX_POLICY,
    )
    assert result.accepted


# -- TDX ---------------------------------------------------------------------------------

TDX_POLICY = Policy(reference_values={"mrtd": ReferenceValue(accepted=["33" * 48])})


def tdx_case(maa: StandInMaa, **overrides: Any) -> Case:
    key, spki = new_tls_key()
    held = held_data_for(key)
    claims = maa.tdx_claims(held, **overrides)
    return _token_case(maa, claims, specs.TDX_OID, spki, TDX_POLICY, runtime=held)


def _tdx(maa: StandInMaa, case: Case) -> Any:
    return case.appraised_by(TdxTokenValidator(maa.settings()))


def test_tdx_result(maa: StandInMaa) -> None:
    result = _tdx(maa, tdx_case(maa))
    assert result.status is Status.AFFIRMING
    assert result.tcb.status == "UpToDate"
    assert result.measurements["mrtd"] == "33" * 48


def test_tdx_tcb_status_from_token(maa: StandInMaa) -> None:
    result = _tdx(maa, tdx_case(maa, attester_tcb_status="OutOfDate"))
    assert not result.accepted
    assert any(f.check == "tcb.status" for f in result.failures)


def test_tdx_debug_refused(maa: StandInMaa) -> None:
    assert not _tdx(maa, tdx_case(maa, tdx_td_attributes_debug=True)).accepted


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"tdx_mrsignerseam": "11" * 48}, "tdx.mrsignerseam"),
        ({"tdx_mrsignerseam": None}, "tdx.mrsignerseam"),
        ({"tdx_td_attributes": "0000000000000000"}, "tdx.td_attributes"),  # no SEPT_VE_DISABLE
        ({"tdx_td_attributes": "0000003000000000"}, "tdx.td_attributes"),  # reserved bit 29
        ({"tdx_td_attributes": None}, "tdx.td_attributes"),
    ],
)
def test_tdx_a_td_that_tdx_dcap_refuses_is_refused_in_a_token_too(
    maa: StandInMaa, claims: dict[str, Any], check: str
) -> None:
    """MAA signs what it read from the quote; the validator refuses a TDX module Intel did
    not sign and a TD without SEPT_VE_DISABLE, as tdx.dcap refuses the quote itself."""
    case = tdx_case(maa, **{k: v for k, v in claims.items() if v is not None})
    if None in claims.values():
        key, spki = new_tls_key()
        held = held_data_for(key)
        token_claims = maa.tdx_claims(held)
        for name in claims:
            del token_claims[name]
        case = _token_case(maa, token_claims, specs.TDX_OID, spki, TDX_POLICY, runtime=held)
    result = _tdx(maa, case)
    assert [f.check for f in result.failures] == [check]


def test_tdx_runtime_claim_must_match_held_data(maa: StandInMaa) -> None:
    case = tdx_case(maa, **{"x-ms-runtime": {"jwk": {"kty": "EC"}}})
    with pytest.raises(BindingMismatch) as info:
        _tdx(maa, case)
    assert info.value.check == "azure.runtime"


Variant = tuple[Callable[[Settings], Validator], Callable[[StandInMaa], Case]]
VARIANTS: dict[str, Variant] = {
    "cvm": (CvmTokenValidator, cvm_case),
    "sgx": (SgxTokenValidator, sgx_case),
    "tdx": (TdxTokenValidator, tdx_case),
}
"""Each token variant: its validator and its good case on the stand-in MAA."""


class TestConformance(ValidatorConformance):
    """The kit's checks on each variant."""

    world_fixture = "module_maa"

    @pytest.fixture(autouse=True, params=sorted(VARIANTS))
    def _variant(self, request: pytest.FixtureRequest) -> None:
        self.variant: Variant = VARIANTS[request.param]

    def make_validator(self) -> Validator:
        return self.variant[0](self.world.settings())

    def good_case(self) -> Case:
        return self.variant[1](self.world)


def test_tokens_do_not_cross_variants(maa: StandInMaa) -> None:
    """An SGX token is not a TDX or CVM token, whatever the certificate OID said."""
    case = sgx_case(maa)
    with pytest.raises(MalformedEvidence) as info:
        _tdx(maa, case)
    assert info.value.check == "azure.attestation_type"
    with pytest.raises(MalformedEvidence):
        _cvm(maa, case)


def test_evidence_time_and_expiry(maa: StandInMaa) -> None:
    case = tdx_case(maa)
    result = _tdx(maa, case)
    assert result.expires_at is not None
    assert result.expires_at - result.issued_at <= dt.timedelta(seconds=maa.lifetime)
    assert result.evidence_digest == case.evidence.digest
    bare = attrs.evolve(case.evidence, endorsements={})
    assert bare.digest != case.evidence.digest, "the digest covers the runtime data too"


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1(), ec.SECP521R1()])
def test_spki_from_ec_jwk_matches_cryptography(curve: ec.EllipticCurve) -> None:
    key = ec.generate_private_key(curve)
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
    expected = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_from_jwk(jwk, check="t") == expected


def test_spki_from_rsa_jwk_matches_cryptography() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    expected = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert spki_from_jwk(jwk, check="t") == expected


def _off_curve_p256() -> dict[str, str]:
    """A P-256 JWK whose point is not on the curve (as in the Azure SDK's recorded held data)."""
    jwk: dict[str, str] = json.loads(
        jwt.algorithms.ECAlgorithm.to_jwk(ec.generate_private_key(ec.SECP256R1()).public_key())
    )
    y = bytearray(base64.urlsafe_b64decode(jwk["y"] + "=="))
    y[-1] ^= 1
    return jwk | {"y": base64.urlsafe_b64encode(bytes(y)).decode().rstrip("=")}


def _private_jwk() -> dict[str, Any]:
    key = ec.generate_private_key(ec.SECP256R1())
    jwk: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(key))
    return jwk


@pytest.mark.parametrize(
    "jwk",
    [
        None,
        {"kty": "OKP"},
        {"kty": "EC", "crv": "P-192", "x": "AA", "y": "AA"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "RSA", "n": "!!"},
        _off_curve_p256(),
        _private_jwk(),
    ],
)
def test_spki_from_bad_jwk(jwk: Any) -> None:
    with pytest.raises(BindingMismatch) as info:
        spki_from_jwk(jwk, check="t")
    assert info.value.check == "t"


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"attester_tcb_status": 1}, "azure.tdx.tcb_status"),
        ({"attester_tcb_status": ["UpToDate"]}, "azure.tdx.tcb_status"),
        ({"attester_advisory_ids": "INTEL-SA-00001"}, "azure.tdx.advisories"),
        ({"attester_advisory_ids": [7]}, "azure.tdx.advisories"),
    ],
)
def test_tdx_malformed_tcb_claims_are_refused(
    maa: StandInMaa, claims: dict[str, Any], check: str
) -> None:
    with pytest.raises(MalformedEvidence) as info:
        _tdx(maa, tdx_case(maa, **claims))
    assert info.value.check == check


def test_tdx_token_without_tcb_status_is_only_a_warning(maa: StandInMaa) -> None:
    result = _tdx(maa, tdx_case(maa, attester_tcb_status=None))
    assert result.tcb.status is None
    assert result.status is Status.WARNING


def test_tdx_without_sept_ve_disable_is_a_warning_where_policy_allows_it(maa: StandInMaa) -> None:
    """``require_sept_ve_disable = false`` relaxes that one rule, loudly."""
    case = tdx_case(maa, tdx_td_attributes="0000000000000000")
    policy = attrs.evolve(TDX_POLICY, options={SEPT_VE_OPTION: False})
    result = _tdx(maa, attrs.evolve(case, policy=policy))
    assert result.status is Status.WARNING
    assert any(w.startswith("tdx.td_attributes:") for w in result.warnings)
    with pytest.raises(ConfigurationError):
        TdxTokenValidator(maa.settings()).check_policy(
            attrs.evolve(TDX_POLICY, options={SEPT_VE_OPTION: "no"})
        )
