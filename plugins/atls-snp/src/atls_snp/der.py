"""Just enough DER to read AMD's certificates and write our evidence envelope.

AMD's VCEK and VLEK certificates have serial number 0, which ``cryptography``
accepts today with a deprecation warning and has announced it will refuse.  A
verifier must keep reading them without weakening a check, so the certificates
are read here (with :func:`atls_core.certificate.read_tlv`, a strict walker:
definite lengths, nothing overruns its parent) and only their public keys go
to ``cryptography``.  The writer is the mirror image: the evidence envelope and
the synthetic test PKI.
"""

from __future__ import annotations

import datetime as dt

from atls_core.certificate import decode_oid, read_tlv
from atls_core.der import encode_integer, encode_oid, tlv
from atls_core.errors import MalformedEvidence

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "CONTEXT_0",
    "CONTEXT_1",
    "CONTEXT_2",
    "CONTEXT_3",
    "GENERALIZED_TIME",
    "IA5_STRING",
    "INTEGER",
    "NULL",
    "OCTET_STRING",
    "OID",
    "PRINTABLE_STRING",
    "SEQUENCE",
    "SET",
    "UTC_TIME",
    "UTF8_STRING",
    "Tlv",
    "children",
    "content",
    "whole",
    "encode_integer",
    "encode_oid",
    "encode_time",
    "integer",
    "oid",
    "one",
    "text",
    "time",
    "tlv",
]

BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
UTF8_STRING = 0x0C
PRINTABLE_STRING = 0x13
IA5_STRING = 0x16
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30
SET = 0x31
CONTEXT_0 = 0xA0
CONTEXT_1 = 0xA1
CONTEXT_2 = 0xA2
CONTEXT_3 = 0xA3

_STRINGS = (UTF8_STRING, PRINTABLE_STRING, IA5_STRING)

Tlv = tuple[int, int, int, int]
"""(tag, header start, content start, end) as :func:`read_tlv` returns them."""


def _bad(what: str, check: str) -> MalformedEvidence:
    return MalformedEvidence(what, check=check)


def one(data: bytes, *, check: str, tag: int | None = None) -> Tlv:
    """The single element ``data`` is (no trailing bytes), optionally of ``tag``."""
    try:
        element = read_tlv(data, 0)
    except MalformedEvidence:
        raise _bad("not valid DER", check) from None
    if element[3] != len(data):
        raise _bad("trailing bytes after the DER element", check)
    if tag is not None and element[0] != tag:
        raise _bad(f"expected DER tag 0x{tag:02x}, found 0x{element[0]:02x}", check)
    return element


def children(data: bytes, parent: Tlv, *, check: str) -> list[Tlv]:
    """The elements inside constructed ``parent``, each within its bounds."""
    _, _, start, end = parent
    items: list[Tlv] = []
    position = start
    while position < end:
        try:
            item = read_tlv(data, position)
        except MalformedEvidence:
            raise _bad("not valid DER", check) from None
        if item[3] > end:
            raise _bad("a DER element overruns its parent", check)
        items.append(item)
        position = item[3]
    return items


def content(data: bytes, element: Tlv) -> bytes:
    return data[element[2] : element[3]]


def whole(data: bytes, element: Tlv) -> bytes:
    return data[element[1] : element[3]]


def integer(data: bytes, element: Tlv, *, check: str) -> int:
    """A non-negative INTEGER (serial numbers, SPLs, versions)."""
    if element[0] != INTEGER:
        raise _bad("expected an INTEGER", check)
    body = content(data, element)
    if not body or body[0] & 0x80:
        raise _bad("expected a non-negative INTEGER", check)
    return int.from_bytes(body, "big")


def oid(data: bytes, element: Tlv, *, check: str) -> str:
    if element[0] != OID:
        raise _bad("expected an OBJECT IDENTIFIER", check)
    try:
        return decode_oid(content(data, element))
    except MalformedEvidence:
        raise _bad("bad OBJECT IDENTIFIER", check) from None


def text(data: bytes, element: Tlv, *, check: str) -> str:
    """A UTF8String, PrintableString or IA5String."""
    if element[0] not in _STRINGS:
        raise _bad("expected a string", check)
    try:
        return content(data, element).decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("a string is not UTF-8", check) from None


def time(data: bytes, element: Tlv, *, check: str) -> dt.datetime:
    """UTCTime (RFC 5280: YY >= 50 is 19YY) or GeneralizedTime, both ending in Z."""
    raw = content(data, element).decode("ascii", errors="replace")
    try:
        if element[0] == UTC_TIME and len(raw) == 13:
            century = "19" if int(raw[:2]) >= 50 else "20"
            value = dt.datetime.strptime(century + raw, "%Y%m%d%H%M%SZ")
        elif element[0] == GENERALIZED_TIME and len(raw) == 15:
            value = dt.datetime.strptime(raw, "%Y%m%d%H%M%SZ")
        else:
            raise ValueError(raw)
    except ValueError:
        raise _bad("bad certificate time", check) from None
    return value.replace(tzinfo=dt.UTC)


# -- writing ------------------------------------------------------------------


def encode_time(when: dt.datetime) -> bytes:
    """UTCTime up to 2049, GeneralizedTime after (RFC 5280)."""
    when = when.astimezone(dt.UTC)
    if when.year < 2050:
        return tlv(UTC_TIME, when.strftime("%y%m%d%H%M%SZ").encode())
    return tlv(GENERALIZED_TIME, when.strftime("%Y%m%d%H%M%SZ").encode())
