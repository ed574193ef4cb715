"""Async clients appraise off the event loop: collateral and key fetches must not stall it."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from typing import Any

import attrs
import httpx
import pytest

from atls_core.binding import BindingContext
from atls_core.clock import Clock
from atls_core.errors import ATLSVerificationError, attestation_error
from atls_core.evidence import Evidence
from atls_core.httpx_transport import atls_async_httpx_client, attestation_result
from atls_core.openai_client import atls_async_openai_client
from atls_core.policy import Policy
from atls_core.result import AttestationResult
from atls_core.selection import AppraiserLike
from atls_core.server import mint_certificate
from atls_core.testing.loopback import ConnectProxy, HTTPSServer, SimulatedTEE
from atls_core.tls import ATLSContext, ATLSObject, appraisal_deferred, result_of


@attrs.define
class SlowCollateral:
    """An appraiser whose appraisal waits until the loop it must not block says go.

    Stands for an appraisal that fetches collateral or keys (seconds, at worst the
    fetch deadline).  ``go`` is set by a coroutine on the loop: if the appraisal
    ran on the loop, that coroutine could never run and the wait would give up.
    """

    inner: AppraiserLike
    go: threading.Event = attrs.Factory(threading.Event)
    threads: list[int] = attrs.Factory(list)

    @property
    def spec(self) -> Any:
        return self.inner.spec

    @property
    def validator(self) -> Any:
        return self.inner.validator

    @property
    def policy(self) -> Policy:
        return self.inner.policy

    @property
    def pki(self) -> bool:
        return self.inner.pki

    def appraise(
        self,
        evidence: Evidence,
        *,
        binding: BindingContext,
        clock: Clock | None = None,
        host: str | None = None,
    ) -> AttestationResult:
        self.threads.append(threading.get_ident())
        if not self.go.wait(10):
            raise RuntimeError("the event loop never ran while the appraisal waited")
        return self.inner.appraise(evidence, binding=binding, clock=clock, host=host)


async def _while_appraising(slow: SlowCollateral, request: Any) -> Any:
    """Run ``request`` and, on the loop meanwhile, let the appraisal finish."""

    async def release() -> None:
        while not slow.threads:
            await asyncio.sleep(0.01)
        slow.go.set()

    releaser = asyncio.create_task(release())
    try:
        return await request
    finally:
        releaser.cancel()


def test_async_httpx_client_appraises_off_the_event_loop(tee: SimulatedTEE) -> None:
    slow = SlowCollateral(tee.selected())

    async def main(url: str) -> tuple[httpx.Response, int]:
        async with atls_async_httpx_client(validator=slow, timeout=60) as client:
            response = await _while_appraising(slow, client.get(url))
            return response, threading.get_ident()

    with HTTPSServer(tee.certificates().server_context()) as server:
        response, loop_thread = asyncio.run(main(server.url("https", "/off-loop")))
    assert response.json() == {"path": "/off-loop"}
    result = attestation_result(response)
    assert result is not None
    assert result.accepted
    assert slow.threads
    assert loop_thread not in slow.threads


def test_async_openai_client_appraises_off_the_event_loop(tee: SimulatedTEE) -> None:
    slow = SlowCollateral(tee.selected())

    async def main(url: str) -> tuple[list[str], int]:
        client = atls_async_openai_client(
            validator=slow, base_url=url, api_key="k", max_retries=0, timeout=60
        )
        async with client:
            models = await _while_appraising(slow, client.models.list())
        return [m.id for m in models.data], threading.get_ident()

    with HTTPSServer(tee.certificates().server_context()) as server:
        models, loop_thread = asyncio.run(main(server.url("https", "/v1")))
    assert models
    assert slow.threads
    assert loop_thread not in slow.threads


def test_async_challenge_appraises_off_the_event_loop(tee: SimulatedTEE) -> None:
    slow = SlowCollateral(tee.selected(challenge=True))

    async def main(url: str) -> tuple[httpx.Response, int]:
        async with atls_async_httpx_client(validator=slow, timeout=60) as client:
            response = await _while_appraising(slow, client.get(url))
            return response, threading.get_ident()

    with tee.challenge_server() as server:
        response, loop_thread = asyncio.run(main(server.url("https", "/challenged")))
    assert response.json() == {"path": "/challenged"}
    result = attestation_result(response)
    assert result is not None
    assert result.binding.scheme == "challenge-v1"
    assert slow.threads
    assert loop_thread not in slow.threads


def test_off_loop_refusal_still_sends_nothing(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    slow = SlowCollateral(tee.selected())
    slow.go.set()

    async def main(url: str) -> None:
        async with atls_async_httpx_client(validator=slow, timeout=60) as client:
            with pytest.raises(httpx.ConnectError) as caught:
                await client.post(url, content=b"secret")
        assert "binding.report_data" in str(caught.value)
        assert isinstance(attestation_error(caught.value), ATLSVerificationError)

    with HTTPSServer(liar.server_context()) as server:
        asyncio.run(main(server.url("https", "/never")))
        assert server.wait_finished(1)
        assert server.received == 0
        assert server.requests == []


def _pump(source: ssl.MemoryBIO, target: ssl.MemoryBIO) -> None:
    target.write(source.read())


def _deferred_handshake(
    tee: SimulatedTEE, server_context: ssl.SSLContext, *, deferred: bool = True
) -> tuple[ATLSObject, ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
    """Client and server SSLObjects driven by hand until the client's handshake returns."""
    client_context = ATLSContext.for_validator(tee.selected())
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    with appraisal_deferred() if deferred else contextlib.nullcontext():
        client = client_context.wrap_bio(c_in, c_out, server_hostname="localhost")
    server = server_context.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        _pump(c_out, s_in)
        with contextlib.suppress(ssl.SSLWantReadError):
            server.do_handshake()
        _pump(s_out, c_in)
        try:
            client.do_handshake()
            break
        except ssl.SSLWantReadError:
            continue
    else:
        pytest.fail("the handshake did not finish")
    assert isinstance(client, ATLSObject)
    return client, server, c_out, s_in


