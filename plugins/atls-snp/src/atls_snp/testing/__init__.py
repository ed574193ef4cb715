"""Test helpers: a synthetic AMD-shaped PKI, signed reports, configfs-tsm and a KDS stand-in.

:class:`SyntheticSnp` wires them into one guest: a product's synthetic PKI, a
chip with its VCEK, a VLEK, report making, and the validator settings that
trust the synthetic root (``test_ark``, tests-only: refused unless
``allow_insecure_test_validators``, results capped at ``warning``).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from atls_core.appraisal import appraise
from atls_core.binding import BindingContext
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_snp.envelope import encode_envelope
from atls_snp.roots import Product
from atls_snp.testing.pki import Endorsement, SnpTestPki, shared_pki
from atls_snp.testing.reports import DEFAULT_MEASUREMENT, DEFAULT_TCB, make_report

__all__ = ["DEFAULT_MEASUREMENT", "DEFAULT_TCB", "SyntheticSnp"]


def _tcb_for(product: Product, tcb: Mapping[str, int]) -> dict[str, int]:
    chosen = dict(tcb)
    if not product.turin_layout:
        chosen.pop("fmc", None)
    return chosen


class SyntheticSnp:
    """One synthetic SEV-SNP guest (see the module doc)."""

    def __init__(
        self,
        directory: Path,
        *,
        product: Product = Product.MILAN,
        tcb: Mapping[str, int] = DEFAULT_TCB,
        pki: SnpTestPki | None = None,
    ) -> None:
        self.product = product
        self.pki = pki or shared_pki(product)
        self.tcb = _tcb_for(product, tcb)
        chip = os.urandom(8) if product.turin_layout else os.urandom(64)
        self.chip_id = chip.ljust(64, b"\0")
        self.issued = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=1)
        """When the VCEK and VLEK became valid (a day ago: live tests use the real clock)."""
        self.vcek = self.pki.vcek(chip_id=self.chip_id, tcb=self.tcb, not_before=self.issued)
        self.vlek = self.pki.vlek(tcb=self.tcb, not_before=self.issued)
        self.directory = directory
        self.ark_file = directory / f"test-ark-{product.value.lower()}.pem"
        self.ark_file.write_bytes(self.pki.ark_pem())

    @property
    def now(self) -> dt.datetime:
        """A time at which every certificate of this guest is valid."""
        return self.issued + dt.timedelta(days=2)

    def report(self, report_data: bytes = bytes(64), *, vlek: bool = False, **fields: Any) -> bytes:
        endorsement: Endorsement = self.vlek if vlek else self.vcek
        return make_report(endorsement, report_data, product=self.product, **fields)

    def chain(self, *, vlek: bool = False) -> list[bytes]:
        """The endorsement key's certificate, its intermediate and the ARK (DER)."""
        if vlek:
            return [self.vlek.certificate, self.pki.asvk, self.pki.ark]
        return [self.vcek.certificate, self.pki.ask, self.pki.ark]

    def envelope(
        self, report_data: bytes = bytes(64), *, vlek: bool = False, **fields: Any
    ) -> bytes:
        """Our DER envelope: a report and its full chain."""
        return encode_envelope(self.report(report_data, vlek=vlek, **fields), self.chain(vlek=vlek))

    def appraise(
        self,
        validator: Validator,
        evidence: Evidence,
        policy: Policy,
        *,
        binding: BindingContext | None = None,
    ) -> AttestationResult:
        """The core's appraisal of ``evidence`` at :attr:`now`, offline unless ``binding``."""
        return appraise(
            validator,
            evidence,
            binding=binding or BindingContext.offline_context(),
            clock=FixedClock(self.now),
            policy=policy,
        )

    def settings(self, **extra: Any) -> dict[str, Any]:
        """Validator settings trusting this synthetic root, offline unless ``extra`` says."""
        return {"test_ark": str(self.ark_file), "kds": "never", **extra}
