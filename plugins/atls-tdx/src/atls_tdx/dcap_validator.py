"""``tdx.dcap``: a TDX quote in our own certificate extension, or from a file.

The quote is verified by dcap-qvl against Intel collateral (see
:mod:`atls_tdx.dcap`); its report data must be the ``atls-v1`` binding of the
server's TLS key and the client's nonce.  TCB status, advisories, debug and
reference values are judged by the core's common policy.
"""

from __future__ import annotations

from atls_core import binding as b
from atls_core.appraisal import Appraisal
from atls_core.clock import Clock
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import Settings, ValidatorBase, ValidatorSpec
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_tdx.dcap.settings import DCAP_SETTINGS
from atls_tdx.specs import TDX_DCAP_SPEC, TDX_QUOTE_MEDIA_TYPE
from atls_tdx.tdx_common import make_verifier, quote_from_bytes, verify_tdx_quote

__all__ = ["TdxDcapValidator"]


class TdxDcapValidator(ValidatorBase):
    def __init__(self, settings: Settings, *, spec: ValidatorSpec = TDX_DCAP_SPEC) -> None:
        self.spec = spec
        self._verifier = make_verifier(settings, DCAP_SETTINGS)

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        return Evidence(
            media_type=TDX_QUOTE_MEDIA_TYPE,
            data=quote_from_bytes(data, name=name),
            source=EvidenceSource(transport=Transport.FILE, location=name),
        )

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: b.BindingContext,
        clock: Clock,
        policy: Policy,
    ) -> AttestationResult:
        evidence.require_media_type(TDX_QUOTE_MEDIA_TYPE)
        appraisal = Appraisal(spec=self.spec, policy=policy, evidence=evidence, clock=clock)
        verified = verify_tdx_quote(self._verifier, evidence.data, appraisal)
        appraisal.set_binding(b.bind(self.spec.binding_scheme, binding, verified.report_data))
        return appraisal.finish()
