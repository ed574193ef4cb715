"""Keep-alive requests through each atls HTTP integration vs the same library over plain https.

    python benchmarks/bench_http.py

Appraisal happens once per connection, so over keep-alive the ratios should be close to 1.
Every pair (library with atls, the same library with a plain TLS context built like
ATLSContext minus appraisal) talks to the same loopback server (simulated TEE, static
certificate); the connection is made (and appraised) before timing, then GET requests are
timed in interleaved rounds.  Ratios are time per request, atls over plain (elapsed: the
server answers from a thread of this process).  Finishes in well under a minute.
"""

from __future__ import annotations

import asyncio
import http.client
import warnings
from collections.abc import Callable
from typing import Any

import harness
import httpx
import requests
import urllib3
from plain_tls import plain_context

from atls_core.connection import HTTPAConnection
from atls_core.httpx_transport import atls_async_httpx_client, atls_httpx_client
from atls_core.requests_adapter import ATLSAdapter
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE

ROUNDS = 30
PER_ROUND = 10


class PlainAdapter(requests.adapters.HTTPAdapter):
    """requests over the same plain context (not its default, which loads the trust store)."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["ssl_context"] = plain_context()
        super().init_poolmanager(*args, **kwargs)


def http_client_get(connection: http.client.HTTPSConnection) -> Callable[[], None]:
    def get() -> None:
        connection.request("GET", "/")
        connection.getresponse().read()

    return get


def main() -> None:
    harness.quiet_logs()
    harness.header("keep-alive requests: atls integrations vs plain https")
    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    tee = SimulatedTEE()
    plain = plain_context()
    loop = asyncio.new_event_loop()
    with HTTPSServer(tee.certificates().server_context()) as server:
        port = server.port
        plain_session = requests.Session()
        plain_session.mount("https://", PlainAdapter())
        atls_session = requests.Session()
        atls_session.mount("httpa://", ATLSAdapter(validator=tee.selected()))
        plain_httpx = httpx.Client(verify=plain)
        atls_httpx = atls_httpx_client(validator=tee.selected())
        plain_async = httpx.AsyncClient(verify=plain)
        atls_async = atls_async_httpx_client(validator=tee.selected())
        https, httpa = server.url("https"), server.url("httpa")
        cases: dict[str, Callable[[], object]] = {
            "http.client": http_client_get(
                http.client.HTTPSConnection("127.0.0.1", port, context=plain)
            ),
            "HTTPAConnection": http_client_get(
                HTTPAConnection("127.0.0.1", port, validator=tee.selected())
            ),
            "requests": lambda: plain_session.get(https, verify=False).content,
            "ATLSAdapter": lambda: atls_session.get(httpa).content,
            "httpx": lambda: plain_httpx.get(https).content,
            "ATLSTransport": lambda: atls_httpx.get(https).content,
            "httpx async": lambda: loop.run_until_complete(plain_async.get(https)).content,
            "AsyncATLSTransport": lambda: loop.run_until_complete(atls_async.get(https)).content,
        }
        try:
            times = harness.interleave(cases, rounds=ROUNDS, per_round=PER_ROUND)
        finally:
            loop.run_until_complete(plain_async.aclose())
            loop.run_until_complete(atls_async.aclose())
            loop.close()
            plain_httpx.close()
            atls_httpx.close()
    print("per request (elapsed):")
    for name, seconds in times.wall.items():
        harness.time_line(name, seconds)
    for ours, theirs, label in (
        ("HTTPAConnection", "http.client", "http.httpa_connection_vs_http_client"),
        ("ATLSAdapter", "requests", "http.requests_adapter_vs_requests"),
        ("ATLSTransport", "httpx", "http.httpx_transport_vs_httpx"),
        ("AsyncATLSTransport", "httpx async", "http.httpx_async_transport_vs_httpx_async"),
    ):
        harness.report(label, harness.ratios(times.wall[ours], times.wall[theirs]), "none")


if __name__ == "__main__":
    main()
