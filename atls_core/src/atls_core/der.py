"""DER writing: the few encoders TEE formats need and ``cryptography`` does not expose.

``cryptography`` has no generic ASN.1 writer, yet evidence envelopes, Intel's
SGX certificate extension and synthetic test PKIs are nested elements written
by hand.  Reading stays in :mod:`atls_core.certificate` (a strict walker).
"""

from __future__ import annotations

__all__ = ["encode_integer", "encode_oid", "tlv", "unsigned_content"]

_INTEGER = 0x02
_OID = 0x06


def _length(size: int) -> bytes:
    if size < 0x80:
        return bytes([size])
    body = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def tlv(tag: int, value: bytes) -> bytes:
    """One tag-length-value element (definite length)."""
    return bytes([tag]) + _length(len(value)) + value


def unsigned_content(value: int) -> bytes:
    """The content octets of a non-negative INTEGER (or ENUMERATED)."""
    if value < 0:
        raise ValueError("only non-negative integers are written")
    body = value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big")
    if body[0] & 0x80:
        body = b"\x00" + body
    return body


def encode_integer(value: int) -> bytes:
    """INTEGER (non-negative)."""
    return tlv(_INTEGER, unsigned_content(value))


def encode_oid(dotted: str) -> bytes:
    """OBJECT IDENTIFIER from its dotted form."""
    arcs = [int(arc) for arc in dotted.split(".")]
    if len(arcs) < 2:
        raise ValueError(f"an OID needs at least two arcs: {dotted!r}")
    body = bytearray([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(_OID, bytes(body))
