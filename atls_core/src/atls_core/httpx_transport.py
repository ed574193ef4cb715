"""httpx transports (sync and async) that speak attested TLS.

::

    client = atls_httpx_client(config)            # or AsyncClient: atls_async_httpx_client
    response = client.get("https://tee.example.com/v1/models")
    attestation_result(response).measurements

    # OpenAI: atls_core.openai_client.atls_openai_client(config, base_url=...)
    # (refusals are not retried); http_client=client works but retries them.

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

Only the configured hosts: ``atls_httpx_client(config, only_configured_hosts=True)``
sends a host through atls when a rule of ``config`` names it (the same
matching as the TLS layer: exact names and patterns, any scheme, so
``http://`` to such a host is refused) and every other host through a plain
``httpx.HTTPTransport`` built from the client's ``verify``, ``cert``,
``http1``, ``http2``, ``limits``, ``trust_env`` and ``proxy``.  Routing
decides per request, not with httpx mount patterns: a pattern misses hosts
the rule matches (``api.example.com.`` with its trailing dot, ``?`` and
``[...]`` patterns), and a miss would send a configured host over plain PKI.

``proxy=`` given to the client functions goes to the transports (an httpx
client would otherwise mount a plain proxy transport in front of atls), and so do
``http1``, ``http2`` and ``limits`` (``transport_options`` wins where both name one).
Proxy environment variables are not read.

A pooled connection takes no new request once its result has expired
(``ATLSContext.expired``): the next request is appraised on a new one.  An
HTTP/2 connection (``http2=True``) still finishes the requests it carries,
and closes once idle.

The asynchronous transport appraises on a worker thread: appraisal may fetch
collateral or keys (seconds of blocking I/O, up to the fetch deadline), which
on the event loop would stall every other task.  The TLS handshake (and a
challenge) still run on the loop, and the connection refuses every read and
write until the appraisal, awaited before httpcore sees the connection, has
accepted the server.

Attestation refusals are ``httpx.ConnectError`` by default.  ``refusal=``
builds another exception instead, e.g. one a retrying SDK does not retry
(:mod:`atls_core.openai_client`); network faults during appraisal
(collateral or challenge I/O) stay ``ConnectError``.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterable
from typing import Any

try:
    import httpcore
    import httpx
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        f"atls_core.httpx_transport needs httpx ({missing.name} is not installed): "
        'pip install "atls-core[httpx]"',
        name=missing.name,
    ) from missing

from atls_core.config import ATLSConfig
from atls_core.contexts import context_from
from atls_core.errors import (
    ATLSError,
    ATLSVerificationError,
    CollateralUnavailable,
    ConfigurationError,
    attestation_error,
)
from atls_core.hostnames import canonical_host
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext, ATLSObject, appraisal_deferred, result_of

__all__ = [
    "EXTENSION",
    "ATLSTransport",
    "AsyncATLSTransport",
    "AsyncConfiguredHostsTransport",
    "ConfiguredHostsTransport",
    "Refusal",
    "atls_async_httpx_client",
    "atls_httpx_client",
    "attestation_result",
    "configured_for",
    "refusal_of",
]

EXTENSION = "atls.attestation_result"

Refusal = Callable[[httpx.Request, ATLSError], Exception]
"""Builds the exception raised for an attestation refusal (the request, the atls error)."""


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


# Appraisal could not decide: the network failed, not the server's evidence.
_FAULT_CHECKS = frozenset({"tls.appraisal.io", "challenge.timeout"})


def refusal_of(exc: BaseException) -> ATLSError | None:
    """The atls error of an attestation *verdict* inside ``exc``, or ``None``.

    ``None`` also for network faults during appraisal (collateral could not be
    fetched, the connection failed or timed out during a challenge): trying
    again may help there, never with a refusal.
    """
    error = attestation_error(exc)
    if error is None:
        return None
    cause = error.cause if isinstance(error, ATLSVerificationError) else error
    if isinstance(cause, CollateralUnavailable) or error.check in _FAULT_CHECKS:
        return None
    return error


def _raise_refusal(
    refusal: Refusal | None, request: httpx.Request, exc: httpx.RequestError
) -> None:
    """Raise ``refusal``'s exception when ``exc`` is an attestation refusal (else return)."""
    error = refusal_of(exc) if refusal is not None else None
    if refusal is not None and error is not None:
        raise refusal(request, error) from exc


