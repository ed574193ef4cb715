"""One JOSE layer: the only way atls verifies a signed token (MAA, ITA, ...).

Token plugins used to carry their own JWS pipelines, and they disagreed (on
leeway, on ``b64``, on size limits, on check names).  :class:`JwsVerifier` is
the one pipeline; plugins adapt its result.  PyJWT does the header parsing and
the signature arithmetic; the decisions are made here, in this order, each
with its own check name:

1. ``jwt.size``: the token (``str`` or ``bytes``, counted before anything
   else, whitespace included) is at most ``max_size`` (default 64 KiB);
2. ``jwt.format``: ASCII compact JWS, three base64url segments without
   padding; JSON serialisation and detached payloads are refused;
3. ``jwt.alg``: the header's ``alg`` is one of the caller's pinned algorithms
   (``none`` and ``HS*`` can never be pinned: a public key is not a secret);
4. ``jwt.b64``: ``b64`` other than ``true`` (RFC 7797 unencoded payload) is
   refused; ``jwt.crit``: every name in ``crit`` must be understood and
   present, and the only name understood is ``b64`` when it is ``true``;
5. ``jwt.kid``: a present ``kid`` is a non-empty string.  With
   ``require_kid`` (the default) it must be present.  Without it, a token
   with no ``kid`` is only accepted when the key source offers exactly one
   key: trying every configured key would let any of them vouch for any
   token and turns one token into many signature checks;
6. ``jwt.claims``: the payload is a JSON object without duplicate names;
   ``jwt.iss``: with ``issuers`` configured, ``iss`` is one of them.  This
   happens *before* the key lookup (still unverified) so a foreign issuer
   never causes a key fetch;
7. keys come only from the caller's resolver, asked with ``kid``, ``alg``,
   the (unverified, already allowed) ``iss`` and the clock.  The resolver
   never sees the header: ``jku``, ``x5u``, ``jwk`` and ``x5c`` in a token are
   the attacker's input, so they are ignored (not refused: real MAA and ITA
   tokens carry ``jku``).  No key is ``jwt.kid`` ("unknown signing key"); a
   key that does not fit ``alg`` is ``jwt.alg``; a short RSA key ``jwt.key``;
8. ``jwt.signature``: the signature verifies under a configured key; only
   then are the claims used;
9. times, against the injected clock ``now`` (never the system clock):
   ``exp`` is required and strict (``jwt.exp``: refused when ``now >= exp``,
   *no leeway*, so a result never outlives its token and agrees with the
   token's own expiry); ``nbf`` (``jwt.nbf``) and ``iat`` (``jwt.iat``) are
   optional unless listed in ``required_claims`` and may lie in the future by
   at most ``leeway`` (default 60 s, at most 600 s): the one allowance for
   clock skew, applied once.

:func:`b64url_decode` is the one strict base64url decoder and
:func:`jwk_public_key` the one JWK reader; PyJWT is imported lazily so that
``import atls_core`` stays light.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import json
import math
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, NoReturn, TypeAlias

import attrs
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from atls_core import strict_json
from atls_core.errors import (
    ATLSError,
    ConfigurationError,
    MalformedEvidence,
    StaleEvidence,
    UntrustedChain,
)

if TYPE_CHECKING:
    from jwt.algorithms import Algorithm

__all__ = [
    "DEFAULT_LEEWAY",
    "DEFAULT_MAX_SIZE",
    "MAX_LEEWAY",
    "SUPPORTED_ALGORITHMS",
    "JwsVerifier",
    "KeyLookup",
    "KeyResolver",
    "PublicKey",
    "VerifiedJws",
    "b64url_decode",
    "jwk_public_key",
]

PublicKey: TypeAlias = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)
"""A public key a token may be verified with."""

DEFAULT_MAX_SIZE = 64 * 1024
DEFAULT_LEEWAY = dt.timedelta(seconds=60)
MAX_LEEWAY = dt.timedelta(seconds=600)
"""A larger allowance would keep not-yet-valid tokens acceptable for too long."""

_RSA = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
_CURVES: Mapping[str, type[ec.EllipticCurve]] = MappingProxyType(
    {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
)
SUPPORTED_ALGORITHMS = frozenset({*_RSA, *_CURVES, "EdDSA"})
"""Asymmetric signature algorithms only: ``none`` and ``HS*`` are never accepted."""

_COMPACT = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]*)")
_B64URL = re.compile(r"[A-Za-z0-9_-]*")
_TIMES = ("exp", "iat", "nbf")
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


# -- base64url and JWK ---------------------------------------------------------------


def b64url_decode(text: str, *, check: str) -> bytes:
    """Decode base64url strictly: URL-safe alphabet only, padding optional but exact.

    The standard library's decoder skips characters outside the alphabet, so
    two different strings can decode to the same bytes; here every accepted
    string is the canonical encoding of its bytes (non-zero spare bits are
    refused too).  Failures are :class:`MalformedEvidence` with ``check``.
    """
    if not isinstance(text, str):
        raise MalformedEvidence(
            "expected a base64url string", check=check, actual=type(text).__name__
        )
    body = text.rstrip("=")
    padding = len(text) - len(body)
    if padding and (padding > 2 or len(text) % 4):
        raise MalformedEvidence("base64url padding is wrong", check=check)
    if len(body) % 4 == 1 or not _B64URL.fullmatch(body):
        raise MalformedEvidence("not base64url", check=check)
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):  # pragma: no cover - alphabet and length checked
        raise MalformedEvidence("not base64url", check=check) from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=") != body.encode("ascii"):
        raise MalformedEvidence("not canonical base64url", check=check)
    return raw


def jwk_public_key(
    jwk: Any,
    *,
    check: str,
    algorithm: str | None = None,
    error: type[ATLSError] = MalformedEvidence,
) -> PublicKey:
    """The public key of an RSA, EC or OKP JWK, read by PyJWT (no hand-built numbers).

    JWKs with private or symmetric members are refused: a verifier never needs
    them, and accepting one would hide a leaked key in a configuration.  With
    ``algorithm``, a JWK that names another ``alg`` is refused.  ``error``
    lets the caller say what a bad key means where it is used (a malformed key
    set, a binding that cannot hold).
    """
    if not isinstance(jwk, Mapping):
        raise error("the key is not a JWK object", check=check)
    kty = jwk.get("kty")
    if kty not in ("RSA", "EC", "OKP"):
        raise error("unsupported JWK key type", check=check, expected="RSA/EC/OKP", actual=kty)
    private = sorted(_PRIVATE_JWK_MEMBERS & set(jwk))
    if private:
        raise error("the JWK carries private key material", check=check, actual=private)
    if algorithm is not None and jwk.get("alg", algorithm) != algorithm:
        raise error(
            "the JWK is for another algorithm", check=check, expected=algorithm, actual=jwk["alg"]
        )
    import jwt

    try:
        key: Any = jwt.PyJWK(dict(jwk), algorithm).key
    except (jwt.PyJWTError, ValueError, TypeError, KeyError) as exc:
        raise error(f"the JWK cannot be read: {type(exc).__name__}", check=check) from None
    if not isinstance(
        key,
        (
            rsa.RSAPublicKey,
            ec.EllipticCurvePublicKey,
            ed25519.Ed25519PublicKey,
            ed448.Ed448PublicKey,
        ),
    ):  # pragma: no cover - private members were refused above
        raise error("the JWK is not a public key", check=check)
    return key


# -- configuration -----------------------------------------------------------------------


def _algorithms(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        value = (value,)
    pinned = frozenset(value)
    unsupported = sorted(str(a) for a in pinned - SUPPORTED_ALGORITHMS)
    if not pinned or unsupported:
        raise ConfigurationError(
            "pin a non-empty set of asymmetric JWS algorithms",
            check="config.jwt.algorithms",
            expected=sorted(SUPPORTED_ALGORITHMS),
            actual=unsupported or [],
        )
    return pinned


def _issuers(value: str | Collection[str] | None) -> frozenset[str] | None:
    if value is None:
        return None
    issuers = frozenset((value,) if isinstance(value, str) else value)
    if not issuers or not all(isinstance(i, str) and i for i in issuers):
        raise ConfigurationError(
            "issuers must be non-empty strings (or None to not check iss)",
            check="config.jwt.issuers",
        )
    return issuers


def _leeway(value: dt.timedelta | float) -> dt.timedelta:
    if isinstance(value, bool) or not isinstance(value, (dt.timedelta, int, float)):
        raise ConfigurationError("leeway must be a duration", check="config.jwt.leeway")
    try:
        leeway = value if isinstance(value, dt.timedelta) else dt.timedelta(seconds=value)
    except (ValueError, OverflowError):
        leeway = dt.timedelta.max
    if not dt.timedelta(0) <= leeway <= MAX_LEEWAY:
        raise ConfigurationError(
            "leeway is a small clock-skew allowance",
            check="config.jwt.leeway",
            expected=f"0 .. {MAX_LEEWAY.total_seconds():.0f} s",
            actual=leeway.total_seconds(),
        )
    return leeway


def _positive(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError("must be a positive integer", check="config.jwt", actual=value)
    return value


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset((value,) if isinstance(value, str) else value)


def _frozen(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


# -- the pipeline --------------------------------------------------------------------------


@attrs.frozen(kw_only=True)
class KeyLookup:
    """What a key resolver may choose keys by; none of it is verified yet.

    ``issuer`` is the token's ``iss`` when it is a string (and, when issuers
    are configured, already one of them), else ``None``.  There is
    deliberately no header here: key material in a token is never used.
    """

    kid: str | None
    alg: str
    issuer: str | None
    now: dt.datetime


KeyResolver: TypeAlias = Callable[[KeyLookup], PublicKey | Sequence[PublicKey] | None]
"""Configured keys for a lookup: one key, candidates, or ``None``/empty for "unknown".

