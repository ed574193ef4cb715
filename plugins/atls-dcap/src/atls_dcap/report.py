"""What a verified quote says, and how it is recorded into an appraisal.

Report fields come from dcap-qvl's parser (:func:`report_fields`), read
after dcap-qvl has verified the quote's signature over them; :func:`fields_from_report`
maps dcap-qvl's names and checks each length.
Hand-read bytes are left only where dcap-qvl names nothing:

* the SGX KSS fields ``isv_ext_prod_id``, ``config_id``, ``config_svn`` and
  ``isv_family_id``, which dcap-qvl reports inside its ``reserved1/3/4`` fields:
  they are cut out of those at the SGX SDK's offsets;
* in :func:`parse_report_fields` for SGX, the fields dcap-qvl's parser does not
  expose (``misc_select``, ``isv_prod_id``, ``isv_svn`` and the ``reserved``
  ranges above), read from the report body at the same offsets.

Measurements are the values reference values can match; everything else is a claim.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from atls_core import measurements
from atls_core.errors import MalformedEvidence

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal

__all__ = [
    "OUR_NAMES",
    "SGX_MEASUREMENTS",
    "TDX_MEASUREMENTS",
    "VerifiedQuote",
    "fields_from_report",
    "is_debug",
    "parse_report_fields",
    "record_quote",
    "report_fields",
]

TDX_MEASUREMENTS: tuple[str, ...] = measurements.TDX
SGX_MEASUREMENTS: tuple[str, ...] = measurements.SGX
_TDX_MEASURED = frozenset(TDX_MEASUREMENTS)
_SGX_MEASURED = frozenset(SGX_MEASUREMENTS)

_CHECK = "dcap.quote_format"

# dcap-qvl's names -> ours (and the expected length in bytes).
_TD10 = {
    "tee_tcb_svn": ("tee_tcb_svn", 16),
    "mr_seam": ("mrseam", 48),
    "mr_signer_seam": ("mrsignerseam", 48),
    "seam_attributes": ("seam_attributes", 8),
    "td_attributes": ("td_attributes", 8),
    "xfam": ("xfam", 8),
    "mr_td": ("mrtd", 48),
    "mr_config_id": ("mrconfigid", 48),
    "mr_owner": ("mrowner", 48),
    "mr_owner_config": ("mrownerconfig", 48),
    "rt_mr0": ("rtmr0", 48),
    "rt_mr1": ("rtmr1", 48),
    "rt_mr2": ("rtmr2", 48),
    "rt_mr3": ("rtmr3", 48),
    "report_data": ("report_data", 64),
}
_TD15 = {"tee_tcb_svn2": ("tee_tcb_svn2", 16), "mr_service_td": ("mr_servicetd", 48)}
_SGX = {
    "cpu_svn": ("cpu_svn", 16),
    "attributes": ("attributes", 16),
    "mr_enclave": ("mrenclave", 32),
    "mr_signer": ("mrsigner", 32),
    "report_data": ("report_data", 64),
}
_TD10_TYPED = tuple((theirs, ours, size) for theirs, (ours, size) in _TD10.items())
_TD15_TYPED = _TD10_TYPED + tuple((theirs, ours, size) for theirs, (ours, size) in _TD15.items())
OUR_NAMES: Mapping[str, str] = MappingProxyType(
    {qvl: ours for table in (_TD10, _TD15, _SGX) for qvl, (ours, _size) in table.items()}
)
"""dcap-qvl's name of each report field -> ours (its printed reports use its names)."""
_SGX_RESERVED = {"reserved1": 28, "reserved3": 96, "reserved4": 60}
# (our name, dcap-qvl's reserved field, start, length): the SGX SDK's sgx_report_body_t.
_SGX_KSS = (
    ("isv_ext_prod_id", "reserved1", 12, 16),
    ("config_id", "reserved3", 32, 64),
    ("config_svn", "reserved4", 0, 2),
    ("isv_family_id", "reserved4", 44, 16),
)
# What dcap-qvl's parser does not expose, by offset in the 384-byte SGX report body.
_SGX_BODY_GAPS = {
    "misc_select": (16, 4),
    "reserved1": (20, 28),
    "reserved3": (160, 96),
    "isv_prod_id": (256, 2),
    "isv_svn": (258, 2),
    "reserved4": (260, 60),
}
_SGX_INTS = ("misc_select", "isv_prod_id", "isv_svn")
_HEADER_LEN = 48
_V5_BODY_DESCRIPTOR = 6


