"""A requests transport adapter that speaks attested TLS.

Mount it on ``httpa://`` (the scheme stands for "HTTP over attested TLS"; it
is sent as HTTPS on the wire) or on ``https://`` for chosen hosts::

    session = requests.Session()
    session.mount("httpa://", ATLSAdapter(config))
    response = session.get("httpa://tee.example.com/v1/models")
    response.attestation_result.measurements

Pooling, retries, timeouts and proxies (HTTPS CONNECT tunnels, ``https``
proxy settings and environment variables) work as for ``https://``.
Appraisal cannot be turned off from requests: ``verify=False`` and CA bundles
are ignored for mounted URLs (PKI, when wanted, is a host rule's ``pki``).

Redirects never leave attested TLS.  requests follows a redirect with the
adapter mounted for the *new* URL, so a server could otherwise send the next
request to plain PKI (``https://``) or cleartext (``http://``).  The adapter
therefore rewrites the ``Location`` of every redirect it receives to an
absolute ``httpa://`` URL (see :func:`attested_location`), which only an atls
adapter carries:

* relative and scheme-relative locations resolve against the request;
* ``https://host:port/...`` becomes ``httpa://host:port/...``;
* ``http://`` is upgraded as for an HSTS host: an explicit ``:80`` becomes
  the default port 443, any other port is kept;
* any other scheme (``ftp:``, ``file:``, ``javascript:``...) or an
  unreadable location raises :class:`~atls_core.errors.ATLSError`
  (check ``http.redirect``), even with ``allow_redirects=False``.

The next hop is then appraised like any request: with the host's own rule
(cross-host targets need one, or the request is refused with
``config.hosts`` before a byte is sent), or with the adapter's single
``validator=`` for every host.  requests drops ``Authorization`` on a
cross-host hop as usual.  If you mount the adapter only on ``https://``
prefixes, mount it on ``httpa://`` too, or redirects fail closed with
requests' ``InvalidSchema``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

try:
    import requests
    from requests.adapters import HTTPAdapter
    from requests.utils import select_proxy
    from urllib3.connection import HTTPSConnection
    from urllib3.connectionpool import HTTPSConnectionPool
except ModuleNotFoundError as missing:
    raise ModuleNotFoundError(
        f"atls_core.requests_adapter needs requests ({missing.name} is not installed): "
        'pip install "atls-core[requests]"',
        name=missing.name,
    ) from missing

from atls_core.config import ATLSConfig
from atls_core.contexts import context_from
from atls_core.errors import ATLSError, ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.tls import ATLSContext, result_of

__all__ = [
    "ATLSAdapter",
    "SCHEME",
    "attestation_result",
    "attested_location",
    "connection_result",
    "https_url",
]

SCHEME = "httpa"
_HTTP_SCHEMES = ("http", "https", SCHEME)


def https_url(url: str) -> str:
    """``httpa://`` URLs travel as ``https://``; others are unchanged."""
    parts = urlsplit(url)
    if parts.scheme.lower() == SCHEME:
        return urlunsplit(("https", *parts[1:]))
    return url


