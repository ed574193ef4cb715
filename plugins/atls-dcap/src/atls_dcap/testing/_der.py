"""A minimal DER encoder: just what the SGX PCK certificate extension needs.

`cryptography` has no generic ASN.1 writer, and the Intel SGX extension (OID 1.2.840.113741.1.13.1) is
a nested SEQUENCE of (OID, value) pairs that must be written by hand.
"""

from __future__ import annotations


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, content: bytes) -> bytes:
    """One tag-length-value element."""
    return bytes([tag]) + _length(len(content)) + content


def oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError(f"OID needs at least two arcs: {dotted!r}")
    out = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(0x06, bytes(out))


def _unsigned_content(value: int) -> bytes:
    if value < 0:
        raise ValueError("only non-negative integers are needed here")
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return body


def integer(value: int) -> bytes:
    """INTEGER (non-negative)."""
    return tlv(0x02, _unsigned_content(value))


def enumerated(value: int) -> bytes:
    """ENUMERATED (non-negative)."""
    return tlv(0x0A, _unsigned_content(value))


def octet_string(value: bytes) -> bytes:
    """OCTET STRING."""
    return tlv(0x04, value)


def boolean(value: bool) -> bytes:
    """BOOLEAN (DER: true is 0xFF)."""
    return tlv(0x01, b"\xff" if value else b"\x00")


def sequence(*items: bytes) -> bytes:
    """SEQUENCE of already-encoded elements."""
    return tlv(0x30, b"".join(items))
