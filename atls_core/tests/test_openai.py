"""The real OpenAI client over atls: refusals are final, results reachable, faults retried.

The OpenAI client retries connection errors.  With the plain recipe
(``http_client=atls_httpx_client(config)``) a server that fails attestation
is appraised once per attempt; :func:`atls_openai_client` makes the refusal an
``APIConnectionError`` the client does not retry.  The servers count
connection attempts as their threads start, before they send a TLS byte, so
every attempt a returned call made is counted.
"""

from __future__ import annotations

import asyncio
import http.server
from typing import Any

import httpx
import openai
import pytest

from atls_core import attestation_error
from atls_core.config import ATLSConfig
from atls_core.errors import (
    ATLSVerificationError,
    BindingMismatch,
    CollateralUnavailable,
    MalformedEvidence,
)
from atls_core.httpx_transport import atls_httpx_client, attestation_result, refusal_of
from atls_core.openai_client import (
    AttestationConnectionError,
    atls_async_openai_client,
    atls_openai_client,
)
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.tls import ATLSContext


class _Silent(http.server.BaseHTTPRequestHandler):
    """Never answers: reads until the client gives up and closes."""

    def handle(self) -> None:
        self.rfile.read()


@pytest.fixture(scope="module")
def config(tee: SimulatedTEE) -> ATLSConfig:
    return ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))


@pytest.fixture
def liar(tee: SimulatedTEE) -> Any:
    """A server whose evidence is bound to another key."""
    certificate = mint_certificate(
        tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
    )
    server = HTTPSServer(certificate.server_context())
    with server:
        yield server
        assert server.wait_finished(server.attempts)
        assert server.received == 0


def test_the_plain_recipe_retries_a_refusal(config: ATLSConfig, liar: HTTPSServer) -> None:
    """Why the helper exists: each retry is another handshake and appraisal."""
    client = openai.OpenAI(
        base_url=liar.url("https", "/v1"),
        http_client=atls_httpx_client(config, timeout=10),  # type: ignore[arg-type]
        api_key="x",
        max_retries=1,
    )
    with client, pytest.raises(openai.APIConnectionError) as caught:
        client.models.list()
    assert caught.value.message == "Connection error."
    assert liar.attempts == 2


def test_a_refusal_is_final_and_specific(config: ATLSConfig, liar: HTTPSServer) -> None:
    client = atls_openai_client(config, base_url=liar.url("https", "/v1"), api_key="x")
    assert client.max_retries == 2  # the OpenAI default: retries stay on for other errors
    with client, pytest.raises(openai.APIConnectionError) as caught:
        client.chat.completions.create(
            model="demo-model", messages=[{"role": "user", "content": "secret"}]
        )
    assert liar.attempts == 1
    refused = caught.value
    assert isinstance(refused, AttestationConnectionError)
    assert refused.check == "binding.report_data"
    assert "binding.report_data" in refused.message
    error = attestation_error(refused)
    assert isinstance(error, ATLSVerificationError)
    assert error is refused.error
    assert isinstance(error.cause, BindingMismatch)


def test_async_refusal_is_final(config: ATLSConfig, liar: HTTPSServer) -> None:
    async def main() -> None:
        async with atls_async_openai_client(
            config, base_url=liar.url("https", "/v1"), api_key="x"
        ) as client:
            await client.models.list()

    with pytest.raises(AttestationConnectionError) as caught:
        asyncio.run(main())
    assert caught.value.check == "binding.report_data"
    assert liar.attempts == 1


def test_a_policy_refusal_carries_the_result(tee: SimulatedTEE) -> None:
    policy = {"reference_values": {"image": "11" * 32}}
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1", policy=policy))
    server = HTTPSServer(tee.certificates().server_context())
    with server:
        with (
            atls_openai_client(config, base_url=server.url("https", "/v1"), api_key="x") as client,
            pytest.raises(AttestationConnectionError) as caught,
        ):
            client.models.list()
        assert server.attempts == 1
    assert caught.value.check == "reference.image"
    error = attestation_error(caught.value)
    assert isinstance(error, ATLSVerificationError)
    assert error.result is not None
    assert error.result.measurements["image"] == tee.image


def test_accepted_server(tee: SimulatedTEE, config: ATLSConfig) -> None:
    with HTTPSServer(tee.certificates().server_context()) as server:
        client = atls_openai_client(
            config,
            base_url=server.url("https", "/v1"),
            api_key="x",
            http_client_options={"timeout": 10},
        )
        with client:
            raw = client.models.with_raw_response.list()
    assert [m.id for m in raw.parse().data] == ["demo-model"]
    result = attestation_result(raw.http_response)  # type: ignore[arg-type]
    assert result is not None
    assert result.accepted


def test_a_network_fault_is_still_retried(tee: SimulatedTEE) -> None:
    """A challenge that times out could not decide anything: the client may try again."""
    config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1", challenge=True))
    static = tee.certificates().static()
    server = HTTPSServer(static.server_context())
    server.RequestHandlerClass = _Silent
    with server:
        client = atls_openai_client(
            context=ATLSContext(config, challenge_timeout=0.2),
            base_url=server.url("https", "/v1"),
            api_key="x",
            max_retries=1,
        )
        with client, pytest.raises(openai.APIConnectionError) as caught:
            client.models.list()
        assert server.attempts == 2
        assert server.wait_finished(2)
    assert not isinstance(caught.value, AttestationConnectionError)
    error = attestation_error(caught.value)
    assert error is not None
    assert error.check == "challenge.timeout"


def _wrapped(cause: Exception) -> httpx.ConnectError:
    """How httpx hands a TLS-layer failure to its caller."""
    try:
        try:
            raise ATLSVerificationError(cause, host="h")  # type: ignore[arg-type]
        except ATLSVerificationError as error:
            raise httpx.ConnectError(str(error)) from error
    except httpx.ConnectError as exc:
        return exc


def test_refusal_of_separates_verdicts_from_faults() -> None:
    verdict = _wrapped(MalformedEvidence("garbage", check="challenge.framing"))
    assert refusal_of(verdict) is attestation_error(verdict)
    fault = _wrapped(CollateralUnavailable("PCS did not answer", check="tdx.collateral"))
    assert attestation_error(fault) is not None
    assert refusal_of(fault) is None
    assert refusal_of(httpx.ConnectError("connection refused")) is None
