"""The one token-validation path for every MAA token.

Order matters: the header's algorithm is checked against the pinned list
before anything else; ``iss`` (still unverified) only selects *which
configured* key cache to ask and must be one of the configured issuers; the
key comes from that cache by ``kid``; then the signature is verified, and only
then are claims trusted.  Times are checked here, against the clock argument
(pyjwt's own time checks use the wall clock, so they are switched off).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import jwt

from atls_azure.trust import TokenTrust
from atls_core.errors import MalformedEvidence, StaleEvidence, UntrustedChain

__all__ = ["ALGORITHMS", "MAX_TOKEN_BYTES", "VerifiedToken", "verify_token"]

ALGORITHMS = ("RS256",)
"""What MAA signs with; nothing else is accepted (no ``none``, no HMAC)."""
MAX_TOKEN_BYTES = 256 * 1024


@attrs.frozen(kw_only=True)
class VerifiedToken:
    """A token whose signature, issuer and validity window were checked."""

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    issuer: str
    kid: str
    issued_at: dt.datetime
    expires_at: dt.datetime
    not_before: dt.datetime | None


def _text(raw: bytes | str) -> str:
    if isinstance(raw, str):
        raw = raw.encode()
    if len(raw) > MAX_TOKEN_BYTES:
        raise MalformedEvidence(
            "token is too large",
            check="azure.token",
            expected=f"<= {MAX_TOKEN_BYTES} bytes",
            actual=len(raw),
        )
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise MalformedEvidence("token is not ASCII (compact JWS)", check="azure.token") from None
    if text.count(".") != 2:
        raise MalformedEvidence("token is not a compact JWS", check="azure.token")
    return text


def _time(claims: Mapping[str, Any], name: str, *, required: bool) -> dt.datetime | None:
    value = claims.get(name)
    if value is None and not required:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvidence(
            f"token claim {name} must be a number", check=f"azure.{name}", actual=value
        )
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvidence(
            f"token claim {name} is out of range", check=f"azure.{name}"
        ) from None


def verify_token(raw: bytes | str, trust: TokenTrust, *, now: dt.datetime) -> VerifiedToken:
    text = _text(raw)
    try:
        header = jwt.get_unverified_header(text)
        unverified = jwt.decode(text, options={"verify_signature": False})
    except jwt.PyJWTError as error:
        raise MalformedEvidence(
            f"token cannot be decoded: {type(error).__name__}", check="azure.token"
        ) from None
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise UntrustedChain(
            "token signature algorithm is not allowed",
            check="azure.alg",
            expected=list(ALGORITHMS),
            actual=alg,
        )
    if "b64" in header:
        raise UntrustedChain(
            "token uses an unencoded payload (b64), which MAA never does",
            check="azure.b64",
            actual=header.get("b64"),
        )
    if "crit" in header:
        raise UntrustedChain(
            "token has critical header parameters we do not process",
            check="azure.crit",
            actual=header.get("crit"),
        )
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise UntrustedChain("token names no signing key (kid)", check="jwt.kid")
    issuer = unverified.get("iss")
    cache = trust.cache_for(issuer) if isinstance(issuer, str) else None
    if cache is None:
        raise UntrustedChain(
            "token issuer is not a configured MAA instance",
            check="azure.iss",
            expected=sorted(trust.issuers),
            actual=issuer,
        )
    assert isinstance(issuer, str)
    key = trust.public_key(cache.get(kid), now=now)
    try:
        claims = jwt.decode(
            text,
            key,
            algorithms=list(ALGORITHMS),
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
                "require": [],
            },
        )
    except jwt.InvalidSignatureError:
        raise UntrustedChain(
            "token signature does not verify under the configured key",
            check="azure.signature",
            actual=kid,
        ) from None
    except jwt.InvalidAlgorithmError:
        raise UntrustedChain(
            "token signature algorithm is not allowed", check="azure.alg"
        ) from None
    except jwt.PyJWTError as error:
        raise MalformedEvidence(
            f"token cannot be decoded: {type(error).__name__}", check="azure.token"
        ) from None
    if claims.get("iss") != issuer:  # pragma: no cover - same bytes as decoded above
        raise UntrustedChain("token issuer changed during decoding", check="azure.iss")
    issued_at = _time(claims, "iat", required=True)
    expires_at = _time(claims, "exp", required=True)
    not_before = _time(claims, "nbf", required=False)
    assert issued_at is not None
    assert expires_at is not None
    leeway = trust.leeway
    if now >= expires_at + leeway:
        raise StaleEvidence(
            "token has expired",
            check="azure.exp",
            expected=f"before {expires_at.isoformat()} (+{leeway.total_seconds():.0f}s)",
            actual=now.isoformat(),
        )
    if not_before is not None and now < not_before - leeway:
        raise StaleEvidence(
            "token is not yet valid",
            check="azure.nbf",
            expected=f"after {not_before.isoformat()} (-{leeway.total_seconds():.0f}s)",
            actual=now.isoformat(),
        )
    if issued_at > now + leeway:
        raise StaleEvidence(
            "token was issued in the future",
            check="azure.iat",
            expected=f"<= {now.isoformat()} (+{leeway.total_seconds():.0f}s)",
            actual=issued_at.isoformat(),
        )
    return VerifiedToken(
        header=MappingProxyType(dict(header)),
        claims=MappingProxyType(dict(claims)),
        issuer=issuer,
        kid=kid,
        issued_at=issued_at,
        expires_at=expires_at,
        not_before=not_before,
    )