A resolver may raise its own :class:`ATLSError` (an unknown ``kid``, keys
unavailable, an untrusted certificate chain); it is passed through.
"""


@attrs.frozen(kw_only=True)
class VerifiedJws:
    """A token whose size, header, signature, issuer and times were checked."""

    header: Mapping[str, Any] = attrs.field(converter=_frozen)
    claims: Mapping[str, Any] = attrs.field(converter=_frozen)
    kid: str | None
    alg: str
    issuer: str | None
    expires_at: dt.datetime
    issued_at: dt.datetime | None
    not_before: dt.datetime | None


@functools.cache
def _algorithm(name: str) -> Algorithm:
    from jwt.algorithms import get_default_algorithms

    return get_default_algorithms()[name]


def _fits(key: object, alg: str) -> bool:
    if alg in _RSA:
        return isinstance(key, rsa.RSAPublicKey)
    curve = _CURVES.get(alg)
    if curve is not None:
        return isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, curve)
    return isinstance(key, (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey))


def _time(claims: Mapping[str, Any], name: str, *, required: bool) -> dt.datetime | None:
    value = claims.get(name)
    if value is None:
        if required:
            raise MalformedEvidence(f"the token has no {name}", check=f"jwt.{name}")
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise MalformedEvidence(f"{name} is not a number", check=f"jwt.{name}", actual=value)
    try:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError
        return dt.datetime.fromtimestamp(value, dt.UTC)
    except (OverflowError, OSError, ValueError):
        raise MalformedEvidence(
            f"{name} is out of range", check=f"jwt.{name}", actual=value
        ) from None


@attrs.frozen(kw_only=True)
class JwsVerifier:
    """The token pipeline; configure once, call :meth:`verify` per token.

    ``keys`` resolves configured keys (see :class:`KeyLookup`);
    ``algorithms`` pins what the header may say; ``issuers`` (``None``: not
    checked) lists acceptable ``iss``; ``required_claims`` adds claims that
    must be present besides ``exp`` (e.g. ``{"iat"}``); ``typ``, when set, is
    what a present ``typ`` header must say (case-insensitive).
    """

    keys: KeyResolver
    algorithms: frozenset[str] = attrs.field(converter=_algorithms)
    issuers: frozenset[str] | None = attrs.field(default=None, converter=_issuers)
    leeway: dt.timedelta = attrs.field(default=DEFAULT_LEEWAY, converter=_leeway)
    max_size: int = attrs.field(default=DEFAULT_MAX_SIZE, converter=_positive)
    require_kid: bool = True
    required_claims: frozenset[str] = attrs.field(factory=frozenset, converter=_names)
    typ: str | None = None
    min_rsa_bits: int = attrs.field(default=2048, converter=_positive)

    def verify(self, token: str | bytes, *, now: dt.datetime) -> VerifiedJws:
        """Verify ``token`` at ``now`` (timezone-aware); any failure raises."""
        if now.tzinfo is None:
            raise ConfigurationError("the clock must be timezone-aware", check="config.clock")
        text, segments = self._compact(token)
        header = self._header(text, segments[0])
        alg = self._check_header(header)
        kid: str | None = header.get("kid")
        if not segments[1]:
            raise MalformedEvidence(
                "the token has no payload (detached payloads are not supported)",
                check="jwt.format",
            )
        if not segments[2]:
            raise UntrustedChain("the token carries no signature", check="jwt.signature")
        claims = self._payload(segments[1])
        issuer = self._issuer(claims)
        self._verify_signature(text, segments[2], alg=alg, kid=kid, issuer=issuer, now=now)
        return self._check_times(header, claims, alg=alg, kid=kid, issuer=issuer, now=now)

    # -- steps ----------------------------------------------------------------------------

    def _compact(self, token: object) -> tuple[str, tuple[str, str, str]]:
        if not isinstance(token, (str, bytes)):
            raise MalformedEvidence(
                "a token is str or bytes", check="jwt.format", actual=type(token).__name__
            )
        if len(token) > self.max_size:
            raise MalformedEvidence(
                "the token is too large",
                check="jwt.size",
                expected=f"<= {self.max_size}",
                actual=len(token),
            )
        if isinstance(token, bytes):
            try:
                text = token.decode("ascii")
            except UnicodeDecodeError:
                raise MalformedEvidence("the token is not ASCII", check="jwt.format") from None
        elif token.isascii():
            text = token
        else:
            raise MalformedEvidence("the token is not ASCII", check="jwt.format")
        text = text.strip()
        match = _COMPACT.fullmatch(text)
        if match is None:
            raise MalformedEvidence(
                "not a compact JWS (three base64url segments)", check="jwt.format"
            )
        header, payload, signature = match.groups()
        return text, (header, payload, signature)

    def _header(self, text: str, segment: str) -> dict[str, Any]:
        import jwt

        try:
            header = jwt.get_unverified_header(text)
        except (jwt.PyJWTError, ValueError, RecursionError) as exc:
            self._explain_header(segment, exc)
        if not isinstance(header, dict):  # pragma: no cover - PyJWT returns objects only
            raise MalformedEvidence("the token header is not an object", check="jwt.format")
        try:  # PyJWT keeps the last of two equal names; JOSE readers disagree (RFC 7515 4)
            strict_json.loads(b64url_decode(segment, check="jwt.format"))
        except strict_json.RepeatedName as exc:
            raise MalformedEvidence(
                f"the token header repeats {exc.name!r}", check="jwt.format"
            ) from None
        return header

    def _explain_header(self, segment: str, exc: Exception) -> NoReturn:
        """PyJWT refused the token: name the header rule it broke, else ``jwt.format``.

        PyJWT's own header rules (``crit``, ``kid``, ``b64``) vary by version;
        re-reading the header on this failure path keeps our check names stable.
        """
        try:
            parsed = json.loads(b64url_decode(segment, check="jwt.format").decode("utf-8"))
        except (ValueError, RecursionError):
            parsed = None
        if isinstance(parsed, dict):
            self._check_header(parsed)
        raise MalformedEvidence(
            f"the token cannot be decoded: {type(exc).__name__}", check="jwt.format"
        )

    def _check_header(self, header: Mapping[str, Any]) -> str:
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise UntrustedChain(
                "signature algorithm not allowed",
                check="jwt.alg",
                expected=sorted(self.algorithms),
                actual=alg,
            )
        if "b64" in header and header["b64"] is not True:
            raise UntrustedChain(
                "unencoded payloads (b64) are not accepted", check="jwt.b64", actual=header["b64"]
            )
        if "crit" in header:
            crit = header["crit"]
            understood = {"b64"} if header.get("b64") is True else set()
            if (
                not isinstance(crit, list)
                or not crit
                or not all(isinstance(n, str) and n in understood and n in header for n in crit)
            ):
                raise UntrustedChain(
                    "the token has critical header parameters atls does not process",
                    check="jwt.crit",
                    expected=sorted(understood),
                    actual=crit,
                )
        typ = header.get("typ")
        if (
            self.typ is not None
            and typ is not None
            and (not isinstance(typ, str) or typ.lower() != self.typ.lower())
        ):
            raise MalformedEvidence(
                "the token has another type", check="jwt.format", expected=self.typ, actual=typ
            )
        if "kid" in header:
            kid = header["kid"]
            if not isinstance(kid, str) or not kid:
                raise UntrustedChain("the token's kid is not a key id", check="jwt.kid", actual=kid)
        elif self.require_kid:
            raise UntrustedChain("the token names no signing key (kid)", check="jwt.kid")
        return alg

    @staticmethod
    def _payload(segment: str) -> Mapping[str, Any]:
        raw = b64url_decode(segment, check="jwt.format")
        try:
            claims = strict_json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):
            raise MalformedEvidence(
                "the token payload is not JSON without duplicate names", check="jwt.claims"
            ) from None
        if not isinstance(claims, dict):
            raise MalformedEvidence("the token payload is not an object", check="jwt.claims")
        return claims

    def _issuer(self, claims: Mapping[str, Any]) -> str | None:
        iss = claims.get("iss")
        if self.issuers is not None and (not isinstance(iss, str) or iss not in self.issuers):
            raise UntrustedChain(
                "the token was not issued by a configured issuer",
                check="jwt.iss",
                expected=sorted(self.issuers),
                actual=iss,
            )
        return iss if isinstance(iss, str) else None

    def _candidates(self, lookup: KeyLookup) -> list[PublicKey]:
        found = self.keys(lookup)
        if found is None:
            candidates: list[PublicKey] = []
        elif isinstance(found, Sequence):
            candidates = list(found)
        else:
            candidates = [found]
        if not candidates:
            raise UntrustedChain("unknown signing key", check="jwt.kid", actual=lookup.kid)
        if lookup.kid is None and len(candidates) > 1:
            raise UntrustedChain(
                "the token names no signing key (kid) and several keys are configured",
                check="jwt.kid",
                actual=len(candidates),
            )
        fitting = [key for key in candidates if _fits(key, lookup.alg)]
        if not fitting:
            raise UntrustedChain(
                "the token's alg does not fit the configured key",
                check="jwt.alg",
                actual=lookup.alg,
            )
        for key in fitting:
            if isinstance(key, rsa.RSAPublicKey) and key.key_size < self.min_rsa_bits:
                raise UntrustedChain(
                    "the configured signing key is too short",
                    check="jwt.key",
                    expected=f">= {self.min_rsa_bits} bits",
                    actual=key.key_size,
                )
        return fitting

    def _verify_signature(
        self,
        text: str,
        segment: str,
        *,
        alg: str,
        kid: str | None,
        issuer: str | None,
        now: dt.datetime,
    ) -> None:
        candidates = self._candidates(KeyLookup(kid=kid, alg=alg, issuer=issuer, now=now))
        signature = b64url_decode(segment, check="jwt.format")
        signing_input = text[: text.rindex(".")].encode("ascii")
        algorithm = _algorithm(alg)
        import jwt

        for key in candidates:
            try:
                if algorithm.verify(signing_input, algorithm.prepare_key(key), signature):
                    return
            except (jwt.PyJWTError, ValueError, TypeError):
                continue
        raise UntrustedChain(
            "the token signature does not verify under the configured key",
            check="jwt.signature",
            actual=kid,
        )

    def _check_times(
        self,
        header: Mapping[str, Any],
        claims: Mapping[str, Any],
        *,
        alg: str,
        kid: str | None,
        issuer: str | None,
        now: dt.datetime,
    ) -> VerifiedJws:
        expires = _time(claims, "exp", required=True)
        issued = _time(claims, "iat", required="iat" in self.required_claims)
        not_before = _time(claims, "nbf", required="nbf" in self.required_claims)
        assert expires is not None  # required above
        missing = sorted(n for n in self.required_claims - set(_TIMES) if n not in claims)
        if missing:
            raise MalformedEvidence(
                "the token lacks required claims", check="jwt.claims", actual=missing
            )
        if issued is not None and expires <= issued:
            raise MalformedEvidence(
                "the token expires before it was issued", check="jwt.exp", actual=claims["exp"]
            )
        if not_before is not None and expires <= not_before:
            raise MalformedEvidence(
                "the token expires before it becomes valid", check="jwt.exp", actual=claims["exp"]
            )
        if now >= expires:
            raise StaleEvidence(
                "the token has expired",
                check="jwt.exp",
                expected=f"before {expires.isoformat()}",
                actual=now.isoformat(),
            )
        latest = now + self.leeway
        for claim, when, problem in (
            ("nbf", not_before, "is not valid yet"),
            ("iat", issued, "was issued in the future"),
        ):
            if when is not None and when > latest:
                raise StaleEvidence(
                    f"the token {problem}",
                    check=f"jwt.{claim}",
                    expected=f"<= {latest.isoformat()} (now + leeway)",
                    actual=when.isoformat(),
                )
        return VerifiedJws(
            header=header,
            claims=claims,
            kid=kid,
            alg=alg,
            issuer=issuer,
            expires_at=expires,
            issued_at=issued,
            not_before=not_before,
        )
