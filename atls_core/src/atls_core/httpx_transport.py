"""httpx transports (sync and async) that speak attested TLS.

::

    client = atls_httpx_client(config)            # or AsyncClient: atls_async_httpx_client
    response = client.get("https://tee.example.com/v1/models")
    attestation_result(response).measurements

    openai.OpenAI(base_url="https://tee.example.com/v1", http_client=client)

Each new pooled connection is appraised inside the TLS handshake (httpcore
wraps the socket, or anyio drives an ``SSLObject``, with our context), so no
request byte reaches an unappraised server.  The response carries the
connection's result as ``response.extensions["atls.attestation_result"]``.
``httpa://`` URLs are accepted too and sent as ``https://``.
"""

from __future__ import annotations

from typing import Any

import httpx

from atls_core.config import ATLSConfig
from atls_core.errors import ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import SelectedValidator
from atls_core.tls import ATLSContext, result_of

__all__ = [
    "EXTENSION",
    "ATLSTransport",
    "AsyncATLSTransport",
    "atls_async_httpx_client",
    "atls_httpx_client",
    "attestation_result",
]

EXTENSION = "atls.attestation_result"


def _context(
    config: ATLSConfig | None, validator: SelectedValidator | None, context: ATLSContext | None
) -> ATLSContext:
    if sum(x is not None for x in (config, validator, context)) != 1:
        raise ConfigurationError(
            "an atls httpx transport needs exactly one of config, validator= or context=",
            check="http.transport",
        )
    if context is not None:
        return context
    return ATLSContext(config) if config is not None else ATLSContext(validator=validator)


def _to_https(request: httpx.Request) -> None:
    if request.url.scheme == "httpa":
        request.url = request.url.copy_with(scheme="https")
    if request.url.scheme != "https":
        raise ConfigurationError(
            "atls transports carry only https:// (or httpa://) URLs",
            check="http.scheme",
            actual=request.url.scheme,
        )


def _attach(response: httpx.Response) -> httpx.Response:
    stream = response.extensions.get("network_stream")
    result = result_of(stream) if stream is not None else None
    response.extensions[EXTENSION] = result
    return response


def attestation_result(response: httpx.Response) -> AttestationResult | None:
    """The attestation result of the connection that carried ``response``."""
    result = response.extensions.get(EXTENSION)
    return result if isinstance(result, AttestationResult) else None


class ATLSTransport(httpx.BaseTransport):
    """Synchronous httpx transport; keyword arguments go to ``httpx.HTTPTransport``."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: SelectedValidator | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = _context(config, validator, context)
        kwargs.pop("verify", None)
        self._inner = httpx.HTTPTransport(verify=self.context, **kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _to_https(request)
        return _attach(self._inner.handle_request(request))

    def close(self) -> None:
        self._inner.close()


class AsyncATLSTransport(httpx.AsyncBaseTransport):
    """Asynchronous httpx transport (asyncio or trio through anyio)."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: SelectedValidator | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = _context(config, validator, context)
        kwargs.pop("verify", None)
        self._inner = httpx.AsyncHTTPTransport(verify=self.context, **kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _to_https(request)
        return _attach(await self._inner.handle_async_request(request))

    async def aclose(self) -> None:
        await self._inner.aclose()


def atls_httpx_client(
    config: ATLSConfig | None = None,
    *,
    validator: SelectedValidator | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    **client_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose https:// and httpa:// traffic goes through atls."""
    transport = ATLSTransport(
        config, validator=validator, context=context, **(transport_options or {})
    )
    return httpx.Client(transport=transport, mounts={"httpa://": transport}, **client_kwargs)


def atls_async_httpx_client(
    config: ATLSConfig | None = None,
    *,
    validator: SelectedValidator | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose https:// and httpa:// traffic goes through atls."""
    transport = AsyncATLSTransport(
        config, validator=validator, context=context, **(transport_options or {})
    )
    return httpx.AsyncClient(transport=transport, mounts={"httpa://": transport}, **client_kwargs)
