"""The conformance kit run against the core's own simulated TEE, and against a broken one."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.clock import SystemClock
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Evidence
from atls_core.interfaces import ReportData, Validator
from atls_core.policy import Policy
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_core.testing.simulated import (
    DEFAULT_MEASUREMENTS,
    SimulatedHardware,
    SimulatedIssuer,
    SimulatedValidator,
)

HARDWARE = SimulatedHardware.generate()
PINNED = Policy(reference_values={"image": DEFAULT_MEASUREMENTS["image"]})
_B64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


def _spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class TestSimulatedValidator(ValidatorConformance):
    def make_validator(self) -> Validator:
        return SimulatedValidator(HARDWARE.validator_settings())

    def good_case(self) -> Case:
        spki, nonce = _spki(), b.new_nonce()
        issuer = SimulatedIssuer(HARDWARE.issuer_settings())
        evidence = issuer.issue(b.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
        return Case(
            evidence=evidence,
            binding=b.BindingContext(spki_der=spki, nonce=nonce),
            clock=SystemClock(),
            policy=PINNED,
        )

    def signed_regions(self, evidence: Evidence) -> list[tuple[int, int]]:
        """The signature covers the base64 payload, all of it."""
        payload = json.loads(evidence.data)["payload"].encode()
        start = evidence.data.index(payload)
        return [(start, start + len(payload) - 2)]  # the last two may be '=' padding

    def flip(self, data: bytes, position: int) -> bytes:
        """Replace one base64 character by another valid one, so the payload still decodes."""
        changed = bytearray(data)
        changed[position] = _B64[(_B64.index(data[position]) + 1) % 64]
        return bytes(changed)


class TestSimulatedStaticCertificate(TestSimulatedValidator):
    """A static certificate: bound to the key only, freshness key-only."""

    def good_case(self) -> Case:
        spki = _spki()
        issuer = SimulatedIssuer(HARDWARE.issuer_settings())
        evidence = issuer.issue(b.report_data_for("atls-v1", spki_der=spki, nonce=b""))
        return Case(
            evidence=evidence,
            binding=b.BindingContext(spki_der=spki, nonce=b.new_nonce()),
            clock=SystemClock(),
            policy=PINNED,
        )


# -- the kit must fail a validator that does not check what signs its evidence ----------------


class _IgnoresItsSignature(SimulatedValidator):
    """Deliberately broken: reads the payload and never verifies the signature."""

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        try:
            payload = json.loads(base64.b64decode(json.loads(evidence.data)["payload"]))
            bytes.fromhex(payload["report_data"])
        except (ValueError, KeyError, TypeError):
            raise MalformedEvidence("not a simulated payload", check="broken.format") from None
        appraisal.set_debug(bool(payload.get("debug")))
        appraisal.set_tcb(str(payload["tcb_status"]), payload.get("advisory_ids", []))
        for name, value in payload["measurements"].items():
            if name in appraisal.spec.measurements:  # else a flipped name is a contract error
                appraisal.measure(name, value)
        return ReportData(value=bytes.fromhex(payload["report_data"]))


class _KitAgainstTheBrokenValidator(TestSimulatedValidator):
    def make_validator(self) -> Validator:
        return _IgnoresItsSignature(HARDWARE.validator_settings())


def test_the_kit_fails_a_validator_that_ignores_its_signature() -> None:
    kit = _KitAgainstTheBrokenValidator()
    kit.test_good_evidence_is_accepted()  # it looks fine on good evidence...
    with pytest.raises((pytest.fail.Exception, AssertionError)) as info:
        kit.test_tampered_evidence_is_rejected()  # ...and the tamper test catches it
    assert "flipped was accepted" in str(info.value) or "UntrustedChain" in str(info.value)


def test_the_kit_fails_a_good_case_that_pins_nothing() -> None:
    class Unpinned(TestSimulatedValidator):
        def good_case(self) -> Case:
            case = super().good_case()
            return Case(evidence=case.evidence, binding=case.binding, clock=case.clock)

    with pytest.raises(AssertionError):
        Unpinned().test_good_evidence_is_accepted()
