"""A tolerant reader for the server's leaf certificate.

Attestation certificates are often minted by small TLS stacks.  Gramine's
mbedTLS writes an explicit NULL parameter in ``ecdsa-with-SHA256`` that
``cryptography`` refuses to load, and writes its legacy extension under an OID
whose encoding includes the DER tag and length of the intended OID.  The TLS
handshake already proved the server holds the certificate's key, so the client
only needs three things from the certificate: its bytes, its
SubjectPublicKeyInfo and its extensions.  This module reads exactly those with
a strict DER walker (definite lengths, no trailing bytes, no duplicate
extensions) and leaves everything else to the validators.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from atls_core.errors import MalformedEvidence

__all__ = ["Extension", "PeerCertificate", "decode_oid", "read_tlv"]


def read_tlv(data: bytes, offset: int = 0) -> tuple[int, int, int, int]:
    """Read one DER TLV: returns (tag, header_start, value_start, value_end)."""
    try:
        tag = data[offset]
        if tag & 0x1F == 0x1F:
            raise MalformedEvidence(
                "multi-byte DER tags are not supported", check="certificate.der"
            )
        length = data[offset + 1]
        pos = offset + 2
        if length & 0x80:
            count = length & 0x7F
            if count == 0 or count > 4:
                raise MalformedEvidence("bad DER length", check="certificate.der")
            length = int.from_bytes(data[pos : pos + count], "big")
            if len(data[pos : pos + count]) != count:
                raise IndexError
            pos += count
    except IndexError:
        raise MalformedEvidence("truncated DER", check="certificate.der") from None
    end = pos + length
    if end > len(data):
        raise MalformedEvidence("truncated DER", check="certificate.der")
    return tag, offset, pos, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    items = []
    pos = start
    while pos < end:
        item = read_tlv(data, pos)
        if item[3] > end:
            raise MalformedEvidence("DER element overruns its parent", check="certificate.der")
        items.append(item)
        pos = item[3]
    return items


def decode_oid(body: bytes) -> str:
    """Dotted form of an OID's content octets, exactly as on the wire."""
    return _decode_oid(bytes(body))


@functools.lru_cache(maxsize=256)
def _decode_oid(body: bytes) -> str:
    """Memoised: a server sends the same few extension OIDs on every connection."""
    if not body:
        raise MalformedEvidence("empty OID", check="certificate.der")
    arcs: list[int] = []
    value = 0
    for byte in body:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if body[-1] & 0x80:
        raise MalformedEvidence("truncated OID", check="certificate.der")
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])


def _time(data: bytes, tlv: tuple[int, int, int, int]) -> dt.datetime:
    tag, _, start, end = tlv
    raw = data[start:end]
    # UTCTime YYMMDDHHMMSSZ (RFC 5280: YY >= 50 is 19YY, else 20YY) or GeneralizedTime
    # YYYYMMDDHHMMSSZ; read by hand: strptime costs more than the rest of the certificate.
    digits = raw[:-1]
    if (
        (tag, len(raw)) in ((0x17, 13), (0x18, 15))
        and raw[-1:] == b"Z"
        and digits.isdigit()  # bytes.isdigit: ASCII digits only
    ):
        if tag == 0x17:
            year = int(digits[:2])
            year += 1900 if year >= 50 else 2000
            rest = digits[2:]
        else:
            year, rest = int(digits[:4]), digits[4:]
        try:
            return dt.datetime(
                year,
                int(rest[0:2]),
                int(rest[2:4]),
                int(rest[4:6]),
                int(rest[6:8]),
                int(rest[8:10]),
                tzinfo=dt.UTC,
            )
        except ValueError:
            pass
    raise MalformedEvidence(
        "bad certificate validity time",
        check="certificate.der",
        actual=raw.decode("ascii", errors="replace"),
    )


@attrs.frozen(kw_only=True)
class Extension:
    oid: str
    critical: bool
    value: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")


def _frozen(value: Mapping[str, Extension]) -> Mapping[str, Extension]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class PeerCertificate:
    der: bytes = attrs.field(repr=False)
    spki_der: bytes = attrs.field(repr=False)
    not_before: dt.datetime
    not_after: dt.datetime
    extensions: Mapping[str, Extension] = attrs.field(converter=_frozen)

    @property
    def digest(self) -> str:
        """SHA-256 of the whole certificate, hex (cache keys, reports)."""
        return hashlib.sha256(self.der).hexdigest()

    def extension(self, oid: str) -> bytes | None:
        found = self.extensions.get(oid)
        return found.value if found is not None else None

    @classmethod
    def from_der(cls, der: bytes) -> PeerCertificate:
        """Read ``der``; the same bytes read again (the binding check, a plugin) are not re-read."""
        return _read_certificate(bytes(der))

    @classmethod
    def _read(cls, der: bytes) -> PeerCertificate:
        tag, _, start, end = read_tlv(der)
        if tag != 0x30 or end != len(der):
            raise MalformedEvidence("certificate is not one DER SEQUENCE", check="certificate.der")
        parts = _children(der, start, end)
        if len(parts) != 3 or parts[0][0] != 0x30:
            raise MalformedEvidence("certificate has no tbsCertificate", check="certificate.der")
        _, _, tbs_start, tbs_end = parts[0]
        fields = _children(der, tbs_start, tbs_end)
        if fields and fields[0][0] == 0xA0:  # [0] version
            fields = fields[1:]
        if len(fields) < 6:
            raise MalformedEvidence("tbsCertificate is too short", check="certificate.der")
        validity = _children(der, fields[3][2], fields[3][3])
        if fields[3][0] != 0x30 or len(validity) != 2:
            raise MalformedEvidence("bad certificate validity", check="certificate.der")
        spki = fields[5]
        if spki[0] != 0x30:
            raise MalformedEvidence("bad SubjectPublicKeyInfo", check="certificate.der")
        extensions: dict[str, Extension] = {}
        for field in fields[6:]:
            if field[0] != 0xA3:  # skip [1]/[2] unique identifiers
                continue
            outer = _children(der, field[2], field[3])
            if len(outer) != 1 or outer[0][0] != 0x30:
                raise MalformedEvidence("bad extensions block", check="certificate.der")
            for ext in _children(der, outer[0][2], outer[0][3]):
                items = _children(der, ext[2], ext[3])
                if ext[0] != 0x30 or len(items) not in (2, 3) or items[0][0] != 0x06:
                    raise MalformedEvidence("bad extension", check="certificate.der")
                oid = decode_oid(der[items[0][2] : items[0][3]])
                critical = False
                if len(items) == 3:
                    if items[1][0] != 0x01:
                        raise MalformedEvidence("bad extension", check="certificate.der")
                    critical = der[items[1][2] : items[1][3]] != b"\x00"
                value_tlv = items[-1]
                if value_tlv[0] != 0x04:
                    raise MalformedEvidence(
                        "extension value is not an OCTET STRING", check="certificate.der"
                    )
                if oid in extensions:
                    raise MalformedEvidence(
                        "duplicate certificate extension", check="certificate.der", actual=oid
                    )
                extensions[oid] = Extension(
                    oid=oid, critical=critical, value=der[value_tlv[2] : value_tlv[3]]
                )
        return cls(
            der=der,
            spki_der=der[spki[1] : spki[3]],
            not_before=_time(der, validity[0]),
            not_after=_time(der, validity[1]),
            extensions=extensions,
        )


@functools.lru_cache(maxsize=16)
def _read_certificate(der: bytes) -> PeerCertificate:
    """Memoised on the exact bytes: a certificate is immutable, and so is what is read from it."""
    return PeerCertificate._read(der)
