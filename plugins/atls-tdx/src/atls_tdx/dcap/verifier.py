"""DcapVerifier: dcap-qvl over cached collateral, with specific errors.

dcap-qvl checks collateral dates, the TCB-info and QE-identity signing chains
(to Intel's root, or a configured test root) and CRLs, the PCK chain in the
quote, the QE report signature and hash, the quote signature, the QE identity
and the TCB level; the debug and TD attribute bits come last.  It rejects a
debug enclave or TD with "Debug mode is enabled" only after every signature
has passed (tests tamper with debug quotes to hold it to that).  atls leaves
the debug decision to the core's policy (``allow_debug``), so in that one case
the TCB verdict is evaluated here from the same, already verified collateral
(:mod:`atls_tdx.dcap.tcb`).

``collateral_source`` is ``pcs``, ``pccs:<url>``, ``file:<path>``, or ``given``
for :meth:`DcapVerifier.verify_with_collateral`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
from typing import Any

from atls_core.errors import ATLSError, MalformedEvidence, UntrustedChain
from atls_tdx.dcap.cache import CollateralCache
from atls_tdx.dcap.collateral import Collateral
from atls_tdx.dcap.errors import DEBUG_MESSAGE, map_qvl_error
from atls_tdx.dcap.report import VerifiedQuote, is_debug, parse_report_fields
from atls_tdx.dcap.settings import DcapSettings
from atls_tdx.dcap.sources import CollateralKey, FileSource, make_source, platform_tag

__all__ = ["DcapVerifier"]

_KEY_MEMO_SIZE = 1024


def _unix(now: dt.datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("DcapVerifier needs a timezone-aware 'now'")
    return int(now.timestamp())


class DcapVerifier:
    """Verifies SGX/TDX DCAP quotes; holds the collateral source and cache (thread-safe)."""

    def __init__(self, settings: DcapSettings, *, cache: CollateralCache | None = None) -> None:
        import dcap_qvl

        self.settings = settings
        self._qvl = dcap_qvl
        self.source = make_source(settings)
        self.cache = cache if cache is not None else CollateralCache(settings.cache_dir)
        self._key_memo: dict[tuple[bool, bytes], tuple[str, str, str]] = {}
        root = settings.root_ca_der
        # A test root's collateral must never be served to a verifier trusting Intel's root.
        self._cache_source = settings.source_name + (
            "" if root is None else f"|root={hashlib.sha256(root).hexdigest()[:16]}"
        )

    # -- public API ---------------------------------------------------------------

    def verify(self, quote: bytes, *, now: dt.datetime) -> VerifiedQuote:
        """Fetch collateral through the cache (blocking; safe inside a running loop) and verify."""
        source = self.source
        if isinstance(source, FileSource):
            collateral = source.fetch(quote)  # parsed once, re-read when the file changes
        else:
            key = self.key_for(quote)
            collateral = self.cache.get(key, now=now, fetch=lambda: source.fetch(quote, key))
        return self._verify(quote, collateral, now, self.settings.source_name)

    def verify_with_collateral(
        self, quote: bytes, collateral_json: str | bytes, *, now: dt.datetime
    ) -> VerifiedQuote:
        """Verify against given collateral (e.g. recorded next to the quote)."""
        collateral = Collateral.from_json(collateral_json)
        return self._verify(quote, collateral, now, "given")

    def verify_parsed(
        self, quote: bytes, collateral: Collateral, *, now: dt.datetime, source: str = "given"
    ) -> VerifiedQuote:
        """Verify against collateral parsed once by the caller (hot loops, benchmarks)."""
        return self._verify(quote, collateral, now, source)

    def key_for(self, quote: bytes) -> CollateralKey:
        """The cache key of the collateral ``quote`` needs (source, FMSPC, CA, TEE)."""
        quote = bytes(quote)
        try:
            parsed = self._qvl.parse_quote(quote)
            chain = parsed.cert_chain_pem_bytes()
            memo = None if chain is None else (parsed.is_tdx(), chain)
            known = self._key_memo.get(memo) if memo is not None else None
            if known is None:
                # fmspc() and ca() parse the PCK certificate (~0.25 ms): remember them per chain.
                known = (parsed.fmspc().upper(), parsed.ca(), "tdx" if parsed.is_tdx() else "sgx")
                if memo is not None:
                    if len(self._key_memo) >= _KEY_MEMO_SIZE:
                        self._key_memo.clear()
                    self._key_memo[memo] = known
        except ValueError as exc:
            raise MalformedEvidence(
                f"quote cannot be parsed (dcap-qvl: {exc})", check="dcap.quote_format"
            ) from exc
        fmspc, ca, tee = known
        return CollateralKey(
            source=self._cache_source,
            fmspc=fmspc,
            ca=ca,
            tee=tee,
            platform="" if chain is not None else platform_tag(quote),
        )

    # -- internals ------------------------------------------------------------------

    def _verify(
        self, quote: bytes, collateral: Collateral, now: dt.datetime, source: str
    ) -> VerifiedQuote:
        quote = bytes(quote)
        tee_type, version, fields = parse_report_fields(quote)
        now_secs = _unix(now)
        try:
            if self.settings.root_ca_der is None:
                report = self._qvl.verify(quote, collateral.qvl, now_secs)
            else:
                report = self._qvl.verify_with_root_ca(
                    quote, collateral.qvl, self.settings.root_ca_der, now_secs
                )
        except ValueError as exc:
            if DEBUG_MESSAGE in str(exc) and is_debug(tee_type, fields):
                return self._verify_debug(quote, collateral, now, source, tee_type, version, fields)
            raise map_qvl_error(exc) from exc
        status = report.status
        if not isinstance(status, str) or not status or status == "Unknown":
            raise UntrustedChain(
                "dcap-qvl returned no TCB status", check="dcap.tcb_level", actual=status
            )
        parsed = self._qvl.parse_quote(quote)
        if bytes(parsed.report.report_data) != fields["report_data"]:
            raise MalformedEvidence(
                "report data parsed by atls and dcap-qvl differ", check="dcap.quote_format"
            )
        evaluation = collateral.tcb_info.get("tcbEvaluationDataNumber")
        return VerifiedQuote(
            tee_type=tee_type,
            quote_version=version,
            tcb_status=status,
            advisory_ids=tuple(str(a).upper() for a in report.advisory_ids),
            # dcap-qvl rejects collateral whose FMSPC differs from the PCK certificate's.
            fmspc=collateral.fmspc,
            debug=is_debug(tee_type, fields),
            report_data=_bytes(fields["report_data"]),
            fields=fields,
            collateral_expires_at=collateral.expires_at,
            tcb_date=self._tcb_date(quote, parsed, collateral, tee_type, fields, status),
            collateral_source=source,
            tcb_evaluation_data_number=evaluation if isinstance(evaluation, int) else None,
        )

    @staticmethod
    def _tcb_date(
        quote: bytes,
        parsed: Any,
        collateral: Collateral,
        tee_type: str,
        fields: dict[str, bytes | int],
        status: str,
    ) -> dt.datetime | None:
        """Date of the matched TCB level (dcap-qvl's legacy result omits it).

        Evaluated once per (collateral, PCK chain, TEE TCB SVN, QE report) and
        memoised on the collateral; informational only, so any doubt gives ``None``.
        """
        from atls_tdx.dcap import tcb

        chain = parsed.cert_chain_pem_bytes()
        if chain is None:
            return None
        try:
            qe_report = tcb.qe_report_of(quote)
        except (ValueError, ATLSError, struct.error):
            return None
        memo_key = (chain, fields.get("tee_tcb_svn", b""), qe_report[256:260])
        memo = collateral.tcb_dates
        if memo_key in memo:
            return memo[memo_key]
        try:
            verdict = tcb.evaluate(quote, collateral, tee_type=tee_type, fields=fields)
            when = verdict.tcb_date if verdict.status == status else None
        except (ATLSError, ValueError, KeyError, TypeError, IndexError, struct.error):
            when = None
        if len(memo) > 256:
            memo.clear()
        memo[memo_key] = when
        return when

    def _verify_debug(
        self,
        quote: bytes,
        collateral: Collateral,
        now: dt.datetime,
        source: str,
        tee_type: str,
        version: int,
        fields: dict[str, bytes | int],
    ) -> VerifiedQuote:
        from atls_tdx.dcap import tcb

        fmspc = self._qvl.parse_quote(quote).fmspc().upper()

        try:
            verdict = tcb.evaluate(quote, collateral, tee_type=tee_type, fields=fields)
        except ATLSError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise UntrustedChain(
                f"debug quote: TCB could not be evaluated ({exc})", check="dcap.tcb_level"
            ) from exc
        return VerifiedQuote(
            tee_type=tee_type,
            quote_version=version,
            tcb_status=verdict.status,
            advisory_ids=verdict.advisory_ids,
            fmspc=fmspc,
            debug=True,
            report_data=_bytes(fields["report_data"]),
            fields=fields,
            collateral_expires_at=collateral.expires_at,
            tcb_date=verdict.tcb_date,
            collateral_source=source,
            tcb_evaluation_data_number=verdict.evaluation_data_number,
        )


def _bytes(value: bytes | int) -> bytes:
    assert isinstance(value, bytes)
    return value
