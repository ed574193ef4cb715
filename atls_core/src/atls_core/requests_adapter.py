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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from requests.utils import select_proxy

from atls_core.config import ATLSConfig
from atls_core.errors import ConfigurationError
from atls_core.result import AttestationResult
from atls_core.selection import SelectedValidator
from atls_core.tls import ATLSContext, result_of

__all__ = ["ATLSAdapter", "SCHEME", "attestation_result", "https_url"]

SCHEME = "httpa"


def https_url(url: str) -> str:
    """``httpa://`` URLs travel as ``https://``; others are unchanged."""
    parts = urlsplit(url)
    if parts.scheme.lower() == SCHEME:
        return urlunsplit(("https", *parts[1:]))
    return url


def attestation_result(response: requests.Response) -> AttestationResult | None:
    """The attestation result of the connection that carried ``response``."""
    result = getattr(response, "attestation_result", None)
    return result if isinstance(result, AttestationResult) else None


class ATLSAdapter(HTTPAdapter):
    """``requests`` adapter whose every new connection is appraised."""

    def __init__(
        self,
        config: ATLSConfig | None = None,
        *,
        validator: SelectedValidator | None = None,
        context: ATLSContext | None = None,
        **kwargs: Any,
    ) -> None:
        given = sum(x is not None for x in (context, config, validator))
        if given != 1:
            raise ConfigurationError(
                "ATLSAdapter needs exactly one of config, validator= or context=",
                check="http.adapter",
            )
        if context is None:
            context = (
                ATLSContext(config) if config is not None else ATLSContext(validator=validator)
            )
        self.context = context
        super().__init__(**kwargs)

    def init_poolmanager(self, *args: Any, **pool_kwargs: Any) -> None:
        pool_kwargs["ssl_context"] = self.context
        super().init_poolmanager(*args, **pool_kwargs)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        proxy_kwargs["ssl_context"] = self.context
        return super().proxy_manager_for(proxy, **proxy_kwargs)

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
        sock = getattr(connection, "sock", None)
        response.attestation_result = result_of(sock)  # type: ignore[attr-defined]
        return response
