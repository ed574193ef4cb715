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
from atls_core.contexts import context_from
from atls_core.errors import ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext, result_of

__all__ = ["HTTPAConnection", "KeepsResult"]


class KeepsResult:
    """Keeps a connection's appraisal result once the socket is gone.

    ``http.client`` and urllib3 drop the socket (``sock = None``) when a response
    says "Connection: close" or is HTTP/1.0, so the result is taken when the
    connection is made.  Mix in before the connection class.
    """

    sock: Any
    _atls_result: AttestationResult | None = None

    def connect(self) -> None:
        self._atls_result = None
        super().connect()  # type: ignore[misc]  # the connection class mixed in after
        self._atls_result = result_of(self.sock)

    @property
    def attestation_result(self) -> AttestationResult | None:
        """The result of the latest connection's appraisal (``None`` before connecting).

        It stays readable after the server closed the connection.
        """
        if self.sock is not None:
            current = result_of(self.sock)
            if current is not None:
                return current
        return self._atls_result


class HTTPAConnection(KeepsResult, http.client.HTTPSConnection):
    """An HTTPS connection that speaks only to an appraised TEE.

    Give exactly one of ``context`` (an :class:`ATLSContext`), ``config`` or
    ``validator``; other arguments are those of ``HTTPSConnection``.
    """

    def __init__(
        self,
        host: str,
        port: int | ATLSContext | None = None,
        *,
        context: ATLSContext | None = None,
        config: ATLSConfig | None = None,
        validator: AppraiserLike | None = None,
        **kwargs: Any,
    ) -> None:
        if isinstance(port, ATLSContext) and context is None:
            # pyatls's call shape, HTTPAConnection(host, context): never read a context as a port.
            context, port = port, None
        elif port is not None and not isinstance(port, int):
            raise ConfigurationError(
                f"HTTPAConnection port must be an int, not {type(port).__name__}",
                check="http.connection",
            )
        context = context_from(
            config, validator, context, user="HTTPAConnection", check="http.connection"
        )
        if not isinstance(context, ATLSContext):
            raise ConfigurationError(
                "HTTPAConnection needs an ATLSContext", check="http.connection"
            )
        super().__init__(host, port, context=context, **kwargs)
