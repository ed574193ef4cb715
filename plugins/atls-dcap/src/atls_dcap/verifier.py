"""DcapVerifier: dcap-qvl over cached collateral, with specific errors.

Every quote goes through dcap-qvl's one-shot ``verify`` (or ``verify_with_root_ca``
for a configured test root), which checks collateral dates, the TCB-info and
QE-identity signing chains and CRLs, the PCK chain in the quote, the QE report
signature and hash, the quote signature, the QE identity and the TCB level, then
the debug and TD attribute bits, and returns the TCB status and advisories (the
core's policy judges them).  The report fields come from dcap-qvl's parser.
The TCB date, the TCB evaluation data number, the FMSPC and the certificates'
expiry come from dcap-qvl's claims API (``QuoteVerifier.verify_with_policy``,
policy ``claims_only``), which is dearer: it runs once per collateral, PCK chain,
TEE TCB SVN and QE report (:meth:`DcapVerifier._tcb_facts`), and its verdict must
equal the one-shot verdict of every quote the memo serves.

It rejects a debug enclave or TD with "Debug mode is enabled" only after every
signature has passed (tests tamper with debug quotes to hold it to that), and
returns no claims then.  atls leaves the debug decision to the core's policy
(``allow_debug``), so in that one case the fields come from dcap-qvl's parser
and the TCB verdict is evaluated here from the same, already verified
collateral (:mod:`atls_dcap.tcb`).

Before anything else, :func:`check_quote_end` refuses non-zero bytes after the
quote's own end, which dcap-qvl reads past (``dcap.quote_format``).

``collateral_source`` is ``pcs``, ``pccs:<url>`` (redacted), ``file:<path>``,
or ``given`` for :meth:`DcapVerifier.verify_with_collateral`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import struct
from collections.abc import Mapping
from typing import Any

from atls_core.errors import ATLSError, CollateralUnavailable, MalformedEvidence, UntrustedChain
from atls_dcap.cache import CollateralCache
from atls_dcap.collateral import Collateral, TcbFacts
from atls_dcap.errors import DEBUG_MESSAGE, map_qvl_error
from atls_dcap.report import VerifiedQuote, is_debug, parse_report_fields, report_fields
from atls_dcap.settings import DcapSettings
from atls_dcap.sources import CollateralKey, FileSource, make_source
from atls_dcap.tcb import parse_date, qe_report_of

__all__ = ["DcapVerifier", "check_quote_end"]

_KEY_MEMO_SIZE = 1024
_FACTS_MEMO_SIZE = 256
_CHAIN_KEPT = 8192
"""Bytes of PCK chain the chain table may hold (a PCK, its CA and the root: about 4 KiB)."""


def _unix(now: dt.datetime) -> int:
    if now.tzinfo is None:
        raise ValueError("DcapVerifier needs a timezone-aware 'now'")
    return int(now.timestamp())


_TOKENS = itertools.count(1)
"""Chain tokens, never reused: by every verifier, whose collateral (and memo) a cache may share."""


def _chain_digest(pem: bytes) -> bytes:
    return hashlib.sha256(pem).digest()


_HEADER = struct.Struct("<HHI")  # version, attestation key type, TEE type (of a 48-byte header)
_V5_BODY = struct.Struct("<HI")  # a v5 quote's body descriptor: type, size
_HEADER_SIZE = 48
_BODY_SIZE = {(3, 0x00): 384, (4, 0x00): 384, (4, 0x81): 584}
"""Report body bytes by (version, TEE type): an SGX report, a TD report 1.0."""
_V5_BODY_SIZE = {1: 384, 2: 584, 3: 648}
"""v5 body sizes by body type: SGX report, TD report 1.0, TD report 1.5."""


def _format_error(reason: str, **details: Any) -> MalformedEvidence:
    return MalformedEvidence(reason, check="dcap.quote_format", **details)


def check_quote_end(quote: bytes) -> None:
    """Refuse a quote followed by anything but zero bytes.

    A quote ends where its lengths say: header, body (a v5 body after its type and
    size), a 4-byte signature data length and that many bytes.  dcap-qvl reads no
    further, so what follows is covered by nothing, not even the unsigned framing:
    zero padding (seen on real platforms) is accepted, anything else (a second
    quote, say) refused.  A version, TEE or body type whose length is unknown here
    is refused rather than let through unchecked; a quote shorter than its lengths
    is left to dcap-qvl, which refuses it.  Hot path: no parse, a ``count``.
    """
    size = len(quote)
    if size < _HEADER_SIZE + _V5_BODY.size:
        return  # dcap-qvl: truncated
    version, _key_type, tee_type = _HEADER.unpack_from(quote)
    start = _HEADER_SIZE
    if version == 5:
        body_type, body_size = _V5_BODY.unpack_from(quote, _HEADER_SIZE)
        if _V5_BODY_SIZE.get(body_type) != body_size:
            raise _format_error(
                "the quote's body type and size are not a known pair",
                expected={str(t): n for t, n in _V5_BODY_SIZE.items()},
                actual=f"type {body_type}, size {body_size}",
            )
        start += _V5_BODY.size
    else:
        body_size = _BODY_SIZE.get((version, tee_type), -1)
        if body_size < 0:
            raise _format_error(
                "the quote's version and TEE type are not a known pair",
                expected=["3/SGX", "4/SGX", "4/TDX", "5"],
                actual=f"version {version}, TEE type {tee_type:#x}",
            )
    start += body_size
    if start + 4 > size:
        return  # dcap-qvl: truncated
    end = start + 4 + int.from_bytes(quote[start : start + 4], "little")
    if end < size and quote.count(0, end) != size - end:
        raise _format_error(
            "non-zero bytes follow the end of the quote",
            expected=f"{end} bytes, then zero bytes only",
            actual=f"{size} bytes",
        )


class DcapVerifier:
    """Verifies SGX/TDX DCAP quotes; holds the collateral source and cache (thread-safe)."""

    def __init__(self, settings: DcapSettings, *, cache: CollateralCache | None = None) -> None:
        import dcap_qvl

        self.settings = settings
        self._qvl = dcap_qvl
        # None: Intel's SGX root CA, built into dcap-qvl.
        self._quote_verifier = dcap_qvl.QuoteVerifier(settings.root_ca_der)
        self.source = make_source(settings)
        self.cache = cache if cache is not None else CollateralCache(settings.cache_dir)
        self._key_memo: dict[tuple[bool, int | bytes], CollateralKey] = {}
        self._chains: dict[bytes, int] = {}
        self._source_name = settings.source_name  # redacted once, recorded in every result
        root = settings.root_ca_der
        # A test root's collateral must never be served to a verifier trusting Intel's root.
        self._cache_source = settings.source_name + (
            "" if root is None else f"|root={hashlib.sha256(root).hexdigest()[:16]}"
        )

    # -- public API ---------------------------------------------------------------

    def verify(self, quote: bytes, *, now: dt.datetime) -> VerifiedQuote:
        """Fetch collateral through the cache (blocking; safe inside a running loop) and verify."""
        quote = bytes(quote)
        check_quote_end(quote)
        source = self.source
        if isinstance(source, FileSource):
            collateral = source.fetch(quote)  # parsed once, re-read when the file changes
            return self._verify(quote, collateral, now, self._source_name)
        parsed, chain, key = self._parsed_key(quote)
        collateral = self.cache.get(key, now=now, fetch=lambda: source.fetch(quote, key))
        verified = self._verify(quote, collateral, now, self._source_name, parsed=(parsed, chain))
        self.cache.note_verified(key, collateral)  # refuses a rollback
        return verified

    def verify_with_collateral(
        self, quote: bytes, collateral_json: str | bytes, *, now: dt.datetime
    ) -> VerifiedQuote:
        """Verify against given collateral (e.g. recorded next to the quote)."""
        quote = bytes(quote)
        check_quote_end(quote)
        collateral = Collateral.from_json(collateral_json)
        return self._verify(quote, collateral, now, "given")

    def verify_parsed(
        self, quote: bytes, collateral: Collateral, *, now: dt.datetime, source: str = "given"
    ) -> VerifiedQuote:
        """Verify against collateral parsed once by the caller (hot loops, benchmarks)."""
        quote = bytes(quote)
        check_quote_end(quote)
        return self._verify(quote, collateral, now, source)

    def key_for(self, quote: bytes) -> CollateralKey:
        """The cache key of the collateral ``quote`` needs (source, FMSPC, CA, TEE).

        Only quotes that carry their PCK certificate chain (certification data
        type 5, what TDX and current SGX quoting enclaves write) can be given
        fetched collateral: fetching a PCK certificate by encrypted PPID is not
        supported (a collateral file with ``pck_certificate_chain`` still works).
        """
        return self._parsed_key(bytes(quote))[2]

    def _chain_id(self, pem: bytes) -> int | bytes:
        """What the memos key a quote's PCK chain by: a token for the chain's bytes.

        The chain is the quote's unsigned certification data, and dcap-qvl accepts it
        padded up to a megabyte.  A chain of a real size (up to :data:`_CHAIN_KEPT`
        bytes) gets a token, an int never given to other bytes, from a table that holds
        at most ``_KEY_MEMO_SIZE`` chains: looking it up costs half what SHA-256 of the
        chain does, on every quote, and the memos keep only the token.  A longer chain
        is keyed by its SHA-256 (bytes: never equal to a token), so padded quotes cannot
        pile up in memory.
        """
        if len(pem) > _CHAIN_KEPT:
            return _chain_digest(pem)
        token = self._chains.get(pem)
        if token is None:
            if len(self._chains) >= _KEY_MEMO_SIZE:
                self._chains.clear()  # their tokens are never given again: stale memo entries
            token = self._chains[pem] = next(_TOKENS)
        return token

    def _parsed_key(self, quote: bytes) -> tuple[Any, int | bytes, CollateralKey]:
        """dcap-qvl's parse of ``quote``, its PCK chain's :meth:`_chain_id` and its cache key.

        Verification reuses the parse and the chain id, a memo key twice.
        """
        try:
            parsed = self._qvl.parse_quote(quote)
            pem = parsed.cert_chain_pem_bytes()
            if pem is None:
                raise CollateralUnavailable(
                    "the quote does not carry its PCK certificate chain; collateral for it "
                    "cannot be fetched (give a collateral file with pck_certificate_chain)",
                    check="collateral.pck_chain",
                )
            chain = self._chain_id(pem)
            memo = (bool(parsed.is_tdx()), chain)
            key = self._key_memo.get(memo)
            if key is None:
                # fmspc() and ca() parse the PCK certificate (~0.25 ms): remember them per chain.
                # The same key object each time, its hash cached: a cache lookup compares
                # it with itself.
                key = CollateralKey(
                    source=self._cache_source,
                    fmspc=parsed.fmspc().upper(),
                    ca=parsed.ca(),
                    tee="tdx" if parsed.is_tdx() else "sgx",
                )
                if len(self._key_memo) >= _KEY_MEMO_SIZE:
                    self._key_memo.clear()
                self._key_memo[memo] = key
        except ValueError as exc:
            raise MalformedEvidence(
                f"quote cannot be parsed (dcap-qvl: {exc})", check="dcap.quote_format"
            ) from exc
        return parsed, chain, key

    # -- internals ------------------------------------------------------------------

    def _verify(
        self,
        quote: bytes,
        collateral: Collateral,
        now: dt.datetime,
        source: str,
        *,
        parsed: tuple[Any, int | bytes | None] | None = None,
    ) -> VerifiedQuote:
        quote = bytes(quote)
        now_secs = _unix(now)
        try:
            report = self._bare_verify(quote, collateral, now_secs)
        except ValueError as exc:
            if DEBUG_MESSAGE in str(exc):
                tee_type, version, fields = parse_report_fields(quote)
                if is_debug(tee_type, fields):
                    return self._verify_debug(quote, collateral, source, tee_type, version, fields)
            raise map_qvl_error(exc) from exc
        status = report.status
        if not isinstance(status, str) or not status or status == "Unknown":
            raise UntrustedChain("dcap-qvl returned no TCB status", check="dcap.tcb_level")
        found = report.advisory_ids
        advisories = tuple(str(a).upper() for a in found) if found else ()
        if parsed is None:
            quote_parse = self._qvl.parse_quote(quote)
            pem = quote_parse.cert_chain_pem_bytes()
            chain = None if pem is None else self._chain_id(pem)
        else:
            quote_parse, chain = parsed
        tee_type, version, fields = report_fields(quote_parse, quote)
        facts = self._tcb_facts(quote, chain, collateral, now_secs, fields)
        if (facts.status, facts.advisory_ids) != (status, advisories):
            raise UntrustedChain(
                "dcap-qvl's verdict and its claims for the same quote disagree",
                check="dcap.tcb_level",
                actual=f"{status} {advisories} / {facts.status} {facts.advisory_ids}",
            )
        return _verified_quote(tee_type, version, fields, facts, source)

    def _bare_verify(self, quote: bytes, collateral: Collateral, now_secs: int) -> Any:
        """dcap-qvl's one-shot verification: the fast path, and its errors keep their causes."""
        if self.settings.root_ca_der is None:
            return self._qvl.verify(quote, collateral.qvl, now_secs)
        return self._qvl.verify_with_root_ca(
            quote, collateral.qvl, self.settings.root_ca_der, now_secs
        )

    def _tcb_facts(
        self,
        quote: bytes,
        chain: int | bytes | None,
        collateral: Collateral,
        now_secs: int,
        fields: Mapping[str, bytes | int],
    ) -> TcbFacts:
        """TCB date, evaluation number, FMSPC and expiry from dcap-qvl's claims, memoised.

        They are a function of the collateral, the PCK chain (CPU SVN, PCE SVN, FMSPC;
        ``chain`` is its id), the TEE TCB SVN and the QE report, so the claims API (about 12 %
        dearer than the one-shot verify, plus a JSON round trip) runs once per
        such combination and collateral instead of once per quote.
        """
        tee_tcb_svn = fields.get("tee_tcb_svn", b"")
        key = (chain, tee_tcb_svn, qe_report_of(quote))
        memo = collateral.tcb_facts
        facts = memo.get(key)
        if facts is None:
            policy = self._qvl.QuotePolicy.claims_only(now_secs)
            try:
                claims = self._quote_verifier.verify_with_policy(
                    quote, collateral.qvl, now_secs, policy
                )
                facts = _facts_from_claims(json.loads(claims.to_json()), collateral)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise UntrustedChain(
                    f"dcap-qvl's claims cannot be read ({type(exc).__name__}: {exc})",
                    check="dcap.claims",
                ) from exc
            if len(memo) >= _FACTS_MEMO_SIZE:
                memo.clear()
            memo[key] = facts
        return facts

    def _verify_debug(
        self,
        quote: bytes,
        collateral: Collateral,
        source: str,
        tee_type: str,
        version: int,
        fields: dict[str, bytes | int],
    ) -> VerifiedQuote:
        from atls_dcap import tcb

        fmspc = self._qvl.parse_quote(quote).fmspc().upper()
        try:
            verdict = tcb.evaluate(quote, collateral, tee_type=tee_type, fields=fields)
        except ATLSError:
            raise
        except (ValueError, KeyError, TypeError, IndexError) as exc:
            raise UntrustedChain(
                f"debug quote: TCB could not be evaluated ({exc})", check="dcap.tcb_level"
            ) from exc
        facts = TcbFacts(
            status=verdict.status,
            advisory_ids=verdict.advisory_ids,
            fmspc=fmspc,
            expires_at=collateral.expires_at,
            tcb_date=verdict.tcb_date,
            evaluation_data_number=verdict.evaluation_data_number,
        )
        return _verified_quote(tee_type, version, fields, facts, source)


