"""The tolerant certificate reader: strict DER, extensions by on-the-wire OID, Gramine certs."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core.certificate import PeerCertificate, decode_oid, read_tlv
from atls_core.der import encode_oid
from atls_core.errors import MalformedEvidence
from atls_core.evidence import Transport
from atls_core.interfaces import ValidatorBase
from atls_core.testing.certs import self_signed_certificate
from atls_core.testing.facts import unit_spec
from atls_core.testing.vectors import vectors_root as _vectors

EVIDENCE_OID = "1.3.9999.255.1"
SECOND_OID = "1.3.9999.255.2"
GRAMINE_LEGACY_OID = "0.6.9.42.840.113741.1337.6"
TCG_DICE_OID = "2.23.133.5.4.9"
NOT_BEFORE = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def _certificate(
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime = dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    der = self_signed_certificate(
        key,
        [(EVIDENCE_OID, b"E" * 300), (SECOND_OID, b"F" * 300)],
        common_name="unit.test",
        not_before=not_before or NOT_BEFORE,
        not_after=not_after,
        serial=7,
        critical=(EVIDENCE_OID,),
        dns_names=("unit.test",),
    )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der, spki


DER, SPKI = _certificate()


def test_reads_what_cryptography_wrote() -> None:
    peer = PeerCertificate.from_der(DER)
    assert peer.der == DER
    assert peer.spki_der == SPKI
    assert peer.digest == hashlib.sha256(DER).hexdigest()
    assert peer.not_before == NOT_BEFORE
    assert peer.not_after == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    assert set(peer.extensions) == {"2.5.29.17", EVIDENCE_OID, SECOND_OID}
    assert peer.extension(EVIDENCE_OID) == b"E" * 300
    assert peer.extensions[EVIDENCE_OID].critical is True
    assert peer.extensions[SECOND_OID].critical is False
    assert peer.extension("1.2.3") is None
    with pytest.raises(TypeError):
        peer.extensions["x"] = peer.extensions[EVIDENCE_OID]  # type: ignore[index]


def test_generalized_time_after_2049() -> None:
    der, _ = _certificate(not_after=dt.datetime(2051, 6, 1, tzinfo=dt.UTC))
    assert PeerCertificate.from_der(der).not_after == dt.datetime(2051, 6, 1, tzinfo=dt.UTC)


def test_every_truncation_is_malformed() -> None:
    for length in [0, 1, 2, 3, 4, *range(10, len(DER), 37), len(DER) - 1]:
        with pytest.raises(MalformedEvidence) as info:
            PeerCertificate.from_der(DER[:length])
        assert info.value.check == "certificate.der"


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(MalformedEvidence):
        PeerCertificate.from_der(DER + b"\x00")


def test_duplicate_extensions_are_refused() -> None:
    encoded = {oid: encode_oid(oid) for oid in (EVIDENCE_OID, SECOND_OID)}
    assert len(encoded[EVIDENCE_OID]) == len(encoded[SECOND_OID])
    assert DER.count(encoded[SECOND_OID]) == 1
    duplicated = DER.replace(encoded[SECOND_OID], encoded[EVIDENCE_OID])
    with pytest.raises(MalformedEvidence) as info:
        PeerCertificate.from_der(duplicated)
    assert "duplicate certificate extension" in str(info.value)
    assert info.value.actual == EVIDENCE_OID


def test_decode_oid() -> None:
    for dotted in (EVIDENCE_OID, "2.5.29.17", TCG_DICE_OID, "1.2.840.113741.1337.6"):
        assert decode_oid(encode_oid(dotted)[2:]) == dotted
    assert decode_oid(bytes([0x00, 0x01])) == "0.0.1"
    assert decode_oid(bytes([0x88, 0x37])) == "2.999"
    with pytest.raises(MalformedEvidence):
        decode_oid(b"")
    with pytest.raises(MalformedEvidence):
        decode_oid(bytes([0x2B, 0x86]))


def test_read_tlv_lengths() -> None:
    assert read_tlv(bytes([0x04, 0x02, 1, 2])) == (0x04, 0, 2, 4)
    long = bytes([0x04, 0x81, 0x80]) + bytes(128)
    assert read_tlv(long) == (0x04, 0, 3, 131)
    for bad in (
        bytes([0x04, 0x80]),  # indefinite length
        bytes([0x04, 0x85, 1, 1, 1, 1, 1]),  # five length octets
        bytes([0x04, 0x82, 0x01]),  # truncated length
        bytes([0x04, 0x05, 0x00]),  # value overruns
        bytes([0x1F, 0x01, 0x00]),  # multi-byte tag
        b"",
    ):
        with pytest.raises(MalformedEvidence):
            read_tlv(bad)


def test_utc_time_years_50_to_99_are_the_1900s() -> None:
    # Regression (R3 review): RFC 5280 reads UTCTime YY >= 50 as 19YY; strptime's %y
    # read 50..68 as 2050..2068, turning a long-expired certificate into a valid one.
    der, _ = _certificate(
        not_before=dt.datetime(1955, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(1960, 6, 1, tzinfo=dt.UTC),
    )
    assert b"600601000000Z" in der
    assert PeerCertificate.from_der(der).not_after == dt.datetime(1960, 6, 1, tzinfo=dt.UTC)
    der, _ = _certificate(not_after=dt.datetime(2049, 12, 31, tzinfo=dt.UTC))
    assert PeerCertificate.from_der(der).not_after == dt.datetime(2049, 12, 31, tzinfo=dt.UTC)


def test_bad_validity_time() -> None:
    not_before = NOT_BEFORE.strftime("%y%m%d%H%M%SZ").encode()
    assert DER.count(not_before) == 1
    with pytest.raises(MalformedEvidence) as info:
        PeerCertificate.from_der(DER.replace(not_before, b"2599AB000000Z"))
    assert "validity time" in str(info.value)


class _Reader(ValidatorBase):
    spec = unit_spec("unit.reader", media_type="application/x-unit", oids=("1.2.3.4", SECOND_OID))


def test_validator_base_reads_its_oids() -> None:
    evidence = _Reader().evidence_from_certificate(PeerCertificate.from_der(DER))
    assert evidence.data == b"F" * 300
    assert evidence.source.oid == SECOND_OID
    assert evidence.source.transport is Transport.CERTIFICATE
    assert evidence.media_type == "application/x-unit"
    der, _ = _certificate()
    stripped = PeerCertificate.from_der(
        der.replace(encode_oid(SECOND_OID), encode_oid("1.3.9999.255.3"))
    )
    with pytest.raises(MalformedEvidence) as info:
        _Reader().evidence_from_certificate(stripped)
    assert info.value.check == "evidence.extension"
    assert info.value.expected == ["1.2.3.4", SECOND_OID]


# -- recorded Gramine certificates (ATLS_VECTORS) ----------------------------------------------


def _pem(path: Path) -> bytes:
    text = path.read_text()
    body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    return base64.b64decode("".join(body.split()))


@pytest.mark.vectors
def test_gramine_certificate_that_cryptography_refuses() -> None:
    folder = _vectors() / "gramine" / "konvera-gramine-ratls-cert-00606a-outofdate"
    der = (folder / "tlscert.der").read_bytes()
    assert _pem(folder / "tlscert.pem") == der
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(der)
    peer = PeerCertificate.from_der(der)
    assert GRAMINE_LEGACY_OID in peer.extensions, sorted(peer.extensions)
    quote = peer.extension(GRAMINE_LEGACY_OID)
    assert quote == (folder / "extracted_quote.bin").read_bytes()
    # SGX quote v3: 48-byte header, report data at 320 within the 384-byte report body.
    report_data = quote[48 + 320 : 48 + 384]
    assert report_data == hashlib.sha256(peer.spki_der).digest() + bytes(32)
    assert peer.not_before == dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    assert peer.not_after == dt.datetime(2030, 12, 31, 23, 59, 59, tzinfo=dt.UTC)


@pytest.mark.vectors
def test_gramine_certificate_with_both_extensions() -> None:
    folder = _vectors() / "gramine" / "neg-ccc-gramine-cert-00606a-debug-enclave"
    peer = PeerCertificate.from_der(_pem(folder / "gramine-cert.pem"))
    assert (
        peer.extension(GRAMINE_LEGACY_OID)
        == (folder / "extracted_quote_legacy_oid.bin").read_bytes()
    )
    dice = peer.extension(TCG_DICE_OID)
    assert dice is not None
    assert (folder / "extracted_quote_tcg_dice_oid.bin").read_bytes() in dice
