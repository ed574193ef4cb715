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

Redirects never leave attested TLS.  httpx picks the transport for each hop
from the client's mounts (scheme, host and port patterns), so a client that
mounts atls only for ``httpa://`` or one host would otherwise follow a
redirect with its default transport: PKI or cleartext.  The transports
therefore rewrite the ``Location`` of every redirect they receive:

* a target on the same attested origin (same host and port, ``https`` or
  ``httpa``) keeps the scheme of the request, so it reaches this transport
  again and same-origin headers are kept;
* any other ``http://`` or ``https://`` target becomes ``httpa://`` (an
  ``http://`` port 80 becomes 443, like an HSTS upgrade), which
  :func:`atls_httpx_client` mounts; a host without a rule is then refused
  before a byte is sent;
* a non-HTTP target raises :class:`~atls_core.errors.ATLSError`
  (``http.redirect``), even with ``follow_redirects=False``.

Mount a transport on ``httpa://`` in hand-built clients, or such redirects
fail closed with httpx's ``UnsupportedProtocol``.  The request keeps the URL
the caller gave (``httpa://`` stays ``httpa://`` in ``response.url``).
"""

from __future__ import annotations

from typing import Any

import httpx

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSError, ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
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
    config: ATLSConfig | None, validator: AppraiserLike | None, context: ATLSContext | None
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


_ATTESTED_SCHEMES = ("https", "httpa")
_DEFAULT_PORTS = {"http": 80, "https": 443, "httpa": 443}


def _effective_port(url: httpx.URL) -> int | None:
    return url.port or _DEFAULT_PORTS.get(url.scheme)


def _keep_redirect_attested(requested: httpx.URL, response: httpx.Response) -> None:
    """Point a redirect's ``Location`` where only an atls transport carries it."""
    if not response.has_redirect_location:
        return
    try:
        target = httpx.URL(response.headers["Location"])
    except httpx.InvalidURL:
        return  # httpx refuses to follow it (RemoteProtocolError)
    base = requested.copy_with(scheme="https") if requested.scheme == "httpa" else requested
    # The same steps as httpx's own redirect resolution (httpx cannot join onto httpa://).
    if target.scheme and not target.host:
        target = target.copy_with(host=base.host)
    if target.is_relative_url:
        target = base.join(target)
    if target.scheme not in _DEFAULT_PORTS or not target.host:
        raise ATLSError(
            "a redirect from an attested server may lead only to another HTTP URL",
            check="http.redirect",
            expected=sorted(_DEFAULT_PORTS),
            actual=target.scheme or "no host",
        )
    same_origin = (
        target.scheme in _ATTESTED_SCHEMES
        and requested.scheme in _ATTESTED_SCHEMES
        and target.host == requested.host
        and _effective_port(target) == _effective_port(requested)
    )
    scheme = requested.scheme if same_origin else "httpa"
    response.headers["Location"] = str(target.copy_with(scheme=scheme))


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
        validator: AppraiserLike | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = _context(config, validator, context)
        kwargs.pop("verify", None)
        self._inner = httpx.HTTPTransport(verify=self.context, **kwargs)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        requested = request.url
        _to_https(request)
        try:
            response = _attach(self._inner.handle_request(request))
        finally:
            request.url = requested
        try:
            _keep_redirect_attested(requested, response)
        except ATLSError:
            response.close()
            raise
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncATLSTransport(httpx.AsyncBaseTransport):
    """Asynchronous httpx transport (asyncio or trio through anyio)."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: AppraiserLike | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = _context(config, validator, context)
        kwargs.pop("verify", None)
        self._inner = httpx.AsyncHTTPTransport(verify=self.context, **kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        requested = request.url
        _to_https(request)
        try:
            response = _attach(await self._inner.handle_async_request(request))
        finally:
            request.url = requested
        try:
            _keep_redirect_attested(requested, response)
        except ATLSError:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def atls_httpx_client(
    config: ATLSConfig | None = None,
    *,
    validator: AppraiserLike | None = None,
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
    validator: AppraiserLike | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose https:// and httpa:// traffic goes through atls."""
    transport = AsyncATLSTransport(
        config, validator=validator, context=context, **(transport_options or {})
    )
    return httpx.AsyncClient(transport=transport, mounts={"httpa://": transport}, **client_kwargs)
