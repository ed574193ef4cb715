"""The wire forms of SEV-SNP evidence: our DER envelope, and the guest's certificate table.

The envelope (media type ``application/vnd.atls.snp-evidence``, the value of
extension ``<atls arc>.3.1`` and the body of a challenge answer) carries the
report and, optionally, the certificates that endorse it, so a client can
verify offline from the pinned ARK alone::

    SnpEvidence ::= SEQUENCE {
        version       INTEGER (1),
        report        OCTET STRING,
        certificates  SEQUENCE OF OCTET STRING
    }

The certificate table is what the host hands a guest with an extended report
(configfs-tsm ``auxblob``; GHCB specification, SNP extended guest request):
24-byte entries ``GUID ‖ offset (u32 LE) ‖ length (u32 LE)`` ending with an
all-zero GUID, offsets from the table's start.
"""

from __future__ import annotations

import uuid

from atls_core.certificate import read_tlv
from atls_core.errors import MalformedEvidence
from atls_snp import der

__all__ = [
    "ENVELOPE_VERSION",
    "decode_envelope",
    "encode_envelope",
    "parse_certificate_table",
]

ENVELOPE_VERSION = 1
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_CERTIFICATES = 16
_CHECK = "snp.envelope"

_TABLE_ROLES = {
    "c0b406a4-a803-4952-9743-3fb6014cd0ae": "ark",
    "4ab7b379-bbac-4fe4-a02f-05aef327c782": "ask",
    "63da758d-e664-4564-adc5-f4b93be8accd": "vcek",
    "a8074bc2-a25a-483e-aae6-39c045a0b8a1": "vlek",
}
"""Certificate GUIDs of the GHCB table (others, such as a CRL, are skipped)."""


def encode_envelope(report: bytes, certificates: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    body = der.tlv(der.SEQUENCE, b"".join(der.tlv(der.OCTET_STRING, c) for c in certificates))
    return der.tlv(
        der.SEQUENCE,
        der.encode_integer(ENVELOPE_VERSION) + der.tlv(der.OCTET_STRING, report) + body,
    )


def decode_envelope(data: bytes) -> tuple[bytes, list[bytes]]:
    """(report, certificates) from an envelope; anything else is refused."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise MalformedEvidence(
            "SEV-SNP evidence envelope is too large",
            check=_CHECK,
            expected=f"<= {MAX_ENVELOPE_BYTES} bytes",
            actual=len(data),
        )
    top = der.one(data, check=_CHECK, tag=der.SEQUENCE)
    parts = der.children(data, top, check=_CHECK)
    if len(parts) != 3 or parts[1][0] != der.OCTET_STRING or parts[2][0] != der.SEQUENCE:
        raise MalformedEvidence("not an SEV-SNP evidence envelope", check=_CHECK)
    version = der.integer(data, parts[0], check=_CHECK)
    if version != ENVELOPE_VERSION:
        raise MalformedEvidence(
            "unsupported envelope version", check=_CHECK, expected=ENVELOPE_VERSION, actual=version
        )
    certificates = []
    for item in der.children(data, parts[2], check=_CHECK):
        if item[0] != der.OCTET_STRING:
            raise MalformedEvidence("a certificate is not an OCTET STRING", check=_CHECK)
        certificates.append(der.content(data, item))
    if len(certificates) > MAX_CERTIFICATES:
        raise MalformedEvidence(
            "too many certificates", check=_CHECK, expected=f"<= {MAX_CERTIFICATES}"
        )
    return der.content(data, parts[1]), certificates


def _role(guid: bytes) -> str | None:
    """Hosts write the GUIDs in RFC 4122 byte order or in the little-endian (EFI) one."""
    return _TABLE_ROLES.get(str(uuid.UUID(bytes=guid))) or _TABLE_ROLES.get(
        str(uuid.UUID(bytes_le=guid))
    )


def _trimmed(blob: bytes) -> bytes:
    """A DER certificate without the zero padding some hosts append to table entries."""
    if blob[:1] == bytes([der.SEQUENCE]):
        try:
            end = read_tlv(blob, 0)[3]
        except MalformedEvidence:
            return blob
        if not any(blob[end:]):
            return blob[:end]
    return blob


def parse_certificate_table(table: bytes) -> list[tuple[str, bytes]]:
    """(role, certificate) for each certificate entry of a GHCB certificate table."""
    found: list[tuple[str, bytes]] = []
    position = 0
    while True:
        entry = table[position : position + 24]
        if len(entry) < 24:
            raise MalformedEvidence("the certificate table has no terminating entry", check=_CHECK)
        guid = entry[:16]
        if not any(guid):
            return found
        offset = int.from_bytes(entry[16:20], "little")
        length = int.from_bytes(entry[20:24], "little")
        if offset + length > len(table) or length == 0:
            raise MalformedEvidence(
                "a certificate table entry points outside the table", check=_CHECK
            )
        role = _role(guid)
        if role is not None:
            found.append((role, _trimmed(table[offset : offset + length])))
        if len(found) > MAX_CERTIFICATES:
            raise MalformedEvidence("too many certificates in the table", check=_CHECK)
        position += 24
