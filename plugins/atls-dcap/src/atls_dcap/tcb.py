"""TCB verdict for a debug quote, which dcap-qvl refuses to report.

dcap-qvl 0.7.0 verifies every signature, chain, CRL and the QE identity and
only then rejects a debug enclave/TD ("Debug mode is enabled"), without
returning its claims (TCB status included).  atls wants the *policy* to decide
on debug (``allow_debug``), so for that single case the verdict is evaluated here,
following Intel's TCB-info v3 rules, from collateral whose signatures dcap-qvl
has just verified.  Tests check that this evaluation agrees with dcap-qvl on
every recorded non-debug quote.  The TD attribute checks dcap-qvl runs after
the debug check (reserved bits, SEPT_VE_DISABLE) are repeated here so a debug
TD is held to the same rules; so is MR_SERVICETD, which dcap-qvl 0.7.0 checks
before the debug bit, in case a 0.7.x release moves it.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from typing import Any

import attrs

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_core.tdx_rules import NO_SEPT_VE_DISABLE, td_attributes_problem
from atls_dcap.collateral import Collateral

__all__ = ["TcbVerdict", "check_td_attributes", "evaluate", "parse_date", "qe_report_of"]

_HEADER_LEN = 48
_BODY_LEN = {"sgx": 384, "td10": 584, "td15": 648}
_QE_REPORT_LEN = 384
_CERT_QE_REPORT = 6


@attrs.frozen
class TcbVerdict:
    status: str
    advisory_ids: tuple[str, ...]
    tcb_date: dt.datetime | None
    evaluation_data_number: int | None


def parse_date(text: Any) -> dt.datetime | None:
    """A TCB info / QE identity date (``2024-03-13T00:00:00Z``) as an aware datetime."""
    if not isinstance(text, str):
        return None
    when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def qe_report_of(quote: bytes) -> bytes:
    """The QE report inside the quote's signature data (v3, v4 and v5 layouts)."""
    version, _key, tee = struct.unpack_from("<HHI", quote, 0)
    offset = _HEADER_LEN
    if version == 5:
        _body_type, body_size = struct.unpack_from("<HI", quote, offset)
        offset += 6 + body_size
    else:
        offset += _BODY_LEN["sgx"] if tee == 0 else _BODY_LEN["td10"]
    offset += 4  # signature data length
    offset += 64 + 64  # quote signature, attestation key
    if version == 3:
        return quote[offset : offset + _QE_REPORT_LEN]
    cert_type, _size = struct.unpack_from("<HI", quote, offset)
    if cert_type != _CERT_QE_REPORT:
        raise MalformedEvidence(
            "quote signature data carries no QE report", check="dcap.quote_format", actual=cert_type
        )
    offset += 6
    return quote[offset : offset + _QE_REPORT_LEN]


def check_td_attributes(fields: Mapping[str, bytes | int]) -> None:
    """Reserved TD attribute bits clear, SEPT_VE_DISABLE set, MR_SERVICETD zero."""
    raw = fields["td_attributes"]
    assert isinstance(raw, bytes)
    problem = td_attributes_problem(raw)  # the one rule: atls_core.tdx_rules
    if problem is not None:
        check = "dcap.sept_ve_disable" if problem == NO_SEPT_VE_DISABLE else "dcap.td_attributes"
        raise UntrustedChain(problem, check=check, actual=raw.hex())
    service = fields.get("mr_servicetd")
    if isinstance(service, bytes) and any(service):
        raise UntrustedChain("MR_SERVICETD is not zero", check="dcap.mr_servicetd")


def _at_least(values: bytes, components: list[Any], skip: int = 0) -> bool:
    return all(values[i] >= int(c["svn"]) for i, c in enumerate(components) if i >= skip)


def _converge(platform: str, other: str) -> str:
    """Intel's convergence of the platform status with the QE / TDX module status."""
    if other == "Revoked":
        return "Revoked"
    if other == "OutOfDate":
        if platform in ("UpToDate", "SWHardeningNeeded"):
            return "OutOfDate"
        if platform in ("ConfigurationNeeded", "ConfigurationAndSWHardeningNeeded"):
            return "OutOfDateConfigurationNeeded"
    return platform


def _no_level(what: str) -> UntrustedChain:
    return UntrustedChain(f"the {what} matches no level of the TCB info", check="dcap.tcb_level")