def test_a_deferred_appraisal_lets_nothing_through_until_it_accepts(tee: SimulatedTEE) -> None:
    client, server, c_out, s_in = _deferred_handshake(tee, tee.certificates().server_context())
    assert result_of(client) is None
    for attempt in (lambda: client.write(b"secret"), lambda: client.read(10)):
        with pytest.raises(ssl.SSLError, match="still being appraised"):
            attempt()
    _pump(c_out, s_in)
    server.do_handshake()
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)  # the Finished only, no application data
    client.finish_appraisal()
    result = client.attestation_result
    assert result is not None
    assert result.accepted
    client.write(b"hello")
    _pump(c_out, s_in)
    assert server.read(1024) == b"hello"


def test_a_deferred_refusal_is_final(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("localhost",), evidence=tee.certificates().static().evidence
    )
    client, server, c_out, s_in = _deferred_handshake(tee, liar.server_context())
    with pytest.raises(ATLSVerificationError) as info:
        client.finish_appraisal()
    assert info.value.check == "binding.report_data"
    for attempt in (client.finish_appraisal, client.do_handshake, lambda: client.write(b"x")):
        with pytest.raises(ATLSVerificationError):
            attempt()
    _pump(c_out, s_in)
    server.do_handshake()
    with pytest.raises(ssl.SSLWantReadError):
        server.read(1024)


def test_deferral_is_only_for_objects_wrapped_inside_the_block(tee: SimulatedTEE) -> None:
    context = ATLSContext.for_validator(tee.selected())
    with appraisal_deferred():
        pass
    early = context.wrap_bio(ssl.MemoryBIO(), ssl.MemoryBIO(), server_hostname="localhost")
    with pytest.raises(ssl.SSLError, match="has not finished"):
        early.finish_appraisal()
    client, _server, _c_out, _s_in = _deferred_handshake(
        tee, tee.certificates().server_context(), deferred=False
    )
    result = client.attestation_result
    assert result is not None
    assert result.accepted  # appraised inside do_handshake


def test_async_client_through_a_proxy_appraises_off_the_event_loop(tee: SimulatedTEE) -> None:
    slow = SlowCollateral(tee.selected())

    async def main(url: str, proxy: str) -> tuple[httpx.Response, int]:
        async with atls_async_httpx_client(validator=slow, proxy=proxy, timeout=60) as client:
            response = await _while_appraising(slow, client.get(url))
            return response, threading.get_ident()

    with HTTPSServer(tee.certificates().server_context()) as server, ConnectProxy() as proxy:
        response, loop_thread = asyncio.run(main(server.url("https", "/tunnelled"), proxy.url))
        assert proxy.tunnels == [f"127.0.0.1:{server.port}"]
    assert response.json() == {"path": "/tunnelled"}
    assert attestation_result(response) is not None
    assert slow.threads
    assert loop_thread not in slow.threads


def test_a_request_cancelled_mid_appraisal_sends_nothing_and_leaves_no_connection(
    tee: SimulatedTEE,
) -> None:
    slow = SlowCollateral(tee.selected())

    async def main(server: HTTPSServer) -> httpx.Response:
        async with atls_async_httpx_client(validator=slow, timeout=60) as client:
            task = asyncio.create_task(
                client.post(server.url("https", "/cancelled"), content=b"secret")
            )
            while not slow.threads:
                await asyncio.sleep(0.01)
            task.add_done_callback(lambda _: slow.go.set())  # the worker may finish after
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            pool = getattr(client._transport, "_inner")._pool  # noqa: B009
            assert pool.connections == []
            return await client.get(server.url("https", "/after"))

    with HTTPSServer(tee.certificates().server_context()) as server:
        response = asyncio.run(main(server))
        assert server.requests == ["/after"]
    assert response.json() == {"path": "/after"}
