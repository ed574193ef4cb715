"""A conformance test class for validator plugins (the keyring model).

Subclass it in your plugin's tests, name the subclass ``Test...`` so pytest
collects it, and implement :meth:`make_validator` and :meth:`good_case`::

    from atls_core.testing.conformance import Case, ValidatorConformance

    class TestMyValidator(ValidatorConformance):
        def make_validator(self):
            return MyValidator({...})

        def good_case(self):
            return Case(evidence=..., binding=..., clock=..., policy=...)

The class feeds the validator good evidence, tampered evidence, evidence bound
to another key or nonce, expired evidence and offline appraisal, and checks the
outcomes and the shape of results.  Override :meth:`tamper` when flipping a
byte in the middle of the evidence does not hit a signed region of your
format, and :meth:`expired_clock` to give a time at which your evidence is
expired (return ``None`` only if your evidence truly never expires, and say why
in :attr:`never_expires_reason`).
"""

from __future__ import annotations

import datetime as dt
import json

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import SCHEMES, BindingContext, Freshness, new_nonce
from atls_core.clock import Clock, FixedClock
from atls_core.errors import (
    ATLSError,
    BindingMismatch,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.evidence import Evidence, Transport
from atls_core.interfaces import Validator
from atls_core.policy import Policy
from atls_core.result import AttestationResult, Status

__all__ = ["Case", "ValidatorConformance", "other_spki"]


@attrs.frozen(kw_only=True)
class Case:
    """Evidence and everything needed to appraise it."""

    evidence: Evidence
    binding: BindingContext
    clock: Clock
    policy: Policy = attrs.field(factory=Policy)


def other_spki() -> bytes:
    """A fresh, unrelated SubjectPublicKeyInfo."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class ValidatorConformance:
    """Generic checks every validator must pass."""

    never_expires_reason: str | None = None

    # -- to implement ------------------------------------------------------

    def make_validator(self) -> Validator:
        raise NotImplementedError

    def good_case(self) -> Case:
        raise NotImplementedError

    # -- overridable -------------------------------------------------------

    def tamper(self, evidence: Evidence) -> Evidence:
        """Return evidence with one byte changed inside a signed region."""
        data = bytearray(evidence.data)
        data[len(data) // 2] ^= 0x01
        return attrs.evolve(evidence, data=bytes(data))

    def expired_clock(self, case: Case) -> Clock | None:
        """A clock at which the good evidence is expired; default: ten years later."""
        return FixedClock(case.clock.now() + dt.timedelta(days=3650))

    # -- helpers -----------------------------------------------------------

    def appraise(self, case: Case) -> AttestationResult:
        return self.make_validator().appraise(
            case.evidence, binding=case.binding, clock=case.clock, policy=case.policy
        )

    # -- the tests ---------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.make_validator().spec
        plugin, dot, name = spec.id.partition(".")
        assert plugin, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert dot, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert name, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert spec.media_types, "a validator names at least one media type"
        assert spec.binding_scheme in SCHEMES, f"unknown binding scheme {spec.binding_scheme!r}"
        if spec.transport is Transport.CERTIFICATE:
            assert spec.oids, "certificate-borne evidence needs at least one OID"
        assert spec.tee_type, "tee_type must be set"

    def test_good_evidence_is_accepted(self) -> None:
        case = self.good_case()
        result = self.appraise(case)
        assert result.accepted, result.to_json()
        assert result.status in (Status.AFFIRMING, Status.WARNING)
        assert result.verifier.validator == self.make_validator().spec.id
        assert result.evidence_digest == case.evidence.digest
        assert result.policy_digest == case.policy.digest
        assert result.policy_id == case.policy.id
        if not case.binding.offline:
            assert result.binding.verified
            assert result.binding.key_digest == case.binding.key_digest
            assert result.binding.freshness in (Freshness.NONCE, Freshness.KEY_ONLY)
        assert result.debug is not None
        if isinstance(case.clock, FixedClock):
            assert result.issued_at == case.clock.now(), "results are issued at the given clock"
        if result.expires_at is not None:
            assert result.expires_at > result.issued_at

    def test_result_shape(self) -> None:
        result = self.appraise(self.good_case())
        data = json.loads(result.to_json())
        for key in (
            "status",
            "trustworthiness",
            "verifier",
            "policy",
            "evidence_digest",
            "binding",
            "tee_type",
            "debug",
            "tcb",
            "measurements",
            "claims",
            "warnings",
            "issued_at",
            "expires_at",
        ):
            assert key in data, key
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            result.status = Status.AFFIRMING  # type: ignore[misc]
        with pytest.raises(TypeError):
            result.claims["injected"] = True  # type: ignore[index]
        assert all(isinstance(v, str) for v in result.measurements.values())
        assert result.raise_for_status() is result

    def test_tampered_evidence_is_rejected(self) -> None:
        case = self.good_case()
        tampered = attrs.evolve(case, evidence=self.tamper(case.evidence))
        assert tampered.evidence.data != case.evidence.data
        try:
            result = self.appraise(tampered)
        except (UntrustedChain, MalformedEvidence, BindingMismatch, StaleEvidence):
            return
        pytest.fail(f"tampered evidence was not rejected: {result.status}")

    def test_evidence_bound_to_another_key_is_rejected(self) -> None:
        case = self.good_case()
        if case.binding.offline:
            pytest.skip("good_case is offline; give a bound case to test binding")
        rebound = attrs.evolve(case, binding=attrs.evolve(case.binding, spki_der=other_spki()))
        with pytest.raises(BindingMismatch):
            self.appraise(rebound)

    def test_evidence_bound_to_another_nonce(self) -> None:
        case = self.good_case()
        if case.binding.offline:
            pytest.skip("good_case is offline; give a bound case to test binding")
        rebound = attrs.evolve(case, binding=attrs.evolve(case.binding, nonce=new_nonce()))
        scheme = SCHEMES[self.make_validator().spec.binding_scheme]
        good = self.appraise(case)
        if scheme.uses_nonce and good.binding.freshness is Freshness.NONCE:
            with pytest.raises(BindingMismatch):
                self.appraise(rebound)
        else:
            result = self.appraise(rebound)
            assert result.binding.freshness is Freshness.KEY_ONLY
            strict = attrs.evolve(rebound, policy=attrs.evolve(rebound.policy, require_nonce=True))
            assert not self.appraise(strict).accepted

    def test_expired_evidence_is_rejected(self) -> None:
        case = self.good_case()
        clock = self.expired_clock(case)
        if clock is None:
            assert self.never_expires_reason, "say why this evidence never expires"
            pytest.skip(self.never_expires_reason)
        expired = attrs.evolve(case, clock=clock)
        try:
            result = self.appraise(expired)
        except (StaleEvidence, UntrustedChain):
            return
        assert not result.accepted, "expired evidence was accepted"

    def test_offline_appraisal_says_unbound(self) -> None:
        case = self.good_case()
        offline = attrs.evolve(case, binding=BindingContext.offline_context())
        result = self.appraise(offline)
        assert result.binding.freshness is Freshness.UNBOUND
        assert not result.binding.verified
        assert any("offline" in w for w in result.warnings)

    def test_errors_name_their_check(self) -> None:
        case = self.good_case()
        if case.binding.offline:
            pytest.skip("good_case is offline")
        rebound = attrs.evolve(case, binding=attrs.evolve(case.binding, spki_der=other_spki()))
        with pytest.raises(ATLSError) as info:
            self.appraise(rebound)
        assert info.value.check
        assert info.value.check in str(info.value)
