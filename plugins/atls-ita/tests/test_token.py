"""ITA's token adapter over the core JOSE layer: ITA's keys and chain, the core's rules."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from atls_core.errors import ConfigurationError, MalformedEvidence, StaleEvidence, UntrustedChain
from atls_core.jwks import JwksCache
from atls_ita.testing.pki import StandInPki
from atls_ita.token import MAX_TOKEN_BYTES, TokenVerifier
from atls_ita.trust import ChainTrust

ISSUER = "Intel Trust Authority"
NOW = dt.datetime(2030, 6, 1, 12, 0, tzinfo=dt.UTC)
T = int(NOW.timestamp())


@pytest.fixture(scope="module")
def pki() -> StandInPki:
    return StandInPki.generate(not_before=NOW - dt.timedelta(days=1))


def _verifier(pki: StandInPki, **options: Any) -> TokenVerifier:
    return TokenVerifier(
        keys=JwksCache(pinned=pki.jwks()),
        trust=ChainTrust((pki.root,)),
        issuer=ISSUER,
        **options,
    )


def _claims(**extra: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "iat": T - 1, "exp": T + 300, **extra}


def _sign(pki: StandInPki, claims: dict[str, Any], alg: str = "PS384", **header: Any) -> str:
    signer = pki.signers[alg]
    headers = {"kid": signer.kid, "typ": "JWT", **header}
    return jwt.encode(claims, signer.key, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.mark.parametrize("alg", ["PS384", "RS256"])
def test_good_token(pki: StandInPki, alg: str) -> None:
    token = _verifier(pki).verify(_sign(pki, _claims(nbf=T - 1), alg), now=NOW)
    assert token.expires_at == NOW + dt.timedelta(seconds=300)
    assert token.issued_at == token.not_before == NOW - dt.timedelta(seconds=1)
    assert "Token Signing" in token.signer
    assert token.signer_valid_until <= pki.not_after


@pytest.mark.parametrize("kind", [bytes, str])
def test_size_cap_applies_to_str_as_well_as_bytes(pki: StandInPki, kind: type) -> None:
    header, payload, signature = _sign(pki, _claims()).split(".")
    big = f"{header}.{payload}{'A' * MAX_TOKEN_BYTES}.{signature}"
    with pytest.raises(MalformedEvidence) as info:
        _verifier(pki).verify(big.encode() if kind is bytes else big, now=NOW)
    assert info.value.check == "jwt.size"


def test_expiry_is_strict(pki: StandInPki) -> None:
    token = _sign(pki, _claims(exp=T))
    with pytest.raises(StaleEvidence) as info:
        _verifier(pki, leeway=dt.timedelta(seconds=600)).verify(token, now=NOW)
    assert info.value.check == "jwt.exp"


def test_leeway_covers_nbf_and_iat_only(pki: StandInPki) -> None:
    verifier = _verifier(pki, leeway=dt.timedelta(seconds=30))
    assert verifier.verify(_sign(pki, _claims(iat=T + 30, nbf=T + 30)), now=NOW)
    for name in ("nbf", "iat"):
        with pytest.raises(StaleEvidence) as info:
            verifier.verify(_sign(pki, _claims(**{name: T + 31})), now=NOW)
        assert info.value.check == f"jwt.{name}"


@pytest.mark.parametrize(
    ("claims", "error", "check"),
    [
        (_claims(iss="Someone Else"), UntrustedChain, "jwt.iss"),
        ({"iss": ISSUER, "exp": T + 300}, MalformedEvidence, "jwt.iat"),
        ({"iss": ISSUER, "iat": T}, MalformedEvidence, "jwt.exp"),
    ],
)
def test_claims(
    pki: StandInPki, claims: dict[str, Any], error: type[Exception], check: str
) -> None:
    with pytest.raises(error) as info:
        _verifier(pki).verify(_sign(pki, claims), now=NOW)
    assert getattr(info.value, "check", None) == check


@pytest.mark.parametrize(
    ("header", "check"),
    [
        ({"crit": ["exp"]}, "jwt.crit"),
        ({"b64": False, "crit": ["b64"]}, "jwt.b64"),
        ({"typ": "at+jwt"}, "jwt.format"),
        ({"kid": ""}, "jwt.kid"),
    ],
)
def test_header_rules_are_the_cores(pki: StandInPki, header: dict[str, Any], check: str) -> None:
    signer = pki.signers["PS384"]
    full = {"alg": "PS384", "kid": signer.kid, "typ": "JWT", **header}
    signing_input = f"{_b64(json.dumps(full).encode())}.{_b64(json.dumps(_claims()).encode())}"
    signature = signer.key.sign(
        signing_input.encode(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=48),
        hashes.SHA384(),
    )
    with pytest.raises((UntrustedChain, MalformedEvidence)) as info:
        _verifier(pki).verify(f"{signing_input}.{_b64(signature)}", now=NOW)
    assert info.value.check == check


def test_jwk_alg_must_match_the_token_alg(pki: StandInPki) -> None:
    """The PS384 key, named in an RS256 token: the key's own alg decides."""
    token = _sign(pki, _claims(), "RS256", kid=pki.signers["PS384"].kid)
    with pytest.raises(UntrustedChain) as info:
        _verifier(pki).verify(token, now=NOW)
    assert info.value.check == "jwt.alg"


def test_a_key_published_for_encryption_is_not_used_to_verify(pki: StandInPki) -> None:
    jwks = pki.jwks()
    keys = jwks["keys"]
    assert isinstance(keys, list)
    keys[0]["use"] = "enc"  # the PS384 key
    verifier = TokenVerifier(
        keys=JwksCache(pinned=jwks), trust=ChainTrust((pki.root,)), issuer=ISSUER
    )
    with pytest.raises(UntrustedChain) as info:
        verifier.verify(_sign(pki, _claims()), now=NOW)
    assert info.value.check == "ita.key.use"


@pytest.mark.parametrize("algorithms", [("HS256",), ("none",), (), ("ES256",)])
def test_configuration_cannot_pin_unsafe_algorithms(pki: StandInPki, algorithms: Any) -> None:
    with pytest.raises(ConfigurationError):
        _verifier(pki, algorithms=algorithms)
