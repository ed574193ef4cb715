"""``snp.report`` and ``snp.report-challenge``: SEV-SNP reports verified directly.

``verify`` parses the report, gathers certificates (the evidence's, the
configured files', and -- with ``kds = "auto"`` -- what AMD's key distribution
service has for what is still missing), verifies the chain to a pinned ARK and
the report signature (:mod:`atls_snp.chain`), checks the ASK/ASVK against the
ARK's CRL (what the service answered is cached only once it verified), records
every field and applies the SEV-SNP options
(:mod:`atls_snp.judge`), and returns the report data for the core to bind
(``atls-v1``: SHA-512 over the nonce and the TLS key).

Evidence arrives as our DER envelope (certificate extension, challenge answer,
file) or as a raw report with an optional ``cert_chain`` endorsement (what
another plugin hands over, e.g. dstack's attestation extension): both become
an :data:`~atls_snp.specs.SNP_REPORT_MEDIA_TYPE` evidence whose ``data`` is
the report itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from atls_core.appraisal import Appraisal
from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_core.evidence import Evidence, EvidenceSource, Transport, bytes_from_hex_text
from atls_core.interfaces import (
    ChallengeRequest,
    ChallengeResponse,
    ReportData,
    Settings,
    ValidatorBase,
    ValidatorSpec,
)
from atls_snp.certs import parse_certificate, split_certificates
from atls_snp.chain import Pool, VerifiedChain, product_of, vek_matches, verify_chain
from atls_snp.crl import CrlCheck, check_crl, check_revocation, parse_crl, require_signed
from atls_snp.envelope import decode_envelope
from atls_snp.judge import record_report
from atls_snp.kds import Answer, KdsCache, KdsClient
from atls_snp.report import Report, parse_report
from atls_snp.roots import Product, SigningKey
from atls_snp.settings import SnpSettings
from atls_snp.specs import (
    CHALLENGE_PATH,
    SNP_CHALLENGE_SPEC,
    SNP_EVIDENCE_MEDIA_TYPE,
    SNP_REPORT_MEDIA_TYPE,
    SNP_REPORT_SPEC,
)

__all__ = ["CERT_CHAIN", "SnpReportValidator"]

CERT_CHAIN = "cert_chain"
"""The endorsement holding certificates (PEM and/or DER, concatenated)."""

_OWN_SPECS = frozenset({SNP_REPORT_SPEC.id, SNP_CHALLENGE_SPEC.id})

_Fetched = tuple[Answer, Literal["chain", "vek"], frozenset[bytes]]
"""A service answer, what it was asked for, and the digests of its certificates."""


def _report_evidence(
    report: bytes, certificates: Iterable[bytes], source: EvidenceSource
) -> Evidence:
    chain = b"".join(certificates)
    return Evidence(
        media_type=SNP_REPORT_MEDIA_TYPE,
        data=report,
        source=source,
        endorsements={CERT_CHAIN: chain} if chain else {},
    )


def _report_and_certificates(evidence: Evidence) -> tuple[bytes, list[bytes]]:
    """The raw report and the certificates (DER) that came with it, from either media type."""
    if evidence.media_type == SNP_EVIDENCE_MEDIA_TYPE:
        return decode_envelope(evidence.data)
    return evidence.data, split_certificates(evidence.endorsements.get(CERT_CHAIN, b""))


class SnpReportValidator(ValidatorBase):
    """One validator class for both transports (the spec decides which)."""

    def __init__(
        self,
        settings: Settings,
        *,
        spec: ValidatorSpec = SNP_REPORT_SPEC,
        kds_cache: KdsCache | None = None,
    ) -> None:
        self.spec = spec
        self.settings = SnpSettings.from_settings(settings)
        config = self.settings
        self._kds = (
            None
            if config.kds == "never"
            else KdsClient(
                config.kds_url,
                timeout=config.kds_timeout,
                cache_seconds=config.kds_cache_seconds,
                cache=kds_cache,
            )
        )
        self._configured = Pool().plus(config.certificates, "file")

    @classmethod
    def challenge_validator(
        cls, settings: Settings, *, kds_cache: KdsCache | None = None
    ) -> SnpReportValidator:
        return cls(settings, spec=SNP_CHALLENGE_SPEC, kds_cache=kds_cache)

    # -- transports ------------------------------------------------------------

    def evidence_from_certificate(self, certificate: PeerCertificate) -> Evidence:
        carried = super().evidence_from_certificate(certificate)  # our extension, or refused
        report, certificates = decode_envelope(carried.data)
        return _report_evidence(report, certificates, carried.source)

    def challenge(self, nonce: bytes) -> ChallengeRequest:
        return ChallengeRequest(
            method="POST",
            path=CHALLENGE_PATH,
            headers={"Content-Type": "application/json", "Accept": SNP_EVIDENCE_MEDIA_TYPE},
            body=json.dumps({"nonce": nonce.hex()}).encode(),
            max_response_bytes=64 * 1024,
        )

    def evidence_from_challenge(self, response: ChallengeResponse) -> Evidence:
        report, certificates = decode_envelope(response.ok_body())
        source = EvidenceSource(transport=Transport.CHALLENGE, location=CHALLENGE_PATH)
        return _report_evidence(report, certificates, source)

    def evidence_from_file(self, data: bytes, *, name: str) -> Evidence:
        """Our DER envelope or a raw 1184-byte report, either of them possibly as hex text."""
        source = EvidenceSource(transport=Transport.FILE, location=name)
        data = bytes_from_hex_text(data) or data  # a report never reads as hex text
        if data[:1] == b"\x30":  # a DER SEQUENCE; a report starts with its version (2..5)
            report, certificates = decode_envelope(data)
            return _report_evidence(report, certificates, source)
        return _report_evidence(data, (), source)

    # -- inspection ------------------------------------------------------------

    def describe(self, evidence: Evidence) -> Mapping[str, Any]:
        """The report's fields and carried certificates, signature NOT verified (``atls inspect``)."""
        from atls_snp.inspection import describe_report

        raw, carried = _report_and_certificates(evidence)
        return describe_report(raw, carried, configured=self.settings.product)

    # -- appraisal -------------------------------------------------------------

    def verify(self, evidence: Evidence, appraisal: Appraisal) -> ReportData:
        raw, carried = _report_and_certificates(evidence)
        report = parse_report(raw)
        pool = self._configured
        if carried:
            pool = Pool().plus((parse_certificate(c) for c in carried), "evidence")
            pool = pool.plus((cert for cert, _ in self._configured.entries), "file")
        fetched: list[_Fetched] = []
        if self._kds is not None:
            pool = self._fetch_missing(self._kds, report, pool, fetched)
        chain = verify_chain(report, pool, anchors=self.settings.anchors, now=appraisal.now)
        if fetched:
            _keep_verified(self._kds, chain, fetched)
        crl = self._check_revocation(chain, appraisal)
        record_report(appraisal, report, chain, crl=crl, own_spec=appraisal.spec.id in _OWN_SPECS)
        return ReportData(value=report.report_data)

    # -- the key distribution service -----------------------------------------

    def _product(self, report: Report, pool: Pool) -> Product | None:
        """The product to fetch for: the report's CPUID, the setting, or the pool's certificates."""
        known = report.cpuid_product or self.settings.product
        if known is not None:
            return known
        anchors = self.settings.anchors
        guesses = {anchors[c.digest] for c in pool.roots(anchors)}
        guesses |= {
            p
            for c in pool.named(report.signing_key.certificate_name)
            if (p := product_of(c.vek.product_name)) is not None
        }
        return guesses.pop() if len(guesses) == 1 else None

    def _fetch_missing(
        self,
        kds: KdsClient,
        report: Report,
        pool: Pool,
        fetched: list[_Fetched],
    ) -> Pool:
        """``pool`` plus what the service has for what is missing; each answer and the
        digests of its certificates go to ``fetched`` (cached once the chain verifies)."""
        signing = report.signing_key
        product = self._product(report, pool)
        anchors = self.settings.anchors
        has_root = any(anchors[c.digest] is product for c in pool.roots(anchors))
        has_intermediate = product is not None and bool(
            pool.named(signing.intermediate_name(product))
        )
        has_vek = product is not None and any(
            vek_matches(c, report, product) is None for c in pool.named(signing.certificate_name)
        )
        if has_root and has_intermediate and has_vek:
            return pool
        if product is None:
            raise UntrustedChain(
                "certificates are missing and the report does not say which AMD product made "
                "it (version 2 reports carry no CPUID): set settings.product",
                check="snp.chain",
                expected=[p.value for p in Product],
            )
        if not (has_root and has_intermediate):
            answer = kds.cert_chain(product, signing)
            certs = [parse_certificate(c) for c in split_certificates(answer.body, check="snp.kds")]
            fetched.append((answer, "chain", frozenset(c.digest for c in certs)))
            pool = pool.plus(certs, "kds")
        if not has_vek and signing is SigningKey.VCEK and any(report.chip_id):
            tcb = report.reported_tcb(product)
            answer = kds.vcek(product, report.chip_id, tcb)
            certs = [parse_certificate(c) for c in split_certificates(answer.body)]
            fetched.append((answer, "vek", frozenset(c.digest for c in certs)))
            pool = pool.plus(certs, "kds")
        return pool

    def _check_revocation(self, chain: VerifiedChain, appraisal: Appraisal) -> CrlCheck:
        configured = self.settings.crl
        if configured is not None and configured.issuer == chain.ark.subject:
            return check_crl(
                configured,
                ark=chain.ark,
                intermediate=chain.intermediate,
                now=appraisal.now,
                source=self.settings.crl_source or "file",
            )
        if self._kds is None or appraisal.context.offline:
            return CrlCheck(checked=False)
        answer = self._kds.crl(chain.product, chain.signing_key, lifetime=_crl_lifetime)
        crl = parse_crl(answer.body)
        require_signed(crl, chain.ark)
        self._kds.keep_crl(
            answer, ark=chain.ark.digest, signing=chain.signing_key, issued=crl.this_update
        )
        return check_revocation(
            crl, intermediate=chain.intermediate, now=appraisal.now, source="kds"
        )


def _keep_verified(kds: KdsClient | None, chain: VerifiedChain, fetched: list[_Fetched]) -> None:
    """Cache each answer whose certificates are all links of the verified ``chain`` in the
    place they were asked for (the ASK or ASVK and the ARK; the VCEK)."""
    if kds is None:
        return
    roots = {chain.ark.digest, chain.intermediate.digest}
    for answer, asked, digests in fetched:
        if digests and digests <= (roots if asked == "chain" else {chain.vek.digest}):
            kds.keep(answer)


def _crl_lifetime(body: bytes) -> float:
    """Cache a fetched CRL until its next update (wall clock), not longer."""
    try:
        next_update = parse_crl(body).next_update
    except MalformedEvidence:
        return 0.0
    if next_update is None:
        return float("inf")
    return (next_update - dt.datetime.now(dt.UTC)).total_seconds()
