"""The one token-validation path: every attack on it is rejected."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from atls_azure.testing.maa import SigningKey, StandInMaa
from atls_azure.token import MAX_TOKEN_BYTES, verify_token
from atls_azure.trust import build_trust
from atls_core.errors import (
    CollateralUnavailable,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict[str, Any], claims: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"


def _now(claims: dict[str, Any], seconds: float = 10) -> dt.datetime:
    return dt.datetime.fromtimestamp(claims["iat"] + seconds, dt.UTC)


def _claims(maa: StandInMaa) -> dict[str, Any]:
    return maa.base_claims("sgx")


def test_good_token_verifies(maa: StandInMaa) -> None:
    claims = _claims(maa)
    token = verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert token.issuer == maa.url
    assert token.kid == maa.key.kid
    assert token.claims["x-ms-attestation-type"] == "sgx"


def test_alg_none_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    token = _unsigned({"alg": "none", "kid": maa.key.kid}, claims) + "."
    with pytest.raises(UntrustedChain) as info:
        verify_token(token, build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.alg"


def test_hs256_with_public_key_as_secret_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    signing_input = _unsigned({"alg": "HS256", "kid": maa.key.kid, "typ": "JWT"}, claims)
    mac = hmac.new(maa.key.public_pem, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(UntrustedChain) as info:
        verify_token(f"{signing_input}.{_b64(mac)}", build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.alg"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256"])
def test_other_algorithms_refused(maa: StandInMaa, alg: str) -> None:
    claims = _claims(maa)
    token = _unsigned({"alg": alg, "kid": maa.key.kid}, claims) + ".AAAA"
    with pytest.raises(UntrustedChain) as info:
        verify_token(token, build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.alg"


def test_wrong_issuer_refused(maa: StandInMaa) -> None:
    claims = _claims(maa) | {"iss": "https://evil.attest.azure.net"}
    with pytest.raises(UntrustedChain) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.iss"


def test_issuer_of_another_trusted_instance_needs_that_instance_key(maa: StandInMaa) -> None:
    """Keys of instance A cannot sign tokens claiming to be from instance B."""
    with StandInMaa() as other:
        claims = _claims(other)
        token = maa.sign(claims, header={"kid": other.key.kid})  # A's key, B's iss and kid
        trust = build_trust({"instances": [maa.url, other.url], "allow_http_loopback": True})
        with pytest.raises(UntrustedChain) as info:
            verify_token(token, trust, now=_now(claims))
        assert info.value.check == "jwt.signature"


def test_jku_header_is_ignored(maa: StandInMaa) -> None:
    """An attacker's JWKS server named in jku is never contacted."""
    with StandInMaa() as attacker:
        claims = _claims(maa)
        token = attacker.sign(claims, header={"jku": f"{attacker.url}/certs"})
        with pytest.raises(UntrustedChain) as info:
            verify_token(token, build_trust(maa.settings()), now=_now(claims))
        assert info.value.check == "jwt.kid"
        assert attacker.requests == {}


