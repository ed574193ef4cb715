"""The one JOSE layer: every token plugin's verification goes through these rules."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from jwt.algorithms import get_default_algorithms

from atls_core.errors import (
    BindingMismatch,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)
from atls_core.jose import (
    MAX_LEEWAY,
    JwsVerifier,
    KeyLookup,
    PublicKey,
    b64url_decode,
    jwk_public_key,
)
from atls_core.testing.certs import self_signed_certificate

NOW = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())
ISSUER = "https://issuer.example"


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "iat": T - 10, "exp": T + 300, **extra}


def _sign(key: Any, claims: Mapping[str, Any] | None = None, **header: Any) -> str:
    header.setdefault("alg", "RS256")
    header.setdefault("kid", "k1")
    alg = header.pop("alg")
    return jwt.encode(dict(_claims() if claims is None else claims), key, alg, headers=header)


def _raw(header: Mapping[str, Any], payload: bytes, key: Any = None, alg: str = "RS256") -> str:
    """A token PyJWT's encoder would not write (it normalises b64, validates kid)."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(payload)}"
    signature = get_default_algorithms()[alg].sign(signing_input.encode(), key) if key else b""
    return f"{signing_input}.{_b64(signature)}"


def _verifier(
    keys: Mapping[str, PublicKey | Sequence[PublicKey]], **options: Any
) -> tuple[JwsVerifier, list[KeyLookup]]:
    lookups: list[KeyLookup] = []

    def resolve(lookup: KeyLookup) -> PublicKey | Sequence[PublicKey] | None:
        lookups.append(lookup)
        if lookup.kid is None:
            every: list[PublicKey] = []
            for value in keys.values():
                every.extend(value if isinstance(value, Sequence) else [value])
            return every
        return keys.get(lookup.kid)

    options.setdefault("algorithms", {"RS256"})
    options.setdefault("issuers", ISSUER)
    return JwsVerifier(keys=resolve, **options), lookups


# -- accepted tokens ---------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["RS256", "PS384", "ES256", "ES384", "EdDSA"])
def test_valid_tokens_accepted_at_the_injected_clock(alg: str) -> None:
    private: Any
    if alg.startswith(("RS", "PS")):
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
    else:
        private = ed25519.Ed25519PrivateKey.generate()
    verifier, lookups = _verifier({"k1": private.public_key()}, algorithms={alg})
    token = _sign(private, _claims(nbf=T - 10, extra=[1, 2]), alg=alg, typ="JWT")
    verified = verifier.verify(token, now=NOW)
    assert verified.alg == alg
    assert verified.kid == "k1"
    assert verified.issuer == ISSUER
    assert verified.claims["extra"] == [1, 2]
    assert verified.expires_at == NOW + dt.timedelta(seconds=300)
    assert verified.issued_at == NOW - dt.timedelta(seconds=10)
    assert verified.not_before == NOW - dt.timedelta(seconds=10)
    assert verified.header["typ"] == "JWT"
    with pytest.raises(TypeError):
        verified.claims["iss"] = "x"  # type: ignore[index]
    assert lookups == [KeyLookup(kid="k1", alg=alg, issuer=ISSUER, now=NOW)]


def test_bytes_and_surrounding_whitespace_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    assert verifier.verify(f"  {_sign(rsa_key)}\n".encode(), now=NOW).kid == "k1"


# -- algorithms ----------------------------------------------------------------------


def test_alg_none_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    token = _raw({"alg": "none", "kid": "k1"}, json.dumps(_claims()).encode())
    assert token.endswith(".")
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.alg"
    assert lookups == []


