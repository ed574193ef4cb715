"""The binding rule: every scheme positive and negative, exact length, freshness, SNI."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from atls_core import binding as b
from atls_core.errors import BindingMismatch, ConfigurationError

ORIGINAL_SCHEMES = (
    "atls-v1",
    "challenge-v1",
    "dstack-ratls-cert",
    "gramine-legacy",
    "gramine-tcg",
    "azure-aci",
)


def _spki() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


SPKI = _spki()
OTHER = _spki()
NONCE = bytes(range(32))
OTHER_NONCE = bytes(range(1, 33))


def _ctx(spki: bytes | None = SPKI, nonce: bytes | None = NONCE) -> b.BindingContext:
    return b.BindingContext(spki_der=spki, nonce=nonce)


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# -- known answers, computed here independently of binding.py ---------------------------------


def test_atls_v1_known_answer() -> None:
    expected = hashlib.sha512(b"atls-v1\x00" + bytes([32]) + NONCE + SPKI).digest()
    assert b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE) == expected
    static = hashlib.sha512(b"atls-v1\x00\x00" + SPKI).digest()
    assert b.report_data_for("atls-v1", spki_der=SPKI, nonce=b"") == static


def test_challenge_v1_known_answer() -> None:
    expected = hashlib.sha512(b"atls-challenge-v1\x00" + NONCE).digest()
    assert b.report_data_for("challenge-v1", spki_der=SPKI, nonce=NONCE) == expected


def test_dstack_known_answer() -> None:
    expected = hashlib.sha512(b"ratls-cert:" + SPKI).digest()
    assert b.report_data_for("dstack-ratls-cert", spki_der=SPKI) == expected


def test_gramine_legacy_known_answer() -> None:
    expected = hashlib.sha256(SPKI).digest() + bytes(32)
    assert b.report_data_for("gramine-legacy", spki_der=SPKI) == expected


def test_azure_aci_known_answer() -> None:
    document = (
        '{"publicKey":"'
        + base64.b64encode(SPKI).decode()
        + '","nonce":"'
        + base64.b64encode(NONCE).decode()
        + '"}'
    ).encode()
    json.loads(document)
    expected = hashlib.sha256(document).digest() + bytes(32)
    assert b.report_data_for("azure-aci", spki_der=SPKI, nonce=NONCE) == expected


# -- atls-v1 --------------------------------------------------------------------------------


def test_atls_v1_nonce_fresh() -> None:
    value = b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)
    binding = b.bind("atls-v1", _ctx(), value)
    assert binding.verified
    assert binding.freshness is b.Freshness.NONCE
    assert binding.nonce == NONCE.hex()
    assert binding.key_digest == hashlib.sha256(SPKI).hexdigest()
    assert binding.scheme == "atls-v1"


def test_atls_v1_static_certificate_falls_back_to_key_only() -> None:
    static = b.report_data_for("atls-v1", spki_der=SPKI, nonce=b"")
    with_nonce = b.bind("atls-v1", _ctx(), static)
    assert with_nonce.freshness is b.Freshness.KEY_ONLY
    assert with_nonce.nonce is None
    without_nonce = b.bind("atls-v1", _ctx(nonce=None), static)
    assert without_nonce.freshness is b.Freshness.KEY_ONLY


def test_atls_v1_wrong_key() -> None:
    value = b.report_data_for("atls-v1", spki_der=OTHER, nonce=NONCE)
    with pytest.raises(BindingMismatch) as info:
        b.bind("atls-v1", _ctx(), value)
    assert info.value.check == "binding.report_data"
    assert info.value.actual == value


def test_atls_v1_wrong_nonce() -> None:
    value = b.report_data_for("atls-v1", spki_der=SPKI, nonce=OTHER_NONCE)
    with pytest.raises(BindingMismatch):
        b.bind("atls-v1", _ctx(), value)


def test_atls_v1_every_flipped_byte_is_refused() -> None:
    value = b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)
    for index in range(len(value)):
        with pytest.raises(BindingMismatch):
            b.bind("atls-v1", _ctx(), _flip(value, index))


def test_atls_v1_nonce_longer_than_255_bytes() -> None:
    with pytest.raises(BindingMismatch) as info:
        b.report_data_for("atls-v1", spki_der=SPKI, nonce=bytes(256))
    assert info.value.check == "binding.nonce"


@pytest.mark.parametrize("length", [0, 32, 63, 65, 128])
def test_wrong_length_is_refused_never_padded(length: int) -> None:
    value = b.report_data_for("atls-v1", spki_der=SPKI, nonce=NONCE)
    candidate = (value + bytes(64))[:length]
    with pytest.raises(BindingMismatch) as info:
        b.bind("atls-v1", _ctx(), candidate)
    assert info.value.check == "binding.report_data_length"
    assert info.value.expected == 64
    assert info.value.actual == length


# -- challenge-v1 ---------------------------------------------------------------------------


CERT = b"0\x82 a certificate's DER bytes"
CERT_SHA256 = {"certificate_sha256": hashlib.sha256(CERT).digest()}


def _cctx(nonce: bytes | None = NONCE, cert: bytes | None = CERT) -> b.BindingContext:
    return b.BindingContext(spki_der=SPKI, nonce=nonce, certificate_der=cert)


def test_challenge_v1_positive_and_nonce_required() -> None:
    value = b.report_data_for("challenge-v1", spki_der=SPKI, nonce=NONCE)
    bound = b.bind("challenge-v1", _cctx(), value, material=CERT_SHA256)
    assert bound.freshness is b.Freshness.NONCE
    with pytest.raises(BindingMismatch) as info:
        b.bind("challenge-v1", _cctx(nonce=None), value, material=CERT_SHA256)
    assert info.value.check == "binding.nonce"
    with pytest.raises(BindingMismatch):
        b.bind("challenge-v1", _cctx(nonce=OTHER_NONCE), value, material=CERT_SHA256)
    with pytest.raises(BindingMismatch):
        b.report_data_for("challenge-v1", spki_der=SPKI, nonce=None)


def test_challenge_v1_cannot_forget_the_certificate() -> None:
    """The report data does not cover the key: the certificate digest must be given."""
    value = b.report_data_for("challenge-v1", spki_der=SPKI, nonce=NONCE)
    with pytest.raises(BindingMismatch) as info:
        b.bind("challenge-v1", _cctx(), value)
    assert info.value.check == "binding.material"


def test_challenge_v1_certificate_must_be_the_connections() -> None:
    value = b.report_data_for("challenge-v1", spki_der=SPKI, nonce=NONCE)
    other = {"certificate_sha256": hashlib.sha256(b"another certificate").digest()}
    with pytest.raises(BindingMismatch) as info:
        b.bind("challenge-v1", _cctx(), value, material=other)
    assert info.value.check == "binding.certificate"
    with pytest.raises(BindingMismatch) as info:
        b.bind("challenge-v1", _cctx(cert=None), value, material=CERT_SHA256)
    assert info.value.check == "binding.certificate"


def test_challenge_v1_has_no_key_only_fallback() -> None:
    """Unlike atls-v1, an empty-nonce value is never accepted as key-only."""
    empty = hashlib.sha512(b"atls-challenge-v1\x00").digest()
    with pytest.raises(BindingMismatch) as info:
        b.bind("challenge-v1", _cctx(), empty, material=CERT_SHA256)
    assert info.value.check == "binding.report_data"


# -- dstack-ratls-cert and gramine-legacy (key-only schemes) ----------------------------------


@pytest.mark.parametrize("scheme", ["dstack-ratls-cert", "gramine-legacy"])
def test_key_only_schemes(scheme: str) -> None:
    value = b.report_data_for(scheme, spki_der=SPKI)
    binding = b.bind(scheme, _ctx(), value)
    assert binding.freshness is b.Freshness.KEY_ONLY
    assert binding.nonce is None
    assert b.bind(scheme, _ctx(nonce=None), value).verified
    with pytest.raises(BindingMismatch):
        b.bind(scheme, _ctx(spki=OTHER), value)


def test_gramine_legacy_compares_the_zero_half() -> None:
    value = b.report_data_for("gramine-legacy", spki_der=SPKI)
    with pytest.raises(BindingMismatch):
        b.bind("gramine-legacy", _ctx(), value[:32] + b"\x01" + bytes(31))
    with pytest.raises(BindingMismatch) as info:
        b.bind("gramine-legacy", _ctx(), value[:32])
    assert info.value.check == "binding.report_data_length"


# -- gramine-tcg ----------------------------------------------------------------------------


CLAIMS = b"\xa1\x01\x02 cbor claims stand-in"


def _tcg(algorithm: str, spki: bytes = SPKI) -> dict[str, bytes]:
    return {
        "claims": CLAIMS,
        "pubkey_hash_alg": algorithm.encode(),
        "pubkey_hash": hashlib.new(algorithm, spki).digest(),
    }


@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_gramine_tcg_pubkey_hash_algorithms(algorithm: str) -> None:
    material = _tcg(algorithm)
    value = hashlib.sha256(CLAIMS).digest() + bytes(32)
    assert b.report_data_for("gramine-tcg", spki_der=SPKI, material=material) == value
    binding = b.bind("gramine-tcg", _ctx(), value, material=material)
    assert binding.freshness is b.Freshness.KEY_ONLY
    assert binding.verified


def test_gramine_tcg_unsupported_algorithm() -> None:
    material = _tcg("sha256") | {"pubkey_hash_alg": b"md5"}
    value = hashlib.sha256(CLAIMS).digest() + bytes(32)
    with pytest.raises(BindingMismatch) as info:
        b.bind("gramine-tcg", _ctx(), value, material=material)
    assert info.value.check == "binding.pubkey_hash_alg"
    assert info.value.actual == "md5"


def test_gramine_tcg_pubkey_hash_of_another_key() -> None:
    value = hashlib.sha256(CLAIMS).digest() + bytes(32)
    with pytest.raises(BindingMismatch) as info:
        b.bind("gramine-tcg", _ctx(), value, material=_tcg("sha384", OTHER))
    assert info.value.check == "binding.pubkey_hash"


def test_gramine_tcg_claims_digest_mismatch_and_missing_material() -> None:
    wrong = hashlib.sha256(CLAIMS + b"x").digest() + bytes(32)
    with pytest.raises(BindingMismatch) as info:
        b.bind("gramine-tcg", _ctx(), wrong, material=_tcg("sha256"))
    assert info.value.check == "binding.report_data"
    value = hashlib.sha256(CLAIMS).digest() + bytes(32)
    with pytest.raises(BindingMismatch) as missing:
        b.bind("gramine-tcg", _ctx(), value, material={"claims": CLAIMS})
    assert missing.value.check == "binding.material"
    assert "pubkey_hash_alg" in str(missing.value)


# -- azure-aci ------------------------------------------------------------------------------


def test_azure_aci_positive_wrong_key_wrong_nonce_no_nonce() -> None:
    value = b.report_data_for("azure-aci", spki_der=SPKI, nonce=NONCE)
    assert b.bind("azure-aci", _ctx(), value).freshness is b.Freshness.NONCE
    with pytest.raises(BindingMismatch):
        b.bind("azure-aci", _ctx(spki=OTHER), value)
    with pytest.raises(BindingMismatch):
        b.bind("azure-aci", _ctx(nonce=OTHER_NONCE), value)
    with pytest.raises(BindingMismatch) as info:
        b.bind("azure-aci", _ctx(nonce=None), value)
    assert info.value.check == "binding.nonce"


# -- every scheme ---------------------------------------------------------------------------


def test_the_original_schemes_exist() -> None:
    assert set(ORIGINAL_SCHEMES) <= set(b.SCHEMES)


@pytest.mark.parametrize("scheme", sorted(b.SCHEMES))
def test_offline_is_unbound_for_every_scheme(scheme: str) -> None:
    binding = b.bind(scheme, b.BindingContext.offline_context(), b"anything at all")
    assert binding.freshness is b.Freshness.UNBOUND
    assert not binding.verified
    assert binding.key_digest is None
    assert binding.to_dict()["freshness"] == "unbound"


@pytest.mark.parametrize("scheme", sorted(b.SCHEMES))
def test_exact_length_for_every_scheme(scheme: str) -> None:
    length = b.SCHEMES[scheme].length
    for wrong in (length - 1, length + 1):
        with pytest.raises(BindingMismatch) as info:
            b.bind(scheme, _ctx(), bytes(wrong))
        assert info.value.check == "binding.report_data_length"


@pytest.mark.parametrize("scheme", sorted(b.SCHEMES))
def test_no_key_online_is_refused(scheme: str) -> None:
    with pytest.raises(BindingMismatch) as info:
        b.bind(scheme, _ctx(spki=None), bytes(b.SCHEMES[scheme].length))
    assert info.value.check == "binding.key"


def test_unknown_scheme() -> None:
    with pytest.raises(ConfigurationError) as info:
        b.bind("made-up", _ctx(), bytes(64))
    assert info.value.check == "binding.scheme"
    with pytest.raises(ConfigurationError):
        b.report_data_for("made-up", spki_der=SPKI)


# -- key and certificate checks -----------------------------------------------------------------


def test_check_public_key() -> None:
    b.check_public_key(_ctx(), SPKI, check="x.key")
    with pytest.raises(BindingMismatch) as info:
        b.check_public_key(_ctx(), OTHER, check="x.key")
    assert info.value.check == "x.key"
    assert info.value.expected == hashlib.sha256(SPKI).hexdigest()
    assert info.value.actual == hashlib.sha256(OTHER).hexdigest()
    with pytest.raises(BindingMismatch):
        b.check_public_key(_ctx(spki=None), SPKI, check="x.key")
    b.check_public_key(b.BindingContext.offline_context(), OTHER, check="x.key")


def test_check_certificate_digest() -> None:
    cert = b"certificate bytes"
    context = b.BindingContext(spki_der=SPKI, certificate_der=cert)
    b.check_certificate_digest(context, hashlib.sha256(cert).digest(), check="x.cert")
    b.check_certificate_digest(
        context, hashlib.sha384(cert).digest(), algorithm="sha384", check="x.cert"
    )
    with pytest.raises(BindingMismatch) as info:
        b.check_certificate_digest(context, hashlib.sha256(b"other").digest(), check="x.cert")
    assert info.value.check == "x.cert"
    with pytest.raises(BindingMismatch):
        b.check_certificate_digest(context, hashlib.sha256(cert).digest()[:31], check="x.cert")
    with pytest.raises(BindingMismatch):
        b.check_certificate_digest(_ctx(), hashlib.sha256(cert).digest(), check="x.cert")
    b.check_certificate_digest(b.BindingContext.offline_context(), b"", check="x.cert")


def test_constant_time_equal_and_nonces() -> None:
    assert b.constant_time_equal(b"abc", b"abc")
    assert not b.constant_time_equal(b"abc", b"abcd")
    assert not b.constant_time_equal(b"abc", b"abd")
    first, second = b.new_nonce(), b.new_nonce()
    assert len(first) == b.NONCE_SIZE == 32
    assert first != second


# -- the nonce in SNI -------------------------------------------------------------------------


def test_sni_roundtrip_keeps_the_host_and_fits_a_label() -> None:
    name = b.encode_sni(NONCE, "api.example.com")
    label, _, host = name.partition(".")
    assert host == "api.example.com"
    assert len(label) <= 63
    assert label == label.lower()
    assert label.startswith("atls-")
    assert b.decode_sni(name) == (NONCE, "api.example.com")
    assert b.decode_sni(name.upper()) == (NONCE, "API.EXAMPLE.COM")


def test_sni_without_host() -> None:
    name = b.encode_sni(NONCE, "")
    assert "." not in name
    assert b.decode_sni(name) == (NONCE, None)


def test_sni_without_nonce_or_malformed() -> None:
    assert b.decode_sni(None) == (None, None)
    assert b.decode_sni("") == (None, None)
    assert b.decode_sni("api.example.com") == (None, "api.example.com")
    assert b.decode_sni("atls-!!!!.example.com") == (None, "atls-!!!!.example.com")
    short = "atls-" + base64.b32encode(bytes(16)).decode().rstrip("=").lower() + ".h"
    assert b.decode_sni(short) == (None, short)


def test_sni_refuses_a_wrong_size_nonce() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        b.encode_sni(bytes(31), "host")


@pytest.mark.parametrize("form", b.SNI_FORMS)
def test_nonce_in_sni_reverses_every_form(form: str) -> None:
    name = b.encode_sni(NONCE, "svc.example", form=form)
    assert b.nonce_in_sni(name) == NONCE
    assert b.nonce_in_sni(name, forms=(form,)) == NONCE
    others = tuple(f for f in b.SNI_FORMS if f != form)
    assert b.nonce_in_sni(name, forms=others) is None  # a server reads only what it accepts


@pytest.mark.parametrize(
    "name",
    [None, "", "svc.example", base64.encodebytes(bytes(16)).decode(), "!!!!", "atls-zz.h"],
)
def test_nonce_in_sni_finds_none_where_none_is(name: str | None) -> None:
    assert b.nonce_in_sni(name) is None