def test_x5c_and_jwk_headers_are_ignored(maa: StandInMaa) -> None:
    attacker = SigningKey("attacker")
    claims = _claims(maa)
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.private_key.public_key()))
    token = maa.sign(
        claims,
        key=attacker,
        header={"kid": maa.key.kid, "x5c": attacker.jwk["x5c"], "jwk": public},
    )
    with pytest.raises(UntrustedChain) as info:
        verify_token(token, build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.signature"


def test_unknown_kid_refused_after_one_refresh(maa: StandInMaa) -> None:
    attacker = SigningKey("attacker")
    claims = _claims(maa)
    trust = build_trust(maa.settings())
    verify_token(maa.sign(claims), trust, now=_now(claims))
    for _ in range(5):
        with pytest.raises(UntrustedChain) as info:
            verify_token(maa.sign(claims, key=attacker), trust, now=_now(claims))
        assert info.value.check == "jwt.kid"
        assert "unknown signing key" in str(info.value)
    assert maa.requests["/certs"] == 1, "made-up kids inside the refresh interval fetch nothing"


def test_no_request_per_handshake(maa: StandInMaa) -> None:
    claims = _claims(maa)
    trust = build_trust(maa.settings())
    for _ in range(10):
        verify_token(maa.sign(claims), trust, now=_now(claims))
    assert maa.requests == {"/.well-known/openid-configuration": 1, "/certs": 1}


def test_key_rotation_picks_up_new_key(maa: StandInMaa) -> None:
    claims = _claims(maa)
    trust = build_trust(maa.settings(min_refresh_interval=0))
    verify_token(maa.sign(claims), trust, now=_now(claims))
    maa.rotate()
    verify_token(maa.sign(claims), trust, now=_now(claims))
    assert maa.requests["/certs"] == 2


def test_key_service_down_is_unavailable(maa: StandInMaa) -> None:
    claims = _claims(maa)
    maa.down = True
    with pytest.raises(CollateralUnavailable) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert "keys unavailable" in str(info.value)


def test_jwks_uri_on_another_origin_refused(maa: StandInMaa) -> None:
    with StandInMaa() as attacker:
        maa.jwks_uri_override = f"{attacker.url}/certs"
        claims = _claims(maa)
        with pytest.raises(CollateralUnavailable) as info:
            verify_token(
                attacker.sign(claims, header={"kid": attacker.key.kid}),
                build_trust(maa.settings()),
                now=_now(claims),
            )
        assert info.value.check == "azure.discovery.jwks_uri"
        assert attacker.requests == {}


def test_metadata_naming_another_issuer_refused(maa: StandInMaa) -> None:
    maa.issuer_override = "https://other.attest.azure.net"
    claims = _claims(maa)
    with pytest.raises(CollateralUnavailable) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "azure.discovery.issuer"


def test_tampered_payload_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    header, _payload, signature = maa.sign(claims).split(".")
    forged = _b64(json.dumps(claims | {"x-ms-sgx-is-debuggable": False, "extra": 1}).encode())
    with pytest.raises(UntrustedChain) as info:
        verify_token(
            f"{header}.{forged}.{signature}", build_trust(maa.settings()), now=_now(claims)
        )
    assert info.value.check == "jwt.signature"


def test_crit_header_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    token = maa.sign(claims, header={"crit": ["exp"]})
    with pytest.raises(UntrustedChain) as info:
        verify_token(token, build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.crit"


def _signed(maa: StandInMaa, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """Signed by hand: PyJWT's encoder rewrites b64/crit headers."""
    signing_input = _unsigned({"alg": "RS256", "kid": maa.key.kid, **header}, claims)
    signature = maa.key.private_key.sign(
        signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return f"{signing_input}.{_b64(signature)}"


def test_unencoded_payload_header_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    token = _signed(maa, {"b64": False, "crit": ["b64"]}, claims)
    with pytest.raises(UntrustedChain) as info:
        verify_token(token, build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.b64"


def test_b64_true_is_the_ordinary_encoding(maa: StandInMaa) -> None:
    """``b64: true`` (RFC 7797) changes nothing, so the core accepts it, in ``crit`` too."""
    claims = _claims(maa)
    token = _signed(maa, {"b64": True, "crit": ["b64"]}, claims)
    assert verify_token(token, build_trust(maa.settings()), now=_now(claims)).kid == maa.key.kid


def test_expiry_is_strict_whatever_the_leeway(maa: StandInMaa) -> None:
    """The result expires with the token: leeway never extends ``exp``."""
    claims = _claims(maa)
    token = maa.sign(claims)
    trust = build_trust(maa.settings(leeway=30))
    exp = dt.datetime.fromtimestamp(claims["exp"], dt.UTC)
    assert verify_token(token, trust, now=exp - dt.timedelta(seconds=1)).expires_at == exp
    for late in (0, 1, 29):
        with pytest.raises(StaleEvidence) as info:
            verify_token(token, trust, now=exp + dt.timedelta(seconds=late))
        assert info.value.check == "jwt.exp"


def test_nbf_within_leeway_accepted(maa: StandInMaa) -> None:
    claims = _claims(maa)
    claims["nbf"] = claims["iat"] = claims["iat"] + 30
    now = dt.datetime.fromtimestamp(claims["nbf"] - 30, dt.UTC)
    token = verify_token(maa.sign(claims), build_trust(maa.settings(leeway=30)), now=now)
    assert token.not_before == now + dt.timedelta(seconds=30)


def test_not_yet_valid_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    claims["nbf"] = claims["iat"] + 3600
    with pytest.raises(StaleEvidence) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "jwt.nbf"


def test_issued_in_the_future_refused(maa: StandInMaa) -> None:
    claims = _claims(maa)
    del claims["nbf"]
    with pytest.raises(StaleEvidence) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings(leeway=5)), now=_now(claims, -60))
    assert info.value.check == "jwt.iat"


@pytest.mark.parametrize("missing", ["exp", "iat"])
def test_required_times(maa: StandInMaa, missing: str) -> None:
    claims = _claims(maa)
    now = _now(claims)
    del claims[missing]
    with pytest.raises(MalformedEvidence) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=now)
    assert info.value.check == f"jwt.{missing}"


@pytest.mark.parametrize("garbage", [b"", b"a.b", b"\xff.\xfe.\xfd", b"a.b.c", "a.b.c"])
def test_garbage_is_malformed(maa: StandInMaa, garbage: bytes | str) -> None:
    with pytest.raises(MalformedEvidence) as info:
        verify_token(garbage, build_trust(maa.settings()), now=dt.datetime.now(dt.UTC))
    assert info.value.check == "jwt.format"
    assert maa.requests == {}


@pytest.mark.parametrize("kind", [bytes, str])
def test_oversized_token_refused_as_bytes_and_as_str(maa: StandInMaa, kind: type) -> None:
    claims = _claims(maa)
    header, payload, signature = maa.sign(claims).split(".")
    big = f"{header}.{payload}{'A' * MAX_TOKEN_BYTES}.{signature}"
    with pytest.raises(MalformedEvidence) as info:
        verify_token(
            big.encode() if kind is bytes else big, build_trust(maa.settings()), now=_now(claims)
        )
    assert info.value.check == "jwt.size"
    assert maa.requests == {}


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_short_rsa_key_refused(maa: StandInMaa) -> None:
    weak = SigningKey(maa.url, bits=1024)
    maa.keys.insert(0, weak)
    claims = _claims(maa)
    with pytest.raises(UntrustedChain) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "azure.key_size"


def test_signing_certificate_must_be_valid_at_the_time(maa: StandInMaa) -> None:
    claims = maa.base_claims("sgx", now=int(dt.datetime(2060, 1, 1, tzinfo=dt.UTC).timestamp()))
    with pytest.raises(UntrustedChain) as info:
        verify_token(maa.sign(claims), build_trust(maa.settings()), now=_now(claims))
    assert info.value.check == "azure.signing_certificate.validity"


def test_pinned_keys(maa: StandInMaa) -> None:
    claims = _claims(maa)
    trust = build_trust({"keys": maa.jwks(), "issuers": [maa.url], "allow_http_loopback": True})
    maa.down = True  # pinned keys never touch the network
    verify_token(maa.sign(claims), trust, now=_now(claims))
    assert maa.requests == {}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"instances": ["http://maa.example.com"]},
        {"instances": ["http://127.0.0.1:1"]},  # http on loopback needs the explicit allowance
        {"instances": ["https://maa.example.com/some/path"]},
        {"instances": ["ftp://maa.example.com"]},
        {"keys": {"keys": []}},  # pinned keys without issuers
        {"issuers": ["https://x.attest.azure.net"]},  # issuers without keys
        {"instances": ["https://x.attest.azure.net"], "leeway": 86400},
        {"instances": ["https://x.attest.azure.net"], "leeway": "soon"},
        {"keys_file": "/nonexistent/keys.json", "issuers": ["https://x.attest.azure.net"]},
    ],
)
def test_bad_settings(settings: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        build_trust(settings)