def _verified_quote(
    tee_type: str,
    version: int,
    fields: dict[str, bytes | int],
    facts: TcbFacts,
    source: str,
) -> VerifiedQuote:
    """The one way a verified quote is assembled, from its fields and its TCB facts."""
    return VerifiedQuote(
        tee_type=tee_type,
        quote_version=version,
        tcb_status=facts.status,
        advisory_ids=facts.advisory_ids,
        fmspc=facts.fmspc,
        debug=is_debug(tee_type, fields),
        report_data=_bytes(fields["report_data"]),
        fields=fields,
        collateral_expires_at=facts.expires_at,
        tcb_date=facts.tcb_date,
        collateral_source=source,
        tcb_evaluation_data_number=facts.evaluation_data_number,
    )


def _facts_from_claims(claims: Mapping[str, Any], collateral: Collateral) -> TcbFacts:
    """The TCB facts in dcap-qvl's claims of a quote it has just verified."""
    tcb = claims["tcb"]
    platform, qe = claims["platform"], claims["qe"]
    dates = [parse_date(level["tcbDate"]) for level in (platform["tcb_level"], qe["tcb_level"])]
    expiries = [
        collateral.expires_at,
        *(
            _unix_date(claims[k])
            for k in ("earliest_expiration_date", "qe_iden_earliest_expiration_date")
        ),
    ]
    evaluation = tcb.get("eval_data_number")
    return TcbFacts(
        status=str(tcb["status"]),
        advisory_ids=tuple(str(a).upper() for a in tcb["advisory_ids"]),
        fmspc=bytes(platform["pck"]["fmspc"]).hex().upper(),
        expires_at=min(expiries),
        # Intel's convergence: the older of the platform's and the quoting enclave's TCB dates.
        tcb_date=min(d for d in dates if d is not None) if any(dates) else None,
        evaluation_data_number=evaluation if isinstance(evaluation, int) else None,
    )


def _unix_date(value: Any) -> dt.datetime:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"not a time: {value!r}")
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _bytes(value: bytes | int) -> bytes:
    assert isinstance(value, bytes)
    return value