def attested_location(request_url: str, location: str) -> str:
    """The absolute ``httpa://`` URL a redirect received over attested TLS leads to.

    ``request_url`` is the URL that got the redirect, ``location`` its
    ``Location`` header.  Raises :class:`ATLSError` (``http.redirect``) for a
    target that is not HTTP or that cannot be read: it must not be followed.
    """
    try:
        parts = urlsplit(urljoin(https_url(request_url), location.strip()))
        _ = parts.port  # a malformed port raises here, not later in requests
    except ValueError as exc:
        raise ATLSError(
            f"the redirect location cannot be read: {exc}", check="http.redirect"
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _HTTP_SCHEMES or not parts.hostname:
        raise ATLSError(
            "a redirect from an attested server may lead only to another HTTP URL",
            check="http.redirect",
            expected=list(_HTTP_SCHEMES),
            actual=scheme or "no scheme or host",
        )
    netloc = parts.netloc
    if scheme == "http" and netloc.endswith(":80"):
        netloc = netloc[: -len(":80")]
    return urlunsplit((SCHEME, netloc, parts.path, parts.query, parts.fragment))


def attestation_result(response: requests.Response) -> AttestationResult | None:
    """The attestation result of the connection that carried ``response``."""
    result = getattr(response, "attestation_result", None)
    return result if isinstance(result, AttestationResult) else None


def connection_result(sock: object) -> AttestationResult | None:
    """The result of urllib3's socket: behind an HTTPS proxy urllib3 runs TLS in TLS, and
    the appraised object is its transport's ``sslobj``."""
    return result_of(getattr(sock, "sslobj", sock))


class _AttestedHTTPSConnection(HTTPSConnection):
    """Keeps its connection's result after ``http.client`` hands the socket to a response.

    With ``Connection: close`` or HTTP/1.0, ``http.client`` closes the
    connection object (``sock = None``) as soon as the response headers are
    read, so the result must be taken when the connection is made.
    """

    attestation_result: AttestationResult | None = None

    def connect(self) -> None:
        self.attestation_result = None
        super().connect()
        self.attestation_result = connection_result(self.sock)

    @property
    def is_connected(self) -> bool:
        """False once the result has expired: the pool then opens a new, appraised one."""
        result, context = self.attestation_result, self.ssl_context
        if result is not None and isinstance(context, ATLSContext) and context.expired(result):
            return False
        return bool(super().is_connected)


class _AttestedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _AttestedHTTPSConnection


def _attested_pools(manager: Any) -> Any:
    classes = dict(manager.pool_classes_by_scheme)
    classes["https"] = _AttestedHTTPSConnectionPool
    manager.pool_classes_by_scheme = classes
    return manager


class ATLSAdapter(HTTPAdapter):
    """``requests`` adapter whose every new connection is appraised."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: AppraiserLike | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        self.context = context_from(
            config, validator, context, user="ATLSAdapter", check="http.adapter"
        )
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **pool_kwargs)
        _attested_pools(self.poolmanager)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self.context
        return _attested_pools(super().proxy_manager_for(proxy, **proxy_kwargs))

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: bool | str, cert: Any = None
    ) -> Any:
        host_params: Any
        pool_kwargs: Any
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        if host_params.get("scheme") == SCHEME:
            host_params["scheme"] = "https"
        if host_params.get("scheme") != "https":
            raise ConfigurationError(
                "ATLSAdapter carries only httpa:// and https:// URLs",
                check="http.scheme",
                actual=host_params.get("scheme"),
            )
        # verify=False or a CA bundle must not weaken appraisal.
        pool_kwargs.pop("ca_certs", None)
        pool_kwargs.pop("ca_cert_dir", None)
        pool_kwargs["cert_reqs"] = "CERT_REQUIRED"
        pool_kwargs["ssl_context"] = self.context
        return host_params, pool_kwargs

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Any = None,
        cert: Any = None,
    ) -> Any:
        if proxies and request.url and urlsplit(request.url).scheme.lower() == SCHEME:
            proxies = self._https_proxies(request.url, proxies)
        return super().get_connection_with_tls_context(request, verify, proxies, cert)

    @staticmethod
    def _https_proxies(url: str, proxies: Any) -> dict[str, str]:
        """Proxy settings for an ``httpa://`` URL are those of its ``https://`` twin."""
        proxy = select_proxy(url, proxies) or select_proxy(https_url(url), proxies)
        return {SCHEME: proxy} if proxy else {}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        HTTPAdapter.cert_verify(self, conn, https_url(url), True, cert)  # type: ignore[no-untyped-call]
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def request_url(self, request: requests.PreparedRequest, proxies: Any) -> str:
        original = request.url
        if original is not None:
            request.url = https_url(original)
        try:
            if proxies and original and urlsplit(original).scheme.lower() == SCHEME:
                proxies = self._https_proxies(original, proxies)
                proxies = {"https": proxies[SCHEME]} if proxies else {}
            url: str = super().request_url(request, proxies)
            return url
        finally:
            request.url = original

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        connection = getattr(resp, "connection", None) or getattr(resp, "_connection", None)
        result = getattr(connection, "attestation_result", None)
        if not isinstance(result, AttestationResult):
            result = result_of(getattr(connection, "sock", None))
        response.attestation_result = result  # type: ignore[attr-defined]
        if response.is_redirect and req.url:
            # requests picks the adapter for the next hop from this header.
            try:
                location = attested_location(req.url, response.headers["Location"])
            except ATLSError:
                response.close()
                raise
            response.headers["Location"] = location
        return response
