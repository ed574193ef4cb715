"""The one way the HTTP integrations turn their arguments into an :class:`ATLSContext`.

``HTTPAConnection``, ``ATLSAdapter`` and the httpx transports each take a
``config``, a ``validator`` or a ready ``context``: exactly one, so a caller
never wonders which of two won.
"""

from __future__ import annotations

from atls_core.config import ATLSConfig
from atls_core.errors import ConfigurationError
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext

__all__ = ["context_from"]


def context_from(
    config: ATLSConfig | None,
    validator: AppraiserLike | None,
    context: ATLSContext | None,
    *,
    user: str,
    check: str,
) -> ATLSContext:
    """``context``, or one made from ``config`` or ``validator``; ``user`` names the caller."""
    if sum(x is not None for x in (config, validator, context)) != 1:
        raise ConfigurationError(
            f"{user} needs exactly one of config, validator= or context=", check=check
        )
    if context is not None:
        return context
    return ATLSContext(config) if config is not None else ATLSContext(validator=validator)