class _Configured:
    """What both transports are made of: one atls context, the refusal, httpx's transport."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: AppraiserLike | None = None,
        context: ATLSContext | None = None,
        refusal: Refusal | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = context_from(
            config, validator, context, user="an atls httpx transport", check="http.transport"
        )
        self.refusal = refusal
        kwargs.pop("verify", None)
        self._open(kwargs)

    def _open(self, options: dict[str, Any]) -> None:
        raise NotImplementedError


class ATLSTransport(_Configured, httpx.BaseTransport):
    """Synchronous httpx transport; keyword arguments go to ``httpx.HTTPTransport``.

    ``refusal`` builds the exception raised when attestation refuses a server
    (default: httpx's ``ConnectError``); see :func:`refusal_of`.
    """

    def _open(self, options: dict[str, Any]) -> None:
        self._inner = httpx.HTTPTransport(verify=self.context, **options)
        _wrap_backend(self._inner, lambda backend: _Backend(backend, self.context))
        _retire_expired(self._inner, lambda inner: _Retiring(inner, self.context))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        requested = request.url
        _to_https(request)
        try:
            response = _attach(self._inner.handle_request(request))
        except httpx.RequestError as exc:
            _raise_refusal(self.refusal, request, exc)
            raise
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


def _result_expired(stream: Any, context: ATLSContext) -> bool:
    """Whether the attestation result of ``stream``'s TLS connection has expired."""
    result = result_of(stream.get_extra_info("ssl_object"))
    return result is not None and context.expired(result)


class _ExpiringStream:
    """An httpcore stream that looks closed by the server once its attestation expires.

    httpcore drops an idle HTTP/1.1 connection whose stream ``is_readable`` (the server
    hung up) before giving it another request: so a connection is never reused past
    its result's expiry, and the next request is appraised on a new one.
    """

    def __init__(self, inner: Any, context: ATLSContext) -> None:
        self._inner = inner
        self._context = context

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = self._inner.read(max_bytes, timeout)
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and _result_expired(self._inner, self._context):
            return True
        return self._inner.get_extra_info(info)

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _ExpiringStream:
        stream = self._inner.start_tls(ssl_context, server_hostname, timeout)
        return _ExpiringStream(stream, self._context)


class _Backend:
    """httpcore's synchronous network backend, handing out :class:`_ExpiringStream`."""

    def __init__(self, inner: Any, context: ATLSContext) -> None:
        self._inner = inner
        self._context = context

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _ExpiringStream:
        stream = self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _ExpiringStream(stream, self._context)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _ExpiringStream:
        stream = self._inner.connect_unix_socket(path, timeout, socket_options)
        return _ExpiringStream(stream, self._context)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _OffLoopStream:
    """An async httpcore stream: attested TLS upgrades appraise on a worker thread, and
    the stream looks closed once its result expires (as :class:`_ExpiringStream`)."""

    def __init__(self, inner: Any, context: ATLSContext) -> None:
        self._inner = inner
        self._context = context

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        data: bytes = await self._inner.read(max_bytes, timeout)
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable" and _result_expired(self._inner, self._context):
            return True
        return self._inner.get_extra_info(info)

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> _OffLoopStream:
        if not isinstance(ssl_context, ATLSContext):  # e.g. TLS to an https proxy
            stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
            return _OffLoopStream(stream, self._context)
        with appraisal_deferred():
            stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        ssl_object = stream.get_extra_info("ssl_object")
        try:
            if not isinstance(ssl_object, ATLSObject):
                raise ssl.SSLError("atls: the TLS stream has no attested SSL object")
            import anyio.to_thread

            await anyio.to_thread.run_sync(ssl_object.finish_appraisal)
        except BaseException as exc:
            await stream.aclose()
            if isinstance(exc, ssl.SSLError):  # what httpcore makes of a handshake failure
                raise httpcore.ConnectError(str(exc)) from exc
            raise
        return _OffLoopStream(stream, self._context)


class _OffLoopBackend:
    """httpcore's async network backend, handing out :class:`_OffLoopStream`."""

    def __init__(self, inner: Any, context: ATLSContext) -> None:
        self._inner = inner
        self._context = context

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> _OffLoopStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return _OffLoopStream(stream, self._context)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> _OffLoopStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return _OffLoopStream(stream, self._context)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _wrap_backend(transport: Any, wrap: Callable[[Any], Any]) -> None:
    """Put ``wrap(backend)`` in place of the network backend of httpx's connection pool.

    httpx has no public hook for it; without it atls could neither appraise off the
    event loop nor retire connections whose result expired, so its absence is an error.
    """
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    if backend is None:
        raise ConfigurationError(
            "this httpx/httpcore version does not expose the connection pool's network "
            "backend, which atls needs (appraisal off the event loop, expiry of pooled "
            "connections)",
            check="http.transport",
        )
    pool._network_backend = wrap(backend)  # type: ignore[union-attr]


class _Retiring:
    """A pooled connection that takes no new request once its attestation result expired.

    httpcore retires an HTTP/1.1 connection through :class:`_ExpiringStream`, but keeps
    an HTTP/2 one while requests keep it busy (its keep-alive timer starts when idle):
    this says it is unavailable instead, and expired once idle, so httpcore opens a new
    connection, appraised afresh, and closes this one.  The result is read from the
    responses' ``network_stream``, as :func:`attestation_result` reads it.
    """

    def __init__(self, inner: Any, context: ATLSContext) -> None:
        self._inner = inner
        self._context = context
        self._result: AttestationResult | None = None

    def _note(self, response: Any) -> Any:
        stream = response.extensions.get("network_stream")
        if self._result is None and stream is not None:
            self._result = result_of(stream)
        return response

    def _expired(self) -> bool:
        return self._result is not None and self._context.expired(self._result)

    def handle_request(self, request: Any) -> Any:
        return self._note(self._inner.handle_request(request))

    def close(self) -> None:
        self._inner.close()

    def is_available(self) -> bool:
        return bool(self._inner.is_available()) and not self._expired()

    def has_expired(self) -> bool:
        # Only when idle: httpcore closes an expired connection with its streams.
        return bool(self._inner.has_expired()) or (self._expired() and self.is_idle())

    def can_handle_request(self, origin: Any) -> bool:
        return bool(self._inner.can_handle_request(origin))

    def is_idle(self) -> bool:
        return bool(self._inner.is_idle())

    def is_closed(self) -> bool:
        return bool(self._inner.is_closed())

    def info(self) -> str:
        return str(self._inner.info())

    def __repr__(self) -> str:
        return repr(self._inner)


class _AsyncRetiring(_Retiring):
    """:class:`_Retiring` for httpcore's async connections."""

    async def handle_async_request(self, request: Any) -> Any:
        return self._note(await self._inner.handle_async_request(request))

    async def aclose(self) -> None:
        await self._inner.aclose()


def _retire_expired(transport: Any, wrap: Callable[[Any], Any]) -> None:
    """Have httpx's connection pool hand out ``wrap(connection)`` for each new connection.

    ``create_connection`` is where httpcore lets a pool make its connections; checked
    like the network backend, its absence is an error rather than unretired connections.
    """
    pool = getattr(transport, "_pool", None)
    create = getattr(pool, "create_connection", None)
    if not callable(create):
        raise ConfigurationError(
            "this httpx/httpcore version does not let atls wrap the connection pool's "
            "connections, which atls needs to retire those whose result expired",
            check="http.transport",
        )
    pool.create_connection = lambda origin: wrap(create(origin))  # type: ignore[union-attr]


class AsyncATLSTransport(_Configured, httpx.AsyncBaseTransport):
    """Asynchronous httpx transport (asyncio or trio through anyio); see :class:`ATLSTransport`.

    Appraisal runs on a worker thread (see the module docstring).
    """

    def _open(self, options: dict[str, Any]) -> None:
        self._inner = httpx.AsyncHTTPTransport(verify=self.context, **options)
        _wrap_backend(self._inner, lambda backend: _OffLoopBackend(backend, self.context))
        _retire_expired(self._inner, lambda inner: _AsyncRetiring(inner, self.context))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        requested = request.url
        _to_https(request)
        try:
            response = _attach(await self._inner.handle_async_request(request))
        except httpx.RequestError as exc:
            _raise_refusal(self.refusal, request, exc)
            raise
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


def configured_for(config: ATLSConfig, request: httpx.Request) -> bool:
    """Whether ``config`` has a rule for the host ``request`` goes to (``httpa://``: always).

    The host is compared in its canonical form (:mod:`atls_core.hostnames`), the
    form the rules are stored in and the TLS layer looks them up in: ``127.1``
    and ``[0:0::1]`` are the addresses they connect to.  The ``sni_hostname``
    extension, should a caller set one, is read too.  Any match, and any name
    with no single canonical form, routes to atls: in doubt a request is
    appraised (or refused), never sent over plain PKI.
    """
    if request.url.scheme == "httpa":
        return True
    hosts = [request.url.raw_host.decode("ascii")]
    sni = request.extensions.get("sni_hostname")
    if isinstance(sni, str) and sni:
        hosts.append(sni)
    for host in hosts:
        try:
            name = canonical_host(host)
        except ATLSError:
            return True
        if any(rule.matches(name) for rule in config.hosts):
            return True
    return False


class ConfiguredHostsTransport(httpx.BaseTransport):
    """Hosts ``config`` names go through ``attested``; all others through ``other``."""

    def __init__(
        self, config: ATLSConfig, attested: httpx.BaseTransport, other: httpx.BaseTransport
    ) -> None:
        self.config = config
        self.attested = attested
        self.other = other

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if configured_for(self.config, request):
            return self.attested.handle_request(request)
        return self.other.handle_request(request)

    def close(self) -> None:
        try:
            self.attested.close()
        finally:
            self.other.close()


class AsyncConfiguredHostsTransport(httpx.AsyncBaseTransport):
    """The asynchronous :class:`ConfiguredHostsTransport`."""

    def __init__(
        self,
        config: ATLSConfig,
        attested: httpx.AsyncBaseTransport,
        other: httpx.AsyncBaseTransport,
    ) -> None:
        self.config = config
        self.attested = attested
        self.other = other

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if configured_for(self.config, request):
            return await self.attested.handle_async_request(request)
        return await self.other.handle_async_request(request)

    async def aclose(self) -> None:
        try:
            await self.attested.aclose()
        finally:
            await self.other.aclose()


# What httpx.Client hands to the transports it builds itself.
_PLAIN_KEYS = ("verify", "cert", "http1", "http2", "limits", "trust_env", "proxy")
_PROTOCOL_KEYS = ("http1", "http2", "limits")
"""Also the atls transport's: httpx.Client applies them only to transports it builds, so
``atls_httpx_client(http2=True)`` spoke HTTP/1.1 through atls without a word."""


def _split(
    config: ATLSConfig | None,
    transport_options: dict[str, Any] | None,
    only_configured_hosts: bool,
    client_kwargs: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Options of the atls transport and (for ``only_configured_hosts``) the plain one.

    ``client_kwargs`` loses what the transports take: an httpx client given
    ``proxy=`` would mount a plain proxy transport in front of atls.
    """
    attested = dict(transport_options or {})
    for key in ("proxy", *_PROTOCOL_KEYS):
        if key in client_kwargs:
            attested.setdefault(key, client_kwargs[key])
    if not only_configured_hosts:
        client_kwargs.pop("proxy", None)
        return attested, None
    if config is None:
        raise ConfigurationError(
            "only_configured_hosts needs config=: the configuration names the hosts",
            check="http.transport",
        )
    plain = {key: client_kwargs.pop(key) for key in _PLAIN_KEYS if key in client_kwargs}
    if "trust_env" in plain:
        client_kwargs["trust_env"] = plain["trust_env"]
    return attested, plain


def atls_httpx_client(
    config: ATLSConfig | None = None,
    *,
    validator: AppraiserLike | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    only_configured_hosts: bool = False,
    **client_kwargs: Any,
) -> httpx.Client:
    """An ``httpx.Client`` whose https:// and httpa:// traffic goes through atls.

    With ``only_configured_hosts=True`` only hosts a rule of ``config`` names
    go through atls; others are plain httpx (see the module docstring).
    """
    options, plain = _split(config, transport_options, only_configured_hosts, client_kwargs)
    attested = ATLSTransport(config, validator=validator, context=context, **options)
    transport: httpx.BaseTransport = attested
    if plain is not None:
        assert config is not None
        transport = ConfiguredHostsTransport(config, attested, httpx.HTTPTransport(**plain))
    return httpx.Client(transport=transport, mounts={"httpa://": attested}, **client_kwargs)


def atls_async_httpx_client(
    config: ATLSConfig | None = None,
    *,
    validator: AppraiserLike | None = None,
    context: ATLSContext | None = None,
    transport_options: dict[str, Any] | None = None,
    only_configured_hosts: bool = False,
    **client_kwargs: Any,
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose https:// and httpa:// traffic goes through atls.

    ``only_configured_hosts`` as for :func:`atls_httpx_client`.
    """
    options, plain = _split(config, transport_options, only_configured_hosts, client_kwargs)
    attested = AsyncATLSTransport(config, validator=validator, context=context, **options)
    transport: httpx.AsyncBaseTransport = attested
    if plain is not None:
        assert config is not None
        transport = AsyncConfiguredHostsTransport(
            config, attested, httpx.AsyncHTTPTransport(**plain)
        )
    return httpx.AsyncClient(transport=transport, mounts={"httpa://": attested}, **client_kwargs)
