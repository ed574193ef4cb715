"""Intel Trust Authority tokens through the one JOSE layer (:mod:`atls_core.jose`).

What is ITA-specific lives here:

1. ``alg`` is pinned to PS384/RS256 (or a configured subset), ``kid`` is
   required, a present ``typ`` must be ``JWT``;
2. the key comes from the configured key set (:class:`atls_core.jwks.JwksCache`:
   no network on a hit, one rate-limited refresh for an unknown ``kid``) and is
   used only after its ``x5c`` chain verified to a configured root
   (:mod:`atls_ita.trust`); that verdict is cached for the chain's window.
   Key material in the token header (``jku``, ``x5u``, ``x5c``, ``jwk``) is
   ignored: real ITA tokens carry ``jku`` and it is never followed;
3. ``iss`` equals the configured issuer; ``exp`` and ``iat`` are required.

Size, format, header rules, signature and times are the core's, with its
``jwt.*`` check names: ``exp`` is strict, the leeway only covers ``nbf`` and
``iat`` in the future, because the result must not outlive the token.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa

from atls_core.errors import ConfigurationError, UntrustedChain
from atls_core.jose import JwsVerifier, KeyLookup
from atls_core.jwks import JwksCache
from atls_ita.algorithms import ALGORITHMS
from atls_ita.trust import ChainTrust, VerifiedChain, check_jwk_matches, parse_x5c

__all__ = ["ALGORITHMS", "MAX_TOKEN_BYTES", "TokenVerifier", "VerifiedToken"]

"""The only algorithms ITA signs with; a configuration may narrow, never widen."""
MAX_TOKEN_BYTES = 64 * 1024


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
        if not set(algorithms) <= set(ALGORITHMS):
            raise ConfigurationError(
                "ITA signs with PS384 or RS256 only",
                check="config.settings",
                expected=list(ALGORITHMS),
                actual=list(algorithms),
            )
        self.keys = keys
        self.trust = trust
        self.issuer = issuer
        self.algorithms = algorithms
        self.leeway = leeway
        # Validates the configuration now; each call swaps in its own resolver.
        self._jws = JwsVerifier(
            keys=self._no_keys,
            algorithms=algorithms,
            issuers=(issuer,),
            leeway=leeway,
            max_size=MAX_TOKEN_BYTES,
            required_claims={"iat"},
            typ="JWT",
        )
        self._keys: dict[str, tuple[Mapping[str, Any], rsa.RSAPublicKey, VerifiedChain]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _no_keys(lookup: KeyLookup) -> None:
        return None

    # -- key ---------------------------------------------------------------------------
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
        """Verify ``token`` at ``now``; the signer is the chain that vouched for the key."""
        chains: list[VerifiedChain] = []

        def resolve(lookup: KeyLookup) -> rsa.RSAPublicKey:
            if lookup.kid is None:  # pragma: no cover - the core requires kid
                raise UntrustedChain("the token names no signing key (kid)", check="jwt.kid")
            key, chain = self.signing_key(lookup.kid, lookup.alg, now=lookup.now)
            chains.append(chain)
            return key

        verified = attrs.evolve(self._jws, keys=resolve).verify(token, now=now)
        assert verified.issued_at is not None
        assert len(chains) == 1
        return VerifiedToken(
            header=verified.header,
            claims=verified.claims,
            issued_at=verified.issued_at,
            expires_at=verified.expires_at,
            not_before=verified.not_before,
            signer=chains[0].leaf.subject.rfc4514_string(),
            signer_valid_until=chains[0].valid_until,
        )
