"""What a verified quote says, and how it is recorded into an appraisal.

Fields come from the signed report body of the quote (parsed here from the
raw bytes, after dcap-qvl verified the signature over them).  Measurements
are the values reference values can match; everything else is a claim.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs

from atls_core import measurements
from atls_core.errors import MalformedEvidence

if TYPE_CHECKING:
    from atls_core.appraisal import Appraisal

__all__ = [
    "SGX_MEASUREMENTS",
    "TDX_MEASUREMENTS",
    "VerifiedQuote",
    "parse_report_fields",
    "record_quote",
]

TDX_MEASUREMENTS: tuple[str, ...] = measurements.TDX
SGX_MEASUREMENTS: tuple[str, ...] = measurements.SGX

_HEADER_LEN = 48
_TEE_SGX = 0x00000000
_TEE_TDX = 0x00000081

# (name, length) in wire order; a length of 0 marks bytes we skip (reserved).
_TD10 = (
    ("tee_tcb_svn", 16),
    ("mrseam", 48),
    ("mrsignerseam", 48),
    ("seam_attributes", 8),
    ("td_attributes", 8),
    ("xfam", 8),
    ("mrtd", 48),
    ("mrconfigid", 48),
    ("mrowner", 48),
    ("mrownerconfig", 48),
    ("rtmr0", 48),
    ("rtmr1", 48),
    ("rtmr2", 48),
    ("rtmr3", 48),
    ("report_data", 64),
)
_TD15_EXTRA = (("tee_tcb_svn2", 16), ("mr_servicetd", 48))
_SGX = (
    ("cpu_svn", 16),
    ("misc_select", 4),
    ("_reserved1", 12),
    ("isv_ext_prod_id", 16),
    ("attributes", 16),
    ("mrenclave", 32),
    ("_reserved2", 32),
    ("mrsigner", 32),
    ("_reserved3", 32),
    ("config_id", 64),
    ("isv_prod_id", 2),
    ("isv_svn", 2),
    ("config_svn", 2),
    ("_reserved4", 42),
    ("isv_family_id", 16),
    ("report_data", 64),
)
_SGX_INTS = frozenset({"isv_prod_id", "isv_svn"})


def _read(layout: tuple[tuple[str, int], ...], data: bytes, offset: int) -> dict[str, bytes | int]:
    size = sum(length for _, length in layout)
    if len(data) < offset + size:
        raise MalformedEvidence(
            "quote is shorter than its report body",
            check="dcap.quote_format",
            expected=f">= {offset + size} bytes",
            actual=f"{len(data)} bytes",
        )
    fields: dict[str, bytes | int] = {}
    for name, length in layout:
        chunk = data[offset : offset + length]
        offset += length
        if name.startswith("_"):
            continue
        fields[name] = int.from_bytes(chunk, "little") if name in _SGX_INTS else bytes(chunk)
    return fields


def parse_report_fields(quote: bytes) -> tuple[str, int, dict[str, bytes | int]]:
    """Return ``(tee_type, version, fields)`` of a quote's report body.

    Only the layout is read here; the signature over these bytes is
    dcap-qvl's job and must have been checked before the fields are trusted.
    """
    if len(quote) < _HEADER_LEN:
        raise MalformedEvidence("quote is shorter than its header", check="dcap.quote_format")
    version, _key_type, tee = struct.unpack_from("<HHI", quote, 0)
    offset = _HEADER_LEN
    if version == 5:
        if len(quote) < offset + 6:
            raise MalformedEvidence("quote v5 has no body descriptor", check="dcap.quote_format")
        body_type, _body_size = struct.unpack_from("<HI", quote, offset)
        offset += 6
        layouts = {1: _SGX, 2: _TD10, 3: _TD10 + _TD15_EXTRA, 4: _TD10 + _TD15_EXTRA}
        if body_type not in layouts:
            raise MalformedEvidence(
                "unknown quote v5 body type", check="dcap.quote_format", actual=body_type
            )
        layout = layouts[body_type]
    elif version in (3, 4):
        layout = _SGX if tee == _TEE_SGX else _TD10
    else:
        raise MalformedEvidence(
            "unsupported quote version",
            check="dcap.quote_format",
            expected=[3, 4, 5],
            actual=version,
        )
    if tee == _TEE_TDX and layout is not _SGX:
        tee_type = "tdx"
    elif tee == _TEE_SGX and layout is _SGX:
        tee_type = "sgx"
    else:
        raise MalformedEvidence(
            "quote TEE type does not match its body", check="dcap.quote_format", actual=hex(tee)
        )
    return tee_type, version, _read(layout, quote, offset)


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
    names = TDX_MEASUREMENTS if verified.tee_type == "tdx" else SGX_MEASUREMENTS
    for name, value in sorted(verified.fields.items()):
        if name in names and isinstance(value, bytes):
            appraisal.measure(name, value)
        else:
            appraisal.claim(name, value if isinstance(value, int) else value.hex())
    appraisal.claim("fmspc", verified.fmspc)
    appraisal.claim("quote_version", verified.quote_version)
    appraisal.claim("collateral_source", verified.collateral_source)
    appraisal.valid_until(verified.collateral_expires_at, "collateral next update")
