"""OpenAI clients over attested TLS whose attestation refusals are final.

The OpenAI client retries every connection error (twice by default), so a
server that fails attestation would be appraised three times for one call and
the caller would see only ``APIConnectionError("Connection error.")``.  These
clients raise :class:`AttestationConnectionError` instead: still an
``openai.APIConnectionError`` (existing ``except`` clauses keep working), but
one the OpenAI client passes on without retrying, with the check in its
message and the atls error in :attr:`~AttestationConnectionError.error` (and
for :func:`atls_core.attestation_error`)::

    client = atls_openai_client(config, base_url="https://tee.example.com/v1", api_key=key)

Network faults during appraisal (collateral or challenge I/O) stay ordinary,
retried connection errors.  Any httpx-based client can get the same with
``transport_options={"refusal": AttestationConnectionError}``.
"""

from __future__ import annotations

from typing import Any, cast

try:
    import openai
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        f"atls_core.openai_client needs the OpenAI client ({missing.name} is not installed): "
        'pip install "atls-core[openai]"',
        name=missing.name,
    ) from missing

import httpx

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSError
from atls_core.httpx_transport import atls_async_httpx_client, atls_httpx_client
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext

__all__ = ["AttestationConnectionError", "atls_async_openai_client", "atls_openai_client"]


class AttestationConnectionError(openai.APIConnectionError):
    """The server failed attestation: an ``APIConnectionError`` the OpenAI client does not retry.

    The OpenAI client passes its own errors on as they are and retries only
    the HTTP library's; raised from the transport, this one ends the call.
    """

    def __init__(self, request: httpx.Request, error: ATLSError) -> None:
        # openai types ``request`` as its own HTTP library's; it only keeps it.
        super().__init__(message=f"Connection error: {error}", request=cast(Any, request))
        self.error = error

    @property
    def check(self) -> str:
        """The failed check, e.g. ``binding.report_data``."""
        return self.error.check


def _as_openai(client: httpx.Client | httpx.AsyncClient) -> Any:
    """openai 3 annotates its own HTTP library's clients and accepts httpx ones."""
    return client


def _transport_options(options: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(options or {})
    merged.setdefault("refusal", AttestationConnectionError)
    return merged


def atls_openai_client(
    config: ATLSConfig | None = None,
    *,
    validator: AppraiserLike | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    http_client_options: dict[str, Any] | None = None,
    **openai_options: Any,
) -> openai.OpenAI:
    """``openai.OpenAI`` over atls; other keyword arguments go to ``openai.OpenAI``.

    ``http_client_options`` go to :func:`~atls_core.httpx_transport.atls_httpx_client`.
    """
    http_client = atls_httpx_client(
        config,
        validator=validator,
        context=context,
        transport_options=_transport_options(transport_options),
        **(http_client_options or {}),
    )
    return openai.OpenAI(http_client=_as_openai(http_client), **openai_options)


def atls_async_openai_client(
    config: ATLSConfig | None = None,
    *,
    validator: AppraiserLike | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    http_client_options: dict[str, Any] | None = None,
    **openai_options: Any,
) -> openai.AsyncOpenAI:
    """``openai.AsyncOpenAI`` over atls; see :func:`atls_openai_client`."""
    http_client = atls_async_httpx_client(
        config,
        validator=validator,
        context=context,
        transport_options=_transport_options(transport_options),
        **(http_client_options or {}),
    )
    return openai.AsyncOpenAI(http_client=_as_openai(http_client), **openai_options)
