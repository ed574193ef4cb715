"""The core's conformance kit applied to ``example.hmac``.

Import and subclass in a test module (pytest collects ``Test*`` classes)::

    from atls_example.conformance import ExampleConformance

    class TestExample(ExampleConformance):
        pass
"""

from __future__ import annotations

from collections.abc import Sequence

from atls_core import binding as atls_binding
from atls_core.clock import FixedClock, SystemClock
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator
from atls_core.policy import Policy
from atls_core.testing.conformance import Case, ValidatorConformance, other_spki
from atls_example.hmac_tee import MAC_COVERS, HmacIssuer, HmacValidator

__all__ = ["IMAGE", "TEST_KEY", "ExampleConformance"]

TEST_KEY = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
"""A published key: evidence under it proves nothing (this plugin never does)."""
IMAGE = "ab" * 32
"""The ``image`` the good case's issuer measures and its policy pins."""


class ExampleConformance(ValidatorConformance):
    def make_validator(self) -> Validator:
        return HmacValidator({"key": TEST_KEY})

    def signed_regions(self, evidence: Evidence) -> Sequence[tuple[int, int]]:
        """Every byte before the MAC: a flip anywhere there must fail the MAC check."""
        return [MAC_COVERS]

    def good_case(self) -> Case:
        spki, nonce = other_spki(), atls_binding.new_nonce()
        clock = FixedClock(SystemClock().now())
        issuer = HmacIssuer({"key": TEST_KEY, "image": IMAGE}, clock=clock)
        evidence = issuer.issue(atls_binding.report_data_for("atls-v1", spki_der=spki, nonce=nonce))
        return Case(
            evidence=evidence,
            binding=atls_binding.BindingContext(spki_der=spki, nonce=nonce),
            clock=clock,
            policy=Policy(reference_values={"image": IMAGE}),
        )
