"""Requests per second over keep-alive: each atls integration vs plain https.

Appraisal happens once per connection, so over keep-alive the ratios should be
close to 1.  Run: python benchmarks/bench_http.py
"""

from __future__ import annotations

import asyncio
import http.client
import ssl
import time
import warnings
from collections.abc import Callable

import httpx
import requests
import urllib3

from atls_core.connection import HTTPAConnection
from atls_core.httpx_transport import atls_async_httpx_client, atls_httpx_client
from atls_core.requests_adapter import ATLSAdapter
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE

REQUESTS = 600


def _rate(fn: Callable[[], object]) -> float:
    """Best of three batches (the least disturbed by other load), requests per second."""
    fn()  # connect (and appraise) outside the timed loop: keep-alive throughput
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(REQUESTS // 3):
            fn()
        best = max(best, (REQUESTS // 3) / (time.perf_counter() - start))
    return best


def main() -> None:
    warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
    tee = SimulatedTEE()
    plain = ssl.create_default_context()
    plain.check_hostname = False
    plain.verify_mode = ssl.CERT_NONE
    with HTTPSServer(tee.certificates().server_context()) as server:
        port = server.port

        def http_client(connection: http.client.HTTPSConnection) -> Callable[[], None]:
            def fn() -> None:
                connection.request("GET", "/")
                connection.getresponse().read()

            return fn

        rows: list[tuple[str, float, float]] = []
        base = _rate(http_client(http.client.HTTPSConnection("127.0.0.1", port, context=plain)))
        atls = _rate(http_client(HTTPAConnection("127.0.0.1", port, validator=tee.selected())))
        rows.append(("http.client / HTTPAConnection", base, atls))

        plain_session = requests.Session()
        atls_session = requests.Session()
        atls_session.mount("httpa://", ATLSAdapter(validator=tee.selected()))
        base = _rate(lambda: plain_session.get(server.url("https"), verify=False).content and None)
        atls = _rate(lambda: atls_session.get(server.url("httpa")).content and None)
        rows.append(("requests / ATLSAdapter", base, atls))

        plain_httpx = httpx.Client(verify=plain)
        atls_httpx = atls_httpx_client(validator=tee.selected())
        base = _rate(lambda: plain_httpx.get(server.url("https")).content and None)
        atls = _rate(lambda: atls_httpx.get(server.url("https")).content and None)
        rows.append(("httpx sync / ATLSTransport", base, atls))

        async def async_rate(client: httpx.AsyncClient) -> float:
            await client.get(server.url("https"))
            best = 0.0
            for _ in range(3):
                start = time.perf_counter()
                for _ in range(REQUESTS // 3):
                    await client.get(server.url("https"))
                best = max(best, (REQUESTS // 3) / (time.perf_counter() - start))
            return best

        async def both() -> tuple[float, float]:
            async with httpx.AsyncClient(verify=plain) as a:
                base = await async_rate(a)
            async with atls_async_httpx_client(validator=tee.selected()) as b:
                atls = await async_rate(b)
            return base, atls

        base, atls = asyncio.run(both())
        rows.append(("httpx async / AsyncATLSTransport", base, atls))

    print(f"keep-alive GET requests per case: {REQUESTS}")
    print(f"{'integration':<34}{'plain req/s':>12}{'atls req/s':>12}{'ratio':>8}")
    for name, base, atls in rows:
        print(f"{name:<34}{base:>12.0f}{atls:>12.0f}{atls / base:>8.2f}")


if __name__ == "__main__":
    main()
