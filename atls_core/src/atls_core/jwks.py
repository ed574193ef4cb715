"""A cache of JSON Web Key sets for token-issuing attestation services.

Token validators (Azure Attestation, Intel Trust Authority) verify signatures
with keys published by the service they trust.  This module fetches and caches
those key sets; it never verifies a signature and never chooses a key from
the token itself (``jku``, ``x5c`` or ``jwk`` headers are the attacker's
input).  The plugin hands over a ``kid`` and gets back the JWK dict it
configured trust in.

Rules, so that a handshake never waits on the network in the common case and
never longer than one fetch deadline otherwise:

* a cache hit makes no request and takes no lock;
* an unknown ``kid`` triggers at most one refresh per ``min_refresh_interval``
  (a flood of made-up ``kid`` values cannot turn into a flood of requests);
* concurrent misses share one fetch, and no lock is held while it runs: a
  slow or failing key service delays only the callers that need new keys,
  and them only until the fetch's total deadline (:func:`atls_core.fetch.fetch`);
* fetched keys older than ``max_age`` are refreshed before use and, if that
  fails, are not used (a revoked key must not live forever);
* a key service that cannot be reached is :class:`CollateralUnavailable`
  ("keys unavailable"), never an acceptance; an unknown ``kid`` whose refresh
  failed is "keys unavailable" too (the current set could not be consulted).

Pinned keys (an offline JWKS) are always trusted and never expire.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from types import MappingProxyType
from typing import Any

from atls_core.errors import (
    ATLSError,
    CollateralUnavailable,
    ConfigurationError,
    UntrustedChain,
)
from atls_core.fetch import fetch
from atls_core.redact import redact_url

__all__ = ["JwksCache", "fetch_json", "parse_jwks"]

_MAX_BYTES = 1 << 20


def fetch_json(url: str, *, timeout: float, max_bytes: int = _MAX_BYTES) -> Any:
    """GET ``url`` and parse JSON; any fault is :class:`CollateralUnavailable`.

    ``timeout`` bounds the whole fetch; no redirects; the body is capped at
    ``max_bytes``.  Whether plain ``http`` is acceptable is the caller's
    decision (tests on loopback), this function only refuses other schemes.
    Network faults are :class:`ServiceUnavailable` (a CollateralUnavailable).
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            "key URL must be http(s)", check="jwt.keys_url", expected="https", actual=scheme
        )
    response = fetch(
        url,
        timeout=timeout,
        headers={"Accept": "application/json"},
        expect=(200,),
        max_bytes=max_bytes,
        name="keys",
        check="jwt.keys",
    )
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CollateralUnavailable(
            f"keys unavailable: {redact_url(url)} did not return JSON", check="jwt.keys"
        ) from None


def parse_jwks(document: Any, *, where: str) -> dict[str, Mapping[str, Any]]:
    """``{"keys": [...]}`` -> ``{kid: jwk}``; raises ``ValueError`` naming the problem.

    Keys without a string ``kid`` cannot be selected and are skipped; two
    different keys under one ``kid`` make the set ambiguous and are refused.
    """
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise ValueError(f"{where}: not a JWK set (expected an object with a 'keys' list)")
    keys: dict[str, Mapping[str, Any]] = {}
    for index, jwk in enumerate(document["keys"]):
        if not isinstance(jwk, Mapping):
            raise ValueError(f"{where}: keys[{index}] is not an object")
        kid = jwk.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        if not isinstance(jwk.get("kty"), str):
            raise ValueError(f"{where}: key {kid!r} has no 'kty'")
        frozen: Mapping[str, Any] = MappingProxyType(copy.deepcopy(dict(jwk)))
        if kid in keys and keys[kid] != frozen:
            raise ValueError(f"{where}: two different keys share kid {kid!r}")
        keys[kid] = frozen
    return keys


