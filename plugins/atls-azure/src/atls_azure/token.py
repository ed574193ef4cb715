"""MAA tokens through the one JOSE layer (:mod:`atls_core.jose`).

What is MAA-specific lives here: RS256 only; ``iss`` (still unverified, but
already one of the configured instances) only selects *which configured* key
cache to ask for the ``kid``; keys are the certificates of that cache
(:class:`atls_azure.trust.TokenTrust`); ``iat`` is required because the
result's evidence time is the token's.  Everything else, in order, and the
check names (``jwt.*``) are the core's: ``exp`` is strict, the leeway only
covers ``nbf``/``iat`` in the future, so a result expires with its token.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

from atls_azure.trust import TokenTrust
from atls_core.errors import UntrustedChain
from atls_core.jose import JwsVerifier, KeyLookup, KeyResolver, PublicKey

__all__ = ["ALGORITHMS", "MAX_TOKEN_BYTES", "VerifiedToken", "verify_token"]

ALGORITHMS = ("RS256",)
"""What MAA signs with; nothing else is accepted (no ``none``, no HMAC)."""
MAX_TOKEN_BYTES = 256 * 1024
"""MAA tokens embed runtime data and claims sets: larger than the core default."""


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


def _keys(trust: TokenTrust) -> KeyResolver:
    def resolve(lookup: KeyLookup) -> PublicKey:
        cache = trust.cache_for(lookup.issuer) if lookup.issuer is not None else None
        if cache is None or lookup.kid is None:  # pragma: no cover - the core checked both
            raise UntrustedChain("token names no configured issuer and key", check="jwt.kid")
        return trust.public_key(cache.get(lookup.kid), now=lookup.now)

    return resolve


def verify_token(raw: bytes | str, trust: TokenTrust, *, now: dt.datetime) -> VerifiedToken:
    """Verify an MAA token at ``now`` against the configured instances or pinned keys."""
    verified = JwsVerifier(
        keys=_keys(trust),
        algorithms=ALGORITHMS,
        issuers=tuple(trust.issuers),
        leeway=trust.leeway,
        max_size=MAX_TOKEN_BYTES,
        required_claims={"iat"},
    ).verify(raw, now=now)
    assert verified.issuer is not None
    assert verified.kid is not None
    assert verified.issued_at is not None
    return VerifiedToken(
        header=verified.header,
        claims=verified.claims,
        issuer=verified.issuer,
        kid=verified.kid,
        issued_at=verified.issued_at,
        expires_at=verified.expires_at,
        not_before=verified.not_before,
    )
