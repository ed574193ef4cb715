"""The two Gramine extensions: strict parsing, Gramine's encoding, Gramine's precedence."""

from __future__ import annotations

import contextlib
import hashlib

import cbor2
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given, settings
from hypothesis import strategies as st

from atls_core.certificate import PeerCertificate
from atls_core.errors import MalformedEvidence
from atls_core.testing.refusals import refused
from atls_gramine.issuer import build_ratls_certificate
from atls_gramine.ratls import (
    LEGACY_OID_DER,
    TCG_CBOR_TAG,
    encode_claims,
    encode_tcg_evidence,
    extension_for,
    parse_tcg_evidence,
)
from atls_gramine.specs import LEGACY_OID, TCG_OID

QUOTE = bytes(range(256)) * 2
SPKI = b"\x30\x05not-really-an-spki"


def test_round_trip_with_each_hash_algorithm() -> None:
    for algorithm in ("sha256", "sha384", "sha512"):
        claims = encode_claims(SPKI, algorithm=algorithm)
        parsed = parse_tcg_evidence(encode_tcg_evidence(QUOTE, claims))
        assert parsed.quote == QUOTE
        assert parsed.claims == claims
        assert parsed.pubkey_hash_alg == algorithm
        assert parsed.pubkey_hash == hashlib.new(algorithm, SPKI).digest()
        assert parsed.other_claims == ()


def test_claims_encoding_is_gramines() -> None:
    """{"pubkey-hash": bstr(cbor([1, sha256(SPKI)]))}, definite lengths, as Gramine writes."""
    digest = hashlib.sha256(SPKI).digest()
    expected = b"\xa1\x6bpubkey-hash\x58\x24\x82\x01\x58\x20" + digest
    assert encode_claims(SPKI) == expected
    value = encode_tcg_evidence(QUOTE, expected)
    assert value[:3] == b"\xd9\xea\x60"  # tag 60000
    assert cbor2.loads(value).tag == TCG_CBOR_TAG


def test_unknown_claims_are_listed_not_trusted() -> None:
    claims = cbor2.dumps(
        {"pubkey-hash": cbor2.dumps([1, hashlib.sha256(SPKI).digest()]), "nonce": b"x"}
    )
    assert parse_tcg_evidence(encode_tcg_evidence(QUOTE, claims)).other_claims == ("nonce",)


