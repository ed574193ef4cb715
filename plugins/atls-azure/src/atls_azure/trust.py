"""Whom we trust to sign MAA tokens: configured instances or pinned key sets.

A token is only ever checked against keys that configuration chose:

* ``instances = ["https://x.attest.azure.net"]``: the instance's
  ``/.well-known/openid-configuration`` names its ``jwks_uri``, which must be
  on the same origin; the keys are cached (:class:`atls_core.jwks.JwksCache`)
  for ``keys_max_age`` seconds, then fetched again (not used while that fails).
  Tokens from that instance must carry ``iss`` equal to the instance URL.
* ``keys_file`` (or ``keys``, an inline JWKS) with ``issuers``: an offline,
  pinned key set trusted for exactly the listed issuers.

Keys named in the token (``jku``, ``x5c``, ``jwk`` headers) are never used.
Plain ``http`` is refused unless ``allow_http_loopback`` is set *and* the host
is a loopback address: a test-only allowance for stand-in services.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import time
import urllib.parse
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from atls_azure.settings import MaaTokenSettings
from atls_core.errors import CollateralUnavailable, ConfigurationError, UntrustedChain
from atls_core.interfaces import Settings
from atls_core.jose import jwk_public_key
from atls_core.jwks import JwksCache, fetch_json
from atls_core.redact import redact_url
from atls_core.settings import load

__all__ = ["TokenTrust", "build_trust", "public_key_from_jwk"]

MIN_RSA_BITS = 2048


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)


def discovery_fetch(instance: str, *, timeout: float) -> Callable[[], Mapping[str, Any]]:
    """OpenID discovery then JWKS, with the jwks_uri pinned to the instance's origin.

    ``timeout`` bounds both requests together: a handshake that needs new keys waits
    for one fetch deadline, not one per request.
    """

    def fetch() -> Mapping[str, Any]:
        deadline = time.monotonic() + timeout
        metadata = fetch_json(f"{instance}/.well-known/openid-configuration", timeout=timeout)
        if not isinstance(metadata, Mapping):
            raise CollateralUnavailable(
                "keys unavailable: OpenID metadata is not an object", check="jwt.keys"
            )
        issuer = metadata.get("issuer")
        if issuer is not None and str(issuer).rstrip("/") != instance:
            raise CollateralUnavailable(
                "keys unavailable: OpenID metadata names another issuer",
                check="azure.discovery.issuer",
                expected=instance,
                actual=issuer,
            )
        jwks_uri = metadata.get("jwks_uri")
        if not isinstance(jwks_uri, str) or _origin(jwks_uri) != _origin(instance):
            raise CollateralUnavailable(
                "keys unavailable: jwks_uri is not on the instance's origin",
                check="azure.discovery.jwks_uri",
                expected=instance,
                actual=jwks_uri,
            )
        left = deadline - time.monotonic()
        if left <= 0:
            raise CollateralUnavailable(
                f"keys unavailable: no answer within {timeout:g} s from {redact_url(instance)}",
                check="jwt.keys",
            )
        document: Mapping[str, Any] = fetch_json(jwks_uri, timeout=left)
        return document

    return fetch


@attrs.frozen
class _ParsedKey:
    key: rsa.RSAPublicKey
    not_before: dt.datetime | None
    not_after: dt.datetime | None


def _parse_jwk(jwk: Mapping[str, Any]) -> _ParsedKey:
    kid = jwk.get("kid")
    if jwk.get("kty") != "RSA":
        raise UntrustedChain(
            "signing key is not an RSA key",
            check="azure.key_type",
            expected="RSA",
            actual=jwk.get("kty"),
        )
    if jwk.get("use") not in (None, "sig") or jwk.get("alg") not in (None, "RS256"):
        raise UntrustedChain(
            "signing key is not for RS256 signatures",
            check="azure.key_use",
            actual={"use": jwk.get("use"), "alg": jwk.get("alg")},
        )
    from_numbers: rsa.RSAPublicKey | None = None
    if "n" in jwk or "e" in jwk:
        key = jwk_public_key(jwk, check="azure.key", algorithm="RS256", error=UntrustedChain)
        assert isinstance(key, rsa.RSAPublicKey)  # kty was checked above
        from_numbers = key
    parsed = _ParsedKey(key=from_numbers, not_before=None, not_after=None) if from_numbers else None
    chain = jwk.get("x5c")
    if chain is not None:
        if not isinstance(chain, (list, tuple)) or not chain or not isinstance(chain[0], str):
            raise UntrustedChain(f"signing key {kid!r}: bad x5c", check="azure.key")
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(chain[0], validate=True))
        except ValueError:
            raise UntrustedChain(
                f"signing key {kid!r}: x5c is not a certificate", check="azure.key"
            ) from None
        cert_key = certificate.public_key()
        if not isinstance(cert_key, rsa.RSAPublicKey):
            raise UntrustedChain(
                "signing certificate does not hold an RSA key", check="azure.key_type"
            )
        if from_numbers is not None and from_numbers.public_numbers() != cert_key.public_numbers():
            raise UntrustedChain(f"signing key {kid!r}: n/e and x5c disagree", check="azure.key")
        parsed = _ParsedKey(
            key=cert_key,
            not_before=certificate.not_valid_before_utc,
            not_after=certificate.not_valid_after_utc,
        )
    if parsed is None:
        raise UntrustedChain(f"signing key {kid!r} carries no key material", check="azure.key")
    if parsed.key.key_size < MIN_RSA_BITS:
        raise UntrustedChain(
            "signing key is too short",
            check="azure.key_size",
            expected=f">= {MIN_RSA_BITS}",
            actual=parsed.key.key_size,
        )
    return parsed


def _usable(parsed: _ParsedKey, now: dt.datetime) -> rsa.RSAPublicKey:
    before, after = parsed.not_before, parsed.not_after
    if before is not None and after is not None and not before <= now <= after:
        raise UntrustedChain(
            "the signing certificate is not valid at this time",
            check="azure.signing_certificate.validity",
            expected=f"{before.isoformat()} .. {after.isoformat()}",
            actual=now.isoformat(),
        )
    return parsed.key


def public_key_from_jwk(jwk: Mapping[str, Any], *, now: dt.datetime) -> rsa.RSAPublicKey:
    """The RSA key of a trusted JWK (``x5c`` certificate and/or ``n``/``e``).

    MAA publishes self-signed certificates in ``x5c``; the certificate must be
    valid at ``now`` and, when ``n``/``e`` are present too, hold the same key.
    """
    return _usable(_parse_jwk(jwk), now)


@attrs.frozen(kw_only=True)
class TokenTrust:
    """Accepted issuers, each with the key cache that may sign for it."""

    issuers: Mapping[str, JwksCache]
    leeway: dt.timedelta
    _parsed: dict[str, tuple[Mapping[str, Any], _ParsedKey]] = attrs.field(
        factory=dict, init=False, repr=False, eq=False
    )

    def cache_for(self, issuer: str) -> JwksCache | None:
        return self.issuers.get(issuer)

    def public_key(self, jwk: Mapping[str, Any], *, now: dt.datetime) -> rsa.RSAPublicKey:
        """:func:`public_key_from_jwk`, parsing each cached JWK object once."""
        kid = str(jwk.get("kid"))
        hit = self._parsed.get(kid)
        if hit is None or hit[0] is not jwk:  # identity: the cache hands out one object per key
            if len(self._parsed) >= 64:
                self._parsed.clear()
            hit = (jwk, _parse_jwk(jwk))
            self._parsed[kid] = hit
        return _usable(hit[1], now)


def _pinned(settings: MaaTokenSettings) -> Mapping[str, Any] | None:
    if settings.keys is not None or settings.keys_file is None:
        return settings.keys
    try:
        document = json.loads(settings.keys_file.read_bytes())
    except (OSError, ValueError) as error:
        raise ConfigurationError(
            f"settings.keys_file: cannot read a JWK set from {settings.keys_file}: "
            f"{type(error).__name__}",
            check="config.settings",
        ) from None
    if not isinstance(document, Mapping):
        raise ConfigurationError("settings.keys_file must hold a JWK set", check="config.settings")
    return document


def build_trust(
    settings: Settings, *, monotonic: Callable[[], float] = time.monotonic
) -> TokenTrust:
    """Settings -> :class:`TokenTrust`; every mistake is a :class:`ConfigurationError`.

    Other keys (a validator's own, such as ``wire``) are the spec's to check.
    ``monotonic`` is the key caches' clock (tests move it past ``keys_max_age``).
    """
    read = load(MaaTokenSettings, settings, partial=True)
    pinned = _pinned(read)
    caches: dict[str, JwksCache] = {}
    shared_pinned = JwksCache(pinned=pinned) if pinned is not None else None
    for issuer in read.issuers:
        assert shared_pinned is not None  # the settings refuse issuers without keys
        caches[issuer] = shared_pinned
    for instance in read.instances:
        caches[instance] = JwksCache(
            fetch=discovery_fetch(instance, timeout=read.timeout),
            pinned=pinned if instance in read.issuers else None,
            timeout=read.timeout,
            min_refresh_interval=read.min_refresh_interval,
            max_age=read.keys_max_age,
            monotonic=monotonic,
        )
    return TokenTrust(issuers=MappingProxyType(caches), leeway=read.leeway)
