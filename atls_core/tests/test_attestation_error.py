"""``attestation_error`` finds the specific atls error inside each HTTP library's exception.

Every library wraps the TLS failure its own way (requests' ``SSLError``,
urllib3's ``MaxRetryError.reason``, httpx's ``ConnectError``, OpenAI's
``APIConnectionError``).  Real clients against real loopback servers whose
evidence fails: a lying server (evidence bound to another key) and an honest
server refused by policy (a pinned image it does not run).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import openai
import pytest
import requests
import urllib3

from atls_core import attestation_error
from atls_core.config import ATLSConfig
from atls_core.errors import AppraisalFailed, ATLSError, ATLSVerificationError, BindingMismatch
from atls_core.httpx_transport import AsyncATLSTransport, ATLSTransport, atls_httpx_client
from atls_core.requests_adapter import ATLSAdapter
from atls_core.server import mint_certificate
from atls_core.testing.loopback import HTTPSServer, SimulatedTEE
from atls_core.tls import ATLSContext

OTHER_IMAGE = "11" * 32


@dataclass
class Failing:
    """A running server whose appraisal fails, and what the failure must say."""

    server: HTTPSServer
    config: ATLSConfig
    check: str
    cause: type[ATLSError]

    def context(self) -> ATLSContext:
        return ATLSContext(self.config)


@pytest.fixture(params=["binding", "policy"])
def failing(request: pytest.FixtureRequest, tee: SimulatedTEE) -> Iterator[Failing]:
    cause: type[ATLSError]
    if request.param == "binding":
        liar = mint_certificate(
            tee.issuer, hostnames=("127.0.0.1",), evidence=tee.certificates().static().evidence
        )
        context = liar.server_context()
        config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1"))
        check, cause = "binding.report_data", BindingMismatch
    else:
        context = tee.certificates().server_context()
        policy = {"reference_values": {"image": OTHER_IMAGE}}
        config = ATLSConfig.from_mapping(tee.config_mapping("127.0.0.1", policy=policy))
        check, cause = "reference.image", AppraisalFailed
    server = HTTPSServer(context)
    with server:
        yield Failing(server, config, check, cause)
        # Whatever the library, no application byte reached the server.
        assert server.wait_finished(server.attempts)
        assert server.received == 0


def _specific(exc: BaseException, failing: Failing) -> ATLSVerificationError:
    assert not isinstance(exc, ATLSError)  # the library's own exception, not ours
    error = attestation_error(exc)
    assert isinstance(error, ATLSVerificationError)
    assert error.check == failing.check
    assert isinstance(error.cause, failing.cause)
    assert error.cause.check == failing.check
    if failing.cause is AppraisalFailed:
        assert error.result is not None
        assert not error.result.accepted
        assert error.result.measurements["image"] != OTHER_IMAGE
    return error


def test_requests(failing: Failing) -> None:
    session = requests.Session()
    session.trust_env = False
    session.mount("httpa://", ATLSAdapter(failing.config))
    with session, pytest.raises(requests.exceptions.SSLError) as caught:
        session.post(failing.server.url("httpa", "/secret"), data=b"secret", timeout=10)
    _specific(caught.value, failing)
    assert failing.server.attempts == 1


def test_urllib3_without_retries(failing: Failing) -> None:
    with (
        urllib3.PoolManager(ssl_context=failing.context()) as pool,
        pytest.raises(urllib3.exceptions.SSLError) as caught,
    ):
        pool.request("POST", failing.server.url(), body=b"secret", retries=False, timeout=10)
    _specific(caught.value, failing)


def test_urllib3_max_retry_error(failing: Failing) -> None:
    """urllib3 keeps the last failure in ``MaxRetryError.reason``."""
    with (
        urllib3.PoolManager(ssl_context=failing.context()) as pool,
        pytest.raises(urllib3.exceptions.MaxRetryError) as caught,
    ):
        pool.request("GET", failing.server.url(), retries=urllib3.Retry(total=1), timeout=10)
    assert isinstance(caught.value.reason, urllib3.exceptions.SSLError)
    _specific(caught.value, failing)
    # urllib3 retries a TLS failure like any connection error: two appraisals.
    assert failing.server.attempts == 2


def test_httpx_sync(failing: Failing) -> None:
    with (
        httpx.Client(transport=ATLSTransport(failing.config), timeout=10) as client,
        pytest.raises(httpx.ConnectError) as caught,
    ):
        client.post(failing.server.url(), content=b"secret")
    _specific(caught.value, failing)
    assert failing.server.attempts == 1


def test_httpx_async(failing: Failing) -> None:
    async def post() -> None:
        transport = AsyncATLSTransport(failing.config)
        async with httpx.AsyncClient(transport=transport, timeout=10) as client:
            await client.post(failing.server.url(), content=b"secret")

    with pytest.raises(httpx.ConnectError) as caught:
        asyncio.run(post())
    _specific(caught.value, failing)


def test_openai_client(failing: Failing) -> None:
    client = openai.OpenAI(
        base_url=failing.server.url("https", "/v1"),
        http_client=atls_httpx_client(failing.config, timeout=10),  # type: ignore[arg-type]
        api_key="x",
        max_retries=0,
    )
    with client, pytest.raises(openai.APIConnectionError) as caught:
        client.models.list()
    _specific(caught.value, failing)
    assert failing.server.attempts == 1


def test_openai_async_client(failing: Failing) -> None:
    from atls_core.httpx_transport import atls_async_httpx_client

    async def main() -> None:
        async with openai.AsyncOpenAI(
            base_url=failing.server.url("https", "/v1"),
            http_client=atls_async_httpx_client(failing.config, timeout=10),  # type: ignore[arg-type]
            api_key="x",
            max_retries=0,
        ) as client:
            await client.models.list()

    with pytest.raises(openai.APIConnectionError) as caught:
        asyncio.run(main())
    _specific(caught.value, failing)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_other_failures_are_not_attestation_errors(tee: SimulatedTEE) -> None:
    """A refused TCP connection is a network fault: nothing to report as an appraisal."""
    session = requests.Session()
    session.trust_env = False
    session.mount("httpa://", ATLSAdapter(validator=tee.selected()))
    with session, pytest.raises(requests.exceptions.ConnectionError) as caught:
        session.get(f"httpa://127.0.0.1:{_closed_port()}/", timeout=10)
    assert attestation_error(caught.value) is None
    assert attestation_error(None) is None
    assert attestation_error(ValueError("unrelated")) is None
