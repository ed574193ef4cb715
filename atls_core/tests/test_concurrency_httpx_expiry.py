"""httpx clients do not reuse a pooled connection past its attestation result's expiry."""

from __future__ import annotations

import asyncio
import datetime as dt

import httpx

from atls_core.httpx_transport import (
    atls_async_httpx_client,
    atls_httpx_client,
    attestation_result,
)
from atls_core.result import AttestationResult
from atls_core.server import AttestedCertificates
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.testing.simulated import SimulatedIssuer
from atls_core.tls import ATLSContext


class MovableClock:
    """The client's and the simulated TEE's time, moved together by the test."""

    def __init__(self) -> None:
        self.at = dt.datetime.now(dt.UTC)

    def now(self) -> dt.datetime:
        return self.at


def _result(response: httpx.Response) -> AttestationResult:
    result = attestation_result(response)
    assert result is not None
    return result


def test_sync_client_appraises_anew_once_the_result_expires(tee: SimulatedTEE) -> None:
    clock = MovableClock()
    issuer = SimulatedIssuer(tee.hardware.issuer_settings(), clock=clock)
    context = ATLSContext.for_validator(tee.selected(), clock=clock)
    with HTTPSServer(AttestedCertificates(issuer).server_context()) as server:
        # A keep-alive long enough that only the attestation can end the connection.
        with atls_httpx_client(
            context=context, timeout=10, limits=httpx.Limits(keepalive_expiry=3600)
        ) as client:
            first = _result(client.get(server.url("https", "/1")))
            assert _result(client.get(server.url("https", "/2"))) is first
            assert server.handshakes == 1
            assert first.expires_at is not None
            clock.at = first.expires_at
            after = _result(client.get(server.url("https", "/3")))
        assert server.handshakes == 2
        assert after.accepted
        assert after.binding.nonce != first.binding.nonce


def test_async_client_appraises_anew_once_the_result_expires(tee: SimulatedTEE) -> None:
    clock = MovableClock()
    issuer = SimulatedIssuer(tee.hardware.issuer_settings(), clock=clock)
    context = ATLSContext.for_validator(tee.selected(), clock=clock)

    async def main(server: HTTPSServer) -> tuple[AttestationResult, AttestationResult]:
        async with atls_async_httpx_client(
            context=context, timeout=10, limits=httpx.Limits(keepalive_expiry=3600)
        ) as client:
            first = _result(await client.get(server.url("https", "/1")))
            assert _result(await client.get(server.url("https", "/2"))) is first
            assert server.handshakes == 1
            assert first.expires_at is not None
            clock.at = first.expires_at
            return first, _result(await client.get(server.url("https", "/3")))

    with HTTPSServer(AttestedCertificates(issuer).server_context()) as server:
        first, after = asyncio.run(main(server))
        assert server.handshakes == 2
    assert after.accepted
    assert after.binding.nonce != first.binding.nonce
