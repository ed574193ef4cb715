"""``tdx.dcap``: a TDX quote in our own certificate extension, or from a file.

The quote is verified by dcap-qvl against Intel collateral (see
:mod:`atls_dcap`); its report data must be the ``atls-v1`` binding of the
server's TLS key and the client's nonce.  The core binds it and judges TCB
status, advisories, debug, reference values and pinning: a genuine quote says
only that *some* TD produced it, so a policy must pin one of the TD's workload
measurements (``spec.workload_identity``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from atls_core.appraisal import Appraisal
from atls_core.evidence import Evidence, EvidenceSource, Transport
from atls_core.interfaces import ReportData, Settings, ValidatorBase, ValidatorSpec
from atls_dcap.settings import DCAP_SETTINGS
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

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The quote's header and TD report, signature NOT verified (``atls inspect``)."""
        from atls_tdx.inspection import describe_tdx_quote

        return describe_tdx_quote(evidence.data)

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        verified = verify_tdx_quote(self._verifier, evidence.data, appraisal)
        return ReportData(value=verified.report_data)
