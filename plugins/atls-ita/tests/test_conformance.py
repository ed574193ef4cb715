"""The core's conformance kit, run against ita.tdx with stand-in-signed tokens."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import attrs
import pytest

from atls_core.binding import new_nonce
from atls_core.clock import Clock, FixedClock
from atls_core.evidence import Evidence
from atls_core.policy import Policy
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_ita.testing.standin import StandInIta, workload_pin
from atls_ita.testing.tokens import issue_token
from atls_ita.validator import ItaValidator


class TestItaTdxConformance(ValidatorConformance):
    @pytest.fixture(autouse=True)
    def _world(self, ita: StandInIta, tmp_path: Path) -> None:
        self.ita = ita
        self.settings = ita.validator_settings(tmp_path / "root.pem")
        self.issued = issue_token(ita, nonce=new_nonce())

    def make_validator(self) -> ItaValidator:
        return ItaValidator(self.settings)

    def good_case(self) -> Case:
        return Case(
            evidence=self.issued.evidence,
            binding=self.issued.binding,
            clock=FixedClock(self.ita.clock.now() + dt.timedelta(seconds=1)),
            policy=Policy(reference_values=workload_pin()),
        )

    def tamper(self, evidence: Evidence) -> Evidence:
        """Flip a character of the signed payload (the middle part of the JWS)."""
        head, body, sig = evidence.data.decode().split(".")
        middle = len(body) // 2
        flipped = body[:middle] + ("A" if body[middle] != "A" else "B") + body[middle + 1 :]
        return attrs.evolve(evidence, data=f"{head}.{flipped}.{sig}".encode())

    def expired_clock(self, case: Case) -> Clock | None:
        return FixedClock(case.clock.now() + self.ita.lifetime)