@pytest.mark.parametrize(
    ("value", "check"),
    [
        (b"\xff", "gramine.tcg.cbor"),
        (encode_tcg_evidence(QUOTE, encode_claims(SPKI)) + b"\x00", "gramine.tcg.cbor"),
        (cbor2.dumps(cbor2.CBORTag(60001, [QUOTE, encode_claims(SPKI)])), "gramine.tcg.tag"),
        (cbor2.dumps([QUOTE, encode_claims(SPKI)]), "gramine.tcg.tag"),
        (cbor2.dumps(cbor2.CBORTag(60000, [QUOTE])), "gramine.tcg.structure"),
        (cbor2.dumps(cbor2.CBORTag(60000, [QUOTE, "text"])), "gramine.tcg.structure"),
        (cbor2.dumps(cbor2.CBORTag(60000, [b"", encode_claims(SPKI)])), "gramine.tcg.structure"),
        (
            cbor2.dumps(cbor2.CBORTag(60000, [QUOTE, encode_claims(SPKI), b"x"])),
            "gramine.tcg.structure",
        ),
        (
            # indefinite-length byte string for the quote: not Gramine's encoding
            b"\xd9\xea\x60\x82\x5f\x42ab\x42cd\xff" + cbor2.dumps(encode_claims(SPKI)),
            "gramine.tcg.encoding",
        ),
        (encode_tcg_evidence(QUOTE, cbor2.dumps([1, 2])), "gramine.tcg.claims"),
        (encode_tcg_evidence(QUOTE, cbor2.dumps({})), "gramine.tcg.claims"),
        (encode_tcg_evidence(QUOTE, cbor2.dumps({1: b"x"})), "gramine.tcg.claims"),
        (encode_tcg_evidence(QUOTE, cbor2.dumps({"nonce": b"x"})), "gramine.tcg.pubkey_hash"),
        (
            # a plain array instead of a serialized one: not Gramine's format
            encode_tcg_evidence(
                QUOTE, cbor2.dumps({"pubkey-hash": [1, hashlib.sha256(SPKI).digest()]})
            ),
            "gramine.tcg.pubkey_hash",
        ),
        (
            encode_tcg_evidence(
                QUOTE,
                cbor2.dumps({"pubkey-hash": cbor2.dumps([2, hashlib.sha256(SPKI).digest()])}),
            ),
            "gramine.tcg.pubkey_hash_alg",
        ),
        (
            encode_tcg_evidence(
                QUOTE,
                cbor2.dumps({"pubkey-hash": cbor2.dumps([7, hashlib.sha256(SPKI).digest()])}),
            ),
            "gramine.tcg.pubkey_hash",
        ),
        (
            encode_tcg_evidence(
                QUOTE, cbor2.dumps({"pubkey-hash": cbor2.dumps([True, b"\x00" * 32])})
            ),
            "gramine.tcg.pubkey_hash",
        ),
    ],
)
def test_malformed_tcg_evidence_names_its_check(value: bytes, check: str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        parse_tcg_evidence(value)
    assert info.value.check == check


def _certificate(*, legacy: bytes | None, tcg: bytes | None) -> PeerCertificate:
    key = ec.generate_private_key(ec.SECP384R1())
    return PeerCertificate.from_der(
        build_ratls_certificate(key, legacy_quote=legacy, tcg_evidence=tcg)
    )


def test_legacy_oid_is_written_exactly_as_gramine_does() -> None:
    certificate = _certificate(legacy=QUOTE, tcg=None)
    assert b"\x06\x0b" + LEGACY_OID_DER + b"\x04\x82\x02\x00" + QUOTE[:8] in certificate.der
    assert certificate.extension(LEGACY_OID) == QUOTE


def test_precedence_tcg_first_else_legacy() -> None:
    tcg = encode_tcg_evidence(QUOTE, encode_claims(SPKI))
    assert extension_for(_certificate(legacy=QUOTE, tcg=tcg)) == (TCG_OID, tcg)
    assert extension_for(_certificate(legacy=QUOTE, tcg=None)) == (LEGACY_OID, QUOTE)
    with pytest.raises(MalformedEvidence) as info:
        extension_for(_certificate(legacy=None, tcg=None))
    assert info.value.check == "evidence.extension"


@pytest.mark.parametrize(
    "hostile",
    [
        bytes.fromhex("5bffffffffffffffff"),  # byte string claiming 2^64-1 bytes
        bytes.fromhex("d9ea609bffffffffffffffff"),  # array claiming 2^64-1 items
        bytes.fromhex("d9ea60") + b"\x81" * 100_000,  # nesting far beyond any real evidence
    ],
)
def test_hostile_cbor_fails_fast_and_specifically(hostile: bytes) -> None:
    with refused(MalformedEvidence, "gramine.tcg.cbor"):
        parse_tcg_evidence(hostile)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_only_ever_fail_as_malformed(data: bytes) -> None:
    with contextlib.suppress(MalformedEvidence):
        parse_tcg_evidence(data)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=600), st.integers(min_value=0, max_value=7))
def test_any_single_bit_flip_is_rejected_or_changes_nothing_silently(
    position: int, bit: int
) -> None:
    """A flipped bit either fails to parse or yields different quote/claims bytes."""
    original = encode_tcg_evidence(QUOTE, encode_claims(SPKI))
    data = bytearray(original)
    data[position % len(data)] ^= 1 << bit
    try:
        parsed = parse_tcg_evidence(bytes(data))
    except MalformedEvidence:
        return
    assert (parsed.quote, parsed.claims) != (QUOTE, encode_claims(SPKI))
