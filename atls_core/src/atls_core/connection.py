"""``HTTPAConnection``: ``http.client.HTTPSConnection`` over an attested connection.

Drop-in for code written against ``http.client``: the TLS context is an
:class:`~atls_core.tls.ATLSContext`, so ``connect()`` returns only after the
server's evidence was appraised, and ``attestation_result`` tells the caller
what was accepted.
"""

from __future__ import annotations

import http.client
from typing import Any

from atls_core.config import ATLSConfig
from atls_core.errors import ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext, result_of

__all__ = ["HTTPAConnection"]


class HTTPAConnection(http.client.HTTPSConnection):
    """An HTTPS connection that speaks only to an appraised TEE.

    Give exactly one of ``context`` (an :class:`ATLSContext`), ``config`` or
    ``validator``; other arguments are those of ``HTTPSConnection``.
    """

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        context: ATLSContext | None = None,
        config: ATLSConfig | None = None,
        validator: AppraiserLike | None = None,
        **kwargs: Any,
    ) -> None:
        given = sum(x is not None for x in (context, config, validator))
        if given != 1:
            raise ConfigurationError(
                "HTTPAConnection needs exactly one of context=, config= or validator=",
                check="http.connection",
            )
        if context is None:
            context = (
                ATLSContext(config) if config is not None else ATLSContext(validator=validator)
            )
        if not isinstance(context, ATLSContext):
            raise ConfigurationError(
                "HTTPAConnection needs an ATLSContext", check="http.connection"
            )
        super().__init__(host, port, context=context, **kwargs)

    @property
    def attestation_result(self) -> AttestationResult | None:
        """The result of the current connection's appraisal (``None`` before connecting)."""
        return result_of(self.sock) if self.sock is not None else None
