"""The core's conformance kit over synthetic Gramine RA-TLS certificates."""

from __future__ import annotations

import tempfile
from pathlib import Path

from atls_core.binding import BindingContext
from atls_core.certificate import PeerCertificate
from atls_core.clock import FixedClock
from atls_core.interfaces import Validator
from atls_core.policy import Policy, ReferenceValue
from atls_core.testing.conformance import Case, ValidatorConformance
from atls_dcap.testing.pki import DcapTestPki
from atls_dcap.testing.quotes import DEFAULT_MRENCLAVE
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


class TestTcgCertificate(ValidatorConformance):
    """Both extensions present: the TCG DICE one decides."""

    def make_validator(self) -> Validator:
        return GramineRatlsValidator(_SETTINGS)

    def good_case(self) -> Case:
        return _case(("legacy", "tcg"))


class TestLegacyCertificate(ValidatorConformance):
    """An older Gramine: the legacy quote extension only."""

    def make_validator(self) -> Validator:
        return GramineRatlsValidator(_SETTINGS)

    def good_case(self) -> Case:
        return _case(("legacy",))
