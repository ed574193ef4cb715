"""A cache of JSON Web Key sets for token-issuing attestation services.

Token validators (Azure Attestation, Intel Trust Authority) verify signatures
with keys published by the service they trust.  This module fetches and caches
those key sets; it never verifies a signature and never chooses a key from
the token itself (``jku``, ``x5c`` or ``jwk`` headers are the attacker's
input).  The plugin hands over a ``kid`` and gets back the JWK dict it
configured trust in.

Rules, so that a handshake never waits on the network in the common case:

* a cache hit makes no request;
* an unknown ``kid`` triggers at most one refresh per ``min_refresh_interval``
  (a flood of made-up ``kid`` values cannot turn into a flood of requests);
* concurrent misses share one fetch;
* fetched keys older than ``max_age`` are refreshed before use and, if that
  fails, are not used (a revoked key must not live forever);
* a key service that cannot be reached is :class:`CollateralUnavailable`
  ("keys unavailable"), never an acceptance.

Pinned keys (an offline JWKS) are always trusted and never expire.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from atls_core.errors import (
    ATLSError,
    CollateralUnavailable,
    ConfigurationError,
    UntrustedChain,
)

__all__ = ["JwksCache", "fetch_json", "parse_jwks"]

_MAX_BYTES = 1 << 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse redirects: a key URL is configured, not discovered by following hops."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def fetch_json(url: str, *, timeout: float, max_bytes: int = _MAX_BYTES) -> Any:
    """GET ``url`` and parse JSON; any fault is :class:`CollateralUnavailable`.

    Only ``http``/``https``; no redirects; the body is capped at ``max_bytes``.
    Whether plain ``http`` is acceptable is the caller's decision (tests on
    loopback), this function only refuses other schemes.
    """
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise ConfigurationError(
            "key URL must be http(s)", check="jwt.keys_url", expected="https", actual=scheme
        )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    try:
        with _OPENER.open(request, timeout=timeout) as response:  # scheme checked above
            status = response.status
            if status != 200:
                raise CollateralUnavailable(
                    "keys unavailable: unexpected HTTP status",
                    check="jwt.keys",
                    expected=200,
                    actual=status,
                )
            body = response.read(max_bytes + 1)
    except CollateralUnavailable:
        raise
    except urllib.error.HTTPError as error:
        error.close()  # an HTTPError holds the response socket open
        raise CollateralUnavailable(
            f"keys unavailable: HTTP {error.code} from {url}",
            check="jwt.keys",
            expected=200,
            actual=error.code,
        ) from None
    except (OSError, ValueError) as error:  # URLError, timeouts, resets, bad URLs
        raise CollateralUnavailable(
            f"keys unavailable: {url}: {type(error).__name__}", check="jwt.keys"
        ) from None
    if len(body) > max_bytes:
        raise CollateralUnavailable(
            "keys unavailable: response too large",
            check="jwt.keys",
            expected=f"<= {max_bytes} bytes",
            actual=f"> {max_bytes} bytes",
        )
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise CollateralUnavailable(
            f"keys unavailable: {url} did not return JSON", check="jwt.keys"
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

    Thread-safe.  ``get(kid)`` is the only call a validator needs.
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
        self._source = url or ("pinned keys" if fetch is None else "key source")
        self._min_refresh_interval = float(min_refresh_interval)
        self._max_age = float(max_age)
        self._monotonic = monotonic
        self._pinned: dict[str, Mapping[str, Any]] = {}
        if pinned is not None:
            try:
                self._pinned = parse_jwks(pinned, where="pinned keys")
            except ValueError as error:
                raise ConfigurationError(str(error), check="jwt.pinned_keys") from None
        self._fetched: dict[str, Mapping[str, Any]] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._attempts = 0
        self._last_error: ATLSError | None = None
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
        with self._lock:
            # Someone else may have refreshed while we waited for the lock.
            jwk = self._fresh_lookup(kid)
            if jwk is not None:
                return jwk
            if self._attempts == attempts_seen and self._may_refresh():
                self._refresh_locked()
            elif self._attempts != attempts_seen and self._last_error is not None:
                raise self._fresh_error()
            jwk = self._fresh_lookup(kid)
            if jwk is not None:
                return jwk
            if not self._fetched_is_fresh():
                raise self._fresh_error()
            raise self._unknown(kid)

    def keys(self) -> Mapping[str, Mapping[str, Any]]:
        """All usable keys by ``kid`` (pinned and fresh fetched ones); no request."""
        merged = dict(self._fetched) if self._fetched_is_fresh() else {}
        merged.update(self._pinned)
        return MappingProxyType(merged)

    def refresh(self) -> None:
        """Fetch now if the rate limit allows (warming a cache at start-up)."""
        if self._fetch is None:
            return
        with self._lock:
            if self._may_refresh():
                self._refresh_locked()
        if self._last_error is not None and not self._fetched_is_fresh():
            raise self._fresh_error()

    # -- internals -------------------------------------------------------------

    def _fresh_error(self) -> CollateralUnavailable:
        """A new exception each time: re-raising one instance would grow its traceback."""
        last = self._last_error
        if last is None:
            return CollateralUnavailable(f"keys unavailable from {self._source}", check="jwt.keys")
        return CollateralUnavailable(
            last.reason, check=last.check, expected=last.expected, actual=last.actual
        )

    def _unknown(self, kid: str) -> UntrustedChain:
        return UntrustedChain(
            "unknown signing key",
            check="jwt.kid",
            expected=sorted(self.keys()),
            actual=kid,
        )

    def _fetched_is_fresh(self) -> bool:
        at = self._fetched_at
        return at is not None and self._monotonic() - at < self._max_age

    def _fresh_lookup(self, kid: str) -> Mapping[str, Any] | None:
        if not self._fetched_is_fresh():
            return None
        return self._fetched.get(kid)

    def _may_refresh(self) -> bool:
        if self._attempted_at is None:
            return True
        return self._monotonic() - self._attempted_at >= self._min_refresh_interval

    def _refresh_locked(self) -> None:
        assert self._fetch is not None
        self._attempted_at = self._monotonic()
        self._attempts += 1
        try:
            document = self._fetch()
            keys = parse_jwks(document, where=self._source)
        except CollateralUnavailable as error:
            self._last_error = error
            return
        except (ValueError, OSError) as error:
            self._last_error = CollateralUnavailable(f"keys unavailable: {error}", check="jwt.keys")
            return
        self._fetched = keys
        self._fetched_at = self._monotonic()
        self._last_error = None
