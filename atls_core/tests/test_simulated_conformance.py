"""The conformance kit run against the core's own simulated TEE."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.clock import SystemClock
from atls_core.interfaces import Validator
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_core.testing.simulated import SimulatedHardware, SimulatedIssuer, SimulatedValidator

HARDWARE = SimulatedHardware.generate()


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
        )


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
        )
