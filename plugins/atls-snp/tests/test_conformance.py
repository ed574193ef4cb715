"""The core's validator conformance kit, for VCEK- and VLEK-signed reports and for Turin.

Tampering flips bytes of the signed region only (0x000-0x29F, what the VCEK's
signature covers; the signature itself and the reserved tail are not in it),
each variant appraised offline, so only the signature and chain checks can
catch it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.binding import BindingContext, new_nonce, report_data_for
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator
from atls_core.policy import Policy
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_snp.report import SIGNED_SIZE
from atls_snp.roots import Product
from atls_snp.testing import DEFAULT_MEASUREMENT, SyntheticSnp
from atls_snp.validator import SnpReportValidator


class _SnpConformance(ValidatorConformance):
    product = Product.MILAN
    vlek = False
    world: SyntheticSnp

    @pytest.fixture(autouse=True)
    def _guest(self, request: pytest.FixtureRequest) -> None:
        """The session's synthetic guest for this product (conftest: milan, turin...)."""
        self.world = request.getfixturevalue(self.product.value.lower())

    def make_validator(self) -> Validator:
        return SnpReportValidator(self.world.settings())

    def signed_regions(self, evidence: Evidence) -> Sequence[tuple[int, int]]:
        return [(0, SIGNED_SIZE)]

    def good_case(self) -> Case:
        key = ec.generate_private_key(ec.SECP256R1())
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        nonce = new_nonce()
        report_data = report_data_for("atls-v1", spki_der=spki, nonce=nonce)
        validator = self.make_validator()
        evidence = validator.evidence_from_file(
            self.world.envelope(report_data, vlek=self.vlek), name="conformance"
        )
        return Case(
            evidence=evidence,
            binding=BindingContext(spki_der=spki, nonce=nonce),
            clock=FixedClock(self.world.now),
            policy=Policy(reference_values={"measurement": DEFAULT_MEASUREMENT.hex()}),
        )


class TestMilanVcekConformance(_SnpConformance):
    pass


class TestMilanVlekConformance(_SnpConformance):
    vlek = True


class TestTurinVcekConformance(_SnpConformance):
    product = Product.TURIN
