"""Validator settings: where the keys are, which root anchors them, whom to believe.

atls-ita ships no Intel Trust Authority root certificate: its published form
could not be obtained with confidence when this was written, and a wrong
pinned root is worse than none.  ``root_ca`` is therefore required; the
README says how to obtain the real one.

The settings are declared once, on the core's rules (:mod:`atls_core.settings`);
the specs accept exactly :data:`VALIDATOR_SETTINGS`.  Cheap to import: the
specs read the names at plugin registration, so the token and chain code is
imported when a verifier is built.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from atls_core.errors import ConfigurationError
from atls_core.secret import Secret
from atls_core.settings import (
    Invalid,
    duration,
    existing_path,
    flag,
    list_of,
    load,
    path,
    seconds,
    secret,
    setting,
    setting_names,
    settings_class,
    text,
    url,
)
from atls_ita.algorithms import ALGORITHMS

if TYPE_CHECKING:
    from pathlib import Path  # annotations only: a listing of plugins need not import it

    from atls_ita.token import TokenVerifier

__all__ = [
    "ALGORITHMS",
    "API_KEY_HOWTO",
    "DEFAULT_API_URL",
    "DEFAULT_ISSUER",
    "DEFAULT_KEYS_MAX_AGE",
    "ISSUER_SETTINGS",
    "MAX_LEEWAY",
    "VALIDATOR_SETTINGS",
    "VALIDATOR_TEST_SETTINGS",
    "ItaIssuerSettings",
    "ItaValidatorSettings",
    "api_key_setting",
    "api_url_setting",
]

DEFAULT_ISSUER = "Intel Trust Authority"
"""The ``iss`` of ITA's tokens."""
MAX_LEEWAY = 600.0
"""Clock skew tolerated at most: a larger leeway would keep expired tokens alive."""
DEFAULT_KEYS_MAX_AGE = 3600.0
"""How long fetched signing keys are used before ITA is asked again: a key ITA withdraws
(rotated out, or compromised) stops being trusted within this time."""

_ROOT_HINT = (
    "atls-ita ships no Intel Trust Authority root; name the ITA root certificate "
    "(PEM or DER) you trust"
)
_SERVICE = url(http_knob="allow_http_loopback")

DEFAULT_API_URL = "https://api.trustauthority.intel.com"


@settings_class
class _IssuerService:
    api_url: str = setting(_SERVICE, default=DEFAULT_API_URL)
    allow_http_loopback: bool = setting(flag(), default=False, test_only=True)
    """Tests only: plain http to a loopback stand-in service, as for the validators."""


def api_url_setting(settings: Mapping[str, Any]) -> str:
    """The issuer's ``api_url``: https, or plain http to loopback only with the
    tests-only ``allow_http_loopback = true`` (the API key travels on this URL)."""
    return load(_IssuerService, settings, partial=True).api_url


API_KEY_HOWTO = (
    'in TOML write api_key = { "$env" = "ITA_API_KEY" } (the key in that environment '
    'variable) or api_key = { "$file" = "/path/to/ita-api-key" } (the key in that file); '
    'in code pass atls_core.Secret(value, "where it came from")'
)
"""How to hand the issuer its API key; repeated in every refusal so nobody has to guess."""


@settings_class
class _IssuerKey(_IssuerService):
    api_key: Secret = setting(secret(), hint=API_KEY_HOWTO)


def api_key_setting(settings: Mapping[str, Any]) -> Secret:
    """The issuer's ``api_key``: a :class:`Secret` only, so it never sits in a config file
    in plain text and never shows in a repr or log."""
    return load(_IssuerKey, settings, partial=True).api_key


@settings_class
class ItaIssuerSettings(_IssuerKey):
    """Everything the ``ita.tdx`` issuer reads: the service, its key, what to ask for."""

    policy_ids: tuple[str, ...] = setting(list_of(text()), default=())
    policy_must_match: bool = setting(flag(), default=False)
    token_signing_alg: str = setting(text(choices=ALGORITHMS), default="PS384")
    configfs_root: Path | None = setting(path(), default=None)
    """``None``: the kernel's configfs-tsm (atls-tdx's default root)."""
    timeout: float = setting(seconds(), default=30.0)


ISSUER_SETTINGS = setting_names(ItaIssuerSettings)
"""The keys the ``ita.tdx`` issuer accepts; ``allow_http_loopback`` is its tests-only knob."""