def evaluate(
    quote: bytes,
    collateral: Collateral,
    *,
    tee_type: str,
    fields: Mapping[str, bytes | int],
) -> TcbVerdict:
    """Evaluate the TCB of a quote whose signatures dcap-qvl verified."""
    import dcap_qvl

    if tee_type == "tdx":
        check_td_attributes(fields)
    parsed = dcap_qvl.parse_quote(quote)
    pck = parsed.pck_extension()
    if pck is None:
        raise UntrustedChain("PCK certificate extension is unreadable", check="dcap.pck_chain")
    cpu_svn, pce_svn = bytes(pck.cpu_svn), int(pck.pce_svn)
    info = collateral.tcb_info
    if str(info.get("fmspc", "")).upper() != bytes(pck.fmspc).hex().upper():
        raise UntrustedChain("collateral is for another platform (FMSPC)", check="dcap.fmspc")

    platform: dict[str, Any] | None = None
    tee_svn = fields.get("tee_tcb_svn") if tee_type == "tdx" else None
    use_module = (
        isinstance(tee_svn, bytes) and tee_svn[1] > 0 and bool(info.get("tdxModuleIdentities"))
    )
    for level in info.get("tcbLevels", []):
        tcb = level["tcb"]
        if pce_svn < int(tcb["pcesvn"]) or not _at_least(cpu_svn, tcb["sgxtcbcomponents"]):
            continue
        if isinstance(tee_svn, bytes) and not _at_least(
            tee_svn, tcb["tdxtcbcomponents"], skip=2 if use_module else 0
        ):
            continue
        platform = level
        break
    if platform is None:
        raise _no_level("platform TCB")
    status = str(platform["tcbStatus"])
    advisories = set(platform.get("advisoryIDs") or ())
    dates = [parse_date(platform.get("tcbDate"))]

    if use_module:
        assert isinstance(tee_svn, bytes)
        status, more, date = _tdx_module(info, tee_svn, fields, status)
        advisories |= more
        dates.append(date)

    qe_report = qe_report_of(quote)
    _check_qe_identity(qe_report, collateral.qe_identity)
    qe_svn = int.from_bytes(qe_report[258:260], "little")
    qe_level = next(
        (
            lv
            for lv in collateral.qe_identity.get("tcbLevels", [])
            if qe_svn >= int(lv["tcb"]["isvsvn"])
        ),
        None,
    )
    if qe_level is None:
        raise _no_level("quoting enclave")
    status = _converge(status, str(qe_level["tcbStatus"]))
    advisories |= set(qe_level.get("advisoryIDs") or ())
    dates.append(parse_date(qe_level.get("tcbDate")))

    known = [d for d in dates if d is not None]
    evaluation = info.get("tcbEvaluationDataNumber")
    return TcbVerdict(
        status=status,
        advisory_ids=tuple(sorted(a.upper() for a in advisories)),
        tcb_date=min(known) if known else None,
        evaluation_data_number=evaluation if isinstance(evaluation, int) else None,
    )


def _masked(value: bytes, mask: bytes) -> bytes:
    return bytes(v & m for v, m in zip(value, mask, strict=False))


def _check_qe_identity(qe_report: bytes, identity: Mapping[str, Any]) -> None:
    """The quoting enclave is the one the (verified) QE identity describes."""
    if len(qe_report) != _QE_REPORT_LEN:
        raise MalformedEvidence("QE report is truncated", check="dcap.quote_format")
    misc_select, attributes = qe_report[16:20], qe_report[48:64]
    mr_signer, isv_prod_id = qe_report[128:160], int.from_bytes(qe_report[256:258], "little")
    checks = (
        mr_signer.hex().upper() == str(identity["mrsigner"]).upper(),
        isv_prod_id == int(identity["isvprodid"]),
        # MISCSELECT is a little-endian u32 in the report, a big-endian hex number in JSON.
        int.from_bytes(misc_select, "little") & int(identity["miscselectMask"], 16)
        == int(identity["miscselect"], 16),
        _masked(attributes, bytes.fromhex(identity["attributesMask"]))
        == bytes.fromhex(identity["attributes"]),
    )
    if not all(checks):
        raise UntrustedChain(
            "quoting enclave does not match the QE identity", check="dcap.qe_identity"
        )


def _tdx_module(
    info: Mapping[str, Any], tee_svn: bytes, fields: Mapping[str, bytes | int], status: str
) -> tuple[str, set[str], dt.datetime | None]:
    wanted = f"TDX_{tee_svn[1]:02X}"
    identity = next(
        (m for m in info.get("tdxModuleIdentities", []) if str(m.get("id")).upper() == wanted),
        None,
    )
    if identity is None:
        raise _no_level(f"TDX module ({wanted})")
    signer = fields["mrsignerseam"]
    attributes = fields["seam_attributes"]
    assert isinstance(signer, bytes)
    assert isinstance(attributes, bytes)
    if signer.hex().upper() != str(identity["mrsigner"]).upper():
        raise UntrustedChain(
            "TDX module signer does not match the TCB info", check="dcap.tdx_module"
        )
    mask = bytes.fromhex(identity["attributesMask"])
    expected = bytes.fromhex(identity["attributes"])
    if bytes(a & m for a, m in zip(attributes, mask, strict=False)) != expected[: len(mask)]:
        raise UntrustedChain(
            "TDX module attributes do not match the TCB info", check="dcap.tdx_module"
        )
    level = next(
        (lv for lv in identity.get("tcbLevels", []) if tee_svn[0] >= int(lv["tcb"]["isvsvn"])),
        None,
    )
    if level is None:
        raise _no_level(f"TDX module ({wanted}) SVN")
    return (
        _converge(status, str(level["tcbStatus"])),
        set(level.get("advisoryIDs") or ()),
        parse_date(level.get("tcbDate")),
    )
