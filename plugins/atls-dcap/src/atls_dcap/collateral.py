"""Collateral parsed once: the dcap-qvl object plus what the cache needs to know.

``QuoteCollateralV3.from_json`` costs about 0.1 ms, so a :class:`Collateral`
is built once per fetch (or file) and reused for every quote it serves.  Its
:attr:`expires_at` is the earliest *next update* of the TCB info, the QE
identity and both CRLs: past it the collateral must not be served from cache.
Nothing here is trusted: dcap-qvl verifies every signature at appraisal time.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import attrs

from atls_core.errors import MalformedEvidence

__all__ = ["Collateral", "TcbFacts"]

_CHECK = "dcap.collateral_format"


def _parse_time(text: Any, what: str) -> dt.datetime:
    if not isinstance(text, str):
        raise MalformedEvidence(f"collateral {what} is missing", check=_CHECK)
    try:
        value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise MalformedEvidence(
            f"collateral {what} is not a date", check=_CHECK, actual=text
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _crl_next_update(hex_or_der: Any, what: str) -> dt.datetime:
    from cryptography import x509

    try:
        der = bytes.fromhex(hex_or_der) if isinstance(hex_or_der, str) else bytes(hex_or_der)
        crl = x509.load_der_x509_crl(der)
    except (TypeError, ValueError) as exc:
        raise MalformedEvidence(f"collateral {what} is not a DER CRL", check=_CHECK) from exc
    when = crl.next_update_utc
    if when is None:
        raise MalformedEvidence(f"collateral {what} has no next update", check=_CHECK)
    return when


@attrs.frozen(kw_only=True)
class TcbFacts:
    """What dcap-qvl's claims say of one platform under one collateral, beyond its verdict."""

    status: str
    advisory_ids: tuple[str, ...]
    fmspc: str
    expires_at: dt.datetime
    """Earliest of the collateral's next updates and the certificates' expiries."""
    tcb_date: dt.datetime | None
    evaluation_data_number: int | None


@attrs.frozen(kw_only=True, eq=False)
class Collateral:
    """One parsed QuoteCollateralV3 and its validity window (unverified facts)."""

    json_text: str = attrs.field(repr=False)
    qvl: Any = attrs.field(repr=False)
    """The ``dcap_qvl.QuoteCollateralV3`` handed to every verification."""
    tee_type: str
    """``tdx`` or ``sgx`` (the TCB info ``id``)."""
    fmspc: str
    issued_at: dt.datetime
    """Latest issue date of TCB info / QE identity (for diagnostics)."""
    expires_at: dt.datetime
    """Earliest next update of TCB info, QE identity, root CA CRL and PCK CRL."""
    tcb_info: dict[str, Any] = attrs.field(repr=False)
    qe_identity: dict[str, Any] = attrs.field(repr=False)
    tcb_facts: dict[Any, TcbFacts] = attrs.field(factory=dict, repr=False)
    """Memo of dcap-qvl's TCB facts per platform and quoting enclave, filled by the verifier."""

    @classmethod
    def from_json(cls, text: str | bytes) -> Collateral:
        import dcap_qvl

        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise MalformedEvidence("collateral is not UTF-8 JSON", check=_CHECK) from exc
        try:
            raw = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise MalformedEvidence("collateral is not JSON", check=_CHECK) from exc
        if not isinstance(raw, dict):
            raise MalformedEvidence("collateral is not a JSON object", check=_CHECK)
        try:
            tcb_info = json.loads(raw["tcb_info"])
            qe_identity = json.loads(raw["qe_identity"])
        except (KeyError, TypeError, ValueError, RecursionError) as exc:
            raise MalformedEvidence(
                "collateral lacks a JSON tcb_info or qe_identity", check=_CHECK
            ) from exc
        if not isinstance(tcb_info, dict) or not isinstance(qe_identity, dict):
            raise MalformedEvidence(
                "collateral TCB info / QE identity are not objects", check=_CHECK
            )
        try:
            qvl = dcap_qvl.QuoteCollateralV3.from_json(text)
        except (ValueError, TypeError) as exc:
            raise MalformedEvidence(
                f"collateral rejected by dcap-qvl: {exc}", check=_CHECK
            ) from exc
        expiries = [
            _parse_time(tcb_info.get("nextUpdate"), "TCB info nextUpdate"),
            _parse_time(qe_identity.get("nextUpdate"), "QE identity nextUpdate"),
            _crl_next_update(raw.get("root_ca_crl"), "root CA CRL"),
            _crl_next_update(raw.get("pck_crl"), "PCK CRL"),
        ]
        issued = [
            _parse_time(tcb_info.get("issueDate"), "TCB info issueDate"),
            _parse_time(qe_identity.get("issueDate"), "QE identity issueDate"),
        ]
        tee = str(tcb_info.get("id", "SGX")).upper()
        return cls(
            json_text=text,
            qvl=qvl,
            tee_type="tdx" if tee == "TDX" else "sgx",
            fmspc=str(tcb_info.get("fmspc", "")).upper(),
            issued_at=max(issued),
            expires_at=min(expiries),
            tcb_info=tcb_info,
            qe_identity=qe_identity,
        )

    @property
    def evaluation_numbers(self) -> tuple[int, int]:
        """``tcbEvaluationDataNumber`` of the TCB info and of the QE identity (-1 if absent).

        Intel raises them when a TCB recovery rates platforms anew: older collateral,
        still before its next update, can call a platform up to date that newer calls
        out of date.
        """
        numbers = (
            self.tcb_info.get("tcbEvaluationDataNumber"),
            self.qe_identity.get("tcbEvaluationDataNumber"),
        )
        tcb, qe = (n if type(n) is int else -1 for n in numbers)
        return tcb, qe

    def is_fresh(self, now: dt.datetime) -> bool:
        """Usable at ``now``: issued and not past its earliest next update."""
        return now < self.expires_at
