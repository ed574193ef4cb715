"""Gramine's RA-TLS certificate extensions: reading and writing, nothing else.

Gramine puts an SGX quote into its self-signed certificate in two ways:

* the *legacy* extension: the raw quote, under an OID whose encoding contains
  the DER tag and length of the intended OID ``1.2.840.113741.1337.6`` (a
  Gramine quirk every parser sees as ``0.6.9.42.840.113741.1337.6``); the
  quote's report data is ``SHA-256(SPKI) || 32 zero bytes``;
* the *TCG DICE* tagged-evidence extension ``2.23.133.5.4.9``: CBOR tag 60000
  over ``[quote, claims]`` (both byte strings), ``claims`` a serialized CBOR
  map whose ``"pubkey-hash"`` entry is a serialized CBOR array
  ``[hash-alg-id, hash]`` (IANA named-information ids: 1 = SHA-256,
  7 = SHA-384, 8 = SHA-512); the quote's report data is
  ``SHA-256(claims) || 32 zero bytes``.

Precedence is Gramine's: when the TCG extension is present it decides, and a
problem with it is never answered by falling back to the legacy extension.

Parsing here is strict (definite lengths, no trailing bytes, the envelope must
re-encode to exactly the bytes received) and proves nothing by itself: the
quote is verified by DCAP and the claims by the quote's report data.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import cbor2

from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_gramine.specs import LEGACY_OID, MEDIA_TYPE_LEGACY, MEDIA_TYPE_TCG, TCG_OID

__all__ = [
    "HASH_ALGORITHMS",
    "LEGACY_OID",
    "LEGACY_OID_DER",
    "MEDIA_TYPE_LEGACY",
    "MEDIA_TYPE_TCG",
    "TCG_CBOR_TAG",
    "TCG_OID",
    "TcgEvidence",
    "encode_claims",
    "encode_tcg_evidence",
    "extension_for",
    "parse_tcg_evidence",
]

LEGACY_OID_DER = bytes.fromhex("06092a864886f84d8a3906")
"""Content octets Gramine writes for the legacy OID (the full DER TLV of 1.2.840.113741.1337.6)."""
TCG_CBOR_TAG = 60000
"""CBOR tag of a TEE quote in tagged evidence (IANA CBOR tags registry)."""

HASH_ALGORITHMS: Mapping[int, str] = MappingProxyType({1: "sha256", 7: "sha384", 8: "sha512"})
"""IANA named-information hash ids accepted in the ``pubkey-hash`` claim."""
_HASH_IDS = {name: ident for ident, name in HASH_ALGORITHMS.items()}
_PUBKEY_HASH = "pubkey-hash"


def _decode_exact(data: bytes, what: str) -> Any:
    """Decode one CBOR item that must span ``data`` exactly."""
    stream = io.BytesIO(data)
    try:
        item = cbor2.CBORDecoder(stream).decode()
    except (cbor2.CBORDecodeError, ValueError, RecursionError) as exc:
        raise MalformedEvidence(
            f"{what} is not valid CBOR: {exc}", check="gramine.tcg.cbor"
        ) from None
    if stream.tell() != len(data):
        raise MalformedEvidence(
            f"{what} has trailing bytes after its CBOR item",
            check="gramine.tcg.cbor",
            expected=stream.tell(),
            actual=len(data),
        )
    return item


@attrs.frozen(kw_only=True)
class TcgEvidence:
    """The parts of a TCG DICE tagged-evidence extension (not yet verified)."""

    quote: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    claims: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    """The serialized claims map, exactly as received (the quote binds these bytes)."""
    pubkey_hash_alg: str
    """``sha256``, ``sha384`` or ``sha512``."""
    pubkey_hash: bytes
    other_claims: tuple[str, ...] = ()
    """Names of claims other than ``pubkey-hash`` (Gramine ignores them; so do we)."""


def parse_tcg_evidence(value: bytes) -> TcgEvidence:
    """Parse the TCG extension value; raise :class:`MalformedEvidence` on any deviation."""
    envelope = _decode_exact(value, "TCG tagged evidence")
    if not isinstance(envelope, cbor2.CBORTag) or envelope.tag != TCG_CBOR_TAG:
        raise MalformedEvidence(
            "TCG extension is not CBOR tag 60000",
            check="gramine.tcg.tag",
            expected=TCG_CBOR_TAG,
            actual=getattr(envelope, "tag", type(envelope).__name__),
        )
    items = envelope.value
    if (
        not isinstance(items, (list, tuple))
        or len(items) != 2
        or not all(isinstance(i, bytes) and i for i in items)
    ):
        raise MalformedEvidence(
            "TCG tagged evidence must be [quote, claims], two non-empty byte strings",
            check="gramine.tcg.structure",
        )
    quote, claims = bytes(items[0]), bytes(items[1])
    if cbor2.dumps(cbor2.CBORTag(TCG_CBOR_TAG, [quote, claims])) != value:
        raise MalformedEvidence(
            "TCG tagged evidence is not in definite, minimal CBOR encoding",
            check="gramine.tcg.encoding",
        )
    claims_map = _decode_exact(claims, "TCG claims")
    if not isinstance(claims_map, dict) or not claims_map:
        raise MalformedEvidence("TCG claims are not a non-empty map", check="gramine.tcg.claims")
    if not all(isinstance(k, str) and k for k in claims_map):
        raise MalformedEvidence(
            "TCG claim names must be non-empty text strings", check="gramine.tcg.claims"
        )
    if _PUBKEY_HASH not in claims_map:
        # Gramine accepts claims without pubkey-hash; then nothing ties the key to
        # the quote.  We refuse.
        raise MalformedEvidence(
            "TCG claims carry no pubkey-hash: the TLS key is not bound",
            check="gramine.tcg.pubkey_hash",
        )
    algorithm, digest = _pubkey_hash_entry(claims_map[_PUBKEY_HASH])
    others = tuple(sorted(k for k in claims_map if k != _PUBKEY_HASH))
    return TcgEvidence(
        quote=quote,
        claims=claims,
        pubkey_hash_alg=algorithm,
        pubkey_hash=digest,
        other_claims=others,
    )


def _pubkey_hash_entry(value: Any) -> tuple[str, bytes]:
    if not isinstance(value, bytes) or not value:
        raise MalformedEvidence(
            "pubkey-hash must be a serialized CBOR array in a byte string",
            check="gramine.tcg.pubkey_hash",
            actual=type(value).__name__,
        )
    entry = _decode_exact(value, "pubkey-hash entry")
    if (
        not isinstance(entry, (list, tuple))
        or len(entry) != 2
        or not isinstance(entry[0], int)
        or isinstance(entry[0], bool)
        or not isinstance(entry[1], bytes)
    ):
        raise MalformedEvidence(
            "pubkey-hash must be [hash-alg-id, hash]", check="gramine.tcg.pubkey_hash"
        )
    algorithm = HASH_ALGORITHMS.get(entry[0])
    if algorithm is None:
        raise MalformedEvidence(
            "unsupported pubkey-hash algorithm id",
            check="gramine.tcg.pubkey_hash_alg",
            expected=sorted(HASH_ALGORITHMS),
            actual=entry[0],
        )
    size = hashlib.new(algorithm).digest_size
    if len(entry[1]) != size:
        raise MalformedEvidence(
            "pubkey-hash has the wrong length for its algorithm",
            check="gramine.tcg.pubkey_hash",
            expected=size,
            actual=len(entry[1]),
        )
    return algorithm, bytes(entry[1])


def encode_claims(spki_der: bytes, *, algorithm: str = "sha256") -> bytes:
    """Serialized claims map as Gramine writes it: ``{"pubkey-hash": bstr([id, H(SPKI)])}``."""
    try:
        ident = _HASH_IDS[algorithm]
    except KeyError:
        raise ValueError(f"unsupported pubkey-hash algorithm {algorithm!r}") from None
    entry = cbor2.dumps([ident, hashlib.new(algorithm, spki_der).digest()])
    return cbor2.dumps({_PUBKEY_HASH: entry})


def encode_tcg_evidence(quote: bytes, claims: bytes) -> bytes:
    """The TCG extension value: CBOR tag 60000 over ``[quote, claims]``."""
    return cbor2.dumps(cbor2.CBORTag(TCG_CBOR_TAG, [quote, claims]))


def extension_for(certificate: PeerCertificate) -> tuple[str, bytes]:
    """Gramine's precedence: the TCG extension if present, else the legacy one."""
    for oid in (TCG_OID, LEGACY_OID):
        value = certificate.extension(oid)
        if value is not None:
            return oid, value
    raise MalformedEvidence(
        "the certificate carries no Gramine RA-TLS extension",
        check="evidence.extension",
        expected=[TCG_OID, LEGACY_OID],
        actual=sorted(certificate.extensions),
    )
