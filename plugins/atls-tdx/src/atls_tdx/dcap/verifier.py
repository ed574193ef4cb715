"""DcapVerifier: dcap-qvl over cached collateral, with specific errors.

dcap-qvl checks, in order: collateral dates, the TCB-info and QE-identity
signing chains (to Intel's root, or a configured test root) and CRLs, the PCK
chain in the quote, the QE report signature and hash, the quote signature,
the QE identity, the TCB level, and last the debug/TD attribute bits.  It
rejects a debug enclave or TD with "Debug mode is enabled" after every
signature has passed; atls leaves the debug decision to the core's policy
(``allow_debug``), so in that one case the TCB verdict is evaluated here from
the same, already verified collateral (:mod:`atls_tdx.dcap.tcb`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from atls_core.errors import ATLSError, MalformedEvidence, UntrustedChain
from atls_tdx.dcap.cache import CollateralCache
from atls_tdx.dcap.collateral import Collateral
from atls_tdx.dcap.errors import DEBUG_MESSAGE, map_qvl_error
from atls_tdx.dcap.report import VerifiedQuote, is_debug, parse_report_fields
from atls_tdx.dcap.settings import DcapSettings
from atls_tdx.dcap.sources import CollateralKey, FileSource, make_source, platform_tag

__all__ = ["DcapVerifier"]


def _unix(now: dt.datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("DcapVerifier needs a timezone-aware 'now'")
    return int(now.timestamp())


def _from_unix(value: Any) -> dt.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    return None


def _parse_date(value: Any) -> dt.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class DcapVerifier:
    """Verifies SGX/TDX DCAP quotes; holds the collateral source and cache (thread-safe)."""

    def __init__(self, settings: DcapSettings, *, cache: CollateralCache | None = None) -> None:
        import dcap_qvl

        self.settings = settings
        self._qvl = dcap_qvl
        self._verifier = dcap_qvl.QuoteVerifier(settings.root_ca_der)
        self.source = make_source(settings)
        self.cache = cache if cache is not None else CollateralCache(settings.cache_dir)

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
        try:
            parsed = self._qvl.parse_quote(bytes(quote))
            fmspc = parsed.fmspc().upper()
            ca = parsed.ca()
            tee = "tdx" if parsed.is_tdx() else "sgx"
            carries_chain = parsed.cert_chain_pem_bytes() is not None
        except ValueError as exc:
            raise MalformedEvidence(
                f"quote cannot be parsed (dcap-qvl: {exc})", check="dcap.quote_format"
            ) from exc
        return CollateralKey(
            source=self.settings.source_name,
            fmspc=fmspc,
            ca=ca,
            tee=tee,
            platform="" if carries_chain else platform_tag(quote),
        )

    # -- internals ------------------------------------------------------------------

    def _verify(
        self, quote: bytes, collateral: Collateral, now: dt.datetime, source: str
    ) -> VerifiedQuote:
        quote = bytes(quote)
        tee_type, version, fields = parse_report_fields(quote)
        now_secs = _unix(now)
        try:
            parsed = self._qvl.parse_quote(quote)
            fmspc = parsed.fmspc().upper()
        except ValueError as exc:
            raise MalformedEvidence(
                f"quote cannot be parsed (dcap-qvl: {exc})", check="dcap.quote_format"
            ) from exc
        try:
            claims = self._verifier.verify_with_policy(
                quote, collateral.qvl, now_secs, self._qvl.QuotePolicy.claims_only(now_secs)
            )
            data = json.loads(claims.to_json())
        except ValueError as exc:
            if DEBUG_MESSAGE in str(exc) and is_debug(tee_type, fields):
                return self._verify_debug(
                    quote, collateral, now, source, tee_type, version, fields, fmspc
                )
            raise map_qvl_error(self._explain(quote, collateral, now_secs, exc)) from exc
        self._check_same_report(data, fields)
        tcb = data.get("tcb") or {}
        status = tcb.get("status")
        if not isinstance(status, str) or not status:
            raise UntrustedChain("dcap-qvl returned no TCB status", check="dcap.tcb_level")
        expiries = [collateral.expires_at]
        for name in ("earliest_expiration_date", "qe_iden_earliest_expiration_date"):
            when = _from_unix(data.get(name))
            if when is not None:
                expiries.append(when)
        dates = [
            d
            for d in (
                _parse_date(((data.get("platform") or {}).get("tcb_level") or {}).get("tcbDate")),
                _parse_date(((data.get("qe") or {}).get("tcb_level") or {}).get("tcbDate")),
            )
            if d is not None
        ]
        evaluation = tcb.get("eval_data_number")
        return VerifiedQuote(
            tee_type=tee_type,
            quote_version=version,
            tcb_status=status,
            advisory_ids=tuple(str(a).upper() for a in tcb.get("advisory_ids") or ()),
            fmspc=fmspc,
            debug=is_debug(tee_type, fields),
            report_data=_bytes(fields["report_data"]),
            fields=fields,
            collateral_expires_at=min(expiries),
            tcb_date=min(dates) if dates else None,
            collateral_source=source,
            tcb_evaluation_data_number=evaluation if isinstance(evaluation, int) else None,
        )

    def _explain(
        self, quote: bytes, collateral: Collateral, now_secs: int, exc: ValueError
    ) -> Exception:
        """dcap-qvl's claims API drops the error's cause ("CertNotValidYet"...); its
        legacy entry point keeps it.  Used on the failure path only, for the message."""
        try:
            if self.settings.root_ca_der is None:
                self._qvl.verify(quote, collateral.qvl, now_secs)
            else:
                self._qvl.verify_with_root_ca(
                    quote, collateral.qvl, self.settings.root_ca_der, now_secs
                )
        except ValueError as detailed:
            return detailed
        return exc

    @staticmethod
    def _check_same_report(data: dict[str, Any], fields: dict[str, bytes | int]) -> None:
        """Our report parse must agree with dcap-qvl's (defence against layout bugs)."""
        report = data.get("report") or {}
        body: Any = next(iter(report.values()), {}) if isinstance(report, dict) else {}
        theirs = body.get("report_data") if isinstance(body, dict) else None
        if theirs != _bytes(fields["report_data"]).hex():
            raise MalformedEvidence(
                "report data parsed by atls and dcap-qvl differ", check="dcap.quote_format"
            )

    def _verify_debug(
        self,
        quote: bytes,
        collateral: Collateral,
        now: dt.datetime,
        source: str,
        tee_type: str,
        version: int,
        fields: dict[str, bytes | int],
        fmspc: str,
    ) -> VerifiedQuote:
        from atls_tdx.dcap import tcb

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