def _as_bytes(value: Any, name: str, size: int) -> bytes:
    if isinstance(value, str):
        try:
            value = bytes.fromhex(value)
        except ValueError:
            raise MalformedEvidence(f"report field {name} is not hex", check=_CHECK) from None
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise MalformedEvidence(
            f"report field {name} is not {size} bytes", check=_CHECK, actual=repr(value)[:80]
        )
    return bytes(value)


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise MalformedEvidence(f"report field {name} is not a number", check=_CHECK)
    return value


def _flatten(values: Mapping[str, Any]) -> dict[str, Any]:
    """dcap-qvl nests a TD report 1.5 as ``{"base": <TD report 1.0>, ...}``."""
    flat = dict(values)
    base = flat.pop("base", None)
    return {**_flatten(base), **flat} if isinstance(base, Mapping) else flat


def fields_from_report(kind: str, values: Mapping[str, Any]) -> tuple[str, dict[str, bytes | int]]:
    """``(tee_type, fields)`` from dcap-qvl's report (``TD10``, ``TD15``, ``SgxEnclave``...).

    ``values`` as dcap-qvl's claims give them (hex strings, numbers) or as bytes.
    """
    values = _flatten(values)
    fields: dict[str, bytes | int] = {}
    try:
        if kind.startswith("TD"):
            names = {**_TD10, **_TD15} if "mr_service_td" in values else _TD10
            for theirs, (ours, size) in names.items():
                fields[ours] = _as_bytes(values[theirs], theirs, size)
            return "tdx", fields
        if kind == "SgxEnclave":
            for theirs, (ours, size) in _SGX.items():
                fields[ours] = _as_bytes(values[theirs], theirs, size)
            fields["misc_select"] = _as_int(values["misc_select"], "misc_select").to_bytes(
                4, "little"
            )
            fields["isv_prod_id"] = _as_int(values["isv_prod_id"], "isv_prod_id")
            fields["isv_svn"] = _as_int(values["isv_svn"], "isv_svn")
            reserved = {n: _as_bytes(values[n], n, size) for n, size in _SGX_RESERVED.items()}
            for ours, theirs, start, size in _SGX_KSS:
                fields[ours] = reserved[theirs][start : start + size]
            return "sgx", fields
    except KeyError as exc:
        raise MalformedEvidence(
            f"dcap-qvl's {kind} report lacks {exc.args[0]}", check=_CHECK
        ) from None
    raise MalformedEvidence("unknown report type from dcap-qvl", check=_CHECK, actual=kind)


def parse_report_fields(quote: bytes) -> tuple[str, int, dict[str, bytes | int]]:
    """``(tee_type, version, fields)`` of a quote's report body, read by dcap-qvl's parser.

    Nothing is verified here: the signature over these bytes is dcap-qvl's
    job and must have been checked before the fields are trusted.
    """
    import dcap_qvl

    quote = bytes(quote)
    try:
        parsed = dcap_qvl.parse_quote(quote)
    except ValueError as exc:
        raise MalformedEvidence(f"quote cannot be parsed (dcap-qvl: {exc})", check=_CHECK) from exc
    return report_fields(parsed, quote)


