"""Validator settings: where the keys are, which root anchors them, whom to believe.

atls-ita ships no Intel Trust Authority root certificate: its published form
could not be obtained with confidence when this was written, and a wrong
pinned root is worse than none.  ``root_ca`` is therefore required; the
README says how to obtain the real one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from atls_core.config import Secret
from atls_core.errors import ConfigurationError
from atls_core.jwks import JwksCache
from atls_ita.specs import VALIDATOR_SETTINGS
from atls_ita.token import ALGORITHMS, TokenVerifier
from atls_ita.trust import ChainTrust, CrlCache, load_roots

__all__ = [
    "API_KEY_HOWTO",
    "DEFAULT_ISSUER",
    "VALIDATOR_SETTINGS",
    "ItaValidatorSettings",
    "api_key_setting",
    "check_service_url",
]

DEFAULT_ISSUER = "Intel Trust Authority"


def _where(name: str) -> str:
    return f"settings.{name}"


def _error(name: str, why: str, actual: Any = None) -> ConfigurationError:
    return ConfigurationError(f"{_where(name)} {why}", check="config.settings", actual=actual)


def check_service_url(url: str, name: str) -> str:
    """https, or plain http to a loopback address (a stand-in service in tests)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname:
        host = parts.hostname
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if loopback:
            return url
    raise _error(name, "must be an https URL (plain http only to loopback)", url)


API_KEY_HOWTO = (
    'in TOML write api_key = { "$env" = "ITA_API_KEY" } (the key in that environment '
    'variable) or api_key = { "$file" = "/path/to/ita-api-key" } (the key in that file); '
    'in code pass atls_core.Secret(value, "where it came from")'
)
"""How to hand the issuer its API key; repeated in every refusal so nobody has to guess."""


def api_key_setting(settings: Mapping[str, Any]) -> Secret:
    """The issuer's ``api_key``: a :class:`Secret` only, so it never sits in a config file
    in plain text and never shows in a repr or log."""
    value = settings.get("api_key")
    if isinstance(value, Secret):
        return value
    if value is None:
        raise ConfigurationError(
            f"settings.api_key is required: {API_KEY_HOWTO}", check="config.settings"
        )
    raise ConfigurationError(
        f"settings.api_key must not be plain text: {API_KEY_HOWTO}",
        check="config.settings",
        actual=type(value).__name__,
    )


def _number(
    settings: Mapping[str, Any], name: str, default: float, *, positive: bool = False
) -> float:
    value = settings.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise _error(name, "must be a non-negative number", value)
    if positive and value == 0:
        raise _error(name, "must be positive", value)
    return float(value)


MAX_LEEWAY = 600.0
"""Clock skew tolerated at most: a larger leeway would keep expired tokens alive."""


def _leeway(settings: Mapping[str, Any]) -> float:
    value = _number(settings, "leeway", 60.0)
    if value > MAX_LEEWAY:
        raise _error("leeway", f"must be at most {MAX_LEEWAY:.0f} seconds", value)
    return value


def _text(value: Any, name: str) -> str:
    if isinstance(value, Secret):
        return value.reveal()
    if not isinstance(value, str) or not value:
        raise _error(name, "must be a non-empty string", value)
    return value


@attrs.frozen(kw_only=True)
class ItaValidatorSettings:
    jwks_url: str | None
    jwks_file: Path | None
    root_ca: Path
    issuer: str
    algorithms: tuple[str, ...]
    leeway: dt.timedelta
    check_crl: bool
    crl_timeout: float
    jwks_timeout: float
    jwks_min_refresh: float

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> ItaValidatorSettings:
        unknown = sorted(set(settings) - set(VALIDATOR_SETTINGS))
        if unknown:
            raise _error(str(unknown[0]), "is not an ita setting", sorted(VALIDATOR_SETTINGS))
        sources = [n for n in ("jwks_url", "portal_url", "jwks_file") if settings.get(n)]
        if len(sources) != 1:
            raise ConfigurationError(
                "set exactly one of settings.jwks_url, settings.portal_url, settings.jwks_file",
                check="config.settings",
                actual=sources,
            )
        jwks_url = None
        jwks_file = None
        if "jwks_url" in sources:
            jwks_url = check_service_url(_text(settings["jwks_url"], "jwks_url"), "jwks_url")
        elif "portal_url" in sources:
            portal = check_service_url(_text(settings["portal_url"], "portal_url"), "portal_url")
            jwks_url = portal.rstrip("/") + "/certs"
        else:
            jwks_file = Path(_text(settings["jwks_file"], "jwks_file")).expanduser()
        root = settings.get("root_ca")
        if not root:
            raise ConfigurationError(
                "settings.root_ca is required: atls-ita ships no Intel Trust Authority root; "
                "name the ITA root certificate (PEM or DER) you trust",
                check="config.settings",
            )
        algorithms = settings.get("algorithms", ALGORITHMS)
        if isinstance(algorithms, str):
            algorithms = (algorithms,)
        algorithms = tuple(algorithms)
        if not algorithms or not set(algorithms) <= set(ALGORITHMS):
            raise _error(
                "algorithms", f"must be a non-empty subset of {list(ALGORITHMS)}", algorithms
            )
        check_crl = settings.get("check_crl", False)
        if not isinstance(check_crl, bool):
            raise _error("check_crl", "must be true or false", check_crl)
        return cls(
            jwks_url=jwks_url,
            jwks_file=jwks_file,
            root_ca=Path(_text(root, "root_ca")).expanduser(),
            issuer=_text(settings.get("issuer", DEFAULT_ISSUER), "issuer"),
            algorithms=algorithms,
            leeway=dt.timedelta(seconds=_leeway(settings)),
            check_crl=check_crl,
            crl_timeout=_number(settings, "crl_timeout", 5.0, positive=True),
            jwks_timeout=_number(settings, "jwks_timeout", 5.0, positive=True),
            jwks_min_refresh=_number(settings, "jwks_min_refresh", 60.0),
        )

    def _pinned(self) -> Mapping[str, Any] | None:
        if self.jwks_file is None:
            return None
        try:
            document: Mapping[str, Any] = json.loads(self.jwks_file.read_text())
        except OSError as exc:
            raise _error(
                "jwks_file", f"cannot be read: {exc.strerror}", str(self.jwks_file)
            ) from None
        except ValueError:
            raise _error("jwks_file", "is not JSON", str(self.jwks_file)) from None
        return document

    def build_verifier(self) -> TokenVerifier:
        """Read the root and the pinned keys now: configuration errors surface at start-up."""
        trust = ChainTrust(
            load_roots(self.root_ca),
            crls=CrlCache(timeout=self.crl_timeout) if self.check_crl else None,
        )
        keys = JwksCache(
            url=self.jwks_url,
            pinned=self._pinned(),
            timeout=self.jwks_timeout,
            min_refresh_interval=self.jwks_min_refresh,
        )
        return TokenVerifier(
            keys=keys,
            trust=trust,
            issuer=self.issuer,
            algorithms=self.algorithms,
            leeway=self.leeway,
        )
