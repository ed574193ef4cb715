"""pyatls's ``HTTPAConnection(host, context, port=None, ...)`` on urllib3.

As in pyatls it is a urllib3 connection, so ``getresponse()`` returns a
urllib3 response with ``.data`` (and ``.read()``, ``.json()``...).  The TLS
layer is the given :class:`~atls_core.tls.ATLSContext`: ``connect()``
returns only after the server was appraised, and
:attr:`HTTPAConnection.attestation_result` says what was accepted.
"""

from __future__ import annotations

from typing import Any

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.util.connection import _TYPE_SOCKET_OPTIONS
from urllib3.util.timeout import _DEFAULT_TIMEOUT, _TYPE_TIMEOUT

from atls_core.connection import KeepsResult
from atls_core.errors import ConfigurationError
from atls_core.tls import ATLSContext

__all__ = ["AttestedConnection", "HTTPAConnection"]


class AttestedConnection(KeepsResult, HTTPSConnection):
    """A urllib3 HTTPS connection that keeps its appraisal's result."""


def _require_context(context: Any) -> ATLSContext:
    """A plain ``ssl.SSLContext`` here would be PKI or nothing: refuse it."""
    if not isinstance(context, ATLSContext):
        raise ConfigurationError(
            "HTTPAConnection needs an ATLSContext",
            check="http.connection",
            actual=type(context).__name__,
        )
    return context


class HTTPAConnection(AttestedConnection):
    """HTTP over attested TLS, with pyatls's arguments.

    ``socket_options=None`` keeps urllib3's defaults (``TCP_NODELAY``).
    """

    def __init__(
        self,
        host: str,
        context: ATLSContext,
        port: int | None = None,
        timeout: _TYPE_TIMEOUT = _DEFAULT_TIMEOUT,
        source_address: tuple[str, int] | None = None,
        blocksize: int = 8192,
        socket_options: _TYPE_SOCKET_OPTIONS | None = None,
    ) -> None:
        super().__init__(
            host,
            port,
            timeout=timeout,
            source_address=source_address,
            blocksize=blocksize,
            socket_options=(
                socket_options
                if socket_options is not None
                else HTTPConnection.default_socket_options
            ),
            ssl_context=_require_context(context),
        )
        self._context = context