class JwksCache:
    """Signing keys of one trusted source (a URL, a fetch function) and/or a pinned set.

    Thread-safe.  ``get(kid)`` is the only call a validator needs.  The lock
    guards bookkeeping only; the fetch runs outside it (one at a time, shared
    by every caller that needs it).
    """

    def __init__(
        self,
        *,
        url: str | None = None,
        fetch: Callable[[], Mapping[str, Any]] | None = None,
        pinned: Mapping[str, Any] | None = None,
        timeout: float = 5.0,
        min_refresh_interval: float = 60.0,
        max_age: float = 86400.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if url is not None and fetch is not None:
            raise ConfigurationError("give a key URL or a fetch function, not both", check="jwt")
        if url is None and fetch is None and pinned is None:
            raise ConfigurationError(
                "no signing keys: configure a key URL or a pinned key set", check="jwt.keys"
            )
        if timeout <= 0 or min_refresh_interval < 0 or max_age <= 0:
            raise ConfigurationError(
                "timeout and max_age must be positive, min_refresh_interval not negative",
                check="jwt",
            )
        if url is not None:
            source_url = url

            def fetch_url() -> Mapping[str, Any]:
                document: Mapping[str, Any] = fetch_json(source_url, timeout=timeout)
                return document

            fetch = fetch_url
        self._fetch = fetch
        self._source = (
            redact_url(url) if url else ("pinned keys" if fetch is None else "key source")
        )
        self._min_refresh_interval = float(min_refresh_interval)
        self._max_age = float(max_age)
        self._monotonic = monotonic
        self._pinned: dict[str, Mapping[str, Any]] = {}
        if pinned is not None:
            try:
                self._pinned = parse_jwks(pinned, where="pinned keys")
            except ValueError as error:
                raise ConfigurationError(str(error), check="jwt.pinned_keys") from None
        # Replaced as a whole, so lock-free readers see a consistent pair.
        self._fetched: tuple[Mapping[str, Mapping[str, Any]], float | None] = ({}, None)
        self._attempted_at: float | None = None
        self._attempts = 0
        self._last_error: ATLSError | None = None
        self._in_flight: Future[None] | None = None
        self._lock = threading.Lock()

    # -- public ----------------------------------------------------------------

    def get(self, kid: str) -> Mapping[str, Any]:
        """The JWK for ``kid``.

        Unknown ``kid`` -> at most one rate-limited refresh, then
        :class:`UntrustedChain` (check ``jwt.kid``, "unknown signing key");
        source down -> :class:`CollateralUnavailable` ("keys unavailable").
        """
        pinned = self._pinned.get(kid)
        if pinned is not None:
            return pinned
        if self._fetch is None:
            raise self._unknown(kid)
        attempts_seen = self._attempts
        jwk = self._fresh_lookup(kid)
        if jwk is not None:
            return jwk
        failed = self._refresh(attempts_seen)
        jwk = self._fresh_lookup(kid)
        if jwk is not None:
            return jwk
        if failed or not self._fetched_is_fresh():
            raise self._fresh_error()
        raise self._unknown(kid)

    def keys(self) -> Mapping[str, Mapping[str, Any]]:
        """All usable keys by ``kid`` (pinned and fresh fetched ones); no request."""
        fetched, at = self._fetched
        merged = dict(fetched) if self._is_fresh(at) else {}
        merged.update(self._pinned)
        return MappingProxyType(merged)

    def refresh(self) -> None:
        """Fetch now if the rate limit allows (warming a cache at start-up)."""
        if self._fetch is None:
            return
        self._refresh(self._attempts)
        if self._last_error is not None and not self._fetched_is_fresh():
            raise self._fresh_error()

    # -- internals -------------------------------------------------------------

    def _refresh(self, attempts_seen: int) -> bool:
        """Make sure a refresh attempt newer than ``attempts_seen`` has ended, if allowed.

        Joins the one in flight, or starts one when the rate limit allows and
        nobody attempted since the caller looked.  Returns whether that attempt
        failed (False when none was due).
        """
        with self._lock:
            flight = self._in_flight
            leader = False
            if flight is None:
                if self._attempts != attempts_seen:
                    return self._last_error is not None
                if not self._may_refresh():
                    return False
                flight = self._in_flight = Future()
                leader = True
                self._attempted_at = self._monotonic()
                self._attempts += 1
        if not leader:
            flight.result()
            with self._lock:
                return self._last_error is not None
        # What an unexpected exception from the fetch function leaves behind.
        outcome: dict[str, Mapping[str, Any]] | ATLSError = CollateralUnavailable(
            f"keys unavailable from {self._source}: the key source failed", check="jwt.keys"
        )
        try:
            outcome = self._run_fetch()
        finally:
            with self._lock:
                self._in_flight = None
                if isinstance(outcome, ATLSError):
                    self._last_error = outcome
                else:
                    self._fetched = (MappingProxyType(outcome), self._monotonic())
                    self._last_error = None
                failed = self._last_error is not None
            flight.set_result(None)
        return failed

    def _run_fetch(self) -> dict[str, Mapping[str, Any]] | ATLSError:
        """The fetched keys or the reason there are none; runs without the lock."""
        assert self._fetch is not None
        try:
            document = self._fetch()
            return parse_jwks(document, where=self._source)
        except CollateralUnavailable as error:
            return error
        except (ValueError, OSError) as error:
            return CollateralUnavailable(f"keys unavailable: {error}", check="jwt.keys")

    def _fresh_error(self) -> ATLSError:
        last = self._last_error
        if last is None:
            return CollateralUnavailable(f"keys unavailable from {self._source}", check="jwt.keys")
        return last.fresh()

    def _unknown(self, kid: str) -> UntrustedChain:
        return UntrustedChain(
            "unknown signing key",
            check="jwt.kid",
            expected=sorted(self.keys()),
            actual=kid,
        )

    def _is_fresh(self, at: float | None) -> bool:
        return at is not None and self._monotonic() - at < self._max_age

    def _fetched_is_fresh(self) -> bool:
        return self._is_fresh(self._fetched[1])

    def _fresh_lookup(self, kid: str) -> Mapping[str, Any] | None:
        fetched, at = self._fetched
        if not self._is_fresh(at):
            return None
        return fetched.get(kid)

    def _may_refresh(self) -> bool:
        if self._attempted_at is None:
            return True
        return self._monotonic() - self._attempted_at >= self._min_refresh_interval
