"""Verifying an Intel Trust Authority JWT: header, key, signature, issuer, times.

The order matters and every step fails with its own check name:

1. the header is parsed by hand: ``alg`` must be one of the pinned algorithms
   (PS384, RS256 by default), ``kid`` a non-empty string, no ``crit``.  Key
   material in the header (``jku``, ``x5u``, ``x5c``, ``jwk``) is ignored:
   real ITA tokens carry ``jku`` and it is never followed;
2. the key comes from the configured key set (:class:`atls_core.jwks.JwksCache`:
   no network on a hit, one rate-limited refresh for an unknown ``kid``) and is
   used only after its ``x5c`` chain verified to a configured root
   (:mod:`atls_ita.trust`); that verdict is cached for the chain's window;
3. the signature is checked by pyjwt with exactly the header's (pinned) alg;
4. ``iss`` equals the configured issuer; ``exp`` and ``iat`` are required,
   ``nbf`` honoured.  The leeway (clock skew) applies to ``nbf`` and ``iat``;
   ``exp`` is strict, because the result must not outlive the token.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from atls_core.errors import MalformedEvidence, StaleEvidence, UntrustedChain
from atls_core.jwks import JwksCache
from atls_ita.trust import ChainTrust, VerifiedChain, check_jwk_matches, parse_x5c

__all__ = ["ALGORITHMS", "TokenVerifier", "VerifiedToken"]

ALGORITHMS = ("PS384", "RS256")
"""The only algorithms ITA signs with; a configuration may narrow, never widen."""
_MAX_TOKEN = 64 * 1024


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@attrs.frozen(kw_only=True)
class VerifiedToken:
    header: Mapping[str, Any] = attrs.field(converter=_frozen)
    claims: Mapping[str, Any] = attrs.field(converter=_frozen)
    issued_at: dt.datetime
    expires_at: dt.datetime
    not_before: dt.datetime | None
    signer: str
    """Subject of the signing certificate."""
    signer_valid_until: dt.datetime
    """When the signing chain (or its CRLs) stops vouching for the key."""


def _b64url_json(part: str, what: str) -> Any:
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
        return json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError, RecursionError):
        raise MalformedEvidence(
            f"the token {what} is not base64url JSON", check="jwt.format"
        ) from None


def _time(claims: Mapping[str, Any], name: str, *, required: bool) -> dt.datetime | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise MalformedEvidence(f"the token has no {name}", check=f"jwt.{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvidence(f"{name} is not a number", check=f"jwt.{name}", actual=value)
    try:
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvidence(
            f"{name} is out of range", check=f"jwt.{name}", actual=value
        ) from None


class TokenVerifier:
    """Everything needed to trust an ITA token except the claims' meaning."""

    def __init__(
        self,
        *,
        keys: JwksCache,
        trust: ChainTrust,
        issuer: str,
        algorithms: tuple[str, ...] = ALGORITHMS,
        leeway: dt.timedelta = dt.timedelta(seconds=60),
    ) -> None:
        self.keys = keys
        self.trust = trust
        self.issuer = issuer
        self.algorithms = algorithms
        self.leeway = leeway
        self._keys: dict[str, tuple[Mapping[str, Any], rsa.RSAPublicKey, VerifiedChain]] = {}
        self._lock = threading.Lock()

    # -- header and key ------------------------------------------------------

    def _header(self, token: str) -> tuple[Mapping[str, Any], str, str]:
        parts = token.split(".")
        if len(parts) != 3 or not all(parts):
            raise MalformedEvidence(
                "not a compact JWS (three non-empty parts)", check="jwt.format", actual=len(parts)
            )
        header = _b64url_json(parts[0], "header")
        if not isinstance(header, Mapping):
            raise MalformedEvidence("the token header is not an object", check="jwt.header")
        alg = header.get("alg")
        if alg not in self.algorithms:
            raise UntrustedChain(
                "signature algorithm not allowed",
                check="jwt.alg",
                expected=list(self.algorithms),
                actual=alg,
            )
        if "crit" in header:
            raise UntrustedChain(
                "the token header has critical extensions atls does not understand",
                check="jwt.crit",
                actual=header.get("crit"),
            )
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise MalformedEvidence("the token type is not JWT", check="jwt.typ", actual=typ)
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise UntrustedChain(
                "the token names no signing key (kid)", check="jwt.kid", actual=kid
            )
        return header, alg, kid

    def signing_key(
        self, kid: str, alg: str, *, now: dt.datetime
    ) -> tuple[rsa.RSAPublicKey, VerifiedChain]:
        """The configured key ``kid``, once its chain verified at ``now``."""
        jwk = self.keys.get(kid)
        if jwk.get("kty") != "RSA":
            raise UntrustedChain(
                "the signing key is not an RSA key", check="ita.key.type", actual=jwk.get("kty")
            )
        if "alg" in jwk and jwk["alg"] != alg:
            raise UntrustedChain(
                "the token's alg is not the signing key's alg",
                check="jwt.alg",
                expected=jwk["alg"],
                actual=alg,
            )
        if jwk.get("use", "sig") != "sig":
            raise UntrustedChain(
                "the key is not a signing key", check="ita.key.use", actual=jwk.get("use")
            )
        with self._lock:
            cached = self._keys.get(kid)
        # The cache hands out the same mapping until it refetches; holding it
        # here keeps identity meaningful.  A changed key is verified afresh.
        if cached is not None and cached[0] is jwk and cached[2].covers(now):
            return cached[1], cached[2]
        chain = self.trust.verify(parse_x5c(jwk), now=now)
        key = check_jwk_matches(jwk, chain.leaf)
        with self._lock:
            self._keys[kid] = (jwk, key, chain)
        return key, chain

    # -- the token -----------------------------------------------------------

    def verify(self, token: str | bytes, *, now: dt.datetime) -> VerifiedToken:
        if isinstance(token, bytes):
            if len(token) > _MAX_TOKEN:
                raise MalformedEvidence("the token is too large", check="jwt.format")
            try:
                token = token.decode("ascii")
            except UnicodeDecodeError:
                raise MalformedEvidence("the token is not ASCII", check="jwt.format") from None
        token = token.strip()
        header, alg, kid = self._header(token)
        key, chain = self.signing_key(kid, alg, now=now)
        try:
            payload = jwt.api_jws.PyJWS().decode_complete(token, key=key, algorithms=[alg])
        except jwt.exceptions.InvalidSignatureError:
            raise UntrustedChain(
                "the token signature does not verify under the configured key",
                check="jwt.signature",
                actual=kid,
            ) from None
        except jwt.exceptions.InvalidAlgorithmError:
            raise UntrustedChain("signature algorithm not allowed", check="jwt.alg") from None
        except jwt.exceptions.PyJWTError as error:
            raise MalformedEvidence(
                f"the token cannot be decoded: {type(error).__name__}", check="jwt.format"
            ) from None
        try:
            claims = json.loads(payload["payload"])
        except (ValueError, UnicodeDecodeError, RecursionError):
            raise MalformedEvidence("the token payload is not JSON", check="jwt.format") from None
        if not isinstance(claims, Mapping):
            raise MalformedEvidence("the token payload is not an object", check="jwt.format")
        return self._check_claims(header, claims, now=now, chain=chain)

    def _check_claims(
        self,
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
        *,
        now: dt.datetime,
        chain: VerifiedChain,
    ) -> VerifiedToken:
        if claims.get("iss") != self.issuer:
            raise UntrustedChain(
                "the token was not issued by the configured issuer",
                check="jwt.iss",
                expected=self.issuer,
                actual=claims.get("iss"),
            )
        expires = _time(claims, "exp", required=True)
        issued = _time(claims, "iat", required=True)
        not_before = _time(claims, "nbf", required=False)
        assert expires is not None
        assert issued is not None
        if now >= expires:
            raise StaleEvidence(
                "the token has expired",
                check="jwt.exp",
                expected=f"before {expires.isoformat()}",
                actual=now.isoformat(),
            )
        if not_before is not None and now + self.leeway < not_before:
            raise StaleEvidence(
                "the token is not valid yet",
                check="jwt.nbf",
                expected=f"after {not_before.isoformat()}",
                actual=now.isoformat(),
            )
        if now + self.leeway < issued:
            raise StaleEvidence(
                "the token was issued in the future",
                check="jwt.iat",
                expected=f"before {now.isoformat()}",
                actual=issued.isoformat(),
            )
        if expires <= issued:
            raise MalformedEvidence(
                "the token expires before it was issued", check="jwt.exp", actual=claims.get("exp")
            )
        return VerifiedToken(
            header=header,
            claims=claims,
            issued_at=issued,
            expires_at=expires,
            not_before=not_before,
            signer=chain.leaf.subject.rfc4514_string(),
            signer_valid_until=chain.valid_until,
        )
