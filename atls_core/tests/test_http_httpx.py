"""httpx transports (sync + async) and the real openai client, over loopback."""

from __future__ import annotations

import asyncio

import httpx
import openai
import pytest

from atls_core.config import ATLSConfig
from atls_core.errors import ATLSVerificationError, ConfigurationError
from atls_core.httpx_transport import (
    EXTENSION,
    AsyncATLSTransport,
    ATLSTransport,
    atls_async_httpx_client,
    atls_httpx_client,
    attestation_result,
)
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE


def test_sync_client_pooling_and_result(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        with atls_httpx_client(validator=tee.selected(), timeout=10) as client:
            first = client.get(server.url("https", "/one"))
            second = client.get(server.url("httpa", "/two"))
        assert first.json() == {"path": "/one"}
        assert second.json() == {"path": "/two"}
        result = attestation_result(first)
        assert result is not None
        assert result.accepted
        assert first.extensions[EXTENSION] is result
        assert attestation_result(second) is result  # same pooled connection
        assert server.handshakes == 1


def test_async_client_and_challenge(tee: SimulatedTEE) -> None:
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1", challenge=True))

    async def main(url: str) -> list[httpx.Response]:
        async with atls_async_httpx_client(config, timeout=10) as client:
            return list(await asyncio.gather(*(client.get(url) for _ in range(5))))

    with tee.challenge_server() as server:
        responses = asyncio.run(main(server.url("https", "/async")))
        assert all(r.json() == {"path": "/async"} for r in responses)
        results = [attestation_result(r) for r in responses]
        assert all(r is not None and r.binding.scheme == "challenge-v1" for r in results)
        # Every new pooled connection was appraised with its own challenge.
        assert server.challenge is not None
        assert server.challenge.answered == server.handshakes
        assert len({r.binding.nonce for r in results if r}) == server.handshakes


def test_transports_reject_and_leak_nothing(tee: SimulatedTEE) -> None:
    liar = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )

    async def post_async(url: str) -> None:
        async with httpx.AsyncClient(transport=AsyncATLSTransport(validator=tee.selected())) as c:
            await c.post(url, content=b"secret")

    with HTTPSServer(liar.server_context()) as server:
        with (
            httpx.Client(transport=ATLSTransport(validator=tee.selected())) as client,
            pytest.raises(httpx.ConnectError) as caught,
        ):
            client.post(server.url("https", "/secret"), content=b"secret")
        assert "binding.report_data" in str(caught.value)
        with pytest.raises(httpx.ConnectError) as caught_async:
            asyncio.run(post_async(server.url("https", "/secret")))
        assert "binding.report_data" in str(caught_async.value)
        assert server.wait_finished(2)
        assert server.received == 0
    cause = caught.value.__cause__ or caught.value.__context__
    while cause is not None and not isinstance(cause, ATLSVerificationError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ATLSVerificationError)


# The plain recipe, http_client=atls_httpx_client(...): openai 3 annotates only its own httpx2
# clients but accepts httpx ones at runtime, which is what these two tests prove.


def test_openai_client_lists_models(tee: SimulatedTEE) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        http_client = atls_httpx_client(validator=tee.selected(), timeout=10)
        client = openai.OpenAI(
            base_url=server.url("https", "/v1"),
            api_key="not-a-secret",
            http_client=http_client,  # type: ignore[arg-type]  # httpx client: see above
        )
        try:
            models = client.models.list()
            assert [m.id for m in models.data] == ["demo-model"]
            raw = client.models.with_raw_response.list()
            response: object = raw.http_response  # typed as httpx2's; really our client's
            assert isinstance(response, httpx.Response)
            assert attestation_result(response) is not None
        finally:
            client.close()
        assert server.requests == ["/v1/models", "/v1/models"]


def test_async_openai_client(tee: SimulatedTEE) -> None:
    async def main(url: str) -> list[str]:
        async with openai.AsyncOpenAI(
            base_url=url,
            api_key="not-a-secret",
            http_client=atls_async_httpx_client(  # type: ignore[arg-type]  # see above
                validator=tee.selected(), timeout=10
            ),
        ) as client:
            page = await client.models.list()
            return [m.id for m in page.data]

    with HTTPSServer(tee.certificates().server_context()) as server:
        assert asyncio.run(main(server.url("https", "/v1"))) == ["demo-model"]


def test_plain_http_is_refused(tee: SimulatedTEE) -> None:
    with (
        httpx.Client(transport=ATLSTransport(validator=tee.selected())) as client,
        pytest.raises(ConfigurationError, match=r"http\.scheme"),
    ):
        client.get("http://127.0.0.1:1/")