def test_hs256_signed_with_the_public_key_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    """Algorithm confusion: the public key used as an HMAC secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    signing_input = _raw({"alg": "HS256", "kid": "k1"}, json.dumps(_claims()).encode())[:-1]
    mac = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, algorithms={"RS256", "PS384"})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(f"{signing_input}.{_b64(mac)}", now=NOW)
    assert info.value.check == "jwt.alg"


@pytest.mark.parametrize(
    "algorithms", [{"none"}, {"HS256"}, {"RS256", "HS512"}, set(), {"RS1"}, "none"]
)
def test_symmetric_or_unknown_algorithms_cannot_be_pinned(algorithms: Any) -> None:
    with pytest.raises(ConfigurationError):
        JwsVerifier(keys=lambda lookup: None, algorithms=algorithms)


@pytest.mark.parametrize(
    "options",
    [{"issuers": []}, {"issuers": [""]}, {"max_size": 0}, {"max_size": True}, {"min_rsa_bits": -1}],
)
def test_bad_configuration_refused(options: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        JwsVerifier(keys=lambda lookup: None, algorithms={"RS256"}, **options)


def test_alg_not_pinned_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, algorithms={"PS384"})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(rsa_key, alg="RS256"), now=NOW)
    assert info.value.check == "jwt.alg"


def test_key_that_does_not_fit_the_alg_refused(
    rsa_key: rsa.RSAPrivateKey, p256_key: ec.EllipticCurvePrivateKey
) -> None:
    p384 = ec.generate_private_key(ec.SECP384R1())
    verifier, _ = _verifier({"k1": p384.public_key()}, algorithms={"ES256"})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(p256_key, alg="ES256"), now=NOW)
    assert info.value.check == "jwt.alg"
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, algorithms={"ES256"})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(p256_key, alg="ES256"), now=NOW)
    assert info.value.check == "jwt.alg"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_rsa_key_refused() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    verifier, _ = _verifier({"k1": weak.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(weak), now=NOW)
    assert info.value.check == "jwt.key"


# -- crit and b64 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "extra",
    [
        {"crit": ["exp"]},
        {"crit": ["http://example.com/unknown"], "http://example.com/unknown": 1},
        {"crit": ["b64"]},  # b64 listed but absent
        {"crit": []},
        {"crit": "b64", "b64": True},
        {"crit": ["b64", "zip"], "b64": True, "zip": "DEF"},
    ],
)
def test_crit_with_names_not_understood_refused(
    rsa_key: rsa.RSAPrivateKey, extra: dict[str, Any]
) -> None:
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    token = _raw({"alg": "RS256", "kid": "k1", **extra}, json.dumps(_claims()).encode(), rsa_key)
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.crit"
    assert lookups == []


def test_b64_true_listed_in_crit_is_understood(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    header = {"alg": "RS256", "kid": "k1", "b64": True, "crit": ["b64"]}
    token = _raw(header, json.dumps(_claims()).encode(), rsa_key)
    assert verifier.verify(token, now=NOW).header["b64"] is True


@pytest.mark.parametrize("detached", [False, True])
@pytest.mark.parametrize("value", [False, "false", 0, None])
def test_b64_other_than_true_refused(
    rsa_key: rsa.RSAPrivateKey, detached: bool, value: Any
) -> None:
    claims = json.dumps(_claims()).encode()
    header = {"alg": "RS256", "kid": "k1", "b64": value, "crit": ["b64"]}
    head = _b64(json.dumps(header).encode())
    payload = "" if detached else _b64(claims)
    signature = rsa_key.sign(f"{head}.".encode() + claims, padding.PKCS1v15(), hashes.SHA256())
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(f"{head}.{payload}.{_b64(signature)}", now=NOW)
    assert info.value.check == "jwt.b64"
    assert lookups == []


# -- keys -----------------------------------------------------------------------------


def test_unknown_kid_is_a_named_error(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(rsa_key, kid="made-up"), now=NOW)
    assert info.value.check == "jwt.kid"
    assert "unknown signing key" in str(info.value)
    assert [lookup.kid for lookup in lookups] == ["made-up"]


def test_resolver_errors_pass_through(rsa_key: rsa.RSAPrivateKey) -> None:
    def resolve(lookup: KeyLookup) -> PublicKey:
        raise UntrustedChain("the chain is not trusted", check="example.chain")

    verifier = JwsVerifier(keys=resolve, algorithms={"RS256"})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(rsa_key), now=NOW)
    assert info.value.check == "example.chain"


@pytest.mark.parametrize("kid", [7, "", None, ["k1"]])
def test_kid_must_be_a_non_empty_string(rsa_key: rsa.RSAPrivateKey, kid: Any) -> None:
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    header = {"alg": "RS256", "kid": kid} if kid is not None else {"alg": "RS256"}
    token = _raw(header, json.dumps(_claims()).encode(), rsa_key)
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.kid"
    assert lookups == []


def test_without_kid_only_a_single_configured_key_is_tried(
    rsa_key: rsa.RSAPrivateKey, attacker_key: rsa.RSAPrivateKey
) -> None:
    token = _raw({"alg": "RS256"}, json.dumps(_claims()).encode(), rsa_key)
    one, _ = _verifier({"k1": rsa_key.public_key()}, require_kid=False)
    assert one.verify(token, now=NOW).kid is None
    several, _ = _verifier(
        {"k1": rsa_key.public_key(), "k2": attacker_key.public_key()}, require_kid=False
    )
    with pytest.raises(UntrustedChain) as info:
        several.verify(token, now=NOW)
    assert info.value.check == "jwt.kid"


def test_candidates_for_one_kid_are_each_tried(
    rsa_key: rsa.RSAPrivateKey, attacker_key: rsa.RSAPrivateKey
) -> None:
    verifier, _ = _verifier({"k1": [attacker_key.public_key(), rsa_key.public_key()]})
    assert verifier.verify(_sign(rsa_key), now=NOW).kid == "k1"


@pytest.mark.parametrize("own_kid", [False, True])
def test_keys_in_the_token_header_are_never_used(
    rsa_key: rsa.RSAPrivateKey, attacker_key: rsa.RSAPrivateKey, own_kid: bool
) -> None:
    """A token signed by an attacker key that it carries itself (jwk, x5c, jku, x5u)."""
    der = self_signed_certificate(
        attacker_key,
        common_name="attacker",
        not_before=NOW - dt.timedelta(days=1),
        not_after=NOW + dt.timedelta(days=1),
    )
    token = _sign(
        attacker_key,
        kid="attacker" if own_kid else "k1",
        jwk=json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker_key.public_key())),
        x5c=[base64.b64encode(der).decode()],
        jku="http://127.0.0.1:1/keys",
        x5u="http://127.0.0.1:1/cert.pem",
    )
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == ("jwt.kid" if own_kid else "jwt.signature")
    assert not hasattr(lookups[0], "header")


def test_tampered_payload_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    head, _, signature = _sign(rsa_key).split(".")
    forged = _b64(json.dumps(_claims(admin=True)).encode())
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(f"{head}.{forged}.{signature}", now=NOW)
    assert info.value.check == "jwt.signature"


def test_missing_signature_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    head, payload, _ = _sign(rsa_key).split(".")
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(f"{head}.{payload}.", now=NOW)
    assert info.value.check == "jwt.signature"


# -- size and format --------------------------------------------------------------------


@pytest.mark.parametrize("as_bytes", [False, True])
def test_ten_megabyte_token_refused_at_the_cap_before_parsing(
    rsa_key: rsa.RSAPrivateKey, monkeypatch: pytest.MonkeyPatch, as_bytes: bool
) -> None:
    def never(*args: object, **kwargs: object) -> dict[str, Any]:
        raise AssertionError("the header was parsed")

    monkeypatch.setattr(jwt, "get_unverified_header", never)
    head, payload, signature = _sign(rsa_key).split(".")
    big = f"{head}.{payload}{'A' * (10 * 1024 * 1024)}.{signature}"
    verifier, lookups = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(big.encode() if as_bytes else big, now=NOW)
    assert info.value.check == "jwt.size"
    assert lookups == []


def test_the_cap_is_configurable(rsa_key: rsa.RSAPrivateKey) -> None:
    token = _sign(rsa_key)
    exact, _ = _verifier({"k1": rsa_key.public_key()}, max_size=len(token))
    assert exact.verify(token, now=NOW).kid == "k1"
    smaller, _ = _verifier({"k1": rsa_key.public_key()}, max_size=len(token) - 1)
    with pytest.raises(MalformedEvidence) as info:
        smaller.verify(token, now=NOW)
    assert info.value.check == "jwt.size"


@pytest.mark.parametrize(
    "token",
    [
        "",
        b"",
        "a.b",
        "a.b.c.d",
        "a b.c.d",
        "eyJhbGciOiJSUzI1NiJ9=.e30.c2ln",
        '{"payload": "e30", "signatures": []}',
        "é.b.c",
        b"\xff.\xfe.\xfd",
        b"a.b.c",
    ],
)
def test_not_a_compact_jws(rsa_key: rsa.RSAPrivateKey, token: str | bytes) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.format"


def test_not_a_str_or_bytes(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(12, now=NOW)  # type: ignore[arg-type]
    assert info.value.check == "jwt.format"


def test_deeply_nested_header_is_malformed(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(f"{_b64(b'[' * 20000)}.e30.c2ln", now=NOW)
    assert info.value.check == "jwt.format"


def test_typ_when_configured(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, typ="JWT")
    assert verifier.verify(_sign(rsa_key, typ="jwt"), now=NOW).kid == "k1"
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(_sign(rsa_key, typ="at+jwt"), now=NOW)
    assert info.value.check == "jwt.format"


@pytest.mark.parametrize(
    "payload",
    [
        b"[1, 2]",
        b"not json",
        b'{"iss": "a", "iss": "b"}',
        b"\xff\xfe",
    ],
)
def test_payload_must_be_a_json_object_without_duplicates(
    rsa_key: rsa.RSAPrivateKey, payload: bytes
) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(_raw({"alg": "RS256", "kid": "k1"}, payload, rsa_key), now=NOW)
    assert info.value.check == "jwt.claims"


@pytest.mark.parametrize(
    "header",
    [
        b'{"alg": "none", "alg": "RS256", "kid": "k1"}',
        b'{"alg": "RS256", "kid": "k2", "kid": "k1"}',
    ],
)
def test_a_header_naming_a_member_twice_is_refused(
    rsa_key: rsa.RSAPrivateKey, header: bytes
) -> None:
    """Signed as it is, but JOSE readers disagree on which copy counts (PyJWT: the last)."""
    signing_input = f"{_b64(header)}.{_b64(json.dumps(_claims()).encode())}"
    signature = get_default_algorithms()["RS256"].sign(signing_input.encode(), rsa_key)
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(f"{signing_input}.{_b64(signature)}", now=NOW)
    assert info.value.check == "jwt.format"


def test_required_claims(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, required_claims={"iat", "aud"})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(_sign(rsa_key), now=NOW)
    assert info.value.check == "jwt.claims"
    claims = _claims()
    del claims["iat"]
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(_sign(rsa_key, claims), now=NOW)
    assert info.value.check == "jwt.iat"


# -- issuer -----------------------------------------------------------------------------


@pytest.mark.parametrize("iss", ["https://evil.example", None, 7, ISSUER + "/"])
def test_wrong_issuer_refused_before_any_key_lookup(rsa_key: rsa.RSAPrivateKey, iss: Any) -> None:
    claims = _claims(iss=iss)
    if iss is None:
        del claims["iss"]
    verifier, lookups = _verifier({"k1": rsa_key.public_key()}, issuers=[ISSUER, "https://b"])
    token = _raw({"alg": "RS256", "kid": "k1"}, json.dumps(claims).encode(), rsa_key)
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.iss"
    assert lookups == []


def test_issuer_unchecked_when_not_configured(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, issuers=None)
    assert verifier.verify(_sign(rsa_key, _claims(iss="anyone")), now=NOW).issuer == "anyone"


# -- times: one leeway rule ----------------------------------------------------------


def test_exp_exactly_at_now_refused_without_leeway(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, leeway=600)
    token = _sign(rsa_key, _claims(exp=T))
    with pytest.raises(StaleEvidence) as info:
        verifier.verify(token, now=NOW)
    assert info.value.check == "jwt.exp"
    verified = verifier.verify(token, now=NOW - dt.timedelta(microseconds=1))
    assert verified.expires_at == NOW


def test_nbf_within_leeway_accepted(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, leeway=60)
    verified = verifier.verify(_sign(rsa_key, _claims(nbf=T + 60)), now=NOW)
    assert verified.not_before == NOW + dt.timedelta(seconds=60)


def test_nbf_beyond_leeway_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, leeway=60)
    with pytest.raises(StaleEvidence) as info:
        verifier.verify(_sign(rsa_key, _claims(nbf=T + 61)), now=NOW)
    assert info.value.check == "jwt.nbf"


def test_iat_in_the_future_beyond_leeway_refused(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()}, leeway=dt.timedelta(seconds=5))
    assert verifier.verify(_sign(rsa_key, _claims(iat=T + 5)), now=NOW).issued_at
    with pytest.raises(StaleEvidence) as info:
        verifier.verify(_sign(rsa_key, _claims(iat=T + 6)), now=NOW)
    assert info.value.check == "jwt.iat"


def test_default_leeway_is_sixty_seconds(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    assert verifier.leeway == dt.timedelta(seconds=60)
    assert verifier.verify(_sign(rsa_key, _claims(nbf=T + 60)), now=NOW)


@pytest.mark.parametrize(
    "leeway", [MAX_LEEWAY + dt.timedelta(seconds=1), 601, -1, True, "60", float("nan")]
)
def test_leeway_is_capped(leeway: Any) -> None:
    with pytest.raises(ConfigurationError):
        JwsVerifier(keys=lambda lookup: None, algorithms={"RS256"}, leeway=leeway)
    assert JwsVerifier(keys=lambda lookup: None, algorithms={"RS256"}, leeway=600)


@pytest.mark.parametrize(
    ("claims", "check"),
    [
        ({"iss": ISSUER}, "jwt.exp"),
        (_claims(exp="soon"), "jwt.exp"),
        (_claims(exp=True), "jwt.exp"),
        (_claims(exp=10**20), "jwt.exp"),
        (_claims(nbf=[1]), "jwt.nbf"),
        (_claims(iat=T + 400), "jwt.exp"),  # expires before it was issued
        (_claims(nbf=T + 300), "jwt.exp"),  # expires before it becomes valid
    ],
)
def test_malformed_times(rsa_key: rsa.RSAPrivateKey, claims: dict[str, Any], check: str) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(MalformedEvidence) as info:
        verifier.verify(_sign(rsa_key, claims), now=NOW)
    assert info.value.check == check


def test_the_clock_must_be_timezone_aware(rsa_key: rsa.RSAPrivateKey) -> None:
    verifier, _ = _verifier({"k1": rsa_key.public_key()})
    with pytest.raises(ConfigurationError):
        verifier.verify(_sign(rsa_key), now=NOW.replace(tzinfo=None))


# -- base64url and JWK --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "raw"),
    [
        ("", b""),
        ("QQ", b"A"),
        ("QQ==", b"A"),
        ("QUI", b"AB"),
        ("QUI=", b"AB"),
        ("-_8", b"\xfb\xff"),
    ],
)
def test_b64url_decode(text: str, raw: bytes) -> None:
    assert b64url_decode(text, check="x.y") == raw


@pytest.mark.parametrize(
    "text", ["Q", "QQ=", "QQ===", "QUI==", "Q+8=", "Q/8=", "QR", "QQ\n", "Q Q", "=", 5, b"QQ"]
)
def test_b64url_decode_is_strict(text: Any) -> None:
    with pytest.raises(MalformedEvidence) as info:
        b64url_decode(text, check="x.y")
    assert info.value.check == "x.y"


def test_jwk_public_key_reads_rsa_ec_and_okp(
    rsa_key: rsa.RSAPrivateKey, p256_key: ec.EllipticCurvePrivateKey
) -> None:
    ed = ed25519.Ed25519PrivateKey.generate().public_key()
    for public_key, jwk_text in (
        (rsa_key.public_key(), jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key())),
        (p256_key.public_key(), jwt.algorithms.ECAlgorithm.to_jwk(p256_key.public_key())),
        (ed, jwt.algorithms.OKPAlgorithm.to_jwk(ed)),
    ):
        key = jwk_public_key(json.loads(jwk_text), check="x.key")
        der = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        assert key.public_bytes(*der) == public_key.public_bytes(*der)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    pinned = jwk_public_key({**public, "alg": "PS384"}, check="x.key", algorithm="PS384")
    assert isinstance(pinned, rsa.RSAPublicKey)


@pytest.mark.parametrize(
    "jwk",
    [
        "not a mapping",
        {"kty": "oct", "k": "c2VjcmV0"},
        {"kty": "RSA", "n": "AQAB"},
        {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kty": "OKP", "crv": "X25519", "x": "AA"},
    ],
)
def test_jwk_public_key_refuses_bad_keys(jwk: Any) -> None:
    with pytest.raises(BindingMismatch) as info:
        jwk_public_key(jwk, check="x.key", error=BindingMismatch)
    assert info.value.check == "x.key"


def test_jwk_public_key_refuses_private_keys_and_other_algorithms(
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    private = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key))
    with pytest.raises(MalformedEvidence):
        jwk_public_key(private, check="x.key")
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    with pytest.raises(MalformedEvidence):
        jwk_public_key({**public, "alg": "RS256"}, check="x.key", algorithm="PS384")


def test_importing_jose_does_not_import_pyjwt() -> None:
    probe = "import sys, atls_core.jose; print('jwt' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"