@settings_class
class ItaValidatorSettings:
    root_ca: Path = setting(existing_path(), hint=_ROOT_HINT)
    jwks_url: str | None = setting(_SERVICE, default=None)
    portal_url: str | None = setting(_SERVICE, default=None)
    """The ITA portal: keys are fetched from ``<portal_url>/certs``."""
    jwks_file: Path | None = setting(existing_path(), default=None)
    issuer: str = setting(text(), default=DEFAULT_ISSUER)
    algorithms: tuple[str, ...] | None = setting(list_of(text(), non_empty=True), default=None)
    """A subset of the algorithms ITA signs with; ``None``: all of them."""
    leeway: dt.timedelta = setting(duration(at_most=MAX_LEEWAY), default=dt.timedelta(seconds=60))
    check_crl: bool = setting(flag(), default=True)
    crl_timeout: float = setting(seconds(), default=5.0)
    jwks_timeout: float = setting(seconds(), default=5.0)
    jwks_min_refresh: float = setting(seconds(positive=False), default=60.0)
    keys_max_age: float = setting(seconds(), default=DEFAULT_KEYS_MAX_AGE)
    """Seconds fetched signing keys are used; then they are fetched again, and not used
    at all while that fails ("keys unavailable").  Pinned keys (``jwks_file``) never expire."""
    allow_http_loopback: bool = setting(flag(), default=False, test_only=True)
    """Tests only: plain http to a loopback stand-in service."""

    def __attrs_post_init__(self) -> None:
        sources = [n for n in ("jwks_url", "portal_url", "jwks_file") if getattr(self, n)]
        if len(sources) != 1:
            raise Invalid(
                "set exactly one of jwks_url, portal_url, jwks_file",
                expected=1,
                actual=sources,
            )
        if self.keys_max_age < self.jwks_min_refresh:
            # Else keys expire while a refresh is not yet allowed: refusals in between.
            raise Invalid(
                "must not be shorter than jwks_min_refresh",
                setting="keys_max_age",
                expected=f">= {self.jwks_min_refresh:g} s",
                actual=self.keys_max_age,
            )
        if self.algorithms is not None and not set(self.algorithms) <= set(ALGORITHMS):
            raise Invalid(
                "must be a subset of what ITA signs with",
                setting="algorithms",
                expected=list(ALGORITHMS),
                actual=list(self.algorithms),
            )

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ItaValidatorSettings:
        return load(cls, settings)

    @property
    def keys_url(self) -> str | None:
        """Where the keys are fetched from (``None``: the pinned ``jwks_file``)."""
        if self.portal_url is not None:
            return self.portal_url.rstrip("/") + "/certs"
        return self.jwks_url

    def _pinned(self) -> Mapping[str, Any] | None:
        if self.jwks_file is None:
            return None
        try:
            document: Mapping[str, Any] = json.loads(self.jwks_file.read_text())
        except OSError as exc:
            raise ConfigurationError(
                f"settings.jwks_file cannot be read: {exc.strerror}",
                check="config.settings",
                actual=str(self.jwks_file),
            ) from None
        except ValueError:
            raise ConfigurationError(
                "settings.jwks_file is not JSON",
                check="config.settings",
                actual=str(self.jwks_file),
            ) from None
        return document

    def build_verifier(self, *, monotonic: Callable[[], float] | None = None) -> TokenVerifier:
        """Read the root and the pinned keys now: configuration errors surface at start-up.

        ``monotonic`` is the key cache's clock (tests move it past ``keys_max_age``).
        """
        import time

        from atls_core.jwks import JwksCache
        from atls_ita.token import TokenVerifier
        from atls_ita.trust import ChainTrust, CrlCache, load_roots

        trust = ChainTrust(
            load_roots(self.root_ca),
            crls=CrlCache(timeout=self.crl_timeout) if self.check_crl else None,
        )
        keys = JwksCache(
            url=self.keys_url,
            pinned=self._pinned(),
            timeout=self.jwks_timeout,
            min_refresh_interval=self.jwks_min_refresh,
            max_age=self.keys_max_age,
            monotonic=monotonic or time.monotonic,
        )
        return TokenVerifier(
            keys=keys,
            trust=trust,
            issuer=self.issuer,
            algorithms=self.algorithms or ALGORITHMS,
            leeway=self.leeway,
        )


VALIDATOR_SETTINGS = setting_names(ItaValidatorSettings)
"""The keys ``ita.tdx``/``ita.sgx`` accept, as :class:`ItaValidatorSettings` declares them."""
VALIDATOR_TEST_SETTINGS = setting_names(ItaValidatorSettings, tests_only=True)
"""Its tests-only knobs (``allow_http_loopback``): refused unless configuration allows
insecure test validators, and a result appraised with one is at best ``warning``."""
