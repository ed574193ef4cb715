"""The core's conformance kit over synthetic Gramine RA-TLS certificates."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.evidence import Evidence
from atls_core.interfaces import Validator
from atls_core.policy import Policy, ReferenceValue
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRENCLAVE
from atls_gramine.ratls import parse_tcg_evidence
from atls_gramine.specs import MEDIA_TYPE_TCG
from atls_gramine.testing.certs import INSIDE_WINDOW, make_ratls_credentials, validator_settings
from atls_gramine.validator import GramineRatlsValidator

_PKI = DcapTestPki.generate(seed="atls-gramine conformance")
_SETTINGS = validator_settings(_PKI, Path(tempfile.mkdtemp(prefix="atls-gramine-conformance-")))
_POLICY = Policy(reference_values={"mrenclave": ReferenceValue(accepted=[DEFAULT_MRENCLAVE.hex()])})


def _case(extensions: tuple[str, ...]) -> Case:
    credentials = make_ratls_credentials(_PKI, extensions=extensions)
    certificate = PeerCertificate.from_der(credentials.certificate_der)
    validator = GramineRatlsValidator(_SETTINGS)
    return Case(
        evidence=validator.evidence_from_certificate(certificate),
        binding=BindingContext(spki_der=certificate.spki_der, certificate_der=certificate.der),
        clock=FixedClock(INSIDE_WINDOW),
        policy=_POLICY,
    )


def _signed_regions(evidence: Evidence) -> Sequence[tuple[int, int]]:
    """What the SGX v3 quote's signatures cover, where the quote sits in the evidence.

    Header and enclave report (the attestation key's signature), then that
    signature, the key, the QE report, its signature and the QE auth data (the
    PCK signature and the QE report data hash).  Left out: the certification
    data, whose PCK chain PEM text (whitespace, the root's copy) no signature
    covers (the configured root is the trust anchor), and the TCG envelope and
    claims, which only the TLS binding checks (the kit appraises offline).
    """
    data = evidence.data
    quote = parse_tcg_evidence(data).quote if evidence.media_type == MEDIA_TYPE_TCG else data
    at = data.find(quote)
    body_end = 48 + 384
    auth_end = body_end + 4 + 64 + 64 + 384 + 64 + 2
    auth_end += int.from_bytes(quote[auth_end - 2 : auth_end], "little")
    return [(at, at + body_end), (at + body_end + 4, at + auth_end)]


class _RatlsCertificateConformance(ValidatorConformance):
    """The kit on a certificate with ``extensions``: only those differ between the classes."""

    extensions: ClassVar[tuple[str, ...]]

    def signed_regions(self, evidence: Evidence) -> Sequence[tuple[int, int]]:
        return _signed_regions(evidence)

    def make_validator(self) -> Validator:
        return GramineRatlsValidator(_SETTINGS)

    def good_case(self) -> Case:
        return _case(self.extensions)


class TestTcgCertificate(_RatlsCertificateConformance):
    """Both extensions present: the TCG DICE one decides."""

    extensions = ("legacy", "tcg")


class TestLegacyCertificate(_RatlsCertificateConformance):
    """An older Gramine: the legacy quote extension only."""

    extensions = ("legacy",)
