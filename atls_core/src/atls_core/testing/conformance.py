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
to another key or nonce, expired evidence, unpinned policies and offline
appraisal, and checks the outcomes and the shape of results.

Tampering is strict: :meth:`signed_regions` declares the byte ranges of
``evidence.data`` that the evidence's signature or MAC covers (default: all of
it); one byte at a time is flipped at positions spread across every region and
each variant is appraised **offline**, so no binding check can catch it: each
must be refused, and at least one refusal must come from the signature or
chain (:class:`~atls_core.errors.UntrustedChain`).  A validator that skips its
signature therefore fails the kit.  Override :meth:`flip` for text formats
where flipping a bit yields an invalid character, and :meth:`expired_clock` to
give a time at which your evidence is expired (return ``None`` only if your
evidence truly never expires, and say why in :attr:`never_expires_reason`).

A suite whose evidence comes from a fixture (a stand-in service, a synthetic
TEE with a ``settings()`` method) names it in :attr:`world_fixture` and the
validator class in :attr:`validator_class` instead of writing
:meth:`make_validator`; :meth:`good_case` reads ``self.world``.

The good case's policy must pin the workload (the core's pinning rule); the
kit checks that the same evidence is refused with ``workload.unpinned`` when
nothing is pinned, and accepted as ``warning`` with ``allow_any_workload``.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import attrs
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.appraisal import appraise
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
from atls_core.interfaces import Settings, Validator
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

    def appraised_by(self, validator: Validator) -> AttestationResult:
        """The core's appraisal of this case's evidence by ``validator``."""
        return appraise(
            validator, self.evidence, binding=self.binding, clock=self.clock, policy=self.policy
        )


def other_spki() -> bytes:
    """A fresh, unrelated SubjectPublicKeyInfo."""
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class _FromSettings(Protocol):
    def __call__(self, settings: Settings, /) -> Validator: ...


class ValidatorConformance:
    """Generic checks every validator must pass."""

    never_expires_reason: str | None = None

    world_fixture: ClassVar[str | None] = None
    """A fixture whose value is ``self.world`` in every check: the stand-in service or
    synthetic TEE the good case comes from."""
    validator_class: ClassVar[_FromSettings | None] = None
    """With :attr:`world_fixture`: the default :meth:`make_validator` is
    ``validator_class(self.world.settings())``."""
    world: Any

    @pytest.fixture(autouse=True)
    def _conformance_world(self, request: pytest.FixtureRequest) -> None:
        if self.world_fixture is not None:
            self.world = request.getfixturevalue(self.world_fixture)

    # -- to implement ------------------------------------------------------

    def make_validator(self) -> Validator:
        if self.validator_class is None:
            raise NotImplementedError
        return self.validator_class(self.world.settings())

    def good_case(self) -> Case:
        raise NotImplementedError

    # -- overridable -------------------------------------------------------

    tamper_positions_per_region: int = 16
    """How many single-byte flips to try in each signed region."""

    def signed_regions(self, evidence: Evidence) -> Sequence[tuple[int, int]]:
        """Byte ranges ``[start, end)`` of ``evidence.data`` covered by its signature or MAC."""
        return [(0, len(evidence.data))]

    def flip(self, data: bytes, position: int) -> bytes:
        """``data`` with the byte at ``position`` changed (default: its lowest bit)."""
        changed = bytearray(data)
        changed[position] ^= 0x01
        return bytes(changed)

    def tampered(self, evidence: Evidence) -> list[tuple[int, Evidence]]:
        """One variant per flipped position, spread evenly across every signed region."""
        variants: list[tuple[int, Evidence]] = []
        for start, end in self.signed_regions(evidence):
            assert 0 <= start < end <= len(evidence.data), f"bad signed region {start}..{end}"
            count = min(self.tamper_positions_per_region, end - start)
            step = (end - start - 1) / max(count - 1, 1)
            positions = sorted({start + round(i * step) for i in range(count)})
            for position in positions:
                data = self.flip(evidence.data, position)
                if data != evidence.data:
                    variants.append((position, attrs.evolve(evidence, data=data)))
        return variants

    def expired_clock(self, case: Case) -> Clock | None:
        """A clock at which the good evidence is expired; default: ten years later."""
        return FixedClock(case.clock.now() + dt.timedelta(days=3650))

    # -- helpers -----------------------------------------------------------

    def appraise(self, case: Case) -> AttestationResult:
        return case.appraised_by(self.make_validator())

    def unpinned(self, policy: Policy) -> Policy:
        """``policy`` with every workload pin removed."""
        spec = self.make_validator().spec
        return attrs.evolve(
            policy,
            allow_any_workload=False,
            reference_values={
                k: v for k, v in policy.reference_values.items() if k not in spec.workload_identity
            },
            options={k: v for k, v in policy.options.items() if k not in spec.pinning_options},
        )

    # -- the tests ---------------------------------------------------------

    def test_spec_is_well_formed(self) -> None:
        spec = self.make_validator().spec
        plugin, dot, name = spec.id.partition(".")
        assert plugin, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert dot, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert name, f"validator id {spec.id!r} must be <plugin>.<name>"
        assert spec.media_types, "a validator names at least one media type"
        for scheme in spec.binding_schemes:
            assert scheme in SCHEMES, f"unknown binding scheme {scheme!r}"
        assert set(spec.workload_identity) <= set(spec.measurements)
        assert set(spec.pinning_options) <= set(spec.policy_options)
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
        offline = attrs.evolve(case, binding=BindingContext.offline_context())
        assert self.appraise(offline).accepted, "the good case must pass offline too"
        variants = self.tampered(case.evidence)
        assert variants, "signed_regions() must name at least one byte"
        by_signature = 0
        for position, evidence in variants:
            try:
                result = self.appraise(attrs.evolve(offline, evidence=evidence))
            except UntrustedChain:
                by_signature += 1
                continue
            except (MalformedEvidence, StaleEvidence, BindingMismatch):
                continue
            except ATLSError as error:
                pytest.fail(f"byte {position} flipped: refused as {error.check}, not as evidence")
            except Exception as error:
                pytest.fail(
                    f"byte {position} flipped: the validator raised {type(error).__name__}, "
                    "not a specific atls error"
                )
            if result.accepted:
                pytest.fail(f"evidence with byte {position} flipped was accepted: {result.status}")
        assert by_signature, (
            "no tampered variant was refused by a signature or chain check "
            "(UntrustedChain): the validator does not verify what signs its evidence"
        )

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
        good = self.appraise(case)
        scheme = SCHEMES[good.binding.scheme]
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

    def test_the_good_case_pins_the_workload(self) -> None:
        result = self.appraise(self.good_case())
        assert not any(w.startswith("workload.unpinned") for w in result.warnings), (
            "good_case() must pin the workload (reference values or pinning options)"
        )

    def test_nothing_pinned_is_refused(self) -> None:
        case = self.good_case()
        result = self.appraise(attrs.evolve(case, policy=self.unpinned(case.policy)))
        assert not result.accepted
        assert "workload.unpinned" in [f.check for f in result.failures if f.enforced]

    def test_allow_any_workload_accepts_with_a_warning(self) -> None:
        case = self.good_case()
        policy = attrs.evolve(self.unpinned(case.policy), allow_any_workload=True)
        result = self.appraise(attrs.evolve(case, policy=policy))
        assert result.accepted, result.to_json()
        assert result.status is Status.WARNING
        assert any(w.startswith("workload.unpinned") for w in result.warnings)

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
