"""DER elements for the SGX PCK certificate extension, over :mod:`atls_core.der`.

`cryptography` has no generic ASN.1 writer, and the Intel SGX extension (OID 1.2.840.113741.1.13.1) is
a nested SEQUENCE of (OID, value) pairs that must be written by hand.
"""

from __future__ import annotations

from atls_core.der import encode_integer as integer
from atls_core.der import encode_oid as oid
from atls_core.der import tlv, unsigned_content

__all__ = ["boolean", "enumerated", "integer", "octet_string", "oid", "sequence", "tlv"]


def enumerated(value: int) -> bytes:
    """ENUMERATED (non-negative)."""
    return tlv(0x0A, unsigned_content(value))


def octet_string(value: bytes) -> bytes:
    """OCTET STRING."""
    return tlv(0x04, value)


def boolean(value: bool) -> bytes:
    """BOOLEAN (DER: true is 0xFF)."""
    return tlv(0x01, b"\xff" if value else b"\x00")


def sequence(*items: bytes) -> bytes:
    """SEQUENCE of already-encoded elements."""
    return tlv(0x30, b"".join(items))
