"""Evidence: the bytes a TEE produced, plus where they came from.

Evidence is inert data.  Nothing here is trusted until a validator has
appraised it; the digest is what results and caches refer to.
"""

from __future__ import annotations

import binascii
import enum
import hashlib
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from atls_core.errors import MalformedEvidence

__all__ = ["Evidence", "EvidenceSource", "Transport", "bytes_from_hex_text"]


class Transport(enum.Enum):
    """How evidence travels from the server to the client."""

    CERTIFICATE = "certificate"
    """In the server certificate, as X.509 extensions keyed by OID."""

    CHALLENGE = "challenge"
    """Requested over the same TLS connection after the handshake."""

    FILE = "file"
    """Read from a file for offline appraisal (``atls verify-evidence``)."""


def _frozen_mapping(value: Mapping[str, bytes]) -> Mapping[str, bytes]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class EvidenceSource:
    """Where a piece of evidence was found."""

    transport: Transport
    oid: str | None = None
    """Certificate extension OID, dotted as parsed from the wire."""
    location: str | None = None
    """Challenge path or file name, for reports."""


@attrs.frozen(kw_only=True)
class Evidence:
    """Raw attestation evidence with optional endorsements.

    ``endorsements`` holds side material that travelled with the evidence and is
    itself verified by the validator (an event log, claims, a collateral file);
    keys are validator-defined names.
    """

    media_type: str
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    source: EvidenceSource
    endorsements: Mapping[str, bytes] = attrs.field(
        factory=dict, converter=_frozen_mapping, repr=lambda m: f"<{sorted(m)}>"
    )

    def require_media_type(self, *accepted: str) -> None:
        """Refuse evidence of any other media type before a validator parses it.

        A validator calls this first so that bytes meant for another validator
        are never read under the wrong format.
        """
        if self.media_type not in accepted:
            raise MalformedEvidence(
                "unexpected media type",
                check="evidence.media_type",
                expected=accepted[0] if len(accepted) == 1 else list(accepted),
                actual=self.media_type,
            )

    @property
    def digest(self) -> str:
        """SHA-256 over the evidence and its endorsements, hex."""
        data = self.data
        h = hashlib.sha256(self.media_type.encode() + len(data).to_bytes(8, "big"))
        h.update(data)
        if not self.endorsements:  # most evidence: skip sorting nothing
            return h.hexdigest()
        for name in sorted(self.endorsements):
            value = self.endorsements[name]
            h.update(name.encode() + b"\0")
            h.update(len(value).to_bytes(8, "big"))
            h.update(value)
        return h.hexdigest()


_HEX_DIGITS = frozenset("0123456789abcdefABCDEF")  # string.hexdigits, without importing it


def bytes_from_hex_text(data: bytes, *, odd_digits: str | None = None) -> bytes | None:
    """The bytes a file written as hex text holds (optional ``0x``, whitespace ignored).

    None when ``data`` is not ASCII hex digits of an even count: the caller reads it
    as binary.  With ``odd_digits`` (the input's name), an odd count of hex digits is
    refused instead, as hex text that lost a digit.  Decoded in C: a quote is some
    10,000 digits, and a set of them cost 17 times as much.
    """
    try:
        compact = "".join(data.decode("ascii").split())
    except UnicodeDecodeError:
        return None
    if compact[:2].lower() == "0x":
        compact = compact[2:]
    if not compact:
        return None
    try:
        return binascii.a2b_hex(compact)
    except binascii.Error:
        if odd_digits is not None and len(compact) % 2 and set(compact) <= _HEX_DIGITS:
            raise MalformedEvidence(
                f"{odd_digits}: odd number of hex digits", check="evidence.encoding"
            ) from None
    return None