def report_fields(parsed: Any, quote: bytes) -> tuple[str, int, dict[str, bytes | int]]:
    """:func:`parse_report_fields` of a quote dcap-qvl has parsed already (``parse_quote``)."""
    try:
        report = parsed.report
        version = int(parsed.header.version)
    except ValueError as exc:
        raise MalformedEvidence(f"quote cannot be parsed (dcap-qvl: {exc})", check=_CHECK) from exc
    if parsed.is_tdx():
        table = _TD15_TYPED if hasattr(report, "mr_service_td") else _TD10_TYPED
        # Every appraisal of a TDX quote passes here: one pass, each length checked.
        fields: dict[str, bytes | int] = {}
        for theirs, ours, size in table:
            value = getattr(report, theirs)
            if type(value) is not bytes or len(value) != size:
                fields[ours] = _as_bytes(value, theirs, size)
            else:
                fields[ours] = value
        return "tdx", version, fields
    values: dict[str, Any] = {n: bytes(getattr(report, n)) for n in _SGX}
    body = quote[_HEADER_LEN + (_V5_BODY_DESCRIPTOR if version == 5 else 0) :]
    for name, (start, size) in _SGX_BODY_GAPS.items():
        raw = body[start : start + size]
        values[name] = int.from_bytes(raw, "little") if name in _SGX_INTS else raw
    return "sgx", version, fields_from_report("SgxEnclave", values)[1]


def is_debug(tee_type: str, fields: Mapping[str, bytes | int]) -> bool:
    """TDX: any TUD bit of TD_ATTRIBUTES (DEBUG is bit 0); SGX: ATTRIBUTES.DEBUG (bit 1)."""
    if tee_type == "tdx":
        attributes = fields["td_attributes"]
        assert isinstance(attributes, bytes)
        return attributes[0] != 0
    attributes = fields["attributes"]
    assert isinstance(attributes, bytes)
    return bool(attributes[0] & 0x02)


def _readonly(value: Mapping[str, bytes | int]) -> Mapping[str, bytes | int]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class VerifiedQuote:
    """A quote whose signatures, chain and collateral dcap-qvl verified.

    TCB status and advisories are reported, not judged: the core's policy
    decides.  Likewise :attr:`debug`.
    """

    tee_type: str
    """``tdx`` or ``sgx``."""
    quote_version: int
    tcb_status: str
    """dcap-qvl's names: UpToDate, SWHardeningNeeded, ConfigurationNeeded, OutOfDate, ..."""
    advisory_ids: tuple[str, ...]
    fmspc: str
    """Upper-case hex."""
    debug: bool
    report_data: bytes
    fields: Mapping[str, bytes | int] = attrs.field(converter=_readonly)
    collateral_expires_at: dt.datetime
    """Earliest next update of TCB info, QE identity, CRLs (and certificate expiry)."""
    tcb_date: dt.datetime | None
    collateral_source: str
    """``pcs``, ``pccs:<url>`` or ``file:<path>``."""
    tcb_evaluation_data_number: int | None = None

    @property
    def measurements(self) -> dict[str, bytes]:
        names = TDX_MEASUREMENTS if self.tee_type == "tdx" else SGX_MEASUREMENTS
        return {n: v for n in names if isinstance(v := self.fields.get(n), bytes)}


def record_quote(appraisal: Appraisal, verified: VerifiedQuote) -> None:
    """Record the facts of a verified quote (through setters); the core's policy judges them."""
    appraisal.set_tee_type(verified.tee_type)
    appraisal.set_debug(verified.debug)
    appraisal.set_tcb(
        verified.tcb_status,
        verified.advisory_ids,
        date=verified.tcb_date,
        evaluation_data_number=verified.tcb_evaluation_data_number,
    )
    names = _TDX_MEASURED if verified.tee_type == "tdx" else _SGX_MEASURED
    measure, claim = appraisal.measure, appraisal.claim
    for name, value in verified.fields.items():  # in the report's order
        if type(value) is bytes:  # all but SGX's numbers: the same choice, tested first
            if name in names:
                measure(name, value)
            else:
                claim(name, value.hex())
        elif isinstance(value, int):
            claim(name, value)
        elif name in names:
            measure(name, value)
        else:
            claim(name, value.hex())
    appraisal.claim("fmspc", verified.fmspc)
    appraisal.claim("quote_version", verified.quote_version)
    appraisal.claim("collateral_source", verified.collateral_source)
    appraisal.valid_until(verified.collateral_expires_at, "collateral next update")
