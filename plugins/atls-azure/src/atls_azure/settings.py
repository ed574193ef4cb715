"""The settings of the one MAA token path, declared once (:mod:`atls_core.settings`).

The specs accept exactly these keys (``spec_inputs(MaaTokenSettings)``;
``azure.aci`` adds ``wire``, :class:`AciSettings`);
:func:`atls_azure.trust.build_trust` turns them into key caches.  Cheap to
import: the specs read the names at plugin registration.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from atls_core.settings import (
    Invalid,
    duration,
    existing_path,
    flag,
    list_of,
    seconds,
    setting,
    settings_class,
    table,
    text,
    url,
)

if TYPE_CHECKING:  # an annotation only: a listing of plugins need not import pathlib
    from pathlib import Path

__all__ = [
    "ACI_WIRE_FORMS",
    "DEFAULT_KEYS_MAX_AGE",
    "DEFAULT_LEEWAY",
    "MAX_LEEWAY",
    "AciIssuerSettings",
    "AciSettings",
    "MaaTokenSettings",
]

DEFAULT_LEEWAY = dt.timedelta(seconds=30)
MAX_LEEWAY = 600.0
"""A clock-skew allowance, not a validity extension: larger is refused."""

DEFAULT_KEYS_MAX_AGE = 3600.0
"""How long fetched signing keys are used before the instance is asked again: a key MAA
withdraws (rotated out, or compromised) stops being trusted within this time."""

_ORIGIN = url(origin=True, http_knob="allow_http_loopback")


@settings_class
class MaaTokenSettings:
    """Whom to trust for MAA tokens: instances (keys fetched) or pinned keys for issuers."""

    instances: tuple[str, ...] = setting(list_of(_ORIGIN), default=())
    """MAA instances (``https://x.attest.azure.net``) whose published keys are trusted."""
    issuers: tuple[str, ...] = setting(list_of(_ORIGIN), default=())
    """The issuers pinned keys (``keys_file``/``keys``) sign for."""
    keys_file: Path | None = setting(existing_path(), default=None)
    keys: Mapping[str, Any] | None = setting(table(), default=None)
    """An inline JWK set (instead of ``keys_file``)."""
    leeway: dt.timedelta = setting(duration(at_most=MAX_LEEWAY), default=DEFAULT_LEEWAY)
    timeout: float = setting(seconds(), default=5.0)
    min_refresh_interval: float = setting(seconds(positive=False), default=60.0)
    keys_max_age: float = setting(seconds(), default=DEFAULT_KEYS_MAX_AGE)
    """Seconds an instance's fetched keys are used; then they are fetched again, and not
    used at all while that fails ("keys unavailable")."""
    allow_http_loopback: bool = setting(flag(), default=False, test_only=True)
    """Tests only: plain http to a loopback stand-in instance."""

    def __attrs_post_init__(self) -> None:
        if self.keys_max_age < self.min_refresh_interval:
            # Else keys expire while a refresh is not yet allowed: refusals in between.
            raise Invalid(
                "must not be shorter than min_refresh_interval",
                setting="keys_max_age",
                expected=f">= {self.min_refresh_interval:g} s",
                actual=self.keys_max_age,
            )
        pinned = self.keys is not None or self.keys_file is not None
        if self.keys is not None and self.keys_file is not None:
            raise Invalid("give keys or keys_file, not both")
        if pinned and not self.issuers:
            raise Invalid(
                "pinned keys need the issuers they sign for (settings.issuers, CLI --issuer)"
            )
        if self.issuers and not pinned:
            raise Invalid(
                "is for pinned keys, but no keys_file or keys is given", setting="issuers"
            )
        if not self.instances and not pinned:
            raise Invalid(
                "configure MAA instances (instances = [...]) or a pinned key set "
                "(keys_file + issuers); keys are never taken from the token"
            )


ACI_WIRE_FORMS = {"atls": "atls-label", "pyatls": "base64-line"}
"""``azure.aci`` setting ``wire``: how the client sends its nonce in SNI (an
``atls_core.binding.SNI_FORMS`` name).  ``pyatls`` is for servers written for
opaque-systems' atls-python, which read only ``base64.encodebytes(nonce)`` as the
whole server name; the runtime data and token are the same either way."""


@settings_class
class AciSettings(MaaTokenSettings):
    """``azure.aci``: the token settings, and how its clients send their nonce."""

    wire: str = setting(
        text(choices=ACI_WIRE_FORMS), default="atls", hint="it names how the nonce travels in SNI"
    )


@settings_class
class AciIssuerSettings:
    """The ``azure.aci`` issuer: where the SKR sidecar listens and which MAA it asks."""

    sidecar_url: str = setting(url(plain_http=True), default="http://localhost:8080")
    """The sidecar beside the container (plain http on the pod's loopback; the token it
    returns is signed by MAA)."""
    maa_endpoint: str = setting(
        text(), hint="the MAA instance's host, e.g. sharedeus2.eus2.attest.azure.net"
    )
    timeout: float = setting(seconds(), default=30.0)
