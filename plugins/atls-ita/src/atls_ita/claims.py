"""Intel Trust Authority claims -> atls facts, with no signature involved.

ITA has issued three token shapes over time:

* **v1** (``ver`` 1.x): TEE claims flat at the top level (``tdx_mrtd``,
  ``sgx_mrenclave``, ``attester_tcb_status``...), ``attester_type`` names the TEE.
* **v2** (``ver`` 2.x, ``/appraisal/v2``): each TEE's claims nested in an object
  named after it (``{"tdx": {"tdx_mrtd": ..., "attester_held_data": ...}}``);
  ``policy_ids_matched`` at the top level.
* **amber** (the service's pre-release name): ``amber_``-prefixed claims.

:func:`map_claims` turns any of them into one :class:`ItaClaims`.  It is pure
(a dict in, a frozen value out) so that recorded real tokens, whose signing
keys were never recorded, can still test the mapping.  It decodes and
type-checks every value it keeps and raises :class:`MalformedEvidence` rather
than guess; it never decides acceptance (the validator and core policy do).
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from atls_core.errors import MalformedEvidence
from atls_core.jose import b64url_decode
from atls_core.policy import TCB_STATUSES
from atls_ita.specs import SGX_MEASUREMENTS, TDX_MEASUREMENTS

__all__ = [
    "SGX_MEASUREMENTS",
    "TDX_MEASUREMENTS",
    "ItaClaims",
    "VerifierNonce",
    "map_claims",
    "normalise_tcb_status",
]

# token claim suffix -> atls claim name, for values kept as claims (not measurements)
_TDX_CLAIMS = {
    "tee_tcb_svn": "tee_tcb_svn",
    "seam_attributes": "seam_attributes",
    "td_attributes": "td_attributes",
    "xfam": "xfam",
    "seamsvn": "seamsvn",
    "report_data": "report_data",
}
_SGX_CLAIMS = {
    "isvprodid": "isv_prod_id",
    "isvsvn": "isv_svn",
    "report_data": "report_data",
    "config_id": "config_id",
    "config_svn": "config_svn",
}
_TEES = {"TDX": "tdx", "SGX": "sgx"}
_STATUS_BY_KEY = {s.replace("_", "").lower(): s for s in TCB_STATUSES}


def normalise_tcb_status(value: str) -> str:
    """``OUT_OF_DATE`` / ``OutOfDate`` -> ``OutOfDate``; unknown names pass unchanged.

    An unknown status (Amber's ``OK``) is kept as is, so the default policy,
    which accepts only ``UpToDate``, rejects it rather than guessing.
    """
    return _STATUS_BY_KEY.get(value.replace("_", "").replace("-", "").lower(), value)


@attrs.frozen(kw_only=True)
class VerifierNonce:
    """ITA's own nonce (``GET /appraisal/v2/nonce``) as reported in the token."""

    val: bytes
    iat: bytes

    @property
    def prefix(self) -> bytes:
        """What ITA's adapters hash in front of the runtime data: ``val || iat``."""
        return self.val + self.iat


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class ItaClaims:
    """Everything atls uses from a token's claims, decoded."""

    shape: str
    """``v1``, ``v2`` or ``amber``."""
    tee: str
    """``tdx`` or ``sgx``."""
    measurements: Mapping[str, str] = attrs.field(converter=_frozen)
    """Lower-case hex, atls names (``mrtd``, ``rtmr0``, ``mrenclave``...)."""
    claims: Mapping[str, Any] = attrs.field(converter=_frozen)
    """Other TEE facts under atls names (``td_attributes``, ``isv_svn``...)."""
    tcb_status: str | None
    advisory_ids: tuple[str, ...]
    tcb_date: dt.datetime | None
    debug: bool | None
    """``None`` when the token does not say (the core then refuses it)."""
    held_data: bytes | None = attrs.field(repr=lambda v: f"<{len(v)} bytes>" if v else "None")
    report_data: bytes | None = attrs.field(repr=lambda v: v.hex() if v else "None")
    verifier_nonce: VerifierNonce | None
    policy_ids_matched: tuple[str, ...]
    policy_ids_unmatched: tuple[str, ...]


def _bad(name: str, why: str, actual: Any = None) -> MalformedEvidence:
    return MalformedEvidence(f"claim {name} {why}", check=f"ita.claims.{name}", actual=actual)


def _hex(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(name, "is not a hex string", type(value).__name__)
    text = value.strip().lower()
    try:
        bytes.fromhex(text)
    except ValueError:
        raise _bad(name, "is not hex", value) from None
    return text


def _b64(name: str, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad(name, "is not a base64 string", type(value).__name__)
    text = value.strip()
    try:
        if "-" in text or "_" in text:
            return b64url_decode(text, check=f"ita.claims.{name}")
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (ValueError, MalformedEvidence):  # binascii.Error, or text that is not ASCII
        raise _bad(name, "is not base64") from None


def _bool(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _bad(name, "is not a boolean", value)
    return value


def _strings(name: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(name, "is not a list of strings", value)
    return tuple(value)


def _policy_ids(name: str, value: Any) -> tuple[str, ...]:
    """``[{"id": ..., "version": ...}]`` (ITA) or ``["id", ...]`` (Amber)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _bad(name, "is not a list", value)
    ids = []
    for item in value:
        if isinstance(item, str):
            ids.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("id"), str):
            ids.append(item["id"])
        else:
            raise _bad(name, "holds an entry without an id", item)
    return tuple(ids)


def _date(name: str, value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _bad(name, "is not a date string", value)
    try:
        when = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad(name, "is not an ISO-8601 date", value) from None
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def _nonce(name: str, value: Any) -> VerifierNonce | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or "val" not in value or "iat" not in value:
        raise _bad(name, "is not an object with val and iat", value)
    return VerifierNonce(
        val=_b64(f"{name}.val", value["val"]), iat=_b64(f"{name}.iat", value["iat"])
    )


def _td_attributes_debug(hex_text: str) -> bool:
    """Any TD-Under-Debug bit (0..7, the first little-endian byte) of TDATTRIBUTES.

    TUD.DEBUG is bit 0; Intel treats a TD with any TUD bit set as untrusted, and so
    does ``atls_tdx`` when it reads a quote.
    """
    raw = bytes.fromhex(hex_text)
    return bool(raw and raw[0])


def _section(claims: Mapping[str, Any], tee: str | None) -> tuple[str, str, Mapping[str, Any]]:
    """Find the shape, the TEE and the mapping that holds that TEE's claims."""
    if "amber_evidence_type" in claims or any(k.startswith("amber_") for k in claims):
        kind = claims.get("amber_evidence_type")
        found = _TEES.get(kind) if isinstance(kind, str) else None
        if found is None:
            raise _bad("amber_evidence_type", "names no supported TEE", kind)
        return "amber", found, claims
    nested = {
        name: claims[name] for name in ("tdx", "sgx") if isinstance(claims.get(name), Mapping)
    }
    if nested:
        if tee is not None:
            if tee not in nested:
                raise MalformedEvidence(
                    "the token carries no claims for this TEE",
                    check="ita.attester_type",
                    expected=tee,
                    actual=sorted(nested),
                )
            return "v2", tee, nested[tee]
        if len(nested) != 1:
            raise _bad("tee", "is ambiguous: the token holds several TEE sections", sorted(nested))
        (name, section), *_ = nested.items()
        return "v2", name, section
    kind = claims.get("attester_type")
    found = _TEES.get(kind) if isinstance(kind, str) else None
    if found is None:
        raise _bad("attester_type", "names no supported TEE", kind)
    return "v1", found, claims


def _pick(section: Mapping[str, Any], top: Mapping[str, Any], name: str) -> Any:
    """A claim from the TEE section, else from the top level (v2 varies)."""
    value = section.get(name)
    return top.get(name) if value is None else value


def map_claims(claims: Mapping[str, Any], *, tee: str | None = None) -> ItaClaims:
    """Map a token's (already verified, or recorded) claims; ``tee`` selects a v2 section."""
    shape, found, section = _section(claims, tee)
    if tee is not None and found != tee:
        raise MalformedEvidence(
            "the token attests another TEE", check="ita.attester_type", expected=tee, actual=found
        )
    if shape == "v2":
        kind = section.get("attester_type")
        if kind is not None and _TEES.get(kind) != found:
            raise _bad("attester_type", "contradicts the section it is in", kind)
    prefix = {"v1": "", "v2": "", "amber": "amber_"}[shape]
    tee_prefix = f"{prefix}{found}_"

    measurements: dict[str, str] = {}
    names = TDX_MEASUREMENTS if found == "tdx" else SGX_MEASUREMENTS
    for name in names:
        value = section.get(tee_prefix + name)
        if value is not None:
            measurements[name] = _hex(tee_prefix + name, value)

    facts: dict[str, Any] = {}
    table = _TDX_CLAIMS if found == "tdx" else _SGX_CLAIMS
    for suffix, name in table.items():
        value = section.get(tee_prefix + suffix)
        if value is None:
            continue
        if isinstance(value, int) and not isinstance(value, bool):
            facts[name] = value
        else:
            facts[name] = _hex(tee_prefix + suffix, value)

    debug = _debug(section, claims, found, tee_prefix)

    if shape == "amber":
        status = section.get("amber_tcb_status")
        held = section.get("amber_tee_held_data")
        advisories: tuple[str, ...] = ()
        tcb_date = None
        matched = _policy_ids("amber_matched_policy_ids", section.get("amber_matched_policy_ids"))
        unmatched: tuple[str, ...] = ()
        nonce = None
    else:
        status = _pick(section, claims, "attester_tcb_status")
        held = _pick(section, claims, "attester_held_data")
        advisories = _strings(
            "attester_advisory_ids", _pick(section, claims, "attester_advisory_ids")
        )
        tcb_date = _date("attester_tcb_date", _pick(section, claims, "attester_tcb_date"))
        matched = _policy_ids("policy_ids_matched", _pick(section, claims, "policy_ids_matched"))
        unmatched = _policy_ids(
            "policy_ids_unmatched", _pick(section, claims, "policy_ids_unmatched")
        )
        nonce = _nonce("verifier_nonce", _pick(section, claims, "verifier_nonce"))
    if status is not None and not isinstance(status, str):
        raise _bad("attester_tcb_status", "is not a string", status)

    report_hex = facts.get("report_data")
    return ItaClaims(
        shape=shape,
        tee=found,
        measurements=measurements,
        claims=facts,
        tcb_status=normalise_tcb_status(status) if status is not None else None,
        advisory_ids=tuple(a.upper() for a in advisories),
        tcb_date=tcb_date,
        debug=debug,
        held_data=_b64("attester_held_data", held) if held is not None else None,
        report_data=bytes.fromhex(report_hex) if isinstance(report_hex, str) else None,
        verifier_nonce=nonce,
        policy_ids_matched=matched,
        policy_ids_unmatched=unmatched,
    )


def _debug(
    section: Mapping[str, Any], top: Mapping[str, Any], tee: str, tee_prefix: str
) -> bool | None:
    """Debuggable if any signal says so; ``None`` only if no signal exists."""
    signals: list[bool] = []
    flag = section.get(tee_prefix + "is_debuggable")
    if flag is not None:
        signals.append(_bool(tee_prefix + "is_debuggable", flag))
    if tee == "tdx":
        attr_debug = section.get(tee_prefix + "td_attributes_debug")
        if attr_debug is not None:
            signals.append(_bool(tee_prefix + "td_attributes_debug", attr_debug))
        attributes = section.get(tee_prefix + "td_attributes")
        if attributes is not None:
            signals.append(_td_attributes_debug(_hex(tee_prefix + "td_attributes", attributes)))
    dbgstat = _pick(section, top, "dbgstat")
    if dbgstat is not None:
        if dbgstat not in ("disabled", "enabled"):
            raise _bad("dbgstat", "is neither 'enabled' nor 'disabled'", dbgstat)
        signals.append(dbgstat == "enabled")
    return any(signals) if signals else None
