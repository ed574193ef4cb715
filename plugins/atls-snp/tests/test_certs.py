"""AMD certificates read by our own DER walker: serial 0 without warnings, nothing relaxed."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from atls_core.errors import MalformedEvidence, UntrustedChain
from atls_core.testing.vectors import Vector
from atls_snp import der
from atls_snp.certs import parse_certificate, split_certificates
from atls_snp.roots import PINNED_ARKS, Product
from atls_snp.testing import SyntheticSnp
from atls_snp.testing.pki import _pem, amd_name, sign_certificate


def _cryptography_certificate(algorithm: hashes.HashAlgorithm, pad: object = None) -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "SEV-VCEK")])
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, algorithm, rsa_padding=pad)  # type: ignore[arg-type]
    )
    return certificate.public_bytes(serialization.Encoding.DER)


def test_recorded_vcek_with_serial_zero_reads_without_a_warning(vectors: Vector) -> None:
    data = vectors("snp/virtee-milan-v2-vcek/vcek.der").read_bytes()
    parse_certificate.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        cert = parse_certificate(data)
    assert cert.serial == 0
    assert cert.subject_cn == "SEV-VCEK"
    assert cert.issuer_cn == "SEV-Milan"
    assert cert.vek.product_name == "Milan-B0"
    assert dict(cert.vek.spls) == {"bootloader": 3, "tee": 0, "snp": 8, "microcode": 115}
    assert cert.vek.hw_id is not None
    assert len(cert.vek.hw_id) == 64
    assert cert.is_p384


def test_recorded_roots_hash_to_the_pinned_fingerprints(vectors: Vector) -> None:
    for product in Product:
        name = product.value.lower()
        pem = vectors(f"snp/amd-roots/{name}/ark.pem").read_bytes()
        (ark,) = [parse_certificate(d) for d in split_certificates(pem)]
        assert PINNED_ARKS[ark.digest] is product
        assert ark.subject_cn == product.ark_name
        assert ark.signed_by(ark)
        for intermediate, cn in (("ask", product.ask_name), ("asvk", product.asvk_name)):
            data = vectors(f"snp/amd-roots/{name}/{intermediate}.pem").read_bytes()
            (cert,) = [parse_certificate(d) for d in split_certificates(data)]
            assert cert.subject_cn == cn
            assert cert.signed_by(ark)
            assert not ark.signed_by(cert)


def test_synthetic_vcek_has_serial_zero_and_amd_extensions(turin: SyntheticSnp) -> None:
    cert = parse_certificate(turin.vcek.certificate)
    assert cert.serial == 0
    assert cert.vek.hw_id == turin.chip_id[:8]
    assert cert.vek.spls["fmc"] == 0
    assert cert.signed_by(parse_certificate(turin.pki.ask))
    with pytest.warns(Warning, match="serial"):
        x509.load_der_x509_certificate(turin.vcek.certificate)  # what we avoid


def test_non_pss_signatures_are_refused() -> None:
    with pytest.raises(UntrustedChain) as info:
        parse_certificate(_cryptography_certificate(hashes.SHA384()))  # PKCS#1 v1.5
    assert info.value.check == "snp.chain.algorithm"


@pytest.mark.parametrize(
    "pad",
    [
        padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=32),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=48),
    ],
)
def test_other_pss_parameters_are_refused(pad: padding.PSS) -> None:
    with pytest.raises(UntrustedChain) as info:
        parse_certificate(_cryptography_certificate(hashes.SHA384(), pad))
    assert info.value.check == "snp.chain.algorithm"


def test_pss_with_sha384_and_salt_48_from_another_writer_is_read() -> None:
    pad = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48)
    cert = parse_certificate(_cryptography_certificate(hashes.SHA384(), pad))
    assert cert.signed_by(cert)


def test_trailing_bytes_and_truncation_are_refused(milan: SyntheticSnp) -> None:
    data = milan.vcek.certificate
    for broken in (data + b"\0", data[:-1], data[:100]):
        with pytest.raises(MalformedEvidence):
            parse_certificate(broken)


def test_inner_and_outer_algorithms_must_agree(milan: SyntheticSnp) -> None:
    good = parse_certificate(milan.vcek.certificate)
    tbs = bytearray(good.tbs)
    salt = tbs.find(bytes.fromhex("a203020130"))  # [2] saltLength 48 in the inner identifier
    assert salt > 0
    tbs[salt + 4] = 0x20  # the inner identifier says 32, the outer one still 48
    top = der.one(good.der, check="test", tag=der.SEQUENCE)
    outer_start = der.children(good.der, top, check="test")[1][1]
    forged = der.tlv(der.SEQUENCE, bytes(tbs) + good.der[outer_start:])
    with pytest.raises(MalformedEvidence) as info:
        parse_certificate(forged)
    assert "inner and outer" in info.value.reason


def test_split_certificates_reads_pem_der_and_comments(milan: SyntheticSnp) -> None:
    a, b, c = milan.chain()
    text = b"# the VCEK\n" + _pem(a) + b"subject=SEV-Milan\n" + _pem(b)
    assert split_certificates(text) == [a, b]
    assert split_certificates(a + b + c) == [a, b, c]
    assert split_certificates(a + b"\n" + _pem(c)) == [a, c]
    assert split_certificates(b"") == []


@pytest.mark.parametrize(
    "blob",
    [b"\x00\x01garbage", b"-----BEGIN CERTIFICATE-----\nAAAA", b"\x30\x82\xff\xff\x00"],
)
def test_split_certificates_refuses_what_is_neither(blob: bytes) -> None:
    with pytest.raises(MalformedEvidence):
        split_certificates(blob)


def test_a_certificate_signed_by_another_key_does_not_verify(milan: SyntheticSnp) -> None:
    impostor = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key = ec.generate_private_key(ec.SECP384R1())
    forged = sign_certificate(
        signer=impostor,
        serial=0,
        issuer=amd_name("SEV-Milan"),
        subject=amd_name("SEV-VCEK"),
        spki=key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        not_before=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        not_after=dt.datetime(2030, 1, 1, tzinfo=dt.UTC),
        extensions=[],
    )
    ask = parse_certificate(milan.pki.ask)
    assert not parse_certificate(forged).signed_by(ask)
    assert parse_certificate(milan.vcek.certificate).signed_by(ask)
