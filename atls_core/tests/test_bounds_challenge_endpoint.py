"""What a challenge request body can make the endpoint do before an issuer call: answer 400."""

from __future__ import annotations

import asyncio
import http.client
import ssl
from collections.abc import MutableMapping
from typing import Any

import pytest

from atls_core.challenge_endpoint import ChallengeASGIMiddleware
from atls_core.server import ChallengeEndpoint
from atls_core.testing.loopback import SimulatedTEE
from atls_core.testing.simulated import CHALLENGE_PATH

DEEP = b'{"nonce": ' + b"[" * 2000 + b"]" * 2000 + b"}"
"""Nesting deeper than the JSON parser's recursion limit, within the default ``max_body``."""


@pytest.fixture(scope="module")
def tee() -> SimulatedTEE:
    return SimulatedTEE()


def _post(port: int, body: bytes) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the server's plain certificate; not what is tested
    connection = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    try:
        connection.request("POST", CHALLENGE_PATH, body=body)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def test_a_deeply_nested_body_is_a_bad_request(tee: SimulatedTEE) -> None:
    with tee.challenge_server() as server:
        endpoint = server.challenge
        assert endpoint is not None
        assert len(DEEP) <= endpoint.max_body
        status, body = _post(server.port, DEEP)
        assert (status, body) == (400, b"challenge.request: challenge body carries no hex nonce\n")
        assert endpoint.answered == 0
        status, _ = _post(server.port, b'{"nonce": "' + b"00" * 32 + b'"}')
        assert status == 200  # the server still serves


def test_the_asgi_middleware_answers_a_deeply_nested_body_with_400(tee: SimulatedTEE) -> None:
    with tee.challenge_server() as server:
        endpoint = server.challenge
    assert endpoint is not None
    assert len(DEEP) <= endpoint.max_body
    sent: list[MutableMapping[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the challenge path must not reach the app")

    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": DEEP, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": CHALLENGE_PATH, "client": ("192.0.2.1", 1)}
    asyncio.run(ChallengeASGIMiddleware(app, endpoint)(scope, receive, send))
    assert sent[0]["status"] == 400
    assert isinstance(endpoint, ChallengeEndpoint)
